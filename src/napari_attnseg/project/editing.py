"""Instance-mask edits that napari's label tools lack; pure functions on label arrays (no Qt).

Each returns a new array; the GUI writes only the changed pixels back through napari's
``Labels.data_setitem`` so every edit is one undoable step.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import line as draw_line
from skimage.feature import peak_local_max
from skimage.segmentation import expand_labels, relabel_sequential, watershed

from ..errors import InputError


def _require(labels: np.ndarray, label_id: int) -> np.ndarray:
    if label_id <= 0:
        raise InputError("pick an object, not the background")
    mask = labels == label_id
    if not mask.any():
        raise InputError(f"there is no object {label_id}")
    return mask


def next_free_label(labels: np.ndarray) -> int:
    """The smallest id above every id in use."""
    return int(labels.max(initial=0)) + 1


def delete_object(labels: np.ndarray, label_id: int) -> np.ndarray:
    mask = _require(labels, label_id)
    return np.where(mask, 0, labels).astype(labels.dtype, copy=False)


def merge_objects(labels: np.ndarray, keep_id: int, merge_id: int) -> np.ndarray:
    """Give ``merge_id``'s pixels to ``keep_id``; background pixels that a 3x3 closing of the
    union fills (the thin gap between them, and small notches) join it too."""
    keep, merge = _require(labels, keep_id), _require(labels, merge_id)
    if keep_id == merge_id:
        raise InputError("pick two different objects to merge")
    merged = np.where(merge, keep_id, labels)
    union = keep | merge
    closed = ndi.binary_closing(union, structure=np.ones((3,) * labels.ndim), iterations=1)
    bridge = closed & ~union & (labels == 0)
    merged[bridge] = keep_id
    return merged.astype(labels.dtype, copy=False)


def split_by_line(labels: np.ndarray, label_id: int, points: np.ndarray) -> np.ndarray:
    """Cut a 2D object along a polyline of (row, col) points; each piece gets its own id."""
    mask = _require(labels, label_id)
    points = np.asarray(points, dtype=float)
    if labels.ndim != 2 or points.ndim != 2 or points.shape[0] < 2 or points.shape[1] != 2:
        raise InputError("draw a line of at least two points across a 2D object to split it")
    cut = np.zeros_like(mask)
    for (r0, c0), (r1, c1) in zip(points[:-1], points[1:]):
        rows, cols = draw_line(int(round(r0)), int(round(c0)), int(round(r1)), int(round(c1)))
        inside = (rows >= 0) & (rows < mask.shape[0]) & (cols >= 0) & (cols < mask.shape[1])
        cut[rows[inside], cols[inside]] = True
    cut = ndi.binary_dilation(cut, structure=ndi.generate_binary_structure(2, 1))
    pieces, count = ndi.label(mask & ~cut)
    if count < 2:
        raise InputError("the line does not cut the object in two; draw it all the way across")
    return _assign_pieces(labels, mask, pieces, label_id)


def split_by_watershed(labels: np.ndarray, label_id: int, min_distance: int = 5) -> np.ndarray:
    """Split an object at the necks of its distance transform (for touching round nuclei)."""
    mask = _require(labels, label_id)
    distance = ndi.distance_transform_edt(mask)
    peaks = peak_local_max(distance, min_distance=min_distance, labels=mask.astype(np.int32),
                           exclude_border=False)
    if len(peaks) < 2:
        raise InputError("found no neck to split this object at; try splitting along a line")
    markers = np.zeros(labels.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    pieces = watershed(-distance, markers, mask=mask)
    return _assign_pieces(labels, mask, pieces, label_id)


def _assign_pieces(labels, mask, pieces, label_id):
    """The largest piece keeps ``label_id``; the others get fresh ids; cut pixels rejoin a piece."""
    pieces = expand_labels(pieces, distance=2) * mask
    sizes = np.bincount(pieces.ravel())
    sizes[0] = 0
    order = np.argsort(sizes)[::-1]
    result = labels.copy()
    fresh = next_free_label(labels)
    for rank, piece in enumerate(order):
        if sizes[piece] == 0:
            break
        result[pieces == piece] = label_id if rank == 0 else fresh + rank - 1
    return result


def fill_holes(labels: np.ndarray) -> np.ndarray:
    """Fill background holes enclosed by a single object."""
    filled = labels.copy()
    for label_id, window in enumerate(ndi.find_objects(labels), start=1):
        if window is None:
            continue
        own = labels[window] == label_id
        holes = ndi.binary_fill_holes(own) & ~own & (labels[window] == 0)
        filled[window][holes] = label_id
    return filled


def relabel(labels: np.ndarray) -> np.ndarray:
    """Ids 1..N with no gaps, keeping the order of the old ids."""
    return relabel_sequential(labels)[0].astype(labels.dtype, copy=False)


def changed_pixels(before: np.ndarray, after: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Indices and new values where ``after`` differs from ``before`` (for undoable writes)."""
    changed = before != after
    return np.nonzero(changed), after[changed]


def object_count(labels: np.ndarray) -> int:
    return int(np.count_nonzero(np.bincount(labels.ravel())[1:])) if labels.size else 0


def delete_inside(labels: np.ndarray, region: np.ndarray, share: float = 0.5) -> np.ndarray:
    """Delete every object with at least ``share`` of its pixels inside the bool ``region``."""
    region = np.asarray(region, dtype=bool)
    if region.shape != labels.shape:
        raise InputError(f"the region {region.shape} does not fit the labels {labels.shape}")
    areas = np.bincount(labels.ravel())
    inside = np.bincount(labels[region].ravel(), minlength=areas.size)
    doomed = np.flatnonzero((inside >= share * np.maximum(areas, 1)) & (areas > 0))
    doomed = doomed[doomed > 0]
    if doomed.size == 0:
        raise InputError("no object lies mostly inside the region")
    return np.where(np.isin(labels, doomed), 0, labels).astype(labels.dtype, copy=False)


def merge_edits(base: np.ndarray, edited: np.ndarray, newer: np.ndarray) -> np.ndarray:
    """Put the edits made on ``base`` (the pixels where ``edited`` differs from it) onto ``newer``
    labels that replaced ``base`` meanwhile (say, another program saved a segmentation).

    Objects the edits painted anew get ids above every id in ``newer``, so they join nothing there;
    pixels the edits did not touch keep ``newer``'s ids.
    """
    changed = edited != base
    merged = np.array(newer, copy=True)
    if not changed.any():
        return merged
    painted_ids = np.unique(edited[changed])
    new_ids = painted_ids[(painted_ids > 0) & ~np.isin(painted_ids, np.unique(base))]
    first_free = next_free_label(newer)  # one scan of ``newer``, not one per painted id
    lookup = {int(old): first_free + index for index, old in enumerate(new_ids)}
    values = edited[changed]
    for old, new in lookup.items():
        values = np.where(values == old, new, values)
    merged[changed] = values
    return merged
