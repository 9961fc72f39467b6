"""The biologist's afternoon, headless: correct part of one image, fine-tune, score the rest.

The checked region is the top half of the image (its true labels stand in for the corrections); the
model is fine-tuned on it alone with `masks`, and both models are scored on the bottom half, which
training never saw.

    .venv/bin/python scripts/demo_finetune.py --stardist .eval/stardist-0.9.2-*.whl [--seconds 120]
    .venv/bin/python scripts/demo_finetune.py --image img.tif --truth truth.tif
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import napari_attnseg as nas
from napari_attnseg.config import TrainConfig
from napari_attnseg.files.images import read_image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stardist", type=Path, help="stardist wheel or folder (uses img2d/mask2d)")
    parser.add_argument("--image", type=Path)
    parser.add_argument("--truth", type=Path)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--save", type=Path, default=None, help="save the fine-tuned model here")
    args = parser.parse_args()

    if args.stardist:
        sys.path.insert(0, str(Path(__file__).parent))
        from eval_real import load_stardist_images

        arrays = load_stardist_images(args.stardist)
        image, truth = arrays["img2d.tif"], arrays["mask2d.tif"]
    elif args.image and args.truth:
        image, truth = read_image(args.image), read_image(args.truth)
    else:
        parser.error("give --stardist, or --image and --truth")

    checked = np.zeros(truth.shape, dtype=bool)
    checked[: truth.shape[0] // 2] = True
    corrected = np.where(checked, truth, 0)
    model = nas.load_model(args.model)

    started = time.perf_counter()
    tuned = nas.finetune(model, [image], [corrected], masks=[checked],
                         config=TrainConfig(max_seconds=args.seconds))
    seconds = time.perf_counter() - started
    before = nas.evaluate(nas.segment(image, model), truth, mask=~checked)
    after = nas.evaluate(nas.segment(image, tuned), truth, mask=~checked)
    print(f"fine-tuned {len(tuned.history) - 1} epochs in {seconds:.0f} s on "
          f"{int(checked.sum()):,} checked pixels")
    print(f"{'unchecked half':16s} {'AP50':>6s} {'AP75':>6s} {'Dice':>6s} {'n_pred':>6s} (n_true {after['n_true']})")
    for name, scores in (("before", before), ("after", after)):
        print(f"{name:16s} {scores['ap50']:6.3f} {scores['ap75']:6.3f} {scores['dice']:6.3f} {scores['n_pred']:6d}")
    if args.save:
        nas.save_model(tuned, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
