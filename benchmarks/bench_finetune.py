"""Fine-tuning speed: time per step, and time from scratch to a target validation AP50.

    .venv/bin/python benchmarks/bench_finetune.py [--target 0.8] [--cap 300] [--json out.json] [--quick]

Steps use the default TrainConfig (4 crops of 128²); the target run trains a freshly initialised
default-size network on 16 synthetic 256² images (4 held back for validation) until validation AP50
reaches the target, and reports the seconds and steps it took. --quick: fewer steps and a 3 s cap (a
smoke check; the target is not expected to be reached).
"""

from __future__ import annotations

import statistics
import sys
import time

from _report import argument_parser, headline, write_json  # benchmarks/_report.py: this folder is on sys.path

import napari_attnseg as nas
from napari_attnseg.config import ModelConfig, TrainConfig
from napari_attnseg.train.training import train_steps


def step_time(precision: str, steps: int = 15) -> float:
    model = nas.load_model()
    pairs = [nas.synthetic_nuclei((256, 256), seed=index) for index in range(4)]
    images, labels = zip(*pairs)
    config = TrainConfig(steps_per_epoch=steps, max_epochs=1, val_fraction=0.0, precision=precision, device="cpu")
    stamps = [time.perf_counter() for progress in train_steps(model, images, labels, None, config)
              if progress.val is None]
    return statistics.median([b - a for a, b in zip(stamps[3:-1], stamps[4:])])


def time_to_target(target: float, cap: float, images: int = 16) -> tuple[float | None, int, float]:
    model = nas.new_model(ModelConfig(), name="scratch", seed=0)
    pairs = [nas.synthetic_nuclei((256, 256), seed=1000 + index) for index in range(images)]
    images, labels = zip(*pairs)
    config = TrainConfig(max_seconds=cap, max_epochs=10_000, steps_per_epoch=25, patience=10_000,
                         learning_rate=3e-3, val_fraction=0.25, device="cpu")
    best = 0.0
    for progress in train_steps(model, images, labels, None, config):
        if progress.val is not None and progress.epoch > 0:
            best = max(best, progress.val["ap50"])
            if best >= target:
                return progress.elapsed, progress.step, best
    return None, progress.step, best


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--cap", type=float, default=300.0)
    args = parser.parse_args()
    if args.quick:
        args.cap = min(args.cap, 3.0)
    rows, headlines = [], []
    print(f"{'precision':>9s} {'ms per step (4 x 128^2)':>24s}")
    for precision in ("auto", "fp32"):
        milliseconds = 1000 * step_time(precision, steps=6 if args.quick else 15)
        rows.append({"precision": precision, "ms_per_step": round(milliseconds, 1)})
        headlines.append(headline(f"training step 4 x 128^2, {precision}", "ms", round(milliseconds, 1)))
        print(f"{precision:>9s} {milliseconds:24.0f}")
    seconds, steps, best = time_to_target(args.target, args.cap, images=8 if args.quick else 16)
    headlines.append(headline(f"from scratch to validation AP50 >= {args.target}", "seconds",
                              None if seconds is None else round(seconds, 1)))
    write_json(args.json, "finetune", rows, headlines, args.quick,
               to_target={"target": args.target, "cap_s": args.cap, "seconds": seconds, "steps": steps,
                          "best_ap50": round(best, 4)})
    if seconds is None:
        print(f"from scratch: validation AP50 {best:.3f} after {steps} steps; target {args.target} not "
              f"reached within {args.cap:.0f} s")
    else:
        print(f"from scratch to validation AP50 >= {args.target}: {seconds:.0f} s, {steps} steps "
              f"(reached {best:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
