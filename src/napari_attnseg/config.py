"""Hyper-parameters as frozen, validated dataclasses that travel inside model files."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import ConfigError

ATTENTION_TYPES = ("gate", "se", "nonlocal", "none")
TASKS = ("instance", "semantic")
DEVICES = ("auto", "cpu", "cuda", "mps")
INPUT_TRANSFORMS = ("none", "auto")
MODALITIES = ("auto", "fluorescence", "brightfield", "he")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

T = TypeVar("T", bound="_Config")


class _Config:
    """Shared (de)serialisation: plain dicts of JSON types, unknown keys refused."""

    def to_dict(self) -> dict[str, Any]:
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls: type[T], values: dict[str, Any]) -> T:
        if not isinstance(values, dict):
            raise ConfigError(f"{cls.__name__} must be a mapping, got {type(values).__name__}")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(f"{cls.__name__} has no option(s) {', '.join(unknown)}")
        converted = {
            key: tuple(value) if isinstance(value, list) else value for key, value in values.items()
        }
        return cls(**converted)

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class ModelConfig(_Config):
    """Shape of the network and of its input normalisation.

    Args:
        in_channels: image channels the network reads.
        task: "instance" (3 classes: background / interior / boundary) or "semantic".
        n_classes: output classes; always 3 for "instance".
        base_width: channels of the first level; doubled at each level down.
        depth: number of resolution levels (depth - 1 poolings).
        attention: "gate" (Oktay et al. 2018), "se", "nonlocal" or "none".
        norm_percentiles: (low, high) percentiles mapped to 0 and 1 for every input channel.
        input_transform: "none" feeds the image as it is (an RGB image to a 1-channel model as the
            mean of its colours); "auto" (1-channel models) tells fluorescence, brightfield and H&E
            apart and feeds one channel with the objects bright (inference/modality.py).
        diameter: the median object diameter (pixels) the model was trained at; images are rescaled
            so their objects have this size (InferConfig.diameter). None: no rescaling.
    """

    in_channels: int = 1
    task: str = "instance"
    n_classes: int = 3
    base_width: int = 16
    depth: int = 4
    attention: str = "gate"
    norm_percentiles: tuple[float, float] = (1.0, 99.8)
    input_transform: str = "none"
    diameter: float | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.in_channels, int) and 1 <= self.in_channels <= 64,
               f"in_channels must be 1..64, got {self.in_channels!r}")
        _check(self.task in TASKS, f"task must be one of {TASKS}, got {self.task!r}")
        _check(isinstance(self.n_classes, int) and self.n_classes >= 2,
               f"n_classes must be an integer >= 2, got {self.n_classes!r}")
        _check(self.task != "instance" or self.n_classes == 3,
               "an instance model has exactly 3 classes (background, interior, boundary)")
        _check(isinstance(self.base_width, int) and 2 <= self.base_width <= 256,
               f"base_width must be 2..256, got {self.base_width!r}")
        _check(isinstance(self.depth, int) and 2 <= self.depth <= 7,
               f"depth must be 2..7, got {self.depth!r}")
        _check(self.attention in ATTENTION_TYPES,
               f"attention must be one of {ATTENTION_TYPES}, got {self.attention!r}")
        low, high = self.norm_percentiles
        _check(0.0 <= low < high <= 100.0,
               f"norm_percentiles must satisfy 0 <= low < high <= 100, got {self.norm_percentiles!r}")
        _check(self.input_transform in INPUT_TRANSFORMS,
               f"input_transform must be one of {INPUT_TRANSFORMS}, got {self.input_transform!r}")
        _check(self.input_transform == "none" or self.in_channels == 1,
               "input_transform 'auto' makes one grey channel; it needs in_channels=1")
        _check(self.diameter is None or (isinstance(self.diameter, (int, float)) and 2.0 <= self.diameter <= 500.0),
               f"diameter must be None or 2..500 pixels, got {self.diameter!r}")

    @property
    def multiple(self) -> int:
        """Spatial sizes the network accepts without padding are multiples of this."""
        return 2 ** (self.depth - 1)


@dataclass(frozen=True)
class InferConfig(_Config):
    """How to run a model over an image.

    Args:
        tile_size: the largest edge of the square tiles fed to the network (rounded to the model's
            multiple); a plane is covered by the fewest such tiles, evenly spread and shrunk to
            what it needs. 768 because a CPU runs tiles up to ~768² at the same cost per pixel
            (measured) and bigger tiles share fewer pixels with their neighbours.
        overlap: the fewest pixels shared by neighbouring tiles, blended smoothly.
        batch_size: tiles per forward pass; 0 (the default) means about four 256² tiles' worth of
            pixels on a CPU (one 768² tile) and as many as fit in memory (up to 32) on a GPU.
        device: "auto" (cuda, then mps, then cpu), "cpu", "cuda" or "mps".
        precision: "auto" (fp16 autocast on GPU, bf16 on CPUs with native bf16, else fp32), "fp32",
            "bf16" or "fp16".
        prob_threshold: foreground probability above which a pixel belongs to an object.
        seed_threshold: interior probability above which a pixel can seed an object.
        min_size: objects smaller than this many pixels are removed.
        stitch_threshold: IoU above which objects on neighbouring z-planes are joined.
        memory_budget_mb: memory the tiles may take; 0 (the default) means half of what the device
            has free. Tiles and batches shrink to fit it, and shrink again if an allocation fails.
        diameter: the objects' typical diameter in pixels; the image is rescaled so that they have the
            size the model was trained at, and the labels come back on the image's own grid. None
            (the default): estimated from the image. Models trained without a diameter ignore it.
        modality: "auto" (the default), "fluorescence", "brightfield" or "he", for models whose
            input_transform is "auto"; others ignore it.
    """

    tile_size: int = 768
    overlap: int = 32
    batch_size: int = 0
    device: str = "auto"
    precision: str = "auto"
    prob_threshold: float = 0.5
    seed_threshold: float = 0.6
    min_size: int = 15
    stitch_threshold: float = 0.25
    memory_budget_mb: int = 0
    diameter: float | None = None
    modality: str = "auto"

    def __post_init__(self) -> None:
        _check(isinstance(self.tile_size, int) and self.tile_size >= 16,
               f"tile_size must be an integer >= 16, got {self.tile_size!r}")
        _check(isinstance(self.overlap, int) and 0 <= self.overlap <= self.tile_size // 2,
               f"overlap must be 0 .. tile_size/2, got {self.overlap!r}")
        _check(isinstance(self.batch_size, int) and self.batch_size >= 0,
               f"batch_size must be >= 1, or 0 for automatic, got {self.batch_size!r}")
        _check(isinstance(self.memory_budget_mb, int) and self.memory_budget_mb >= 0,
               f"memory_budget_mb must be >= 1, or 0 for automatic, got {self.memory_budget_mb!r}")
        _check(self.device in DEVICES, f"device must be one of {DEVICES}, got {self.device!r}")
        _check(self.precision in PRECISIONS,
               f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("prob_threshold", "seed_threshold", "stitch_threshold"):
            value = getattr(self, name)
            _check(isinstance(value, (int, float)) and 0.0 < value < 1.0,
                   f"{name} must be between 0 and 1, got {value!r}")
        _check(isinstance(self.min_size, int) and self.min_size >= 0,
               f"min_size must be an integer >= 0, got {self.min_size!r}")
        _check(self.diameter is None or (isinstance(self.diameter, (int, float)) and 1.0 <= self.diameter <= 2000.0),
               f"diameter must be None (estimate it) or 1..2000 pixels, got {self.diameter!r}")
        _check(self.modality in MODALITIES, f"modality must be one of {MODALITIES}, got {self.modality!r}")


@dataclass(frozen=True)
class TrainConfig(_Config):
    """How to fine-tune.

    Args:
        max_seconds: wall-clock budget; training stops at the end of the batch that passes it.
        max_epochs: epoch budget.
        steps_per_epoch: batches between two validations.
        batch_size: crops per batch.
        crop_size: edge of the random training crops.
        learning_rate: peak AdamW learning rate (cosine decay after a short warm-up).
        weight_decay: AdamW weight decay.
        val_fraction: share of the checked data held back for validation.
        patience: epochs without a better validation score before stopping early, counted only
            once ``min_budget_share`` of the time budget is spent (a user who gave two minutes gets a
            model that had them, not one that stopped after the first plateau).
        min_budget_share: the share of max_seconds before which training never stops early.
        augment: random flips, 90-degree rotations, intensity jitter, blur, noise and (see
            scale_jitter) object-size jitter.
        scale_jitter: with augment, each crop is rescaled by a random factor within 1/scale_jitter ..
            scale_jitter (1 turns it off).
        boundary_weight: cross-entropy weight of the boundary class.
        freeze_norm: keep the batch-norm statistics of the starting model (its scale and shift are
            still trained): a few crops of one image are too few to re-estimate them.
        The defaults of learning_rate and freeze_norm come from benchmarks/bench_hitl.py on real nuclei
        (docs/benchmarks.md): 2e-3 with re-estimated statistics made a well-trained model worse.
        seed: seeds crops, augmentation and weight updates.
        device: as in InferConfig.
        precision: "auto" uses bf16 autocast on CPUs that support it, fp16 on GPU.
        checkpoint_every_s: when training is given a checkpoint file, the best model so far is saved
            there (atomically) at the first epoch end this many seconds after the last save, and at
            the end, so a run that is killed keeps its progress.
    """

    max_seconds: float = 120.0
    max_epochs: int = 200
    steps_per_epoch: int = 10
    batch_size: int = 4
    crop_size: int = 128
    learning_rate: float = 5e-4
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    patience: int = 15
    min_budget_share: float = 0.5
    augment: bool = True
    scale_jitter: float = 1.25
    boundary_weight: float = 2.0
    freeze_norm: bool = True
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    checkpoint_every_s: float = 60.0

    def __post_init__(self) -> None:
        _check(isinstance(self.max_seconds, (int, float)) and self.max_seconds > 0,
               f"max_seconds must be > 0, got {self.max_seconds!r}")
        _check(isinstance(self.max_epochs, int) and self.max_epochs >= 1,
               f"max_epochs must be an integer >= 1, got {self.max_epochs!r}")
        _check(isinstance(self.steps_per_epoch, int) and self.steps_per_epoch >= 1,
               f"steps_per_epoch must be >= 1, got {self.steps_per_epoch!r}")
        _check(isinstance(self.batch_size, int) and self.batch_size >= 1,
               f"batch_size must be >= 1, got {self.batch_size!r}")
        _check(isinstance(self.crop_size, int) and self.crop_size >= 16,
               f"crop_size must be >= 16, got {self.crop_size!r}")
        _check(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate!r}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay!r}")
        _check(0.0 <= self.val_fraction < 1.0,
               f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        _check(isinstance(self.patience, int) and self.patience >= 1,
               f"patience must be >= 1, got {self.patience!r}")
        _check(isinstance(self.freeze_norm, bool), f"freeze_norm must be True or False, got {self.freeze_norm!r}")
        _check(isinstance(self.min_budget_share, (int, float)) and 0.0 <= self.min_budget_share <= 1.0,
               f"min_budget_share must be 0..1, got {self.min_budget_share!r}")
        _check(self.boundary_weight > 0, "boundary_weight must be > 0")
        _check(isinstance(self.scale_jitter, (int, float)) and 1.0 <= self.scale_jitter <= 4.0,
               f"scale_jitter must be 1..4, got {self.scale_jitter!r}")
        _check(self.device in DEVICES, f"device must be one of {DEVICES}, got {self.device!r}")
        _check(self.precision in PRECISIONS,
               f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        _check(isinstance(self.checkpoint_every_s, (int, float)) and self.checkpoint_every_s > 0,
               f"checkpoint_every_s must be > 0, got {self.checkpoint_every_s!r}")
