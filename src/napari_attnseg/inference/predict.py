"""Tiled prediction as a progress-yielding generator, and the functions that drain it."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Generator

import numpy as np
import torch

from ..config import InferConfig
from ..errors import OutOfMemory
from ..files.modelfile import SegModel
from ..model.fused import inference_network
from ..runtime.allocator import keep_freed_memory
from ..runtime.cpu_threads import fit_threads_to_cpu_quota
from ..runtime.devices import autocast, autocast_dtype, host_to_device, resolve_device
from ..runtime.memory import TilePlan, is_out_of_memory, plan_tiles, release_cached_memory
from .inputs import as_channels_first, model_input, normalize
from .postprocess import instances_from_probabilities, stitch_planes
from .scale import (
    equivalent_diameters,
    factor_for,
    interior_diameters,
    next_factor,
    probe_window,
    resize,
    scaled_shape,
)
from .tiling import Blender, TileGrid

log = logging.getLogger(__name__)

#: above this many pixels, ``segment`` keeps the probabilities (which it does not return) in float16
LARGE_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class InferProgress:
    """Where a prediction is: ``done`` of ``total`` tiles over all planes."""

    done: int
    total: int
    plane: int
    n_planes: int
    device: str

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass
class Prediction:
    """Network output for an image: class probabilities and optional attention maps.

    ``probabilities`` is (classes, Y, X) for a plane or (Z, classes, Y, X) for a stack, on the image's
    own grid; ``attention`` likewise with one map per gated skip level (finest first), or None.
    ``diameter`` is the object diameter used (given or estimated; None for models without one),
    ``scale`` the factor the image was rescaled by for the network, ``modality`` how the image was
    read ("fluorescence", "brightfield", "he"; None for models that take it as it is).
    """

    probabilities: np.ndarray
    attention: np.ndarray | None
    device: str
    diameter: float | None = None
    scale: float = 1.0
    modality: str | None = None


def _planes(image: np.ndarray, model: SegModel, config: InferConfig, channel_axis: int | None,
            prenormalised: bool = False) -> tuple[np.ndarray, bool, str | None]:
    """(Z, C, Y, X) normalised planes the network reads, whether the input was a stack, and the
    modality it was read as. ``prenormalised``: ``image`` already is what the network reads."""
    if prenormalised:
        planes, modality = as_channels_first(image, model.config.in_channels, channel_axis), None
    else:
        planes, modality = model_input(image, model.config, channel_axis, config.modality)
    is_stack = planes.ndim == 4
    if not is_stack:
        planes = planes[np.newaxis]
    if prenormalised:
        return planes, is_stack, modality
    return normalize(planes, model.config.norm_percentiles), is_stack, modality


def predict_steps(
    image: np.ndarray,
    model: SegModel,
    config: InferConfig | None = None,
    channel_axis: int | None = None,
    return_attention: bool = False,
    prenormalised: bool = False,
    probabilities_dtype=np.float32,
) -> Generator[InferProgress, None, Prediction]:
    """Predict class probabilities tile by tile, yielding progress after every batch of tiles.

    For a model trained at an object size (``ModelConfig.diameter``), the image is first rescaled so
    its objects have that size (``config.diameter``, or estimated by the network on a window of the
    image), and the probabilities are resized back to the image's grid. ``prenormalised``: the image
    is already what the network reads (converted and normalised; it is still rescaled by diameter).
    Tiles are cut from the image and each is rescaled on its own, so no rescaled copy of the image
    is ever made. ``probabilities_dtype``: float16 halves the memory of the result (``segment``
    uses it for large images).
    """
    config = config or InferConfig()
    keep_freed_memory()
    fit_threads_to_cpu_quota()
    planes, is_stack, modality = _planes(image, model, config, channel_axis, prenormalised)
    device = resolve_device(config.device)
    dtype = autocast_dtype(device, config.precision)
    network = inference_network(model.network, device)
    plan = plan_tiles(model.config, config, device)

    diameter, factor, reused = config.diameter, 1.0, None
    if model.config.diameter:
        while diameter is None:  # the probe is retried on allocation failures like the tiles below
            try:
                diameter, reused = yield from _estimate_diameter(planes, network, model, config, plan, device,
                                                                 dtype, return_attention)
                break
            except Exception as error:
                plan = _smaller_plan(error, plan, model, device)
        factor = factor_for(model.config.diameter, diameter)
    if reused is not None and factor == 1.0 and not is_stack:
        probabilities, maps = reused
        yield InferProgress(1, 1, 0, 1, str(device))
        return Prediction(probabilities, maps, str(device), diameter, factor, modality)

    probabilities, attention = [], []
    done = 0
    for plane_index, plane in enumerate(planes):
        while True:
            try:
                plane_probabilities, plane_attention, n_tiles = yield from _predict_plane(
                    plane, network, model, plan, device, dtype, return_attention,
                    _Counter(done, plane_index, len(planes), str(device)), factor=factor,
                    probabilities_dtype=probabilities_dtype)
                break
            except Exception as error:
                plan = _smaller_plan(error, plan, model, device)
        done += n_tiles
        probabilities.append(plane_probabilities)
        if plane_attention is not None:
            attention.append(plane_attention)

    if not is_stack:  # a plane's blend as it is: stacking one plane would copy it
        return Prediction(probabilities[0], attention[0] if attention else None, str(device), diameter, factor,
                          modality)
    return Prediction(np.stack(probabilities), np.stack(attention) if attention else None, str(device),
                      diameter, factor, modality)


def _smaller_plan(error: Exception, plan: TilePlan, model: SegModel, device) -> TilePlan:
    """After ``error`` in a forward pass: the plan to retry with when it was an allocation failure
    (half the batch, then half the tile); any other error, or nothing smaller left, is raised."""
    if not is_out_of_memory(error):
        raise error
    release_cached_memory(device)
    smaller = plan.smaller(model.config.multiple)
    if smaller is None:
        raise OutOfMemory(
            f"not enough memory for this image even with {plan.tile_size}-pixel tiles one at a "
            "time; close other programs or segment it chunk by chunk (attnseg segment-zarr)"
        ) from None
    log.warning("out of memory with %d tiles of %d pixels; retrying with %d of %d",
                plan.batch_size, plan.tile_size, smaller.batch_size, smaller.tile_size)
    return smaller


def _estimate_diameter(planes, network, model: SegModel, config: InferConfig, plan: TilePlan, device, dtype,
                       return_attention: bool):
    """The objects' median diameter in image pixels, asked of the network on a central window of the
    middle plane (see scale.py); returns (diameter or None, the probe's (probabilities, maps) when it
    covered the whole plane at scale 1, else None)."""
    plane = planes[len(planes) // 2]
    shape = plane.shape[-2:]
    target = model.config.diameter
    min_size = max(4, int(0.05 * target**2))  # fragments far below the model's size do not count
    factor, diameter, tried = 1.0, None, []
    for _attempt in range(4):
        window = probe_window(shape, factor)
        crop = plane[(slice(None), *window)]
        crop = resize(crop, scaled_shape(crop.shape[-2:], factor)) if factor != 1.0 else crop
        probabilities, maps, _tiles = yield from _predict_plane(
            crop, network, model, plan, device, dtype, return_attention and factor == 1.0,
            _Counter(0, 0, 1, str(device)), report=False)  # the probe is already at the model's scale
        tried.append(factor)
        whole = factor == 1.0 and crop.shape[-2:] == shape
        labels = instances_from_probabilities(probabilities, config.prob_threshold, config.seed_threshold, min_size)
        found, following = next_factor(target, factor, interior_diameters(labels) if not whole
                                       else equivalent_diameters(labels))
        if found is None:  # too few objects here: try far smaller, then far larger, objects' scale
            following = next((f for f in (0.25, 3.0) if f not in tried), None)
        else:
            diameter = found
        yield InferProgress(0, 1, 0, 1, str(device))
        if following is None:
            break
        factor = following
    reused = (probabilities, maps) if whole and tried[-1] == 1.0 else None
    if diameter is not None and factor_for(target, diameter) != 1.0:
        reused = None
    return diameter, reused


@dataclass(frozen=True)
class _Counter:
    """Where a plane's tiles start in the progress count."""

    done_before: int
    plane: int
    n_planes: int
    device: str


