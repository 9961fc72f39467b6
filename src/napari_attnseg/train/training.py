"""Fine-tuning as a generator of TrainProgress; `finetune()` drains it."""

from __future__ import annotations

import copy
import datetime as _dt
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Generator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import InferConfig, TrainConfig
from ..errors import InputError, SaveError
from ..files.card import describe_images, training_record, weights_sha256
from ..files.modelfile import SegModel, library_versions, save_model
from ..inference.predict import drain
from ..model import AttentionUNet
from ..runtime.allocator import keep_freed_memory
from ..runtime.cpu_threads import fit_threads_to_cpu_quota
from ..runtime.devices import autocast, autocast_dtype, host_to_device, resolve_device
from .trainset import Sample, build_samples, sample_batch, split_validation, validate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainProgress:
    """One report from training: after every batch, and with validation scores after every epoch.

    ``model`` is a snapshot of the best model so far, set only on reports where it improved, so a
    caller that stops early keeps the last one it saw. ``checkpointed`` says the best model so far
    was just saved to the checkpoint file.
    """

    step: int
    epoch: int
    loss: float
    learning_rate: float
    elapsed: float
    eta: float
    fraction: float
    val: dict[str, float] | None = None
    best_score: float | None = None
    improved: bool = False
    model: SegModel | None = field(default=None, repr=False)
    checkpointed: bool = False


def _schedule(config: TrainConfig, step: int, elapsed: float) -> tuple[float, float]:
    """(learning rate, fraction of the budget used): warm-up, then cosine decay over the budget."""
    total_steps = config.max_epochs * config.steps_per_epoch
    # Time is counted in 0.5 % quanta so that, while the epoch budget binds, the schedule (and
    # with it the seeded result) does not depend on how fast this machine happens to be.
    time_fraction = math.floor(200 * elapsed / config.max_seconds) / 200
    fraction = min(1.0, max(step / total_steps, time_fraction))
    warmup = min(1.0, (step + 1) / 10)
    cosine = 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * fraction))
    return config.learning_rate * warmup * cosine, fraction


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
                class_weights: torch.Tensor) -> torch.Tensor:
    """Cross-entropy + soft Dice over the non-background classes, counting only weighted pixels."""
    logits = logits.float()
    weight_sum = weights.sum().clamp(min=1.0)
    cross_entropy = F.cross_entropy(logits, targets, weight=class_weights, reduction="none")
    cross_entropy = (cross_entropy * weights).sum() / weight_sum
    probabilities = torch.softmax(logits, dim=1)
    one_hot = F.one_hot(targets, logits.shape[1]).permute(0, 3, 1, 2).float()
    pixel_weights = weights.unsqueeze(1)
    intersection = (probabilities * one_hot * pixel_weights).sum(dim=(0, 2, 3))[1:]
    denominator = ((probabilities + one_hot) * pixel_weights).sum(dim=(0, 2, 3))[1:]
    dice = 1.0 - (2.0 * intersection + 1.0) / (denominator + 1.0)
    return cross_entropy + dice.mean()


