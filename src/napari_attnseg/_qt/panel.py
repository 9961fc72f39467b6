"""AttnSeg: one dock whose own tabs say Images, Segment, Correct, Fine-tune, Compare and Model.

Six napari docks tabified side by side all read "AttnS…" in their tabs; one panel with short tab
titles is what ``python -m napari_attnseg`` and the Plugins menu's *AttnSeg* open. Each tab is the
same widget as its own dock (they share the viewer's Session), so the separate docks stay available.
"""

from __future__ import annotations

import napari
from qtpy.QtWidgets import QScrollArea, QTabWidget, QVBoxLayout, QWidget

from .compare_widget import CompareWidget
from .correct_widget import CorrectWidget
from .finetune_widget import FinetuneWidget
from .images_widget import ImagesWidget
from .model_widget import ModelWidget
from .segment_widget import SegmentWidget

TABS = (("Images", ImagesWidget), ("Segment", SegmentWidget), ("Correct", CorrectWidget),
        ("Fine-tune", FinetuneWidget), ("Compare", CompareWidget), ("Model", ModelWidget))


class AttnSegPanel(QWidget):
    """The six AttnSeg widgets as tabs of one dock; ``self.tabs[name]`` is each widget."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.tab_widget = QTabWidget()
        self.tabs: dict[str, QWidget] = {}
        for title, widget_class in TABS:
            widget = widget_class(napari_viewer)
            self.tabs[title] = widget
            scroll = QScrollArea()  # a tall tab scrolls instead of stretching napari's window
            scroll.setWidgetResizable(True)
            scroll.setWidget(widget)
            self.tab_widget.addTab(scroll, title)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tab_widget)
        self.show_tab("Segment")

    def showEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self.tabs["Images"].watch_window(self.window())  # save on close, even if that tab is never opened
        super().showEvent(event)

    def show_tab(self, title: str) -> None:
        self.tab_widget.setCurrentIndex([name for name, _ in TABS].index(title))
