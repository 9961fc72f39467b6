"""Train the bundled default model on real nuclei (the DSB 2018 folder's training part), resumably.

    .venv/bin/python scripts/train_default.py --out runs/train/default            # train (or resume)
    .venv/bin/python scripts/train_default.py --out runs/train/default --install  # ... then ship it

Every number that shapes the model is an argument with its default here, and the run is seeded
with a step budget (not a time budget): the same machine and library versions give the same
weights. Data: the training part of the fixed split of datasets/dsb2018.py (stratified by
acquisition type; the validation part and the held-out type are never read), of which a seeded
tenth of each type ("dev") picks the checkpoint to keep. Every image is read as the model will read
it at inference (fluorescence as it is, H&E as its hematoxylin channel) and rescaled so that its
nuclei's median diameter is ``--diameter``; crops get scale, intensity, blur and noise jitter.

Long runs: the state (weights, optimiser, step, best so far) is saved to ``<out>/checkpoint.pt``
every ``--checkpoint-minutes``, atomically; run the same command again after any interruption and
it continues from there. Progress goes to ``<out>/train.log``. The best model so far is always in
``<out>/best.safetensors``, a normal model file. The same script runs on CUDA (``--device cuda``);
the card records where it ran.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import napari_attnseg as nas
from napari_attnseg.config import InferConfig, ModelConfig, TrainConfig
from napari_attnseg.datasets import dsb2018
from napari_attnseg.files.modelfile import default_model_path, library_versions, new_model, save_model
from napari_attnseg.metrics import pooled
from napari_attnseg.runtime.devices import autocast_dtype, resolve_device
from napari_attnseg.train.training import _class_weights, _train_step
from napari_attnseg.train.trainset import build_samples, sample_batch

log = logging.getLogger("train_default")


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="the DSB 2018 folder (default: shared/data/dsb2018)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the log, checkpoints and models")
    parser.add_argument("--width", type=int, default=16, help="base width of the network")
    parser.add_argument("--depth", type=int, default=4, help="resolution levels")
    parser.add_argument("--attention", default="gate")
    parser.add_argument("--diameter", type=float, default=17.0, help="object diameter the model learns at (px)")
    parser.add_argument("--he-input", choices=("hematoxylin", "grey", "both"), default="both",
                        help="train on H&E images as their hematoxylin channel, as inverted grey (as brightfield "
                             "is read), or both (each image twice)")
    parser.add_argument("--steps", type=int, default=7000, help="training steps (batches)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=192)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--scale-jitter", type=float, default=1.3)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--eval-every", type=int, default=1750, help="steps between dev evaluations")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument("--stop-after-minutes", type=float, default=None,
                        help="end this run (with a checkpoint) after this long; run again to continue")
    parser.add_argument("--install", action="store_true",
                        help="at the end, write the best model to the package's default weights")
    return parser.parse_args(argv)


def he_modality(args) -> str:
    """How H&E images are read at evaluation."""
    return "brightfield" if args.he_input == "grey" else "he"


def he_training_modalities(args) -> tuple[str, ...]:
    return {"hematoxylin": ("he",), "grey": ("brightfield",), "both": ("he", "brightfield")}[args.he_input]


def split_dev(train: tuple, seed: int, fraction: float = 0.1) -> tuple[list, list]:
    """A seeded tenth of each acquisition type of the training part, to choose checkpoints with."""
    rng = np.random.default_rng(seed)
    by_kind: dict[str, list] = {}
    for entry in train:
        by_kind.setdefault(entry.kind, []).append(entry)
    fit, dev = [], []
    for kind in sorted(by_kind):
        members = by_kind[kind]
        order = rng.permutation(len(members))
        n_dev = int(round(fraction * len(members))) if len(members) >= 10 else 0
        dev += [members[i] for i in order[:n_dev]]
        fit += [members[i] for i in order[n_dev:]]
    return fit, dev


def load_samples(model, entries, folder, args) -> list:
    samples = []
    for entry in entries:
        image, labels = dsb2018.load_pair(entry, folder)
        channel_axis = dsb2018.channel_axis_of(entry)
        for modality in he_training_modalities(args) if channel_axis is not None else ("auto",):
            samples += build_samples(model, [image], [labels], None, channel_axis, modality=modality)
    return samples


def evaluate_dev(model, entries, folder, args, device) -> dict:
    """Pooled scores on the dev images, through the same path as a user's image (auto diameter)."""
    network = model.network
    was_training = network.training
    scores = []
    for entry in entries:
        image, truth = dsb2018.load_pair(entry, folder)
        channel_axis = dsb2018.channel_axis_of(entry)
        config = InferConfig(device=str(device), modality=he_modality(args) if channel_axis is not None else "auto")
        scores.append(nas.evaluate(nas.segment(image, model, config, channel_axis=channel_axis), truth))
    network.train(was_training)
    return pooled(scores)


def learning_rate(args, step: int) -> float:
    warmup = min(1.0, (step + 1) / 500)
    return args.lr * warmup * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(step / args.steps, 1.0))))


