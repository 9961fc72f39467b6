"""Training and validation sets for fine-tuning: samples, the held-back split, crops, validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..config import InferConfig, TrainConfig
from ..errors import InputError
from ..files.modelfile import SegModel
from ..inference.inputs import check_labels, check_mask, model_input, normalize
from ..inference.scale import factor_for, median_diameter, resize, resize_labels, scaled_shape
from ..metrics import evaluate
from .targets import augment, instance_targets

_VALIDATION_CONTEXT = 32  # pixels of image around a validation region, so its edges see context
_MIN_VALIDATION_ROWS = 24


@dataclass
class Sample:
    """One training plane as the network sees it: normalised image (C, Y, X) at the model's object
    size, labels, targets and per-pixel loss weights; ``scale``: how much the plane was rescaled."""

    image: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    val_mask: np.ndarray | None = None
    scale: float = 1.0
    instance: bool = True  # targets are instance_targets(labels); else the labels are the classes


def build_samples(model: SegModel, images, labels, masks, channel_axis, modality: str = "auto") -> list[Sample]:
    """Validate the triples and turn stacks into planes at the model's object size.

    ``modality``: how to read the images, for models with ``input_transform="auto"``.
    """
    images = list(images)
    labels = list(labels)
    masks = [None] * len(images) if masks is None else list(masks)
    if not images:
        raise InputError("no training images were given")
    if not len(images) == len(labels) == len(masks):
        raise InputError(f"got {len(images)} images, {len(labels)} label images and {len(masks)} masks; "
                         "give one of each per image")
    samples = []
    for index, (image, label_image, mask) in enumerate(zip(images, labels, masks)):
        planes, _modality = model_input(image, model.config, channel_axis, modality)
        spatial = planes.shape[:1] + planes.shape[2:] if planes.ndim == 4 else planes.shape[1:]
        planes = planes if planes.ndim == 4 else planes[np.newaxis]
        label_planes = check_labels(label_image, spatial, name=f"labels[{index}]")
        mask_planes = check_mask(mask, spatial)
        label_planes = label_planes.reshape((-1,) + planes.shape[2:])
        mask_planes = mask_planes.reshape((-1,) + planes.shape[2:])
        normalised = normalize(planes, model.config.norm_percentiles)
        factor = _factor(model, normalised, label_planes, mask_planes)
        for plane, plane_labels, plane_mask in zip(normalised, label_planes, mask_planes):
            if factor != 1.0:
                shape = scaled_shape(plane.shape[-2:], factor)
                plane = resize(plane, shape)
                plane_labels, plane_mask = resize_labels(plane_labels, shape), resize_labels(plane_mask, shape)
            if model.config.task == "instance":
                targets = instance_targets(plane_labels)
            else:
                if plane_labels.max(initial=0) >= model.config.n_classes:
                    raise InputError(f"labels[{index}] has class {plane_labels.max()} but the model "
                                     f"has {model.config.n_classes} classes")
                targets = plane_labels.astype(np.uint8)
            samples.append(Sample(plane, plane_labels, targets, plane_mask.astype(np.float32), scale=factor,
                                  instance=model.config.task == "instance"))
    # Planes nobody checked (say, the rest of a stack) carry no training signal.
    samples = [sample for sample in samples if sample.weights.any()]
    if not samples:
        raise InputError("the masks check no pixel: mark at least one reviewed region to train on")
    return samples


def _factor(model: SegModel, planes: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> float:
    """How much to rescale an image so its objects have the model's size: from the median diameter
    of the checked objects, or (none checked) as inference would estimate it."""
    if not model.config.diameter or model.config.task != "instance":
        return 1.0
    diameter = median_diameter(np.where(mask, labels, 0))
    if diameter is None:
        from ..inference.predict import predict

        diameter = predict(planes[len(planes) // 2], model, InferConfig(device="cpu"), channel_axis=0,
                           prenormalised=True).diameter
    return factor_for(model.config.diameter, diameter)


def split_validation(samples: list[Sample], val_fraction: float, rng: np.random.Generator):
    """Hold back data for validation: whole planes when there are 4 or more, else a band of each.

    A band is the last ``val_fraction`` of the checked rows (or columns, whichever span is longer);
    its pixels are removed from the training weights.
    """
    if val_fraction <= 0:
        return samples, []
    if len(samples) >= 4:
        order = rng.permutation(len(samples))
        n_val = max(1, round(val_fraction * len(samples)))
        val = [samples[i] for i in order[:n_val]]
        for sample in val:
            sample.val_mask = sample.weights > 0
        return [samples[i] for i in order[n_val:]], val
    train, val = [], []
    for sample in samples:
        checked = sample.weights > 0
        axis = 0 if _span(checked.any(axis=1)) >= _span(checked.any(axis=0)) else 1
        lines = np.nonzero(checked.any(axis=1 - axis))[0]
        n_val_lines = int(round(val_fraction * lines.size))
        if n_val_lines >= _MIN_VALIDATION_ROWS and lines.size - n_val_lines >= _MIN_VALIDATION_ROWS:
            cut = lines[-n_val_lines]
            band = np.zeros_like(checked)
            if axis == 0:
                band[cut:, :] = True
            else:
                band[:, cut:] = True
            sample.val_mask = checked & band
            sample.weights = np.where(band, 0.0, sample.weights).astype(np.float32)
            val.append(sample)
        train.append(sample)
    return train, val


def _span(occupied: np.ndarray) -> int:
    indices = np.flatnonzero(occupied)
    return int(indices[-1] - indices[0]) if indices.size else 0


def sample_batch(samples: list[Sample], config: TrainConfig, rng: np.random.Generator):
    """A batch of random crops centred on checked pixels (images, targets, weights).

    With ``config.augment`` and ``config.scale_jitter`` > 1, each crop is cut at a random scale
    within that factor of the sample's and resized to ``crop_size``, so the model learns a range of
    object sizes around the one it is trained at.
    """
    pixel_counts = np.array([sample.weights.sum() for sample in samples], dtype=np.float64)
    probabilities = np.sqrt(pixel_counts) / np.sqrt(pixel_counts).sum()
    images, targets, weights = [], [], []
    size = config.crop_size
    for _ in range(config.batch_size):
        sample = samples[rng.choice(len(samples), p=probabilities)]
        jitter = 1.0
        if config.augment and config.scale_jitter > 1.0:
            jitter = float(np.exp(rng.uniform(-np.log(config.scale_jitter), np.log(config.scale_jitter))))
        source = max(16, int(round(size / jitter)))
        image, target, weight, labels = _padded(sample, source)
        checked = np.flatnonzero(weight)
        centre = np.unravel_index(rng.choice(checked), weight.shape)
        y0 = int(np.clip(centre[0] - source // 2 + rng.integers(-source // 4, source // 4 + 1),
                         0, weight.shape[0] - source))
        x0 = int(np.clip(centre[1] - source // 2 + rng.integers(-source // 4, source // 4 + 1),
                         0, weight.shape[1] - source))
        window = (slice(y0, y0 + source), slice(x0, x0 + source))
        crop = (image[(slice(None), *window)], target[window], weight[window])
        if source != size:
            crop_labels = resize_labels(labels[window], (size, size))
            crop = (resize(crop[0], (size, size)),
                    instance_targets(crop_labels) if sample.instance else resize_labels(crop[1], (size, size)),
                    resize_labels(crop[2], (size, size)))
        if config.augment:
            crop = augment(*crop, rng)
        images.append(crop[0])
        targets.append(crop[1])
        weights.append(crop[2])
    return np.stack(images).astype(np.float32), np.stack(targets).astype(np.int64), np.stack(weights)


def _padded(sample: Sample, size: int):
    """The sample's image, targets, weights and labels, padded to at least ``size`` on each side."""
    pad_y = max(0, size - sample.weights.shape[0])
    pad_x = max(0, size - sample.weights.shape[1])
    if pad_y == 0 and pad_x == 0:
        return sample.image, sample.targets, sample.weights, sample.labels
    image = np.pad(sample.image, ((0, 0), (0, pad_y), (0, pad_x)), mode="edge")
    targets = np.pad(sample.targets, ((0, pad_y), (0, pad_x)))
    weights = np.pad(sample.weights, ((0, pad_y), (0, pad_x)))
    labels = np.pad(sample.labels, ((0, pad_y), (0, pad_x)))
    return image, targets, weights, labels


