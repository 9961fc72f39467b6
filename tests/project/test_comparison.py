import numpy as np
import pytest

import napari_attnseg as nas
from napari_attnseg.errors import InputError
from napari_attnseg.inference.predict import drain
from napari_attnseg.project.comparison import Comparison, compare_steps


@pytest.fixture(scope="module")
def default_model():
    return nas.load_model()


def test_each_model_is_scored_against_the_corrected_labels(default_model, tiny_model):
    image, truth = nas.synthetic_nuclei((160, 160), seed=8, radius_range=(8.0, 11.0))
    reports = []
    comparison = drain(compare_steps(image, truth, [("default", default_model), ("untrained", tiny_model)]),
                       reports.append)
    assert comparison.names == ["default", "untrained"]
    assert all(labels.shape == truth.shape for labels in comparison.labels)
    assert comparison.scores[0] == nas.evaluate(comparison.labels[0], truth)
    assert comparison.scores[0]["ap50"] > 0.6 > comparison.scores[1]["ap50"]
    assert comparison.best() == 0
    fractions = [report.fraction for report in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    table = comparison.table()
    assert "AP50" in table and "untrained" in table and f"{comparison.scores[0]['ap50']:.3f}" in table


def test_checked_regions_limit_the_scores(default_model):
    image, truth = nas.synthetic_nuclei((160, 160), seed=8, radius_range=(8.0, 11.0))
    checked = np.zeros(truth.shape, bool)
    checked[:80] = True
    wrong = truth.copy()
    wrong[80:] = 0  # the unchecked half of the "corrections" was never looked at
    comparison = drain(compare_steps(image, wrong, [("default", default_model)], checked=checked))
    labels = comparison.labels[0]
    assert comparison.scores[0] == nas.evaluate(labels, wrong, checked)
    assert comparison.scores[0]["precision50"] > nas.evaluate(labels, wrong)["precision50"]
    assert comparison.region.startswith("checked pixels (50%")


def test_labels_of_another_shape_are_refused_before_any_work(default_model):
    image, truth = nas.synthetic_nuclei((64, 64), seed=1)
    with pytest.raises(InputError, match="do not match the image"):
        next(compare_steps(image, truth[:32], [("default", default_model)]))
    with pytest.raises(InputError, match="at least one model"):
        next(compare_steps(image, truth, []))


def test_best_picks_the_first_model_on_a_tie():
    scores = [{"ap50": 0.5}, {"ap50": 0.7}, {"ap50": 0.7}]
    assert Comparison(["a", "b", "c"], [], scores).best() == 1


def test_a_model_trained_on_the_image_is_named_and_scored_on_the_unchecked_part(tiny_model):
    from napari_attnseg.files.card import array_sha256

    image, truth = nas.synthetic_nuclei((96, 96), seed=1, radius_range=(7.0, 9.0))
    checked = np.zeros(truth.shape, bool)
    checked[:48] = True
    seen = tiny_model.copy()
    seen.card["record"] = {"images": [{"name": "cells", "sha256": array_sha256(image)}]}
    result = drain(compare_steps(image, truth, [("A", seen), ("B", tiny_model)], None, None, checked))
    assert result.region.startswith("unchecked part") and "A was fine-tuned on this image" in result.warnings[0]
    plain = drain(compare_steps(image, truth, [("B", tiny_model)], None, None, checked))
    assert plain.region.startswith("checked pixels") and plain.warnings == []
