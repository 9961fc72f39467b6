"""Training targets from instance labels, and the augmentation of training crops."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2


def instance_targets(labels: np.ndarray) -> np.ndarray:
    """Per-pixel classes from instance labels: 0 background, 1 interior, 2 boundary (uint8).

    The boundary is each object's inner edge (1 pixel), widened to 2 pixels where objects touch.
    """
    labels = np.asarray(labels)
    foreground = labels > 0
    boundary = find_boundaries(labels, mode="inner") & foreground
    # Where two objects touch, widen the dividing line to 2 pixels on each side, so the interiors
    # of touching nuclei stay apart and seed separate objects.
    others_above = ndi.maximum_filter(labels, size=5) != labels
    as_high = np.where(foreground, labels, np.iinfo(labels.dtype).max)
    others_below = ndi.minimum_filter(as_high, size=5) != labels
    boundary |= foreground & (others_above | others_below)
    targets = np.zeros(labels.shape, dtype=np.uint8)
    targets[labels > 0] = INTERIOR
    targets[boundary] = BOUNDARY
    return targets


def augment(
    image: np.ndarray, targets: np.ndarray, weights: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random 90-degree rotation and flip of a (C, Y, X) crop and its targets; then, on the image only,
    intensity jitter (gain, offset, gamma), and now and then a blur or camera noise."""
    turns = int(rng.integers(4))
    image = np.rot90(image, turns, axes=(-2, -1))
    targets = np.rot90(targets, turns, axes=(-2, -1))
    weights = np.rot90(weights, turns, axes=(-2, -1))
    if rng.random() < 0.5:
        image, targets, weights = image[..., ::-1], targets[..., ::-1], weights[..., ::-1]
    image = np.ascontiguousarray(image, dtype=np.float32)
    if rng.random() < 0.25:  # out of focus, or a lower-resolution objective
        image = ndi.gaussian_filter(image, sigma=(0.0, *(2 * [float(rng.uniform(0.5, 1.5))])))
    gain = float(np.exp(rng.normal(0.0, 0.25)))
    offset = float(rng.normal(0.0, 0.05))
    gamma = float(np.exp(rng.normal(0.0, 0.15)))
    image = np.sign(image) * np.abs(image) ** gamma * gain + offset
    if rng.random() < 0.25:  # a noisier camera or a shorter exposure
        image = image + rng.normal(0.0, float(rng.uniform(0.01, 0.08)), image.shape).astype(np.float32)
    return (
        np.ascontiguousarray(image, dtype=np.float32),
        np.ascontiguousarray(targets),
        np.ascontiguousarray(weights),
    )
