"""Refresh the README's screenshots from a real napari window (run whenever the widgets change).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py [--image ID]

Opens the AttnSeg dock as a user does (napari's plugin manager, so the widgets get napari's proxy of
the viewer) and clicks through the afternoon on a real nuclei image: a validation image of the DSB
2018 folder (never trained on; ``--image`` picks another, default a 520x696 fluorescence field), or
the synthetic sample when the folder is absent. Its top half gets the true labels as "corrections"
and is marked checked, then Fine-tune, Compare and Model. Uses Qt's xcb platform on the virtual
screen, so the canvas is drawn (offscreen gives a black canvas). Writes
docs/images/{segment,correct,finetune,compare,model}.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
DEFAULT_IMAGE = "fluorescence 520x696"


def real_image(image_id: str | None):
    """(image, truth, title) of a DSB 2018 validation image, or None without the folder."""
    from napari_attnseg.datasets import dsb2018

    try:
        split = dsb2018.split(dsb2018.read_manifest())
    except (OSError, ValueError):
        return None
    entries = sorted(split.val, key=lambda e: e.id)
    entry = next((e for e in entries if e.id == image_id), None) if image_id else \
        next(e for e in entries if e.kind == DEFAULT_IMAGE)
    if entry is None:
        raise SystemExit(f"{image_id} is not a validation image of the DSB 2018 split")
    image, truth = dsb2018.load_pair(entry)
    return image, truth, f"DSB 2018 validation image {entry.id} ({entry.kind})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default=None, help="a DSB 2018 validation image id")
    parser.add_argument("--seconds", type=float, default=60.0, help="the fine-tuning budget")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    import napari
    from qtpy.QtWidgets import QApplication

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

    found = real_image(args.image)
    if found is None:
        viewer.open_sample("napari-attnseg", "nuclei")
        print("the DSB 2018 folder is absent: using the synthetic sample")
    else:
        image, truth, title = found
        viewer.add_image(image, name="nuclei", rgb=image.ndim == 3)
        viewer.add_labels(truth, name="nuclei_truth", visible=False)
        print(f"using {title}")
    _, panel = viewer.window.add_plugin_dock_widget("napari-attnseg", "AttnSeg")
    segment, correct, finetune = panel.tabs["Segment"], panel.tabs["Correct"], panel.tabs["Fine-tune"]

    panel.show_tab("Segment")
    segment.image_combo.value = "nuclei"
    segment.start()
    settle(lambda: segment.worker is None)
    viewer.layers["nuclei_labels"].contour = 1
    shot("segment")

    panel.show_tab("Correct")
    correct.form.reset_choices()
    correct.labels_combo.value = "nuclei_labels"
    height, width = viewer.layers["nuclei_labels"].data.shape
    top = np.zeros((height, width), dtype=bool)
    top[: height // 2] = True
    truth = np.asarray(viewer.layers["nuclei_truth"].data)
    labels = viewer.layers["nuclei_labels"]
    labels.data = np.where(top, truth, labels.data).astype(labels.data.dtype)  # the user's corrections
    correct.draw_rectangles()  # then "check" the corrected half with a rectangle, as a user would
    viewer.layers["review"].add_rectangles(np.array([[0, 0], [height // 2 - 1, width - 1]]))
    correct.check_rectangles()
    viewer.layers.selection.active = labels
    shot("correct")

    panel.show_tab("Fine-tune")
    finetune.form.reset_choices()
    finetune.image_combo.value, finetune.labels_combo.value = "nuclei", "nuclei_labels"
    finetune.checked_combo.value = "nuclei_checked"
    finetune.seconds.value = args.seconds
    finetune.start()
    settle(lambda: finetune.worker is None, timeout=600)
    settle(lambda: getattr(finetune, "segment_worker", None) is None)  # re-segmenting, if it improved
    shot("finetune")

    panel.show_tab("Compare")  # model A: the one in use (just fine-tuned); B: the bundled default
    compare = panel.tabs["Compare"]
    compare.form.reset_choices()
    # against the true labels: the tuned model trained on the checked half, so Compare scores the
    # other half (and says so)
    compare.image_combo.value, compare.reference_combo.value = "nuclei", "nuclei_truth"
    compare.checked_combo.value = "nuclei_checked"
    compare.start()
    settle(lambda: compare.worker is None, timeout=300)
    viewer.layers["nuclei_model_A"].contour = viewer.layers["nuclei_model_B"].contour = 1
    viewer.layers["nuclei_model_B"].visible = False
    shot("compare")

    panel.show_tab("Model")
    panel.tabs["Model"].show_card()
    shot("model")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