def _predict_plane(plane, network, model: SegModel, plan: TilePlan, device, dtype, return_attention: bool,
                   counter: _Counter, report: bool = True, factor: float = 1.0, probabilities_dtype=np.float32):
    """Blend one (C, Y, X) plane's tiles; yields progress after each batch, returns (probs, maps, tiles).

    With ``factor`` != 1 the tiles are cut at ``tile_size / factor`` image pixels, each resized to the
    model's scale (a multiple of its size multiple) and its prediction resized back, so the blend is
    on the image's own grid and memory does not grow with the factor.
    """
    multiple = model.config.multiple
    if factor == 1.0:
        grid = TileGrid(plane.shape[-2:], plan.tile_size, plan.overlap, multiple)
    else:
        source_tile, source_overlap = max(8, int(plan.tile_size / factor)), max(1, math.ceil(plan.overlap / factor))
        grid = TileGrid(plane.shape[-2:], source_tile, source_overlap, 1)
    network_shape = None if factor == 1.0 else tuple(
        -(-max(multiple, round(side * factor)) // multiple) * multiple for side in (grid.tile_y, grid.tile_x))
    # planes not reached yet are counted with this plan's tile count, which may still change
    total = counter.done_before + len(grid) * (counter.n_planes - counter.plane)
    padded = grid.pad(plane)
    blender = Blender(grid, model.config.n_classes, probabilities_dtype)
    attention_blender = None
    tiles = list(grid)
    for start in range(0, len(tiles), plan.batch_size):
        batch_tiles = tiles[start: start + plan.batch_size]
        batch = np.stack([padded[(slice(None), *tile.slices)] for tile in batch_tiles])
        if network_shape is not None:
            batch = resize(batch, network_shape)
        class_probs, maps = _forward(network, batch, device, dtype, return_attention)
        if network_shape is not None:
            class_probs = resize(class_probs, (grid.tile_y, grid.tile_x))
            maps = resize(maps, (grid.tile_y, grid.tile_x)) if maps is not None else None
        if maps is not None and attention_blender is None:
            attention_blender = Blender(grid, maps.shape[1], probabilities_dtype)
        for index, tile in enumerate(batch_tiles):
            blender.add(tile, class_probs[index])
            if attention_blender is not None:
                attention_blender.add(tile, maps[index])
        done = counter.done_before + start + len(batch_tiles)
        if report:
            yield InferProgress(done, total, counter.plane, counter.n_planes, counter.device)
    maps = attention_blender.result() if attention_blender is not None else None
    return blender.result(), maps, len(tiles)


def _forward(network, batch: np.ndarray, device, dtype, return_attention: bool):
    tensor = host_to_device(batch, device)
    with torch.inference_mode(), autocast(device, dtype):
        output = network(tensor, return_attention=return_attention)
    logits, maps = output if return_attention else (output, [])
    class_probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
    maps_array = torch.cat(maps, dim=1).float().cpu().numpy() if maps else None
    return class_probs, maps_array


def relay(steps: Generator, convert):
    """Run the progress generator ``steps`` inside another: yield ``convert(report)`` for each of its
    reports and return its result (``yield from`` with the reports re-phrased)."""
    while True:
        try:
            report = next(steps)
        except StopIteration as stop:
            return stop.value
        yield convert(report)


def drain(steps: Generator, on_progress=None):
    """Run a progress generator to the end and return its result.

    ``on_progress``, if given, is called with every report the generator yields.
    """
    relayed = relay(steps, on_progress or (lambda report: None))
    try:
        while True:
            next(relayed)
    except StopIteration as stop:
        return stop.value


def predict(image, model: SegModel, config: InferConfig | None = None, channel_axis=None,
            return_attention: bool = False, prenormalised: bool = False) -> Prediction:
    """Class probabilities (and attention maps) for ``image``; see ``predict_steps``."""
    return drain(predict_steps(image, model, config, channel_axis, return_attention, prenormalised))


def labels_from_prediction(prediction: Prediction, model: SegModel, config: InferConfig) -> np.ndarray:
    """Instance labels (int32) from a prediction, stitched across planes for stacks."""
    probabilities = prediction.probabilities
    if model.config.task == "semantic":
        return np.argmax(probabilities, axis=-3).astype(np.int32)
    planes = probabilities if probabilities.ndim == 4 else probabilities[np.newaxis]
    labels = np.stack([
        instances_from_probabilities(plane, config.prob_threshold, config.seed_threshold, config.min_size)
        for plane in planes
    ])
    if probabilities.ndim == 3:
        return labels[0]
    return stitch_planes(labels, config.stitch_threshold)


def segment(image, model: SegModel | None = None, config: InferConfig | None = None,
            channel_axis: int | None = None) -> np.ndarray:
    """Labels (int32) with the image's spatial shape; the bundled model if none is given.

    Instance ids for an instance model (the default); class ids for a semantic model.
    """
    from ..files.loading import load_model

    model = model or load_model()
    config = config or InferConfig()
    large = np.asarray(image).size > LARGE_PIXELS * max(model.config.in_channels, 1)
    prediction = drain(predict_steps(image, model, config, channel_axis,
                                     probabilities_dtype=np.float16 if large else np.float32))
    return labels_from_prediction(prediction, model, config)


@dataclass
class Segmentation:
    """What `segment_steps` returns: labels plus the maps a viewer may show.

    ``uncertainty`` is the entropy of the class probabilities scaled to [0, 1] (if asked for).
    """

    labels: np.ndarray
    prediction: Prediction
    uncertainty: np.ndarray | None = None

    @property
    def foreground(self) -> np.ndarray:
        """Probability of belonging to any object (1 - background)."""
        return 1.0 - self.prediction.probabilities[..., 0, :, :]


def segment_steps(image, model: SegModel, config: InferConfig | None = None,
                  channel_axis: int | None = None, return_attention: bool = False,
                  with_uncertainty: bool = False) -> Generator[InferProgress, None, Segmentation]:
    """`predict_steps` followed by instance extraction (and uncertainty); returns a Segmentation."""
    from .uncertainty import normalized_entropy

    config = config or InferConfig()
    prediction = yield from predict_steps(image, model, config, channel_axis, return_attention)
    labels = labels_from_prediction(prediction, model, config)
    uncertainty = normalized_entropy(prediction.probabilities) if with_uncertainty else None
    return Segmentation(labels, prediction, uncertainty)
