"""Fine-tuning soak: a long run with checkpoints, resident memory printed every minute and at the end.

    .venv/bin/python benchmarks/bench_soak.py [--seconds 1800] [--every 60] [--model default|tiny] [--json out.json]

Fine-tunes the model on synthetic 256x256 images (one held back for validation) for --seconds,
saving the best model so far to a checkpoint file every --every seconds, and prints one row per
interval: elapsed time, step, epoch, training loss, best validation AP50 so far, checkpoints written
and RSS (/proc/self/statm). Memory that climbs row after row would be a leak. Linux only.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from _report import argument_parser, headline, write_json  # benchmarks/_report.py: this folder is on sys.path


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    parser = argument_parser(__doc__, quick_help="8 s with the tiny model, a row every 2 s")
    parser.add_argument("--seconds", type=float, default=1800.0, help="time budget (default 1800)")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between rows and checkpoints")
    parser.add_argument("--model", choices=("default", "tiny"), default="default")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.every, args.model = 8.0, 2.0, "tiny"
    if not sys.platform.startswith("linux"):
        parser.error("this benchmark reads /proc/self/statm (Linux only)")

    import napari_attnseg as nas
    from napari_attnseg.config import ModelConfig, TrainConfig
    from napari_attnseg.train.training import train_steps

    model = nas.load_model() if args.model == "default" else nas.new_model(ModelConfig(base_width=8, depth=3))
    pairs = [nas.synthetic_nuclei((256, 256), seed=500 + index, radius_range=(7.0, 11.0)) for index in range(5)]
    images, labels = zip(*pairs)
    config = TrainConfig(max_seconds=args.seconds, max_epochs=1_000_000, patience=1_000_000,
                         checkpoint_every_s=args.every, device="cpu")
    rows: list[dict] = []
    print(f"{'elapsed s':>9s} {'step':>7s} {'epoch':>6s} {'loss':>7s} {'best AP50':>9s} {'checkpoints':>11s} "
          f"{'RSS MB':>8s}", flush=True)

    def add_row(progress, best_ap50, checkpoints) -> None:
        row = {"elapsed_s": round(progress.elapsed, 1), "step": progress.step, "epoch": progress.epoch,
               "loss": None if math.isnan(progress.loss) else round(progress.loss, 4),
               "best_val_ap50": best_ap50, "checkpoints": checkpoints, "rss_mb": round(rss_mb(), 1)}
        rows.append(row)
        loss = "-" if row["loss"] is None else f"{row['loss']:.4f}"
        best = "-" if best_ap50 is None else f"{best_ap50:.3f}"
        print(f"{row['elapsed_s']:9.1f} {row['step']:7d} {row['epoch']:6d} {loss:>7s} {best:>9s} "
              f"{checkpoints:11d} {row['rss_mb']:8.1f}", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "soak.model"
        best_ap50, checkpoints, next_row = None, 0, 0.0
        steps = train_steps(model, images, labels, None, config, checkpoint=checkpoint)
        start = time.perf_counter()
        while True:
            try:
                progress = next(steps)
            except StopIteration:
                break
            if progress.val is not None:
                best_ap50 = max(best_ap50 or 0.0, progress.val["ap50"])
            checkpoints += progress.checkpointed
            if time.perf_counter() - start >= next_row:
                add_row(progress, best_ap50, checkpoints)
                next_row += args.every
        if rows[-1]["step"] != progress.step or rows[-1]["epoch"] != progress.epoch:
            add_row(progress, best_ap50, checkpoints)  # the end
        checkpoint_loads = nas.load_model(checkpoint).name if checkpoint.exists() else None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    growth = rows[-1]["rss_mb"] - rows[1]["rss_mb"] if len(rows) > 2 else float("nan")
    print(f"peak RSS {peak:.1f} MB; RSS change from the first minute to the end {growth:+.1f} MB; "
          f"checkpoint {'loads as ' + repr(checkpoint_loads) if checkpoint_loads else 'was never written'}")
    write_json(args.json, "soak", rows, [
        headline(f"fine-tune {args.seconds:.0f} s ({args.model})", "peak RSS MB", round(peak, 1)),
        headline(f"fine-tune {args.seconds:.0f} s ({args.model})", "RSS change after the first minute MB",
                 round(growth, 1)),
        headline(f"fine-tune {args.seconds:.0f} s ({args.model})", "checkpoints written", checkpoints),
    ], args.quick, model=args.model, seconds=args.seconds, checkpoint_loads=checkpoint_loads is not None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
