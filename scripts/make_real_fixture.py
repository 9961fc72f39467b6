"""Rebuild tests/data/real/: a few DSB 2018 validation images for the accuracy regression tests.

    .venv/bin/python scripts/make_real_fixture.py [--data DIR]

Takes, from the validation part of the fixed split (never trained on) and sorted by id, the first
images of each type listed in PICK, plus the first image of the type kept out of training, and
writes them in the DSB 2018 folder's own layout (``<id>_image.tif``, ``<id>_labels.tif``,
``manifest.json``), zlib-compressed, so ``datasets.dsb2018`` reads the fixture as it reads the folder.
The images are CC0 (see tests/data/real/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import tifffile

from napari_attnseg.datasets import dsb2018

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "real"
PICK = {"fluorescence 256x256": 2, "fluorescence 360x360": 1, "fluorescence 520x696": 1, "H&E 256x320": 1}
HELD_OUT_IMAGES = {"20c37b1ad2f510ed"}  # the smaller file of the first two held-out images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="the DSB 2018 folder")
    args = parser.parse_args(argv)
    folder = args.data or dsb2018.default_folder()
    entries = dsb2018.read_manifest(folder)
    split = dsb2018.split(entries)
    chosen = []
    for kind, count in PICK.items():
        chosen += sorted((e for e in split.val if e.kind == kind), key=lambda e: e.id)[:count]
    chosen += [e for e in split.held_out if e.id in HELD_OUT_IMAGES]
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = []
    for entry in chosen:
        image, labels = dsb2018.load_pair(entry, folder)
        tifffile.imwrite(OUT / f"{entry.id}_image.tif", image, compression="zlib")
        tifffile.imwrite(OUT / f"{entry.id}_labels.tif", labels.astype(np.uint16), compression="zlib")
        manifest.append({"id": entry.id, "modality": entry.modality, "shape": list(entry.shape),
                         "objects": entry.objects, "part": "held out" if entry in split.held_out else "val"})
        print(f"{entry.id} {entry.kind} {entry.objects} nuclei")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