def save_state(path: Path, state: dict) -> None:
    """torch.save to a temporary file, then rename: an interrupted save leaves the last one whole."""
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def main(argv=None) -> int:
    args = arguments(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=[logging.FileHandler(args.out / "train.log"), logging.StreamHandler()])
    folder = args.data or dsb2018.default_folder()
    split = dsb2018.split(dsb2018.read_manifest(folder))
    fit, dev = split_dev(split.train, args.seed)
    device = resolve_device(args.device)
    config = ModelConfig(in_channels=1, base_width=args.width, depth=args.depth, attention=args.attention,
                         input_transform="auto", diameter=args.diameter)
    model = new_model(config, name="attnseg-default-nuclei", seed=args.seed)
    train_config = TrainConfig(batch_size=args.batch, crop_size=args.crop, scale_jitter=args.scale_jitter,
                               learning_rate=args.lr, seed=args.seed, device=args.device)

    started = time.perf_counter()
    samples = load_samples(model, fit, folder, args)
    log.info("%d training images (%d planes), %d dev images; prepared in %.0f s", len(fit), len(samples),
             len(dev), time.perf_counter() - started)

    network = model.network.to(device)
    if device.type == "cpu":
        network = network.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=1e-4)
    dtype = autocast_dtype(device, "auto")
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    class_weights = _class_weights(model, train_config).to(device)
    checkpoint_path = args.out / "checkpoint.pt"
    step, best, history, seconds_before = 0, None, [], 0.0
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        step, best, history = state["step"], state["best"], json.loads(state["history"])
        seconds_before = state["seconds"]
        log.info("resumed at step %d (%.0f s trained before)", step, seconds_before)
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    log.info("settings: %s; device %s, precision %s", settings, device, dtype)

    run_started = time.perf_counter()
    last_checkpoint = run_started
    losses: list[float] = []

    def checkpoint() -> None:
        save_state(checkpoint_path, {"network": network.state_dict(), "optimizer": optimizer.state_dict(),
                                     "step": step, "best": best, "history": json.dumps(history),
                                     "seconds": seconds_before + time.perf_counter() - run_started})

    network.train()
    while step < args.steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args, step)
        rng = np.random.default_rng([args.seed, step])  # the batch of step N is the same after a resume
        batch = sample_batch(samples, train_config, rng)
        losses.append(_train_step(network, optimizer, batch, device, dtype, class_weights, scaler))
        step += 1
        if step % 100 == 0:
            elapsed = seconds_before + time.perf_counter() - run_started
            log.info("step %d loss %.4f lr %.2e (%.0f s, %.2f s/step)", step, float(np.mean(losses)),
                     learning_rate(args, step), elapsed, (time.perf_counter() - run_started) / max(step, 1))
            losses = []
        if step % args.eval_every == 0 or step == args.steps:
            network.eval()
            scores = evaluate_dev(model, dev, folder, args, device)
            network.train()
            record = {"step": step, "seconds": round(seconds_before + time.perf_counter() - run_started, 1),
                      "dev_ap50": round(scores["ap50"], 4), "dev_ap75": round(scores["ap75"], 4),
                      "dev_mean_ap50": round(scores["mean_ap50"], 4)}
            history.append(record)
            improved = best is None or scores["ap50"] > best["dev_ap50"]
            if improved:
                best = record
                model.network.eval()
                finish_card(model, args, split, fit, dev, history, best, device, record["seconds"])
                save_model(model, args.out / "best.safetensors")
                model.network.train()
            log.info("dev at step %d: AP50 %.4f AP75 %.4f mean AP50 %.4f%s", step, scores["ap50"], scores["ap75"],
                     scores["mean_ap50"], " (best so far, saved)" if improved else "")
        now = time.perf_counter()
        if now - last_checkpoint >= 60 * args.checkpoint_minutes or step == args.steps:
            checkpoint()
            last_checkpoint = now
        if args.stop_after_minutes and now - run_started >= 60 * args.stop_after_minutes:
            checkpoint()
            log.info("stopping after %.0f min at step %d; run again to continue", args.stop_after_minutes, step)
            return 0
    log.info("done: %d steps; best dev AP50 %.4f at step %d", step, best["dev_ap50"], best["step"])
    if args.install:
        target = save_model(nas.load_model(args.out / "best.safetensors"), default_model_path())
        log.info("installed %s (%.1f MB)", target, target.stat().st_size / 1e6)
    return 0


def finish_card(model, args, split, fit, dev, history, best, device, seconds) -> None:
    """What the model is and how it was made, in its card."""
    counts = {}
    for entry in fit:
        counts[entry.kind] = counts.get(entry.kind, 0) + 1
    model.card.update({
        "name": "attnseg-default-nuclei",
        "description": (
            "Nuclei (instance: background/interior/boundary) in fluorescence (bright on dark), brightfield "
            "(dark on bright; read inverted) and H&E tissue (read as its hematoxylin channel); images are "
            f"rescaled so nuclei are ~{args.diameter:g} px across. Trained on real images of the DSB 2018 "
            "stage 1 training set (BBBC038v1, CC0) by scripts/train_default.py."),
        "trained_on": (f"{len(fit)} real DSB 2018 nuclei images of the fixed split's training part "
                       f"(seed {dsb2018.SPLIT_SEED}; {', '.join(f'{k}: {n}' for k, n in counts.items())}); "
                       f"not its {len(split.val)} validation images nor the held-out type {dsb2018.HELD_OUT_TYPE}"),
        "training": {"script": "scripts/train_default.py", "settings": {
            key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()
            if key not in ("out", "data", "install", "stop_after_minutes")},
            "device": str(device), "seconds": seconds, "best": best, "dev_images": len(dev),
            "versions": library_versions()},
        "history": [dict(record) for record in history],
    })


if __name__ == "__main__":
    sys.exit(main())
