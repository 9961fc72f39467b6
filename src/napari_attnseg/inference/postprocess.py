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
    # float16 probabilities (large images) are smoothed in float32: scipy has no float16 filters
    seeds_mask = (ndi.gaussian_filter(interior.astype(np.float32, copy=False), 1.0) > seed_threshold) & foreground
    seeds, _ = ndi.label(seeds_mask)
    del seeds_mask
    seeds = remove_small(seeds, max(min_size // 4, 2), in_place=True)
    labels = flood_from_seeds(boundary - interior, seeds, foreground)
    del seeds
    # Image-sized temporaries are kept few (an 8192² plane's int32 copy is 268 MB): in place where it can be.
    foreground &= labels == 0
    unseeded, count = ndi.label(foreground)
    if count:
        inside = unseeded > 0
        labels[inside] = unseeded[inside] + labels.max()
    del unseeded
    return _drop_small_and_renumber(labels, min_size, in_place=True)


def _lookup_in_place(lookup: np.ndarray, labels: np.ndarray, rows: int = 512) -> np.ndarray:
    """``labels[...] = lookup[labels]``, a band of rows at a time (no second image-sized array)."""
    flat = labels.reshape(-1, labels.shape[-1]) if labels.ndim > 1 else labels[np.newaxis]
    for start in range(0, flat.shape[0], rows):
        flat[start: start + rows] = lookup[flat[start: start + rows]]
    return labels


def _apply_lookup(lookup: np.ndarray, labels: np.ndarray, in_place: bool) -> np.ndarray:
    """``lookup[labels]``; written into ``labels`` itself when ``in_place`` and it can hold the result
    (a writeable, C-contiguous int32 array the caller owns)."""
    if in_place and labels.dtype == np.int32 and labels.flags.c_contiguous and labels.flags.writeable:
        return _lookup_in_place(lookup, labels)
    return lookup[labels]


def _drop_small_and_renumber(labels: np.ndarray, min_size: int, in_place: bool = False) -> np.ndarray:
    """``relabel_sequential(remove_small(labels, min_size))`` as one lookup (int32); ``in_place``
    may reuse ``labels`` (the caller's own int32 array) for the result."""
    sizes = np.bincount(labels.ravel())
    keep = sizes >= max(min_size, 1)  # ids with no pixel get no number either
    keep[0] = False
    lookup = np.zeros(sizes.size, dtype=np.int32)
    lookup[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return _apply_lookup(lookup, labels, in_place)


def flood_from_seeds(elevation: np.ndarray, seeds: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``watershed(elevation, markers=seeds, mask=mask)``, the same labels, several times faster.

    A connected piece of the mask that holds one seed is that seed's object whole, with no flooding;
    only pieces holding several seeds are flooded, each in its own bounding box. One watershed over
    the whole image spends most of its time on pixels that have no choice to make.
    """
    pieces, n_pieces = ndi.label(mask)  # 4-connected, as watershed's default connectivity
    if n_pieces == 0 or seeds.max(initial=0) == 0:
        return np.zeros(mask.shape, dtype=np.int32)
    seeded = seeds > 0
    piece_of_seed = np.zeros(int(seeds.max()) + 1, dtype=np.int64)
    piece_of_seed[seeds[seeded]] = pieces[seeded]
    del seeded
    seed_ids = np.flatnonzero(piece_of_seed)
    seeds_per_piece = np.bincount(piece_of_seed[seed_ids], minlength=n_pieces + 1)
    single = seeds_per_piece[piece_of_seed[seed_ids]] == 1
    seed_of_piece = np.zeros(n_pieces + 1, dtype=np.int32)
    seed_of_piece[piece_of_seed[seed_ids[single]]] = seed_ids[single]
    shared = seeds_per_piece > 1
    # One watershed per piece, in the piece's box: one over all pieces in a band of rows, or over all
    # of them packed into one mosaic, was slower (measured): its cost follows the pixels it floods.
    # The floods are kept aside (they cover little of the image) so that ``pieces`` itself can then
    # become the labels: one image-sized int32 array fewer.
    floods = []
    for piece_id, box in enumerate(ndi.find_objects(pieces), start=1):
        if box is None or not shared[piece_id]:
            continue
        inside = pieces[box] == piece_id
        flooded = watershed(elevation[box].astype(np.float32, copy=False), markers=np.where(inside, seeds[box], 0),
                            mask=inside)
        floods.append((box, inside, flooded[inside]))
    labels = _lookup_in_place(seed_of_piece, pieces.astype(np.int32, copy=False))  # seed_of_piece[pieces]
    for box, inside, values in floods:
        labels[box][inside] = values
    return labels


def remove_small(labels: np.ndarray, min_size: int, in_place: bool = False) -> np.ndarray:
    """Zero every object of fewer than ``min_size`` pixels (the dtype is kept); ``in_place`` may
    reuse ``labels`` (an int32 array of the caller's own) for the result."""
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
    return _apply_lookup(lookup, labels, in_place)


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
