"""The bundled model on real nuclei: a regression guard for new weights.

tests/data/real holds six DSB 2018 images the bundled model never trained on (five validation
images of four acquisition types, one of the type kept out of training). The floors are the scores
measured when the weights were installed (benchmarks/bench_accuracy.py measures the whole
validation split), less a margin for library and machine differences; weights that make real
images clearly worse fail here.
"""

from __future__ import annotations

import pytest

import napari_attnseg as nas
from napari_attnseg.config import InferConfig
from napari_attnseg.datasets import dsb2018
from napari_attnseg.inference.classic import otsu_watershed
from napari_attnseg.inference.scale import rescaled_pair
from napari_attnseg.metrics import pooled

from ..helpers import REAL_IMAGES, real_entries

# measured with the installed weights (2026-12-02: fluorescence 0.949, H&E 0.622), less 0.05;
# the synthetic-only default they replaced scored far below both
FLUORESCENCE_FLOOR = 0.90
HE_FLOOR = 0.57
SIZE_TOLERANCE = 0.05  # issue 14: rescaled images within 0.05 AP50 of their native size
CONFIG = InferConfig(device="cpu", precision="fp32")


def _segment(model, entry, factor: float = 1.0):
    image, truth = dsb2018.load_pair(entry, REAL_IMAGES)
    axis = dsb2018.channel_axis_of(entry)
    if factor != 1.0:
        image, truth = rescaled_pair(image, truth, axis, factor)
    return nas.evaluate(nas.segment(image, model, CONFIG, channel_axis=axis), truth)


@pytest.fixture(scope="module")
def model():
    return nas.load_model()


@pytest.fixture(scope="module")
def scores(model) -> dict[str, dict]:
    return {entry.id: _segment(model, entry) for entry in real_entries()}


def _pooled(scores, keep) -> dict:
    return pooled([scores[entry.id] for entry in real_entries() if keep(entry)])


def test_the_fixture_is_real_validation_data():
    entries = real_entries()
    split = dsb2018.split(dsb2018.read_manifest()) if (dsb2018.default_folder() / "manifest.json").is_file() else None
    assert len(entries) == 6 and {e.modality for e in entries} == {"fluorescence", "histology (H&E, RGB)"}
    if split is not None:  # with the folder at hand: never an image the default trained on
        assert not {e.id for e in entries} & {e.id for e in split.train}


def test_bundled_model_on_real_fluorescence_stays_above_its_floor(scores):
    result = _pooled(scores, lambda e: e.modality == "fluorescence")
    assert result["ap50"] >= FLUORESCENCE_FLOOR, result


def test_bundled_model_on_real_he_tissue_stays_above_its_floor(scores):
    result = _pooled(scores, lambda e: e.modality != "fluorescence")
    assert result["ap50"] >= HE_FLOOR, result


def test_bundled_model_beats_otsu_on_real_images(scores):
    ours = _pooled(scores, lambda e: True)
    baseline = []
    for entry in real_entries():
        image, truth = dsb2018.load_pair(entry, REAL_IMAGES)
        baseline.append(nas.evaluate(otsu_watershed(image, dsb2018.channel_axis_of(entry)), truth))
    assert ours["ap50"] > pooled(baseline)["ap50"], (ours, pooled(baseline))


@pytest.mark.parametrize("factor", [
    0.5,
    pytest.param(3.0, marks=pytest.mark.xfail(strict=True, reason=(
        "known failure (issue 14): enlarged 3x, nuclei ~60 px across come out of the network as fragments "
        "of about the model's own size, which the estimate accepts; pooled AP50 0.17 against 0.95 native"))),
])
def test_object_size_is_estimated_on_shrunk_and_enlarged_real_images(model, scores, factor):
    keep = [entry for entry in real_entries() if entry.modality == "fluorescence"]
    native = pooled([scores[entry.id] for entry in keep])["ap50"]
    rescaled = pooled([_segment(model, entry, factor) for entry in keep])["ap50"]
    assert rescaled >= native - SIZE_TOLERANCE, (factor, native, rescaled)
