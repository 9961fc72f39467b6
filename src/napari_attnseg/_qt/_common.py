"""Small pieces the dock widgets share: layer pickers, buttons, confirmation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from magicgui.widgets import ComboBox, Container
from qtpy.QtWidgets import QMessageBox, QPushButton, QWidget

if TYPE_CHECKING:
    import napari


def layer_combo(viewer: napari.Viewer, layer_type: type, label: str,
                keep: Callable[[str], bool] = lambda name: True) -> ComboBox:
    """A combo box of the viewer's layers of ``layer_type`` whose names pass ``keep``."""

    def choices(_widget=None):
        return [layer.name for layer in viewer.layers if isinstance(layer, layer_type) and keep(layer.name)]

    return ComboBox(label=label, choices=choices)


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


def confirm(parent: QWidget, question: str) -> bool:
    """Ask a yes/no question (tests replace this function)."""
    answer = QMessageBox.question(parent, "AttnSeg", question,
                                  QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
    return answer == QMessageBox.Yes
