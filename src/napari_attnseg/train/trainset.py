"""Training and validation sets for fine-tuning: samples, the held-back split, crops, validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..config import InferConfig, TrainConfig
from ..errors import InputError
from ..files.modelfile import SegModel
from ..inference.inputs import as_channels_first, check_labels, check_mask, normalize
from ..metrics import evaluate
from .targets import augment, instance_targets

_VALIDATION_CONTEXT = 32  # pixels of image around a validation region, so its edges see context
_MIN_VALIDATION_ROWS = 24


@dataclass
class Sample:
    """One training plane: normalised image (C, Y, X), targets and per-pixel loss weights."""

    image: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    val_mask: np.ndarray | None = None


def build_samples(model: SegModel, images, labels, masks, channel_axis) -> list[Sample]:
    """Validate the triples and turn stacks into planes."""
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
        planes = as_channels_first(image, model.config.in_channels, channel_axis)
        spatial = planes.shape[:1] + planes.shape[2:] if planes.ndim == 4 else planes.shape[1:]
        planes = planes if planes.ndim == 4 else planes[np.newaxis]
        label_planes = check_labels(label_image, spatial, name=f"labels[{index}]")
        mask_planes = check_mask(mask, spatial)
        label_planes = label_planes.reshape((-1,) + planes.shape[2:])
        mask_planes = mask_planes.reshape((-1,) + planes.shape[2:])
        normalised = normalize(planes, model.config.norm_percentiles)
        for plane, plane_labels, plane_mask in zip(normalised, label_planes, mask_planes):
            if model.config.task == "instance":
                targets = instance_targets(plane_labels)
            else:
                if plane_labels.max(initial=0) >= model.config.n_classes:
                    raise InputError(f"labels[{index}] has class {plane_labels.max()} but the model "
                                     f"has {model.config.n_classes} classes")
                targets = plane_labels.astype(np.uint8)
            samples.append(Sample(plane, plane_labels, targets, plane_mask.astype(np.float32)))
    # Planes nobody checked (say, the rest of a stack) carry no training signal.
    samples = [sample for sample in samples if sample.weights.any()]
    if not samples:
        raise InputError("the masks check no pixel: mark at least one reviewed region to train on")
    return samples


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
    """A batch of random crops centred on checked pixels (images, targets, weights)."""
    pixel_counts = np.array([sample.weights.sum() for sample in samples], dtype=np.float64)
    probabilities = np.sqrt(pixel_counts) / np.sqrt(pixel_counts).sum()
    images, targets, weights = [], [], []
    size = config.crop_size
    for _ in range(config.batch_size):
        sample = samples[rng.choice(len(samples), p=probabilities)]
        image, target, weight = _padded(sample, size)
        checked = np.flatnonzero(weight)
        centre = np.unravel_index(rng.choice(checked), weight.shape)
        y0 = int(np.clip(centre[0] - size // 2 + rng.integers(-size // 4, size // 4 + 1),
                         0, weight.shape[0] - size))
        x0 = int(np.clip(centre[1] - size // 2 + rng.integers(-size // 4, size // 4 + 1),
                         0, weight.shape[1] - size))
        window = (slice(y0, y0 + size), slice(x0, x0 + size))
        crop = (image[(slice(None), *window)], target[window], weight[window])
        if config.augment:
            crop = augment(*crop, rng)
        images.append(crop[0])
        targets.append(crop[1])
        weights.append(crop[2])
    return np.stack(images).astype(np.float32), np.stack(targets).astype(np.int64), np.stack(weights)


def _padded(sample: Sample, size: int):
    pad_y = max(0, size - sample.weights.shape[0])
    pad_x = max(0, size - sample.weights.shape[1])
    if pad_y == 0 and pad_x == 0:
        return sample.image, sample.targets, sample.weights
    image = np.pad(sample.image, ((0, 0), (0, pad_y), (0, pad_x)), mode="edge")
    targets = np.pad(sample.targets, ((0, pad_y), (0, pad_x)))
    weights = np.pad(sample.weights, ((0, pad_y), (0, pad_x)))
    return image, targets, weights


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
        prediction = predict(crop, model, infer_config, channel_axis=0, prenormalised=True)
        predicted = labels_from_prediction(prediction, model, infer_config)
        region = sample.val_mask[window]
        true_labels = remove_small(np.where(region, sample.labels[window], 0), 2)
        scores.append(evaluate(predicted, true_labels, mask=region))
    network.train(was_training)
    return {key: float(np.mean([score[key] for score in scores])) for key in scores[0]}
