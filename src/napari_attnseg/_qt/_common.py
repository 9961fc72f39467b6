"""Small pieces the dock widgets share: layer pickers, buttons, confirmation."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Callable

import numpy as np
from magicgui.widgets import ComboBox, Container
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QLabel, QMessageBox, QPushButton, QWidget

from ._session import session_for

if TYPE_CHECKING:
    import napari


def layer_combo(viewer: napari.Viewer, layer_type: type, label: str,
                keep: Callable[[str], bool] = lambda name: True) -> ComboBox:
    """A combo box of the viewer's layers of ``layer_type`` whose names pass ``keep``."""

    def choices(_widget=None):
        return [layer.name for layer in viewer.layers if isinstance(layer, layer_type) and keep(layer.name)]

    return ComboBox(label=label, choices=choices)


def labels_for_display(labels: np.ndarray) -> np.ndarray:
    """uint16 when the ids fit: napari shows uint8/uint16 labels directly, while int32 ones need a
    colour mapping that makes adding a 1024x1024 layer take ~0.3 s instead of ~0.08 s.
    Files are always written as int32."""
    labels = np.asarray(labels)
    if labels.dtype != np.uint16 and labels.size and 0 <= labels.min() and labels.max() < 2**16 - 1:
        return labels.astype(np.uint16)
    return labels


@functools.lru_cache(maxsize=1)
def warm_up_labels() -> None:
    """Pay napari's one-time cost of a first Labels layer (it imports skimage.color for the colour
    map, ~0.2-0.4 s) when a widget opens, rather than in the middle of a job's result."""
    from napari.layers import Labels

    Labels(np.zeros((2, 2), dtype=np.uint16))


CHECKED_CONTOUR = 2  # the checked regions' outline, in screen pixels of the image


def add_checked_layer(viewer: napari.Viewer, mask: np.ndarray, name: str, **kwargs):
    """The checked-regions layer: the outline of label 1 in green, so the nuclei inside stay easy to
    judge (napari's layer controls set the outline's width, or 0 for a filled tint, and opacity)."""
    from napari.utils.colormaps import DirectLabelColormap

    colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: "lime"})
    layer = viewer.add_labels(np.asarray(mask).astype(np.uint8), name=name, opacity=0.7,
                              colormap=colormap, **kwargs)
    layer.contour = CHECKED_CONTOUR
    return layer


def put_layer(viewer: napari.Viewer, name: str, data: np.ndarray, layer_type: type, **kwargs) -> None:
    """Show ``data`` in the layer called ``name``: reuse it when it is of ``layer_type`` (and, for
    labels, when the ids fit its dtype) — much cheaper than a new layer — else (re)create it."""
    from napari.layers import Labels

    existing = viewer.layers[name] if name in viewer.layers else None
    if isinstance(existing, layer_type) and (layer_type is not Labels or data.max(initial=0) < 2**16 - 1
                                             or existing.data.dtype != np.uint16):
        existing.data = data.astype(existing.data.dtype, copy=False) if layer_type is Labels else data
        return
    if existing is not None:
        viewer.layers.remove(name)
    if kwargs.get("scale") is None:
        kwargs.pop("scale", None)
    if layer_type is Labels:
        viewer.add_labels(labels_for_display(data), name=name, **kwargs)
    else:
        viewer.add_image(data, name=name, **kwargs)


def is_checked_layer(name: str) -> bool:
    """Checked-region masks are Labels layers named '<image>_checked'."""
    return name.endswith("_checked")


def watch_layers(viewer: napari.Viewer, container: Container) -> None:
    """Refresh the container's layer pickers whenever layers are added, removed or renamed."""
    for event in (viewer.layers.events.inserted, viewer.layers.events.removed,
                  viewer.layers.events.reordered):
        event.connect(lambda _event=None: container.reset_choices())
    viewer.layers.events.inserted.connect(
        lambda event: event.value.events.name.connect(lambda _e=None: container.reset_choices())
    )


def button(text: str, slot: Callable[[], object], tooltip: str = "", parent: QWidget | None = None) -> QPushButton:
    widget = QPushButton(text, parent)
    widget.setToolTip(tooltip)
    widget.clicked.connect(lambda _checked=False: slot())
    return widget


def get_layer(viewer: napari.Viewer, name: str | None):
    """The layer called ``name``, or None."""
    if name is None:
        return None
    return viewer.layers[name] if name in viewer.layers else None


# Layers are followed by their unique_id, never by reference: a dock opened from napari's Plugins
# menu gets a proxy of the viewer, and every ``viewer.layers[...]`` read through it is a new proxy
# object, so ``is``, ``id()`` and weak references on layers do not follow a layer there.
def layer_by_id(viewer: napari.Viewer, unique_id: str | None):
    """The layer whose ``unique_id`` this is, wherever it is in the list (and whatever its name), or None."""
    if unique_id is None:
        return None
    return next((layer for layer in viewer.layers if layer.unique_id == unique_id), None)


def is_open(viewer: napari.Viewer, layer) -> bool:
    """True while ``layer`` itself (not just one of its name) is in the viewer."""
    return layer is not None and layer_by_id(viewer, layer.unique_id) is not None


def confirm(parent: QWidget, question: str) -> bool:
    """Ask a yes/no question (tests replace this function)."""
    answer = QMessageBox.question(parent, "AttnSeg", question,
                                  QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
    return answer == QMessageBox.Yes


class WorkerDock(QWidget):
    """What every dock that runs a job holds: its viewer, the viewer's Session and the job's worker.

    ``cancel`` quits the worker at its next yield; the worker's own handlers restore the controls.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.worker = None
        self.status = QLabel("")
        self.status.setWordWrap(True)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()

    def fail(self, message: str) -> None:
        """A user mistake or a failed job: one notification, and the same words in the dock's status
        line (so an old status does not stay there, saying something else)."""
        show_error(message)
        self.status.setText(message)
