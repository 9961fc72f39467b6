"""Load: 200 images through the CLI's batch function in one process, every file written, memory flat."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import tifffile

from napari_attnseg.config import InferConfig
from napari_attnseg.datasets.synthetic import synthetic_nuclei
from napari_attnseg.inference.batch import expand_images, plan_outputs, segment_files_steps

N_IMAGES = 200
RSS_GROWTH_LIMIT_MB = 50


def rss_mb() -> float:
    """Resident memory of this process now, from /proc/self/statm (no psutil)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_200_images_in_one_process_write_every_file_with_flat_memory(tmp_path, tiny_model):
    source = tmp_path / "images"
    source.mkdir()
    base, _ = synthetic_nuclei((64, 64), seed=0, radius_range=(5.0, 8.0))
    for index in range(N_IMAGES):
        tifffile.imwrite(source / f"img{index:03d}.tif", np.roll(base, index, axis=index % 2))
    images = expand_images([source])
    outputs = plan_outputs(images, tmp_path / "labels", overwrite=False)
    rss_at = {}
    steps = segment_files_steps(images, outputs, tiny_model, InferConfig(device="cpu"))
    for progress in steps:
        if progress.result is not None and progress.index + 1 in (10, N_IMAGES):
            rss_at[progress.index + 1] = rss_mb()
    written = sorted(path.name for path in (tmp_path / "labels").iterdir())
    assert written == [f"img{index:03d}_labels.tif" for index in range(N_IMAGES)]
    assert tifffile.imread(outputs[-1]).shape == (64, 64)
    growth = rss_at[N_IMAGES] - rss_at[10]
    assert growth < RSS_GROWTH_LIMIT_MB, f"RSS grew {growth:.1f} MB from image 10 to {N_IMAGES}: {rss_at}"
