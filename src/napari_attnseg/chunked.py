"""Chunked segmentation of large 2D images on dask: on this machine, or on a dask.distributed cluster.

Each chunk is segmented with a halo of context around it (none at the image's own edges) under one
global normalisation; ids are made unique across chunks; an object cut by a chunk border is joined
back by matching, in the strip just past the border, the object as the neighbour saw it (in its halo)
with the object as this chunk saw it (in its core); objects below the minimum size are removed once
joined.
dask runs the chunks; point ``scheduler`` at a ``dask.distributed`` scheduler to use a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .config import InferConfig
from .errors import InputError


def _segment_block_steps(block: np.ndarray, model, config: InferConfig, low: np.ndarray, scale: np.ndarray):
    """Labels (int32) of one (C, y, x) block, yielding the tile progress of its prediction."""
    from .inference import labels_from_prediction, predict_steps

    # One normalisation for the whole image: per-chunk percentiles would make neighbours disagree.
    normalised = (block.astype(np.float32) - low) / scale
    prediction = yield from predict_steps(normalised, model, config, channel_axis=0, prenormalised=True)
    return labels_from_prediction(prediction, model, config).astype(np.int32)


def _segment_block(block: np.ndarray, model, config: InferConfig, low: np.ndarray, scale: np.ndarray) -> np.ndarray:
    from .inference import drain

    return drain(_segment_block_steps(block, model, config, low, scale))


def _global_range(array, percentiles: tuple[float, float],
                  max_samples: int = 4_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel normalisation offset and scale ((C, 1, 1) float32) of a whole (C, Y, X) image,
    from a regular subsample of it."""
    step = max(1, int(np.ceil(np.sqrt(array.size / array.shape[0] / max_samples))))
    sample = np.asarray(array[:, ::step, ::step].compute(), dtype=np.float32)
    low, high = np.percentile(sample.reshape(len(sample), -1), percentiles, axis=1)
    scale = np.maximum(high - low, 1e-6)
    return low.astype(np.float32)[:, None, None], scale.astype(np.float32)[:, None, None]


def _model_input(image, in_channels: int, channel_axis: int | None, chunk: int):
    """The image as a lazy (C, Y, X) dask array with the model's channels; level 0 of a pyramid."""
    import dask.array as da

    if isinstance(image, Sequence):  # a multiscale pyramid (a list, or napari's MultiScaleData)
        image = image[0]
    array = image if isinstance(image, da.Array) else da.from_array(image, chunks=chunk)
    if channel_axis is None:
        if array.ndim != 2:
            raise InputError(f"chunked segmentation takes a 2D image (or give its channel axis), "
                             f"got shape {array.shape}")
        return array[np.newaxis]
    if array.ndim != 3 or not -3 <= channel_axis < 3:
        raise InputError(f"chunked segmentation takes a 2D image with one channel axis, got shape "
                         f"{array.shape} with channel axis {channel_axis}")
    array = da.moveaxis(array, channel_axis, 0)
    channels = array.shape[0]
    if channels != in_channels:
        if in_channels == 1 and channels in (3, 4):
            # An RGB(A) rendering of a single-channel stain: average the colour channels, drop alpha.
            return array[:3].astype(np.float32).mean(axis=0, keepdims=True)
        raise InputError(f"the model reads {in_channels} channel(s) but the image has {channels}")
    return array


def _prepare(image, model, chunk: int, halo: int, channel_axis: int | None):
    """(C, Y, X) input chunked spatially, the same with halos, and the global normalisation."""
    import dask.array as da

    array = _model_input(image, model.config.in_channels, channel_axis, chunk)
    if halo < 16 or halo >= chunk // 2:
        raise InputError(f"halo must be 16 .. chunk/2, got {halo} for chunks of {chunk}")
    array = array.rechunk({0: -1, 1: chunk, 2: chunk})
    if any(len(sizes) > 1 and min(sizes) <= halo for sizes in array.chunks[1:]):
        array = array.rechunk({1: _even_chunks(array.shape[1], chunk, halo),
                               2: _even_chunks(array.shape[2], chunk, halo)})
    # No padding at the image's own edges: mirrored nuclei there would be segmented differently.
    with_halo = da.overlap.overlap(array, depth={0: 0, 1: halo, 2: halo}, boundary="none")
    low, scale = _global_range(array, model.config.norm_percentiles)
    return with_halo, low, scale


