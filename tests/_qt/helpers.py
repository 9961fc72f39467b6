"""Helpers for widget tests."""

import numpy as np


def wait_idle(qtbot, widget, timeout: int = 60_000) -> None:
    """Wait until the widget's worker has finished and its handlers have run (worker reset to None)."""
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def painted(labels: np.ndarray) -> np.ndarray:
    edited = labels.copy()
    edited[10:20, 10:20] = edited.max() + 1
    return edited


def segment_layer(viewer, qtbot, image, name: str = "cells", wait: bool = True, **options):
    """Add ``image`` as a layer and run the Segment widget on it; returns the widget."""
    from napari_attnseg._qt import SegmentWidget

    viewer.add_image(image, name=name)
    segment = SegmentWidget(viewer)
    qtbot.addWidget(segment)
    segment.image_combo.value = name
    for option, value in options.items():
        getattr(segment, option).value = value
    segment.start()
    if wait:
        wait_idle(qtbot, segment)
    return segment


def finetune_widget_for(viewer, qtbot, image, labels, checked, name: str = "cells"):
    """Layers '<name>', '<name>_labels', '<name>_checked' and a Fine-tune widget set to use them."""
    from napari_attnseg._qt import FinetuneWidget

    viewer.add_image(image, name=name)
    viewer.add_labels(np.asarray(labels, dtype=np.int32), name=f"{name}_labels")
    viewer.add_labels(np.asarray(checked, dtype=np.uint8), name=f"{name}_checked")
    finetune = FinetuneWidget(viewer)
    qtbot.addWidget(finetune)
    finetune.image_combo.value, finetune.labels_combo.value = name, f"{name}_labels"
    finetune.checked_combo.value = f"{name}_checked"
    return finetune
