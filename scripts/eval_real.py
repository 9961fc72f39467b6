"""Score a model on real fluorescence nuclei with ground truth that a package ships.

The data: the two test images that the `stardist` package ships (`stardist/data/images`):
img2d.tif, a 512x512 field of DSB 2018 nuclei with mask2d.tif, and img3d.tif, a 31x61x57 nuclei
stack with mask3d.tif. Nothing here downloads; fetch the wheel once from PyPI yourself:

    pip download stardist==0.9.2 --no-deps -d .eval
    .venv/bin/python scripts/eval_real.py .eval/stardist-0.9.2-*.whl [--model my.model]

The argument may be the wheel or a folder holding the four .tif files.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import tifffile

import napari_attnseg as nas
from napari_attnseg.config import InferConfig

FILES = ("img2d.tif", "mask2d.tif", "img3d.tif", "mask3d.tif")


def load_stardist_images(source: Path) -> dict[str, np.ndarray]:
    """The four test arrays, from a stardist wheel or a folder."""
    if source.is_dir():
        return {name: tifffile.imread(source / name) for name in FILES}
    with zipfile.ZipFile(source) as wheel:
        return {name: tifffile.imread(io.BytesIO(wheel.read(f"stardist/data/images/{name}"))) for name in FILES}


def evaluate_model(model, arrays: dict[str, np.ndarray], config: InferConfig) -> dict[str, dict]:
    results = {}
    started = time.perf_counter()
    labels = nas.segment(arrays["img2d.tif"], model, config)
    results["dsb2018_img2d"] = nas.evaluate(labels, arrays["mask2d.tif"]) | {
        "seconds": round(time.perf_counter() - started, 2)}
    stack, truth = arrays["img3d.tif"], arrays["mask3d.tif"]
    # 2D scores per plane (the model is 2D), then the stitched 3D objects against the 3D truth.
    stacked = nas.segment(stack, model, config)
    per_plane = [nas.evaluate(plane_pred, plane_true) for plane_pred, plane_true in zip(stacked, truth)]
    results["stack_img3d_planes"] = {key: float(np.mean([s[key] for s in per_plane]))
                                     for key in per_plane[0]}
    results["stack_img3d_3d"] = nas.evaluate(stacked, truth)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="stardist wheel or folder with the four .tif files")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: bundled)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    model = nas.load_model(args.model)
    results = evaluate_model(model, load_stardist_images(args.source), InferConfig(device="cpu"))
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"model: {model.name}")
    header = ("data", "AP50", "AP75", "Dice", "prec", "recall", "n_true", "n_pred")
    print(f"{header[0]:22s} " + " ".join(f"{name:>6s}" for name in header[1:]))
    for name, scores in results.items():
        print(f"{name:22s} {scores['ap50']:6.3f} {scores['ap75']:6.3f} {scores['dice']:6.3f} "
              f"{scores['precision50']:6.3f} {scores['recall50']:6.3f} {scores['n_true']:7.1f} {scores['n_pred']:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