def _block_max(block: np.ndarray) -> np.ndarray:
    return np.array([[block.max(initial=0)]], dtype=np.int64)


def _offset(block: np.ndarray, offsets: np.ndarray, block_id=None) -> np.ndarray:
    shifted = block.astype(np.int64) + offsets[block_id[0], block_id[1]]
    return np.where(block > 0, shifted, 0)


def _face_pairs(halo_side: np.ndarray, core_side: np.ndarray, min_fraction: float) -> np.ndarray:
    """(id, id) pairs of objects that are the same across one chunk border.

    Two pieces join when they share at least ``min_fraction`` of the smaller one's pixels in the
    strip (IoU would penalise an object that shows more of itself on one side of the strip).
    """
    both = (halo_side > 0) & (core_side > 0)
    if not both.any():
        return np.zeros((0, 2), dtype=np.int64)
    pairs, shared = np.unique(np.stack([halo_side[both], core_side[both]]), axis=1, return_counts=True)
    ids_a, size_a = np.unique(halo_side[halo_side > 0], return_counts=True)
    ids_b, size_b = np.unique(core_side[core_side > 0], return_counts=True)
    smaller = np.minimum(size_a[np.searchsorted(ids_a, pairs[0])], size_b[np.searchsorted(ids_b, pairs[1])])
    # Mutual best matches only: a piece that touches two pieces on the other side must not chain
    # two nuclei into one object.
    order = np.lexsort((-shared, pairs[0]))
    best_for_a = np.zeros(len(shared), dtype=bool)
    best_for_a[order[np.r_[True, pairs[0][order][1:] != pairs[0][order][:-1]]]] = True
    order = np.lexsort((-shared, pairs[1]))
    best_for_b = np.zeros(len(shared), dtype=bool)
    best_for_b[order[np.r_[True, pairs[1][order][1:] != pairs[1][order][:-1]]]] = True
    keep = best_for_a & best_for_b & (shared >= min_fraction * smaller)
    return pairs[:, keep].T.astype(np.int64)


