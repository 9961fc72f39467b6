"""Zero-shot accuracy on real nuclei: every model given, beside the Otsu + watershed baseline.

    .venv/bin/python benchmarks/bench_accuracy.py [--model default FILE ...] [--data DIR] [--json out.json]

On the validation part of the DSB 2018 folder's fixed split (datasets/dsb2018.py: stratified by
acquisition type, seed 2018) and on the acquisition type kept out of training. Per type: images,
nuclei, pooled AP50 and AP75 (sum of TP over sum of TP + FP + FN) and the per-image mean AP50;
"all fluorescence" pools every fluorescence validation image. Nothing here trains or tunes on
these images. Then the object-size table: the same validation images shrunk and enlarged
(``--scales``, default ×0.5 and ×3; labels by nearest neighbour) and segmented by the first model
with the diameter estimated (InferConfig.diameter None), beside their native size.
--quick: 3 images a type and one scale (a smoke check, not a measurement).
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
from napari_attnseg.inference.scale import rescaled_pair
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


def scale_rows(model, table: dict, folder, factors: list[float], config: InferConfig) -> list[dict]:
    """Pooled AP50 of ``model`` with the diameter estimated, on each group at each scale (an image
    in two groups is segmented once)."""
    rows, cache = [], {}
    for kind, entries in table.items():
        row = {"images": kind, "n": len(entries)}
        for factor in [1.0] + factors:
            for entry in entries:
                if (entry.id, factor) in cache:
                    continue
                image, truth = dsb2018.load_pair(entry, folder)
                axis = dsb2018.channel_axis_of(entry)
                if factor != 1.0:
                    image, truth = rescaled_pair(image, truth, axis, factor)
                labels = nas.segment(image, model, config, channel_axis=axis)
                cache[entry.id, factor] = nas.evaluate(labels, truth)
            row[f"ap50_x{factor:g}"] = round(pooled([cache[entry.id, factor] for entry in entries])["ap50"], 4)
        rows.append(row)
        print(f"{kind:32s} {len(entries):4d} " + " ".join(f"{row[f'ap50_x{f:g}']:7.3f}" for f in [1.0] + factors),
              flush=True)
    return rows


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
    parser.add_argument("--scales", type=float, nargs="*", default=[0.5, 3.0],
                        help="sizes for the object-size table (none: skip it)")
    args = parser.parse_args(argv)
    folder = args.data or dsb2018.default_folder()
    split = dsb2018.split(dsb2018.read_manifest(folder))
    config = InferConfig(device="cpu")
    rows, headlines = [], []
    table = groups(split)
    scales = args.scales
    if args.quick:
        table = {kind: entries[:3] for kind, entries in table.items()}
        scales = scales[:1]
    print(f"machine: {machine()}; split: {len(split.train)} train, {len(split.val)} val, "
          f"{len(split.held_out)} held out (seed {dsb2018.SPLIT_SEED})")
    print(f"{'images':32s} {'method':24s} {'n':>4s} {'nuclei':>7s} {'AP50':>6s} {'AP75':>6s} {'mean AP50':>9s} "
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
            row = {**result, "images": kind, "n_images": result["images"], "method": name,
                   "seconds_per_image": round(per_image, 3)}
            rows.append(row)
            print(f"{kind:32s} {name:24s} {len(entries):4d} {result['n_true']:7d} {result['ap50']:6.3f} "
                  f"{result['ap75']:6.3f} {result['mean_ap50']:9.3f} {per_image:8.3f}")
            headlines.append(headline(f"{kind}, {name}", "pooled AP50", round(result["ap50"], 3)))
    size_rows = []
    if scales:
        first = args.model[0]
        print(f"\nobject size: pooled AP50 of {first} with the diameter estimated, images rescaled")
        print(f"{'images':32s} {'n':>4s} " + " ".join(f"{'x' + format(f, 'g'):>7s}" for f in [1.0] + scales))
        model = nas.load_model(None if first == "default" else first)
        size_rows = scale_rows(model, {k: v for k, v in table.items() if "held out" not in k}, folder, scales, config)
        for row in size_rows:
            for factor in scales:
                headlines.append(headline(f"{row['images']} at x{factor:g}, diameter estimated", "pooled AP50",
                                          row[f"ap50_x{factor:g}"]))
    write_json(args.json, "accuracy", rows, headlines, args.quick, size_rows=size_rows,
               split={"seed": dsb2018.SPLIT_SEED, "counts": split.counts()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