def validate(model: SegModel, samples: Sequence[Sample], infer_config: InferConfig) -> dict[str, float]:
    """Mean scores of ``model`` over the validation regions of ``samples``."""
    from ..inference.postprocess import remove_small
    from ..inference.predict import labels_from_prediction, predict

    network = model.network
    was_training = network.training
    scores = []
    for sample in samples:
        rows, cols = np.nonzero(sample.val_mask)
        y0, y1 = max(rows.min() - _VALIDATION_CONTEXT, 0), rows.max() + 1 + _VALIDATION_CONTEXT
        x0, x1 = max(cols.min() - _VALIDATION_CONTEXT, 0), cols.max() + 1 + _VALIDATION_CONTEXT
        window = (slice(y0, y1), slice(x0, x1))
        crop = sample.image[(slice(None), *window)]
        # the sample is at the model's object size already: no estimate, no rescaling
        prediction = predict(crop, model, infer_config.replace(diameter=model.config.diameter), channel_axis=0,
                             prenormalised=True)
        predicted = labels_from_prediction(prediction, model, infer_config)
        region = sample.val_mask[window]
        true_labels = remove_small(np.where(region, sample.labels[window], 0), 2)
        scores.append(evaluate(predicted, true_labels, mask=region))
    network.train(was_training)
    return {key: float(np.mean([score[key] for score in scores])) for key in scores[0]}
