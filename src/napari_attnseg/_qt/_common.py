"""Small pieces the dock widgets share: layer pickers, buttons, confirmation."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Callable

import numpy as np
from magicgui.widgets import ComboBox, Container
from qtpy.QtWidgets import QMessageBox, QPushButton, QWidget

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


def add_checked_layer(viewer: napari.Viewer, mask: np.ndarray, name: str, **kwargs):
    """The checked-regions layer: label 1 in green, translucent, over the image."""
    from napari.utils.colormaps import DirectLabelColormap

    colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: "lime"})
    return viewer.add_labels(np.asarray(mask).astype(np.uint8), name=name, opacity=0.25,
                             colormap=colormap, **kwargs)


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


def is_open(viewer: napari.Viewer, layer) -> bool:
    """True while ``layer`` itself (not just one of its name) is in the viewer."""
    return any(candidate is layer for candidate in viewer.layers)


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

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()
