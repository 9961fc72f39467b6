"""Helpers for widget tests."""

import numpy as np


def wait_idle(qtbot, widget, timeout: int = 60_000) -> None:
    """Wait until the widget's worker has finished and its handlers have run (worker reset to None)."""
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def painted(labels: np.ndarray) -> np.ndarray:
    edited = labels.copy()
    edited[10:20, 10:20] = edited.max() + 1
    return edited
