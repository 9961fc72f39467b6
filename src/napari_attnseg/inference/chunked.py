"""Chunked segmentation of large 2D images on dask: on this machine, or on a dask.distributed cluster.

Each chunk is segmented with a halo of context around it (none at the image's own edges) under one
global normalisation; ids are made unique across chunks; an object cut by a chunk border is joined
back by matching, in the strip just past the border, the object as the neighbour saw it (in its halo)
with the object as this chunk saw it (in its core); objects below the minimum size are removed once
joined.
dask runs the chunks; point ``scheduler`` at a ``dask.distributed`` scheduler to use a cluster.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generator

import numpy as np

from ..config import InferConfig, ModelConfig
from ..errors import InputError
from .inputs import match_channels, percentile_range
from .modality import detect, to_grey


def _segment_block_steps(block: np.ndarray, model, config: InferConfig, low: np.ndarray, scale: np.ndarray):
    """Labels (int32) of one (C, y, x) block, yielding the tile progress of its prediction."""
    from .predict import labels_from_prediction, predict_steps

    # One normalisation for the whole image: per-chunk percentiles would make neighbours disagree.
    normalised = (block.astype(np.float32) - low) / scale
    prediction = yield from predict_steps(normalised, model, config, channel_axis=0, prenormalised=True)
    return labels_from_prediction(prediction, model, config).astype(np.int32)


def _segment_block(block: np.ndarray, model, config: InferConfig, low: np.ndarray, scale: np.ndarray) -> np.ndarray:
    from .predict import drain

    return drain(_segment_block_steps(block, model, config, low, scale))


def _subsample(array, max_samples: int = 4_000_000) -> np.ndarray:
    """A regular subsample of a lazy (C, Y, X) image, computed (float32)."""
    step = max(1, int(np.ceil(np.sqrt(array.size / array.shape[0] / max_samples))))
    return np.asarray(array[:, ::step, ::step].compute(), dtype=np.float32)


def _grey_block(block: np.ndarray, modality: str) -> np.ndarray:
    return to_grey(np.asarray(block, dtype=np.float32), modality)[0]


def _model_input(image, config: ModelConfig, channel_axis: int | None, chunk: int,
                 modality: str = "auto") -> tuple:
    """The image as a lazy (C, Y, X) dask array of what the model reads (level 0 of a pyramid), and
    the modality it was read as (None for models that take images as they are)."""
    import dask.array as da

    if isinstance(image, Sequence):  # a multiscale pyramid (a list, or napari's MultiScaleData)
        image = image[0]
    array = image if isinstance(image, da.Array) else da.from_array(image, chunks=chunk)
    if channel_axis is None:
        if array.ndim != 2:
            raise InputError(f"chunked segmentation takes a 2D image (or give its channel axis), "
                             f"got shape {array.shape}")
        array = array[np.newaxis]
    else:
        if array.ndim != 3 or not -3 <= channel_axis < 3:
            raise InputError(f"chunked segmentation takes a 2D image with one channel axis, got shape "
                             f"{array.shape} with channel axis {channel_axis}")
        array = da.moveaxis(array, channel_axis, 0)
    if config.input_transform == "none":
        return match_channels(array, config.in_channels), None
    if modality == "auto":  # one decision for the whole image, from a subsample of it
        modality = detect(_subsample(array))
    grey = array.rechunk({0: -1}).map_blocks(_grey_block, modality=modality, dtype=np.float32,
                                             chunks=((1,),) + array.rechunk({0: -1}).chunks[1:])
    return grey, modality


def _central_window(array, edge: int = 2048) -> np.ndarray:
    """The central (C, edge, edge) window of a lazy (C, Y, X) image, computed."""
    starts = [max(0, (side - edge) // 2) for side in array.shape[1:]]
    return np.asarray(array[:, starts[0]: starts[0] + edge, starts[1]: starts[1] + edge].compute(),
                      dtype=np.float32)


def _prepare(image, model, config: InferConfig, chunk: int, halo: int, channel_axis: int | None):
    """(C, Y, X) input with halos, the global normalisation, and the config every chunk runs with:
    one modality and one object diameter for the whole image (each chunk deciding its own would
    make neighbours disagree)."""
    import dask.array as da

    from .predict import drain, predict_steps

    array, _modality = _model_input(image, model.config, channel_axis, chunk, config.modality)
    if halo < 16 or halo >= chunk // 2:
        raise InputError(f"halo must be 16 .. chunk/2, got {halo} for chunks of {chunk}")
    array = array.rechunk({0: -1, 1: chunk, 2: chunk})
    if any(len(sizes) > 1 and min(sizes) <= halo for sizes in array.chunks[1:]):
        array = array.rechunk({1: _even_chunks(array.shape[1], chunk, halo),
                               2: _even_chunks(array.shape[2], chunk, halo)})
    # No padding at the image's own edges: mirrored nuclei there would be segmented differently.
    with_halo = da.overlap.overlap(array, depth={0: 0, 1: halo, 2: halo}, boundary="none")
    low, scale = percentile_range(_subsample(array), model.config.norm_percentiles)
    if model.config.diameter and config.diameter is None:
        window = (_central_window(array) - low) / scale
        estimate = drain(predict_steps(window, model, config, channel_axis=0, prenormalised=True))
        config = config.replace(diameter=estimate.diameter or model.config.diameter)
    return with_halo, low, scale, config


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
    with_halo, low, scale, config = _prepare(image, model, config, chunk, halo, channel_axis)
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


def segment_zarr(source: str, destination: str | None, model, config: InferConfig | None = None,
                 chunk: int = 1024, halo: int = 64, scheduler: str | None = None, name: str = "attnseg",
                 levels: int = 3) -> str:
    """Segment a 2D zarr array or an OME-Zarr image chunk by chunk; return where the labels went.

    A plain array's labels become a new int32 zarr array at ``destination``. An OME-Zarr image's
    labels become an OME-Zarr labels image ``<source>/labels/<name>`` (or a standalone one at
    ``destination``) with up to ``levels`` resolution levels and the image's pixel size.
    ``scheduler``: address of a dask.distributed scheduler (e.g. "tcp://10.0.0.5:8786"); None runs
    on this machine's threads.
    """
    import dask.array as da
    import zarr

    from ..files.ome_zarr import check_labels_target, is_ome_zarr, open_ome_image, write_labels_image

    ome_image = open_ome_image(source) if is_ome_zarr(source) else None
    if ome_image is not None:
        check_labels_target(ome_image, destination, name)
        image, channel_axis = ome_image.plane()
    else:
        try:
            image, channel_axis = da.from_zarr(zarr.open_array(str(source), mode="r")), None
        except Exception:  # not an array: a group without OME metadata says so in open_ome_image
            open_ome_image(source)
            raise
        if destination is None:
            raise InputError(f"{source} is a plain zarr array; give an output path for its labels")
    client = None
    if scheduler is not None:
        from distributed import Client

        client = Client(scheduler)
    try:
        labels = segment_dask(image, model, config, chunk, halo, channel_axis=channel_axis)
        if ome_image is not None:
            return write_labels_image(labels, ome_image, destination, name, levels)
        labels.to_zarr(str(destination), overwrite=False)
        return str(destination)
    finally:
        if client is not None:
            client.close()


@dataclass(frozen=True)
class ChunkProgress:
    """Where a chunked segmentation is: ``done`` of ``total`` chunks in ``stage``.

    ``stage`` is "reading" (the whole-image normalisation, before the chunks are known),
    "segmenting" (``tiles_done`` of ``tiles_total`` tiles of the current chunk), "joining" or
    "writing"; ``fraction`` covers all of it.
    """

    done: int
    total: int
    stage: str
    device: str
    tiles_done: int = 0
    tiles_total: int = 0

    @property
    def fraction(self) -> float:
        within = self.tiles_done / self.tiles_total if self.tiles_total else 0.0
        share = min(1.0, (self.done + within) / self.total) if self.total else 1.0
        # Segmenting is nearly all of the time; joining and writing only read and renumber.
        return {"reading": 0.0, "segmenting": 0.9 * share, "joining": 0.9,
                "writing": 0.9 + 0.1 * share}.get(self.stage, 1.0)


@dataclass(frozen=True)
class ChunkedSegmentation:
    """What ``segment_large_steps`` returns: int32 (Y, X) labels in a zarr array on disk."""

    labels: Any
    path: str
    n_objects: int
    device: str


def needs_chunked(data, channel_axis: int | None = None, max_pixels: int = 4096 * 4096) -> bool:
    """True for a 2D image (with at most a channel axis) that is a pyramid, not a numpy array (dask,
    zarr), or larger than ``max_pixels``: segment it with ``segment_large_steps``."""
    level = data[0] if isinstance(data, Sequence) else data
    if level.ndim != 2 + (channel_axis is not None):
        return False
    spatial = [size for axis, size in enumerate(level.shape)
               if channel_axis is None or axis != channel_axis % level.ndim]
    return isinstance(data, Sequence) or not isinstance(level, np.ndarray) or spatial[0] * spatial[1] > max_pixels


def segment_large_steps(image, model, config: InferConfig | None = None, channel_axis: int | None = None,
                        chunk: int = 1024, halo: int = 64, labels_path: str | None = None,
                        min_fraction: float = 0.5) -> Generator[ChunkProgress, None, ChunkedSegmentation]:
    """Segment a large 2D image (numpy, dask, zarr or a pyramid's level 0) chunk by chunk in this
    thread, yielding progress after every batch of tiles; labels go to a zarr array on disk.

    The same labels as ``segment_dask``. ``labels_path``: where to write them (a new ``.zarr``
    folder); None makes one in the temporary folder, which the caller then owns. Per-chunk labels
    wait in a scratch folder, removed at the end, so memory holds a few chunks at a time.
    """
    import tempfile

    import dask.array as da
    import zarr

    from ..runtime.devices import resolve_device
    from .predict import relay

    config = config or InferConfig()
    device = str(resolve_device(config.device))
    if labels_path is not None and Path(labels_path).exists():
        raise InputError(f"{labels_path} exists; choose a new path for the labels")
    yield ChunkProgress(0, 0, "reading", device)  # a Stop here skips the pass over the whole image
    with_halo, low, scale, config = _prepare(image, model, config, chunk, halo, channel_axis)
    rows, cols = with_halo.numblocks[1:]
    with tempfile.TemporaryDirectory(prefix="attnseg-chunks-") as scratch_folder:
        scratch = zarr.open_group(scratch_folder, mode="w")
        blocks = [[None] * cols for _ in range(rows)]
        for index, (row, col) in enumerate(np.ndindex(rows, cols)):
            block = np.asarray(with_halo.blocks[0, row, col])
            # re-yield tile progress so that Stop takes effect within a batch of tiles
            local = yield from relay(
                _segment_block_steps(block, model, config, low, scale),
                lambda tile, index=index: ChunkProgress(
                    index, rows * cols, "segmenting", device, tile.done, tile.total))
            stored = scratch.create_array(f"{row}_{col}", shape=local.shape, chunks=local.shape, dtype=np.int32)
            stored[...] = local
            blocks[row][col] = da.from_zarr(stored)
        yield ChunkProgress(rows * cols, rows * cols, "joining", device)
        labels = _joined(da.block(blocks), halo, min_fraction, config.min_size)
        path = labels_path or tempfile.mkdtemp(prefix="attnseg-labels-", suffix=".zarr")
        target = zarr.open_array(path, mode="w", shape=labels.shape, dtype=np.int32,
                                 chunks=tuple(max(sizes) for sizes in labels.chunks), fill_value=0)
        n_objects = 0
        try:
            for index, block_index in enumerate(np.ndindex(labels.numblocks)):
                region = tuple(slice(sum(sizes[:at]), sum(sizes[: at + 1]))
                               for sizes, at in zip(labels.chunks, block_index))
                values = np.asarray(labels.blocks[block_index])
                target[region] = values
                n_objects = max(n_objects, int(values.max(initial=0)))
                yield ChunkProgress(index + 1, labels.npartitions, "writing", device)
        except BaseException:  # stopped or failed while writing: no half-written labels stay behind
            shutil.rmtree(path, ignore_errors=True)
            raise
    return ChunkedSegmentation(target, str(path), n_objects, device)
