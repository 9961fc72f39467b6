"""The biologist's afternoon, simulated: correct one image, fine-tune, score the folder's other images.

    .venv/bin/python benchmarks/bench_hitl.py [--model default|FILE] [--seconds 120] [--json out.json]

Per acquisition type of the DSB 2018 folder's validation part (and the type kept out of training):
the first image (by id) is "corrected" (its true labels, every pixel checked), the model is
fine-tuned on it with the GUI's defaults and a ``--seconds`` budget, and the type's other images
are scored before and after (pooled AP50 / AP75). "kept" is what the user ends up with: the tuned
model when it beat the model in use on its held-back part (the rule the Fine-tune dock applies),
else the model in use. --quick: two types, 3 images each, a 10 s budget (a smoke check).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _report import argument_parser, headline, machine, write_json  # benchmarks/_report.py

import napari_attnseg as nas
from napari_attnseg.config import InferConfig, TrainConfig
from napari_attnseg.datasets import dsb2018
from napari_attnseg.metrics import pooled
from napari_attnseg.train.training import beats


def score(model, entries, folder, config) -> dict:
    scores = []
    for entry in entries:
        image, truth = dsb2018.load_pair(entry, folder)
        labels = nas.segment(image, model, config, channel_axis=dsb2018.channel_axis_of(entry))
        scores.append(nas.evaluate(labels, truth))
    return pooled(scores)


def afternoon(model, entries, folder, seconds: float, config: InferConfig, train_config: TrainConfig) -> dict:
    """Fine-tune on the first entry, score the rest before and after."""
    corrected, rest = entries[0], entries[1:]
    image, truth = dsb2018.load_pair(corrected, folder)
    before = score(model, rest, folder, config)
    started = time.perf_counter()
    tuned = nas.finetune(model, [image], [truth], masks=None, config=train_config.replace(max_seconds=seconds),
                         channel_axis=dsb2018.channel_axis_of(corrected), names=[corrected.id])
    used = time.perf_counter() - started
    after = score(tuned, rest, folder, config)
    validation = tuned.card.get("validation") or {}
    adopted = validation.get("before") is None or beats(validation.get("after"), validation.get("before"))
    return {"corrected": corrected.id, "rest": len(rest), "nuclei": before["n_true"],
            "before_ap50": before["ap50"], "before_ap75": before["ap75"],
            "tuned_ap50": after["ap50"], "tuned_ap75": after["ap75"],
            "kept_ap50": after["ap50"] if adopted else before["ap50"], "adopted": adopted,
            "seconds": round(used, 1), "epochs": max((r["epoch"] for r in tuned.history), default=0)}


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--model", default="default", help="model file, or 'default' (the bundled one)")
    parser.add_argument("--seconds", type=float, default=TrainConfig.max_seconds, help="fine-tuning budget")
    parser.add_argument("--data", type=Path, default=None, help="the DSB 2018 folder (default: shared/data/dsb2018)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: TrainConfig's)")
    parser.add_argument("--freeze-norm", choices=("yes", "no"), default=None,
                        help="keep batch-norm statistics (default: TrainConfig's)")
    args = parser.parse_args(argv)
    folder = args.data or dsb2018.default_folder()
    split = dsb2018.split(dsb2018.read_manifest(folder))
    model = nas.load_model(None if args.model == "default" else args.model)
    config = InferConfig(device="cpu")
    train_config = TrainConfig(device="cpu")
    if args.lr:
        train_config = train_config.replace(learning_rate=args.lr)
    if args.freeze_norm:
        train_config = train_config.replace(freeze_norm=args.freeze_norm == "yes")
    groups: dict[str, list] = {}
    for entry in sorted(split.val, key=lambda e: e.id):
        groups.setdefault(entry.kind, []).append(entry)
    groups = {kind: groups[kind] for kind in sorted(groups, key=lambda k: -len(groups[k]))}
    if split.held_out:
        groups[f"{split.held_out[0].kind} (held out)"] = sorted(split.held_out, key=lambda e: e.id)
    seconds = args.seconds
    if args.quick:
        groups = {kind: entries[:3] for kind, entries in list(groups.items())[:2]}
        seconds = 10.0
    print(f"machine: {machine()}; model: {model.name}; budget {seconds:g} s; lr {train_config.learning_rate:g}; "
          f"freeze_norm {train_config.freeze_norm}")
    print(f"{'type':34s} {'rest':>4s} {'nuclei':>6s} {'AP50 before':>11s} {'after':>6s} {'kept':>6s} "
          f"{'AP75 before':>11s} {'after':>6s} {'seconds':>7s} {'epochs':>6s}")
    rows, headlines = [], []
    for kind, entries in groups.items():
        row = {"type": kind, **afternoon(model, entries, folder, seconds, config, train_config)}
        rows.append(row)
        print(f"{kind:34s} {row['rest']:4d} {row['nuclei']:6d} {row['before_ap50']:11.3f} {row['tuned_ap50']:6.3f} "
              f"{row['kept_ap50']:6.3f} {row['before_ap75']:11.3f} {row['tuned_ap75']:6.3f} {row['seconds']:7.1f} "
              f"{row['epochs']:6d}", flush=True)
        headlines.append(headline(f"{kind}: rest after one corrected image", "pooled AP50",
                                  round(row["kept_ap50"], 3)))
    write_json(args.json, "hitl", rows, headlines, args.quick, seconds=seconds, model=model.name,
               learning_rate=train_config.learning_rate, freeze_norm=train_config.freeze_norm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
