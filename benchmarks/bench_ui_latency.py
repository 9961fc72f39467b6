"""How responsive napari stays while Segment and Fine-tune run in their workers.

The dock is opened as users open it, through napari's plugin manager (the Plugins menu's path:
its widgets get a proxy of the viewer), and driven by its buttons. A 10 ms QTimer heartbeat runs
in the main thread; the longest gap between two beats is the longest time the UI could not react.
The first row starts right after the dock opened (it imports torch as it opens, timed apart) and
Segment is clicked at once. Needs a display (xvfb-run headless):

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

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    image, truth = nas.synthetic_nuclei((args.size, args.size), seed=1, radius_range=(8.0, 12.0))
    viewer.add_image(image, name="cells")
    wait_until(app, lambda: True, 0, linger=1.0)  # let napari finish drawing before the first beat
    heartbeat = Heartbeat()
    rows = []

    started = time.perf_counter()
    _dock, panel = viewer.window.add_plugin_dock_widget("napari-attnseg", "AttnSeg")
    opened = time.perf_counter() - started
    segment, finetune = panel.tabs["Segment"], panel.tabs["Fine-tune"]
    segment.image_combo.value = "cells"
    heartbeat.start()
    started = time.perf_counter()
    segment.segment_button.click()
    clicked = time.perf_counter() - started
    segment.worker.finished.connect(heartbeat.mark)
    wait_until(app, lambda: segment.worker is None, 600)
    first = heartbeat.stop()
    print(f"opening the dock took {opened * 1000:.0f} ms of the main thread; the first Segment click "
          f"{clicked * 1000:.0f} ms")
    rows.append(("Segment (first, just after the dock opened)", f"{args.size}x{args.size}", first))

    heartbeat.start()
    segment.segment_button.click()
    segment.worker.finished.connect(heartbeat.mark)
    wait_until(app, lambda: segment.worker is None, 600)
    rows.append(("Segment", f"{args.size}x{args.size}", heartbeat.stop()))

    viewer.layers["cells_labels"].data = truth.astype(np.int32)
    panel.tabs["Correct"].check_all()
    finetune.form.reset_choices()
    finetune.image_combo.value, finetune.labels_combo.value = "cells", "cells_labels"
    finetune.checked_combo.value = "cells_checked"
    finetune.seconds.value = int(args.seconds)
    # Twice: the first run of a session once paid PyTorch's set-up of its training machinery; the
    # dock now warms that up in the background when it opens.
    for run in ("first",) if args.quick else ("first", "second"):
        heartbeat.start()
        finetune.start_button.click()
        finetune.worker.finished.connect(heartbeat.mark)
        # a fine-tune that beats the model in use re-segments into cells_tuned_labels; one that does
        # not keeps the model and adds no layer
        wait_until(app, lambda: finetune.worker is None, args.seconds + 300)
        wait_until(app, lambda: finetune.segment_worker is None, 60)
        rows.append((f"Fine-tune ({run})", f"{int(args.seconds)} s budget", heartbeat.stop()))
        if "cells_tuned_labels" in viewer.layers:
            viewer.layers.remove("cells_tuned_labels")

    print("gaps between 10 ms heartbeats while the worker runs, and the longest one after it, while")
    print("the result becomes napari layers")
    print(f"{'job':42s} {'size':>14s} {'beats':>6s} {'median ms':>10s} {'p99 ms':>8s} {'max gap ms':>11s} "
          f"{'hand-off max ms':>16s}")
    for job, size, stats in rows:
        print(f"{job:42s} {size:>14s} {stats['beats']:6d} {stats['median_ms']:10.1f} "
              f"{stats['p99_ms']:8.1f} {stats['max_ms']:11.1f} {stats['handoff_max_ms']:16.1f}")
    table = [{"job": job, "size": size, **stats} for job, size, stats in rows]
    headlines = [headline(f"{job}, {size}", "max UI gap ms", round(stats["max_ms"], 1)) for job, size, stats in rows]
    write_json(args.json, "ui_latency", table, headlines, args.quick, dock_open_ms=round(opened * 1000),
               first_click_ms=round(clicked * 1000))
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
