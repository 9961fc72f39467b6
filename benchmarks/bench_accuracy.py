"""Zero-shot accuracy on real nuclei: every model given, beside the Otsu + watershed baseline.

    .venv/bin/python benchmarks/bench_accuracy.py [--model default FILE ...] [--data DIR] [--json out.json]

On the validation part of the DSB 2018 folder's fixed split (datasets/dsb2018.py: stratified by
acquisition type, seed 2018) and on the acquisition type kept out of training. Per type: images,
nuclei, pooled AP50 and AP75 (sum of TP over sum of TP + FP + FN) and the per-image mean AP50;
"all fluorescence" pools every fluorescence validation image. Nothing here trains or tunes on
these images. --quick: 3 images a type (a smoke check, not a measurement).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _report import argument_parser, headline, machine, write_json  # benchmarks/_report.py

import napari_attnseg as nas
from napari_attnseg.config import InferConfig
from napari_attnseg.datasets import dsb2018
from napari_attnseg.inference.classic import otsu_watershed
from napari_attnseg.metrics import pooled

BASELINE = "Otsu + watershed"


def methods(model_paths: list[str], config: InferConfig) -> dict:
    """{name: image, channel_axis -> labels} for each model and the baseline."""
    found = {}
    for path in model_paths:
        model = nas.load_model(None if path == "default" else path)
        name = "bundled default" if path == "default" else Path(path).name

        def run(image, channel_axis, model=model):
            return nas.segment(image, model, config, channel_axis=channel_axis)

        found[name] = run
    found[BASELINE] = lambda image, channel_axis: otsu_watershed(image, channel_axis)
    return found


def score_entries(entries, method, folder) -> tuple[list[dict], float]:
    scores, seconds = [], 0.0
    for entry in entries:
        image, truth = dsb2018.load_pair(entry, folder)
        started = time.perf_counter()
        labels = method(image, dsb2018.channel_axis_of(entry))
        seconds += time.perf_counter() - started
        scores.append(nas.evaluate(labels, truth))
    return scores, seconds


def groups(split: dsb2018.Split) -> dict[str, list]:
    """Validation images by acquisition type, all fluorescence pooled, and the held-out type."""
    by_kind: dict[str, list] = {}
    for entry in split.val:
        by_kind.setdefault(entry.kind, []).append(entry)
    table = {kind: by_kind[kind] for kind in sorted(by_kind, key=lambda k: -len(by_kind[k]))}
    table["all fluorescence (val)"] = [e for e in split.val if e.modality == "fluorescence"]
    if split.held_out:
        table[f"{split.held_out[0].kind} (held out)"] = list(split.held_out)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--model", nargs="+", default=["default"], help="model files, or 'default'")
    parser.add_argument("--data", type=Path, default=None, help="the DSB 2018 folder (default: shared/data/dsb2018)")
    args = parser.parse_args(argv)
    folder = args.data or dsb2018.default_folder()
    split = dsb2018.split(dsb2018.read_manifest(folder))
    config = InferConfig(device="cpu")
    rows, headlines = [], []
    table = groups(split)
    if args.quick:
        table = {kind: entries[:3] for kind, entries in table.items()}
    print(f"machine: {machine()}; split: {len(split.train)} train, {len(split.val)} val, "
          f"{len(split.held_out)} held out (seed {dsb2018.SPLIT_SEED})")
    print(f"{'images':24s} {'method':24s} {'n':>4s} {'nuclei':>7s} {'AP50':>6s} {'AP75':>6s} {'mean AP50':>9s} "
          f"{'s/image':>8s}")
    for name, run in methods(args.model, config).items():
        cache: dict[str, tuple[dict, float]] = {}  # an image in two groups is segmented once
        for kind, entries in table.items():
            todo = [entry for entry in entries if entry.id not in cache]
            scores, seconds = score_entries(todo, run, folder)
            for entry, score in zip(todo, scores):
                cache[entry.id] = (score, seconds / max(len(todo), 1))
            result = pooled([cache[entry.id][0] for entry in entries])
            per_image = sum(cache[entry.id][1] for entry in entries) / len(entries)
            row = {"images": kind, "method": name, **result, "seconds_per_image": round(per_image, 3)}
            rows.append(row)
            print(f"{kind:24s} {name:24s} {len(entries):4d} {result['n_true']:7d} {result['ap50']:6.3f} "
                  f"{result['ap75']:6.3f} {result['mean_ap50']:9.3f} {per_image:8.3f}")
            headlines.append(headline(f"{kind}, {name}", "pooled AP50", round(result["ap50"], 3)))
    write_json(args.json, "accuracy", rows, headlines, args.quick,
               split={"seed": dsb2018.SPLIT_SEED, "counts": split.counts()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
