"""The DSB 2018 folder's fixed split: stratified, seeded, with one type kept apart."""

import json

import numpy as np
import pytest
import tifffile

from napari_attnseg.datasets import dsb2018
from napari_attnseg.errors import InputError


def _entries():
    entries = []
    for kind, shape, count in (("fluorescence", (256, 256), 40), ("histology (H&E, RGB)", (256, 320, 3), 10),
                               ("fluorescence", (512, 640), 7), ("fluorescence", (603, 1272), 2)):
        entries += [dsb2018.Entry(f"{shape[0]}{shape[1]}-{i:03d}", kind, shape, 5) for i in range(count)]
    return entries


def test_split_is_stratified_seeded_and_keeps_the_held_out_type_apart():
    entries = _entries()
    split = dsb2018.split(entries)
    counts = split.counts()
    assert counts["fluorescence 256x256"] == {"train": 32, "val": 8, "held_out": 0}
    assert counts["H&E 256x320"] == {"train": 8, "val": 2, "held_out": 0}
    assert counts["fluorescence 512x640"] == {"train": 0, "val": 0, "held_out": 7}
    assert counts["fluorescence 603x1272"] == {"train": 2, "val": 0, "held_out": 0}  # too few to split
    again = dsb2018.split(list(reversed(entries)))
    assert again == split  # order of the manifest does not matter
    other = dsb2018.split(entries, seed=1)
    assert {e.id for e in other.val} != {e.id for e in split.val}
    assert not {e.id for e in split.train} & {e.id for e in split.val}


def test_reading_a_folder(tmp_path):
    image = np.zeros((8, 8), np.uint8)
    tifffile.imwrite(tmp_path / "a_image.tif", image)
    tifffile.imwrite(tmp_path / "a_labels.tif", np.ones((8, 8), np.uint16))
    (tmp_path / "manifest.json").write_text(json.dumps(
        [{"id": "a", "modality": "fluorescence", "shape": [8, 8], "objects": 1}]))
    entries = dsb2018.read_manifest(tmp_path)
    assert entries[0].kind == "fluorescence 8x8"
    loaded, labels = dsb2018.load_pair(entries[0], tmp_path)
    assert loaded.shape == (8, 8) and labels.dtype == np.int32 and dsb2018.channel_axis_of(entries[0]) is None
    with pytest.raises(InputError, match="manifest.json"):
        dsb2018.read_manifest(tmp_path / "missing")
