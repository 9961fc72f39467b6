"""Class probabilities → instance labels (seeded watershed), z-stitching and clean-up."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed


def instances_from_probabilities(
    probabilities: np.ndarray,
    prob_threshold: float = 0.5,
    seed_threshold: float = 0.6,
    min_size: int = 15,
) -> np.ndarray:
    """Instance labels (int32, Y X) from (3, Y, X) background / interior / boundary probabilities.

    Seeds are connected regions of confident interior; they flood the foreground (interior + boundary
    above ``prob_threshold``) over the boundary probability, so touching nuclei split along the
    predicted boundary. Foreground blobs that got no seed become objects of their own.
    """
    background, interior, boundary = probabilities[0], probabilities[1], probabilities[2]
    foreground = (1.0 - background) > prob_threshold
    seeds_mask = (ndi.gaussian_filter(interior, 1.0) > seed_threshold) & foreground
    seeds, _ = ndi.label(seeds_mask)
    seeds = remove_small(seeds, max(min_size // 4, 2))
    labels = flood_from_seeds(boundary - interior, seeds, foreground)
    unseeded, count = ndi.label(foreground & (labels == 0))
    if count:
        labels = np.where(unseeded > 0, unseeded + labels.max(), labels)
    return _drop_small_and_renumber(labels, min_size)


def _drop_small_and_renumber(labels: np.ndarray, min_size: int) -> np.ndarray:
    """``relabel_sequential(remove_small(labels, min_size))`` as one lookup (int32)."""
    sizes = np.bincount(labels.ravel())
    keep = sizes >= max(min_size, 1)  # ids with no pixel get no number either
    keep[0] = False
    lookup = np.zeros(sizes.size, dtype=np.int32)
    lookup[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lookup[labels]


def flood_from_seeds(elevation: np.ndarray, seeds: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``watershed(elevation, markers=seeds, mask=mask)``, the same labels, several times faster.

    A connected piece of the mask that holds one seed is that seed's object whole, with no flooding;
    only pieces holding several seeds are flooded, each in its own bounding box. One watershed over
    the whole image spends most of its time on pixels that have no choice to make.
    """
    pieces, n_pieces = ndi.label(mask)  # 4-connected, as watershed's default connectivity
    labels = np.zeros(mask.shape, dtype=np.int32)
    if n_pieces == 0 or seeds.max(initial=0) == 0:
        return labels
    seeded = seeds > 0
    piece_of_seed = np.zeros(int(seeds.max()) + 1, dtype=np.int64)
    piece_of_seed[seeds[seeded]] = pieces[seeded]
    seed_ids = np.flatnonzero(piece_of_seed)
    seeds_per_piece = np.bincount(piece_of_seed[seed_ids], minlength=n_pieces + 1)
    single = seeds_per_piece[piece_of_seed[seed_ids]] == 1
    seed_of_piece = np.zeros(n_pieces + 1, dtype=np.int32)
    seed_of_piece[piece_of_seed[seed_ids[single]]] = seed_ids[single]
    labels[:] = seed_of_piece[pieces]
    shared = seeds_per_piece > 1
    # One watershed per piece, in the piece's box: one over all pieces in a band of rows, or over all
    # of them packed into one mosaic, was slower (measured): its cost follows the pixels it floods.
    for piece_id, box in enumerate(ndi.find_objects(np.where(shared[pieces], pieces, 0)), start=1):
        if box is None:
            continue
        inside = pieces[box] == piece_id
        flooded = watershed(elevation[box], markers=np.where(inside, seeds[box], 0), mask=inside)
        labels[box][inside] = flooded[inside]
    return labels


def remove_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Zero every object of fewer than ``min_size`` pixels (the dtype is kept)."""
    if min_size <= 1 or labels.max(initial=0) == 0:
        return labels
    if labels.max() > 4 * labels.size:  # sparse huge ids: count them without bincount
        ids, counts = np.unique(labels, return_counts=True)
        small_ids = ids[(counts < min_size) & (ids > 0)]
        return np.where(np.isin(labels, small_ids), 0, labels).astype(labels.dtype, copy=False)
    sizes = np.bincount(labels.ravel())
    too_small = sizes < min_size
    too_small[0] = False
    if not too_small.any():
        return labels
    lookup = np.arange(sizes.size, dtype=labels.dtype)
    lookup[too_small] = 0
    return lookup[labels]


def stitch_planes(planes: np.ndarray, stitch_threshold: float = 0.25) -> np.ndarray:
    """Join per-plane labels (Z, Y, X) into 3D objects by IoU with the previous plane.

    Each object of plane z+1 takes the id of the object in plane z it overlaps best if their IoU
    exceeds ``stitch_threshold`` (one-to-one, best first), otherwise a new id, as cellpose's
    ``stitch3D`` does.
    """
    stitched = np.zeros_like(planes, dtype=np.int32)
    next_id = 1
    for z, plane in enumerate(planes):
        plane = np.asarray(plane, dtype=np.int64)
        ids = np.unique(plane[plane > 0])
        mapping = np.zeros(int(plane.max()) + 1, dtype=np.int32)
        if z > 0 and ids.size and stitched[z - 1].any():
            matches = _best_matches(stitched[z - 1], plane, stitch_threshold)
            for new_id, old_id in matches.items():
                mapping[new_id] = old_id
        for object_id in ids:
            if mapping[object_id] == 0:
                mapping[object_id] = next_id
                next_id += 1
        stitched[z] = mapping[plane]
    return stitched


def _best_matches(previous: np.ndarray, current: np.ndarray, threshold: float) -> dict[int, int]:
    old_ids, new_ids, iou = pair_iou(previous, current)
    matches: dict[int, int] = {}
    used_previous: set[int] = set()
    for index in np.argsort(iou)[::-1]:
        if iou[index] <= threshold:
            break
        old_id, new_id = int(old_ids[index]), int(new_ids[index])
        if new_id in matches or old_id in used_previous:
            continue
        matches[new_id] = old_id
        used_previous.add(old_id)
    return matches


def _compact(ids: np.ndarray) -> np.ndarray:
    """Renumber sparse ids (say, 10**9) so that bincount stays small; 0 stays 0."""
    if ids.size == 0 or ids.max() <= 4 * ids.size:
        return ids
    unique, inverse = np.unique(ids, return_inverse=True)
    return inverse.reshape(ids.shape) if unique[0] == 0 else inverse.reshape(ids.shape) + 1


def pair_iou(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every overlapping pair of objects (ids > 0) of two label images, sparse.

    Returns:
        ids in ``first``, ids in ``second`` and their IoU, one entry per overlapping pair.
    """
    first = _compact(np.asarray(first, dtype=np.int64).ravel())
    second = _compact(np.asarray(second, dtype=np.int64).ravel())
    area_first = np.bincount(first)
    area_second = np.bincount(second)
    both = (first > 0) & (second > 0)
    pairs, counts = np.unique(
        np.stack([first[both], second[both]]), axis=1, return_counts=True
    )
    ids_first, ids_second = pairs[0], pairs[1]
    union = area_first[ids_first] + area_second[ids_second] - counts
    return ids_first, ids_second, counts / union
