"""CPU timings of the bundled model: end-to-end segmentation and one fine-tuning step.

    .venv/bin/python benchmarks/bench_cpu.py [--sizes 512 2048] [--repeats 3] [--json out.json] [--quick]

End to end means: percentile normalisation, tiled prediction with blending, seeded watershed.
Prints a table; with --json also writes the numbers (see _report.py). --quick: one 256² image, one
repeat, a few training steps (a smoke check, not a measurement).
"""

from __future__ import annotations

import resource
import statistics
import sys
import time

import numpy as np
import torch
from _report import argument_parser, headline, machine, write_json  # benchmarks/_report.py: this folder is on sys.path

import napari_attnseg as nas
from napari_attnseg.config import InferConfig, TrainConfig
from napari_attnseg.inference.predict import labels_from_prediction, predict
from napari_attnseg.model import count_parameters
from napari_attnseg.train.training import train_steps


def _tiled_synthetic(size: int) -> np.ndarray:
    tile, _ = nas.synthetic_nuclei((512, 512), seed=5, radius_range=(8.0, 12.0))
    reps = -(-size // 512)
    return np.tile(tile, (reps, reps))[:size, :size]


def time_segment(model, size: int, repeats: int, config: InferConfig) -> dict:
    image = _tiled_synthetic(size)
    nas.segment(image[:256, :256], model, config)  # warm-up
    network_seconds, total_seconds = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        prediction = predict(image, model, config)
        predicted = time.perf_counter()
        labels = labels_from_prediction(prediction, model, config)
        finished = time.perf_counter()
        network_seconds.append(predicted - started)
        total_seconds.append(finished - started)
    total = statistics.median(total_seconds)
    return {
        "size": size,
        "seconds": round(total, 3),
        "network_seconds": round(statistics.median(network_seconds), 3),
        "megapixel_per_s": round(size * size / 1e6 / total, 2),
        "objects": int(labels.max()),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def time_train_step(model, config: TrainConfig, steps: int = 12) -> float:
    pairs = [nas.synthetic_nuclei((256, 256), seed=index) for index in range(4)]
    images, labels = zip(*pairs)
    stamps = []
    generator = train_steps(model, images, labels, None,
                            config.replace(steps_per_epoch=steps, max_epochs=1, val_fraction=0.0))
    for progress in generator:
        if progress.val is None:
            stamps.append(time.perf_counter())
    return statistics.median(np.diff(stamps[2:]))


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats = [256], 1

    model = nas.load_model()
    config = InferConfig(device="cpu")
    train_config = TrainConfig(device="cpu")
    print(f"model {model.name}: {count_parameters(model.network):,} parameters; {machine()}")
    from napari_attnseg.runtime.devices import autocast_dtype

    dtype = autocast_dtype(torch.device("cpu"), config.precision)
    print(f"tile {config.tile_size}, overlap {config.overlap}, batch {config.batch_size}, "
          f"threads {torch.get_num_threads()}, precision {config.precision} -> {dtype or 'fp32'}")
    print(f"{'image':>10s} {'total s':>8s} {'network s':>9s} {'MP/s':>6s} {'objects':>8s} {'peak RSS MB':>12s}")
    rows = []
    for size in args.sizes:
        row = time_segment(model, size, args.repeats, config)
        rows.append(row)
        print(f"{size:>5d}x{size:<4d} {row['seconds']:8.3f} {row['network_seconds']:9.3f} "
              f"{row['megapixel_per_s']:6.2f} {row['objects']:8d} {row['peak_rss_mb']:12.1f}")
    step = time_train_step(model, train_config, steps=6 if args.quick else 12)
    print(f"fine-tuning step (batch {train_config.batch_size} x {train_config.crop_size}^2): {step * 1000:.0f} ms")
    headlines = [headline(f"segment {row['size']}x{row['size']} end to end", "seconds", row["seconds"])
                 for row in rows]
    headlines.append(headline(f"fine-tuning step {train_config.batch_size} x {train_config.crop_size}^2",
                              "ms", round(step * 1000, 1)))
    write_json(args.json, "cpu", rows, headlines, args.quick, train_step_s=round(step, 4),
               precision=config.precision)
    return 0


if __name__ == "__main__":
    sys.exit(main())
