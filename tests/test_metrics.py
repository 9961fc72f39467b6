import numpy as np
import pytest

from napari_attnseg.errors import InputError
from napari_attnseg.metrics import evaluate, matched_pairs


def _squares(offsets, size=10, shape=(60, 60)):
    labels = np.zeros(shape, dtype=np.int32)
    for index, (y, x) in enumerate(offsets, start=1):
        labels[y: y + size, x: x + size] = index
    return labels


def test_perfect_prediction_scores_one():
    truth = _squares([(0, 0), (20, 20), (40, 5)])
    scores = evaluate(truth * 3, truth)  # ids need not agree
    assert scores["ap50"] == scores["ap75"] == scores["dice"] == 1.0
    assert scores["n_true"] == scores["n_pred"] == 3


def test_missing_and_extra_objects_count_once_each():
    truth = _squares([(0, 0), (20, 20), (40, 5)])
    prediction = _squares([(0, 0), (20, 20), (45, 45)])
    scores = evaluate(prediction, truth)
    assert scores["ap50"] == pytest.approx(2 / 4)  # TP=2, FP=1, FN=1
    assert scores["precision50"] == pytest.approx(2 / 3)
    assert scores["recall50"] == pytest.approx(2 / 3)


def test_shifted_object_fails_the_stricter_threshold():
    truth = _squares([(10, 10)])
    prediction = _squares([(10, 12)])  # IoU = 80 / 120 = 0.667
    scores = evaluate(prediction, truth)
    assert scores["ap50"] == 1.0 and scores["ap75"] == 0.0


def test_one_prediction_cannot_match_two_truths():
    truth = _squares([(0, 0), (0, 10)])
    prediction = np.where(truth > 0, 1, 0)
    assert matched_pairs(prediction, truth, 0.1) == 1


def test_mask_restricts_the_comparison():
    truth = _squares([(0, 0), (40, 40)])
    prediction = _squares([(0, 0)])
    mask = np.zeros_like(truth, dtype=bool)
    mask[:30, :30] = True
    assert evaluate(prediction, truth, mask=mask)["ap50"] == 1.0


def test_empty_images_agree():
    empty = np.zeros((5, 5), dtype=np.int32)
    assert evaluate(empty, empty)["ap50"] == 1.0


def test_shape_mismatch_is_an_input_error():
    with pytest.raises(InputError, match="shape"):
        evaluate(np.zeros((4, 4), int), np.zeros((4, 5), int))


def test_pooled_sums_matches_over_images():
    from napari_attnseg.metrics import evaluate, pooled

    truth = np.zeros((20, 40), np.int32)
    truth[2:8, 2:8], truth[2:8, 12:18], truth[12:18, 2:8] = 1, 2, 3
    perfect = evaluate(truth, truth)
    empty = evaluate(np.zeros_like(truth), truth)
    result = pooled([perfect, empty])
    assert result["ap50"] == pytest.approx(3 / 6) and result["n_true"] == 6 and result["images"] == 2
    assert result["mean_ap50"] == pytest.approx(0.5)