def train_steps(
    model: SegModel,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    masks: Sequence[np.ndarray | None] | None = None,
    config: TrainConfig | None = None,
    channel_axis: int | None = None,
    infer_config: InferConfig | None = None,
    names: Sequence[str | None] | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> Generator[TrainProgress, None, SegModel]:
    """Fine-tune a copy of ``model`` on (image, labels, mask) triples; yields after every batch.

    Only pixels where ``masks`` is True count in the loss (None: every pixel). Returns the model with
    the best validation score (or the last one when nothing could be held back for validation).
    The model passed in is never changed. ``names`` (one per image, e.g. file names) go into the
    training record of the returned model's card, beside content hashes of the images. With
    ``checkpoint``, the best model so far is saved to that file every ``config.checkpoint_every_s``
    seconds (at epoch ends) and when training ends.
    """
    config = config or TrainConfig()
    infer_config = infer_config or InferConfig(device=config.device)
    keep_freed_memory()
    fit_threads_to_cpu_quota()
    if not isinstance(model.network, AttentionUNet):
        source = (model.card.get("source") or {}).get("file", "an exported file")
        raise InputError(f"model {model.name!r} runs from {source} and cannot be fine-tuned; fine-tune the "
                         "napari-attnseg model it was exported from")
    if names is not None and len(names) != len(images):
        raise InputError(f"got {len(images)} images but {len(names)} names; give one name per image")
    samples = build_samples(model, images, labels, masks, channel_axis)
    provenance: dict[str, Any] = {
        "images": describe_images(images, labels, masks, names),
        "base_weights": weights_sha256(model.network),
        "versions": library_versions(),
    }
    rng = np.random.default_rng(config.seed)
    train_samples, val_samples = split_validation(samples, config.val_fraction, rng)
    device = resolve_device(config.device)

    working = model.copy()
    network = working.network.to(device)
    if device.type == "cpu":
        network = network.to(memory_format=torch.channels_last)
    dtype = autocast_dtype(device, config.precision)
    provenance.update(device=str(device), precision=str(dtype).replace("torch.", "") if dtype else "float32")
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    class_weights = _class_weights(working, config).to(device)
    # fp16 gradients underflow without loss scaling; bf16 and fp32 need none.
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    torch.manual_seed(config.seed)

    start = time.perf_counter()
    history: list[dict[str, Any]] = []
    baseline = validate(working, val_samples, infer_config) if val_samples else None
    best_score = baseline["ap50"] if baseline else -math.inf
    best_state = copy.deepcopy(network.state_dict())
    validation = {"before": baseline, "after": baseline}
    if baseline:
        history.append({"epoch": 0, "step": 0, "seconds": 0.0, **_prefixed(baseline)})
    epochs_since_best, step = 0, 0
    last_checkpoint, best_unsaved = start, False
    yield TrainProgress(0, 0, math.nan, 0.0, 0.0, math.nan, 0.0, val=baseline,
                        best_score=best_score if baseline else None)

    for epoch in range(1, config.max_epochs + 1):
        network.train()
        if config.freeze_norm:
            _freeze_norm_statistics(network)
        losses = []
        out_of_time = False
        for _ in range(config.steps_per_epoch):
            elapsed = time.perf_counter() - start
            learning_rate, fraction = _schedule(config, step, elapsed)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
            batch = sample_batch(train_samples, config, rng)
            loss = _train_step(network, optimizer, batch, device, dtype, class_weights, scaler)
            losses.append(loss)
            step += 1
            elapsed = time.perf_counter() - start
            fraction = max(fraction, min(1.0, elapsed / config.max_seconds))
            eta = elapsed / fraction - elapsed if fraction > 0 else math.nan
            yield TrainProgress(step, epoch, loss, learning_rate, elapsed, eta, fraction)
            if elapsed >= config.max_seconds:
                out_of_time = True
                break

        record: dict[str, Any] = {"epoch": epoch, "step": step, "train_loss": float(np.mean(losses)),
                                  "lr": learning_rate}
        val_scores = validate(working, val_samples, infer_config) if val_samples else None
        improved = val_scores is None or beats(val_scores, validation["after"])
        if val_scores:
            record.update(_prefixed(val_scores))
        if improved:
            best_score = val_scores["ap50"] if val_scores else best_score
            validation["after"] = val_scores
            best_state = copy.deepcopy(network.state_dict())
            epochs_since_best = 0
        else:
            epochs_since_best += 1
        elapsed = time.perf_counter() - start
        record["seconds"] = round(elapsed, 2)
        history.append(record)
        snapshot = _finish(working, best_state, history, samples, config, model, elapsed,
                           validation, provenance) if improved else None
        settled = elapsed >= config.min_budget_share * config.max_seconds
        stop = out_of_time or (settled and epochs_since_best >= config.patience) or epoch == config.max_epochs
        best_unsaved = best_unsaved or improved
        checkpointed = False
        if checkpoint is not None and best_unsaved and (
                stop or time.perf_counter() - last_checkpoint >= config.checkpoint_every_s):
            best = snapshot or _finish(working, best_state, history, samples, config, model, elapsed, validation,
                                           provenance)
            checkpointed = _save_checkpoint(best, checkpoint)
            last_checkpoint, best_unsaved = time.perf_counter(), not checkpointed
        yield TrainProgress(step, epoch, record["train_loss"], learning_rate, elapsed,
                            0.0 if stop else math.nan, 1.0 if stop else fraction, val=val_scores,
                            best_score=best_score if val_scores else None, improved=improved,
                            model=snapshot, checkpointed=checkpointed)
        if stop:
            break

    elapsed = time.perf_counter() - start
    return _finish(working, best_state, history, samples, config, model, elapsed, validation, provenance)


def _save_checkpoint(best: SegModel, path: str | os.PathLike) -> bool:
    """Save ``best`` to ``path``; a failure (disk full) is logged and training goes on."""
    try:
        save_model(best, path)
    except SaveError as error:
        logger.warning("checkpoint not saved: %s", error)
        return False
    return True


def _train_step(network, optimizer, batch, device, dtype, class_weights, scaler=None) -> float:
    images, targets, weights = (host_to_device(array, device) for array in batch)
    optimizer.zero_grad(set_to_none=True)
    with autocast(device, dtype):
        logits = network(images)
    loss = masked_loss(logits, targets.long(), weights, class_weights)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return float(loss.detach())


def _freeze_norm_statistics(network: torch.nn.Module) -> None:
    """Batch norm layers normalise with their running statistics and stop updating them."""
    for module in network.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def _class_weights(model: SegModel, config: TrainConfig) -> torch.Tensor:
    weights = torch.ones(model.config.n_classes)
    if model.config.task == "instance":
        weights[2] = config.boundary_weight
    return weights


#: a Dice gain that counts when AP50 is unchanged (smaller ones are noise on a small held-back part)
DICE_MARGIN = 0.01


def beats(scores: dict[str, float] | None, reference: dict[str, float] | None) -> bool:
    """The one rule for "better on the held-back part", for keeping an epoch's weights and for
    adopting a fine-tuned model: a higher AP50, or the same AP50 with a Dice higher by DICE_MARGIN.
    With nothing held back (no scores), nothing can be said: False."""
    if scores is None or reference is None:
        return False
    if scores["ap50"] != reference["ap50"]:
        return scores["ap50"] > reference["ap50"]
    return scores["dice"] >= reference["dice"] + DICE_MARGIN


def _prefixed(scores: dict[str, float]) -> dict[str, float]:
    return {f"val_{key}": value for key, value in scores.items()}


def _finish(working: SegModel, best_state, history, samples: list[Sample], config: TrainConfig,
            base: SegModel, elapsed: float, validation: dict, provenance: dict) -> SegModel:
    """A CPU copy of the network with the best weights and an updated card.

    ``card["validation"]`` holds the validation scores before training and of the kept weights;
    ``card["record"]`` the training record (see card.py).
    """
    network = copy.deepcopy(working.network).to("cpu").to(memory_format=torch.channels_last)
    network.load_state_dict({key: value.to("cpu") for key, value in best_state.items()})
    network.eval()
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    trained_on = (f"{len(samples)} image plane(s), "
                  f"{sum(int(sample.weights.sum()) for sample in samples):,} checked pixels")
    # The card describes this model: its own date, description and history; what it came from is
    # named under base_model (and in the training record), not copied in as if it were its own.
    card = {
        "name": f"{base.name} (fine-tuned)" if "fine-tuned" not in base.name else base.name,
        "created": now,
        "description": f"Fine-tuned from {base.name} on {trained_on} (napari-attnseg fine-tuning).",
        "base_model": base.name,
        "finetuned": now,
        "trained_on": trained_on,
        "train_config": config.to_dict(),
        "train_seconds": round(elapsed, 1),
        "validation": {**copy.deepcopy(validation), "improved": beats(validation["after"], validation["before"])},
        "history": copy.deepcopy(history),
        "record": training_record(
            base.card, provenance["base_weights"], provenance["images"], config.to_dict(),
            provenance["versions"], provenance["device"], provenance["precision"], elapsed,
            epochs=max((record["epoch"] for record in history), default=0),
            steps=max((record["step"] for record in history), default=0),
            validation=copy.deepcopy(validation)),
    }
    return SegModel(network=network, config=working.config, card=card)


def finetune(
    model: SegModel,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    masks: Sequence[np.ndarray | None] | None = None,
    max_seconds: float | None = None,
    config: TrainConfig | None = None,
    channel_axis: int | None = None,
    names: Sequence[str | None] | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> SegModel:
    """Fine-tune and return a new model; ``max_seconds`` overrides the config's time budget.

    ``names`` (optional, one per image) are recorded in the model card with the images' hashes;
    ``checkpoint``: a file that holds the best model so far while training runs (see train_steps).
    """
    config = config or TrainConfig()
    if max_seconds is not None:
        config = config.replace(max_seconds=max_seconds)
    if isinstance(images, np.ndarray) or isinstance(labels, np.ndarray):
        raise InputError("give images and labels as lists, one array per image: images=[image]")
    if not images:
        raise InputError("finetune needs at least one image with labels")
    tuned = drain(train_steps(model, images, labels, masks, config, channel_axis, names=names,
                              checkpoint=checkpoint))
    logger.info("fine-tuned for %d epochs in %.1f s", len(tuned.history), tuned.card["train_seconds"])
    return tuned
