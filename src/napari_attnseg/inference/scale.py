"""Object size (cellpose's ``diameter``): measure it, and rescale images to the size a model knows.

A model trained with ``ModelConfig.diameter = D`` saw every training image rescaled so that its
nuclei's median diameter was D (with some jitter). At inference an image is rescaled by
``D / diameter`` (``InferConfig.diameter``, or estimated here), segmented, and its class
probabilities resized back to the image's own grid, so the labels fit the image pixel for pixel.

The estimate asks the network itself: it segments a window of the image, takes the median diameter
of the objects it found, rescales the window so those would have size D, and asks again until two
answers agree (a network shown objects far from its size finds fragments or nothing, so one answer
at the wrong scale is not trusted). Objects cut by the window's edge are not counted.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

#: rescale only when the objects differ from the model's size by more than this factor
TOLERANCE = 1.15
MIN_FACTOR, MAX_FACTOR = 1 / 8, 8.0
PROBE_EDGE = 512  # pixels of the model's grid a probe looks at
_AGREE = 1.15  # two estimates this close are the answer


def equivalent_diameters(labels: np.ndarray) -> np.ndarray:
    """Diameter of the circle of each object's area, for every object of ``labels`` (any ndim: per
    plane areas are what a 2D network sees, so pass planes)."""
    areas = np.bincount(np.asarray(labels).ravel())[1:]
    areas = areas[areas > 0]
    return 2.0 * np.sqrt(areas / np.pi)


def median_diameter(labels: np.ndarray) -> float | None:
    """The median equivalent diameter of the objects of a plane (or of all planes of a stack), or
    None when there are none."""
    labels = np.asarray(labels)
    planes = labels.reshape((-1,) + labels.shape[-2:]) if labels.ndim > 2 else labels[np.newaxis]
    diameters = np.concatenate([equivalent_diameters(plane) for plane in planes]) if len(planes) else []
    return float(np.median(diameters)) if len(diameters) else None


def factor_for(model_diameter: float | None, diameter: float | None) -> float:
    """How much to scale an image whose objects are ``diameter`` across for a model trained at
    ``model_diameter``: 1 when either is unknown or they are within TOLERANCE of each other."""
    if not model_diameter or not diameter:
        return 1.0
    factor = float(np.clip(model_diameter / diameter, MIN_FACTOR, MAX_FACTOR))
    return 1.0 if abs(math.log(factor)) < math.log(TOLERANCE) else factor


def scaled_shape(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    return tuple(max(4, int(round(side * factor))) for side in shape)


def resize(planes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize the last two axes of a float (..., Y, X) array to ``shape`` (bilinear; antialiased when
    shrinking). Probabilities stay probabilities: each output pixel is a convex mix of input pixels."""
    planes = np.asarray(planes, dtype=np.float32)
    if tuple(planes.shape[-2:]) == tuple(shape):
        return planes
    lead = planes.shape[:-2]
    tensor = torch.from_numpy(np.ascontiguousarray(planes.reshape((-1, 1) + planes.shape[-2:])))
    shrinking = shape[0] < planes.shape[-2] or shape[1] < planes.shape[-1]
    with torch.inference_mode():
        resized = F.interpolate(tensor, size=tuple(shape), mode="bilinear", align_corners=False,
                                antialias=shrinking)
    return resized.numpy().reshape(lead + tuple(shape))


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of (..., Y, X) label images (ids kept)."""
    labels = np.asarray(labels)
    if tuple(labels.shape[-2:]) == tuple(shape):
        return labels
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * labels.shape[-2] / shape[0]).astype(np.int64),
                      labels.shape[-2] - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * labels.shape[-1] / shape[1]).astype(np.int64),
                      labels.shape[-1] - 1)
    return labels[..., rows[:, np.newaxis], cols[np.newaxis, :]]


def rescaled_pair(image: np.ndarray, labels: np.ndarray, channel_axis: int | None, factor: float):
    """An image (grey, or with its channels on ``channel_axis``) and its labels at ``factor`` times
    their size, bilinear and nearest neighbour: what an image of other-sized objects looks like (the
    object-size benchmark and tests)."""
    shape = scaled_shape(labels.shape, factor)
    if channel_axis is None:
        image = resize(image, shape)
    else:
        image = np.moveaxis(resize(np.moveaxis(image, channel_axis, 0), shape), 0, channel_axis)
    return image, resize_labels(labels, shape)


def interior_diameters(labels: np.ndarray) -> np.ndarray:
    """Equivalent diameters of the objects that do not touch the plane's edge."""
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    inside = np.where(np.isin(labels, edge[edge > 0]), 0, labels)
    return equivalent_diameters(inside)


def probe_window(shape: tuple[int, int], factor: float) -> tuple[slice, slice]:
    """The central window of a plane that fills PROBE_EDGE pixels once scaled by ``factor``."""
    edge = max(16, int(PROBE_EDGE / factor))
    window = []
    for side in shape:
        size = min(side, edge)
        start = (side - size) // 2
        window.append(slice(start, start + size))
    return tuple(window)


def next_factor(model_diameter: float, factor: float, diameters: np.ndarray) -> tuple[float | None, float | None]:
    """From the objects a probe at ``factor`` found: (the diameter they imply in image pixels, the
    factor to probe next, None when this answer stands)."""
    if diameters.size < 3:
        return None, None
    diameter = float(np.median(diameters)) / factor
    wanted = float(np.clip(model_diameter / diameter, MIN_FACTOR, MAX_FACTOR))
    if abs(math.log(wanted / factor)) < math.log(_AGREE):
        return diameter, None
    # at most 4x per step: an answer from far off the model's size is a direction, not a value
    return diameter, float(np.clip(wanted, factor / 4, factor * 4))
