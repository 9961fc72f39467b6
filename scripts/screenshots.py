"""Refresh the README's screenshots from a real napari window (run whenever the widgets change).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py

Uses Qt's xcb platform on the virtual screen, so the canvas is drawn (offscreen gives a black canvas).
Writes docs/images/{segment,correct,finetune,compare,model}.png.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_attnseg._qt import CompareWidget, CorrectWidget, FinetuneWidget, ModelWidget, SegmentWidget

    OUT.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-attnseg")
    viewer.window._qt_window.resize(1500, 900)
    app = QApplication.instance()

    def settle(condition=lambda: True, timeout=600.0):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            app.processEvents()
            if condition():
                break
            time.sleep(0.01)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)

    def shot(name: str) -> None:
        settle()
        viewer.screenshot(str(OUT / f"{name}.png"), canvas_only=False)
        print(f"wrote {OUT / name}.png")

    viewer.open_sample("napari-attnseg", "nuclei")
    segment, correct, finetune = SegmentWidget(viewer), CorrectWidget(viewer), FinetuneWidget(viewer)
    viewer.window.add_dock_widget(segment, name="AttnSeg: Segment")
    segment.image_combo.value = "nuclei"
    segment.start()
    settle(lambda: segment.worker is None)
    viewer.layers["nuclei_labels"].contour = 1
    shot("segment")

    dock = viewer.window.add_dock_widget(correct, name="AttnSeg: Correct")
    correct.labels_combo.value = "nuclei_labels"
    checked = np.zeros(viewer.layers["nuclei"].data.shape, dtype=bool)
    checked[:256] = True
    correct._set_checked(checked)
    shot("correct")
    viewer.window.remove_dock_widget(dock)

    finetune_dock = viewer.window.add_dock_widget(finetune, name="AttnSeg: Fine-tune")
    truth = np.asarray(viewer.layers["nuclei_truth"].data)
    viewer.layers["nuclei_labels"].data = np.where(checked, truth, viewer.layers["nuclei_labels"].data)
    finetune.form.reset_choices()
    finetune.image_combo.value, finetune.labels_combo.value = "nuclei", "nuclei_labels"
    finetune.checked_combo.value = "nuclei_checked"
    finetune.seconds.value = 60
    finetune.start()
    settle(lambda: finetune.worker is None, timeout=300)
    settle(lambda: getattr(finetune, "segment_worker", None) is None)  # re-segmenting, if it improved
    shot("finetune")

    viewer.window.remove_dock_widget(finetune_dock)
    compare = CompareWidget(viewer)  # model A: the one in use (just fine-tuned); B: the bundled default
    compare_dock = viewer.window.add_dock_widget(compare, name="AttnSeg: Compare")
    compare.form.reset_choices()
    compare.image_combo.value, compare.reference_combo.value = "nuclei", "nuclei_labels"
    compare.checked_combo.value = "nuclei_checked"
    compare.start()
    settle(lambda: compare.worker is None, timeout=300)
    viewer.layers["nuclei_model_A"].contour = viewer.layers["nuclei_model_B"].contour = 1
    viewer.layers["nuclei_model_B"].visible = False
    shot("compare")

    viewer.window.remove_dock_widget(compare_dock)
    model = ModelWidget(viewer)
    viewer.window.add_dock_widget(model, name="AttnSeg: Model")
    model.show_card()
    shot("model")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