def _components(pairs: np.ndarray, n_ids: int) -> np.ndarray:
    """Map every id (0..n_ids) to its object (connected component of the join graph ``pairs``)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_ids + 1, n_ids + 1))
    return connected_components(graph, directed=False)[1]


def _final_ids(component: np.ndarray, sizes: np.ndarray, min_size: int) -> np.ndarray:
    """Map every id to a final id: objects of at least ``min_size`` pixels numbered 1..N in order
    of their smallest id; smaller ones, ids seen only in halos, and background to 0."""
    n_ids = len(component) - 1
    first_id = np.full(component.max() + 1, n_ids + 1)
    np.minimum.at(first_id, component[1:], np.arange(1, n_ids + 1))
    kept = np.flatnonzero((sizes >= max(min_size, 1)) & (first_id <= n_ids))
    kept = kept[kept != component[0]]
    final = np.zeros(component.max() + 1, dtype=np.int64)
    final[kept[np.argsort(first_id[kept])]] = np.arange(1, len(kept) + 1)
    return final[component]


def _component_sizes(block: np.ndarray, component: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    objects, counts = np.unique(component[block[block > 0]], return_counts=True)
    return objects, counts


def segment_dask(image, model, config: InferConfig | None = None, chunk: int = 1024, halo: int = 64,
                 min_fraction: float = 0.5, channel_axis: int | None = None):
    """Lazy int32 instance labels (a dask array) for a large 2D image (numpy, zarr or dask).

    Args:
        chunk: edge of the square chunks each task segments.
        halo: context around each chunk; make it larger than the largest object's radius.
        min_fraction: how much of the smaller part two pieces across a border must share to join.
        channel_axis: the image's channel axis, if it has one; the labels are (Y, X).

    The per-chunk segmentation is computed once (kept in the cluster's memory) to find the joins;
    ``.compute()`` or ``.to_zarr()`` on the result then only renumbers.
    """
    config = config or InferConfig()
    with_halo, low, scale = _prepare(image, model, chunk, halo, channel_axis)
    # The one expensive step, kept in (cluster) memory: everything after it only reads it.
    local = with_halo.map_blocks(_segment_block, model=model, config=config, low=low, scale=scale,
                                 drop_axis=0, dtype=np.int32).persist()
    return _joined(local, halo, min_fraction, config.min_size)


def _joined(local, halo: int, min_fraction: float, min_size: int):
    """Final labels (lazy) from per-chunk labels with halos: unique ids, border joins, size filter."""
    import dask
    import dask.array as da

    maxes = local.map_blocks(_block_max, chunks=(1, 1), dtype=np.int64).compute()
    offsets = np.concatenate([[0], np.cumsum(maxes.ravel())[:-1]]).reshape(maxes.shape)
    unique = local.map_blocks(_offset, offsets=offsets, dtype=np.int64)
    core = da.overlap.trim_internal(unique, {0: halo, 1: halo}, boundary="none")

    pairs = _border_pairs(unique, core, halo, min_fraction)
    component = _components(pairs, int(maxes.sum()))
    # Object sizes once joined (pieces of a cut object are small alone), counted in the cores only.
    sizes = np.zeros(component.max() + 1, dtype=np.int64)
    for objects, counts in dask.compute(*[dask.delayed(_component_sizes)(block, component)
                                          for block in core.to_delayed().ravel()]):
        np.add.at(sizes, objects, counts)
    mapping = _final_ids(component, sizes, min_size)
    return core.map_blocks(lambda block: mapping[block].astype(np.int32), dtype=np.int32)


def _even_chunks(length: int, chunk: int, halo: int) -> tuple[int, ...]:
    """Chunks of at most ``chunk`` whose last one is not thinner than the halo."""
    count = -(-length // chunk)
    if count == 1:
        return (length,)  # one chunk along this axis: no border, no halo needed
    base = length // count
    sizes = [base + (1 if index < length % count else 0) for index in range(count)]
    if min(sizes) <= halo:
        raise InputError(f"the image ({length} pixels) is too small for chunks of {chunk} with halo {halo}")
    return tuple(sizes)


def _border_pairs(unique, core, halo: int, min_fraction: float) -> np.ndarray:
    """Joined id pairs over every border between neighbouring chunks.

    Each border is looked at from both sides: this chunk's halo over the neighbour's core, and the
    neighbour's halo over this chunk's core, in the strip of ``halo // 2`` pixels next to the border
    (the outer half of a halo sees too little context to be trusted). Chunks on the image's edge
    have no halo on that side.
    """
    import dask

    rows, cols = core.numblocks
    strip = halo // 2
    top = [0] + [halo] * (rows - 1)
    left = [0] + [halo] * (cols - 1)
    tasks = []
    for i in range(rows):
        for j in range(cols):
            height, width = core.chunks[0][i], core.chunks[1][j]
            y0, x0 = top[i], left[j]
            if j + 1 < cols:  # right neighbour
                tasks.append(dask.delayed(_face_pairs)(
                    unique.blocks[i, j][y0: y0 + height, x0 + width: x0 + width + strip],
                    core.blocks[i, j + 1][:, :strip], min_fraction))
                tasks.append(dask.delayed(_face_pairs)(
                    unique.blocks[i, j + 1][y0: y0 + height, halo - strip: halo],
                    core.blocks[i, j][:, width - strip:], min_fraction))
            if i + 1 < rows:  # neighbour below
                tasks.append(dask.delayed(_face_pairs)(
                    unique.blocks[i, j][y0 + height: y0 + height + strip, x0: x0 + width],
                    core.blocks[i + 1, j][:strip, :], min_fraction))
                tasks.append(dask.delayed(_face_pairs)(
                    unique.blocks[i + 1, j][halo - strip: halo, x0: x0 + width],
                    core.blocks[i, j][height - strip:, :], min_fraction))
    found = dask.compute(*tasks)
    return np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)


def segment_zarr(source: str, destination: str, model, config: InferConfig | None = None,
                 chunk: int = 1024, halo: int = 64, scheduler: str | None = None) -> None:
    """Segment a 2D zarr array chunk by chunk into a new int32 zarr array at ``destination``.

    ``scheduler``: address of a dask.distributed scheduler (e.g. "tcp://10.0.0.5:8786"); None runs
    on this machine's threads.
    """
    import dask.array as da

    client = None
    if scheduler is not None:
        from distributed import Client

        client = Client(scheduler)
    try:
        labels = segment_dask(da.from_zarr(source), model, config, chunk, halo)
        labels.to_zarr(destination, overwrite=False)
    finally:
        if client is not None:
            client.close()
