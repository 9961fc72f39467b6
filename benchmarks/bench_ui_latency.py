"""How responsive napari stays while Segment and Fine-tune run in their workers.

A 10 ms QTimer heartbeat runs in the main thread; the longest gap between two beats is the
longest time the UI could not react. Needs a display (use xvfb-run on a headless machine):

    xvfb-run -a .venv/bin/python benchmarks/bench_ui_latency.py [--seconds 30] [--size 1024] [--json out.json]

--quick: a 256² image and a 5 s fine-tuning budget, run once (a smoke check).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _report import argument_parser, headline, write_json  # benchmarks/_report.py: this folder is on sys.path


class Heartbeat:
    """Records the gaps between ticks of a 10 ms timer on the main thread."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.gaps: list[float] = []
        self.last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self.beat)

    def beat(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.last = now

    def start(self) -> None:
        self.gaps.clear()
        self.last = time.perf_counter()
        self.timer.start()

    def mark(self) -> None:
        """Note the moment the worker finished: later gaps belong to handing results to napari."""
        self.marked = len(self.gaps)

    def stop(self) -> dict:
        self.timer.stop()
        gaps = np.asarray(self.gaps) * 1000
        during = gaps[: getattr(self, "marked", len(gaps))]
        after = gaps[len(during):]
        return {"beats": len(gaps), "max_ms": float(during.max()), "p99_ms": float(np.percentile(during, 99)),
                "median_ms": float(np.median(during)), "handoff_max_ms": float(after.max()) if after.size else 0.0}


def wait_until(app, condition, timeout: float, linger: float = 0.5) -> None:
    """Process events until ``condition``, then ``linger`` seconds more, so the heartbeat also
    covers what the result handlers do in the main thread."""
    deadline = time.perf_counter() + timeout
    while not condition() and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.002)
    end = time.perf_counter() + linger
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="fine-tuning budget")
    parser.add_argument("--size", type=int, default=1024, help="image edge for segmentation")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.size = 5.0, 256  # 5 s: the widget's smallest budget

    import napari
    from qtpy.QtWidgets import QApplication

    import napari_attnseg as nas
    from napari_attnseg._qt import FinetuneWidget, SegmentWidget

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    image, truth = nas.synthetic_nuclei((args.size, args.size), seed=1, radius_range=(8.0, 12.0))
    viewer.add_image(image, name="cells")
    segment, finetune = SegmentWidget(viewer), FinetuneWidget(viewer)
    viewer.window.add_dock_widget(segment)
    viewer.window.add_dock_widget(finetune)
    segment.image_combo.value = "cells"
    heartbeat = Heartbeat()
    rows = []

    nas.segment(image[:64, :64])  # load the model and warm up torch outside the measurement
    heartbeat.start()
    segment.start()
    segment.worker.finished.connect(heartbeat.mark)
    wait_until(app, lambda: segment.worker is None, 600)
    rows.append(("Segment", f"{args.size}x{args.size}", heartbeat.stop()))

    viewer.add_labels(truth.astype(np.int32), name="cells_labels")
    viewer.add_labels(np.ones(truth.shape, np.uint8), name="cells_checked")
    finetune.form.reset_choices()
    finetune.image_combo.value, finetune.labels_combo.value = "cells", "cells_labels"
    finetune.checked_combo.value = "cells_checked"
    finetune.seconds.value = int(args.seconds)
    # Twice: the first run in a process pays PyTorch's one-time start-up of its training machinery.
    for run in ("first",) if args.quick else ("first", "second"):
        heartbeat.start()
        finetune.start()
        finetune.worker.finished.connect(heartbeat.mark)
        # a fine-tune that beats the model in use re-segments into cells_tuned_labels; one that does
        # not keeps the model and adds no layer
        wait_until(app, lambda: finetune.worker is None, args.seconds + 300)
        wait_until(app, lambda: "cells_tuned_labels" in viewer.layers, 5)
        rows.append((f"Fine-tune ({run})", f"{int(args.seconds)} s budget", heartbeat.stop()))
        if "cells_tuned_labels" in viewer.layers:
            viewer.layers.remove("cells_tuned_labels")

    print("gaps between 10 ms heartbeats while the worker runs, and the longest one after it, while")
    print("the result becomes napari layers")
    print(f"{'job':20s} {'size':>14s} {'beats':>6s} {'median ms':>10s} {'p99 ms':>8s} {'max gap ms':>11s} "
          f"{'hand-off max ms':>16s}")
    for job, size, stats in rows:
        print(f"{job:20s} {size:>14s} {stats['beats']:6d} {stats['median_ms']:10.1f} "
              f"{stats['p99_ms']:8.1f} {stats['max_ms']:11.1f} {stats['handoff_max_ms']:16.1f}")
    table = [{"job": job, "size": size, **stats} for job, size, stats in rows]
    headlines = [headline(f"{job}, {size}", "max UI gap ms", round(stats["max_ms"], 1)) for job, size, stats in rows]
    write_json(args.json, "ui_latency", table, headlines, args.quick)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
