"""Where the model is unsure: per-pixel entropy and the most uncertain unchecked region."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def normalized_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy over the class axis (third from last), divided by log(classes): 0 sure, 1 clueless."""
    classes = probabilities.shape[-3]
    clipped = np.clip(probabilities, 1e-7, 1.0)
    entropy = -(clipped * np.log(clipped)).sum(axis=-3)
    return (entropy / np.log(classes)).astype(np.float32)


def most_uncertain_window(uncertainty: np.ndarray, checked: np.ndarray | None = None,
                          window: int = 128) -> tuple[int, int] | None:
    """Centre (row, col) of the ``window``-sized square with the highest mean unchecked uncertainty.

    Returns None when every pixel has been checked.
    """
    unchecked = np.ones(uncertainty.shape, dtype=bool) if checked is None else ~np.asarray(checked, bool)
    if not unchecked.any():
        return None
    size = max(1, min(window, *uncertainty.shape))
    score = ndi.uniform_filter(np.where(unchecked, uncertainty, 0.0).astype(np.float32), size=size,
                               mode="constant")
    score[~unchecked] = -1.0
    row, col = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(row), int(col)
