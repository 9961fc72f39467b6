"""Object size: measuring it, the rescaling factor, and resizing both ways."""

import numpy as np
import pytest

import napari_attnseg as nas
from napari_attnseg.config import InferConfig, ModelConfig
from napari_attnseg.inference.predict import predict
from napari_attnseg.inference.scale import (
    factor_for,
    interior_diameters,
    median_diameter,
    next_factor,
    resize,
    resize_labels,
)


def _discs(shape, radius, centres):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for index, (y, x) in enumerate(centres, start=1):
        labels[(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = index
    return labels


def test_median_diameter_is_the_equivalent_circle():
    labels = _discs((100, 100), 10, [(25, 25), (25, 75), (75, 50)])
    assert median_diameter(labels) == pytest.approx(20.0, rel=0.05)
    assert median_diameter(np.zeros((5, 5), np.int32)) is None


def test_objects_cut_by_the_edge_are_not_measured():
    labels = _discs((60, 60), 8, [(30, 30), (2, 30)])
    assert len(interior_diameters(labels)) == 1


def test_factor_is_one_within_tolerance_and_clipped_outside():
    assert factor_for(17.0, 18.0) == 1.0
    assert factor_for(17.0, 34.0) == pytest.approx(0.5)
    assert factor_for(17.0, 1000.0) == pytest.approx(1 / 8)
    assert factor_for(None, 30.0) == 1.0 and factor_for(17.0, None) == 1.0


def test_next_factor_agrees_or_moves_at_most_fourfold():
    found, following = next_factor(17.0, 1.0, np.array([17.0, 18.0, 16.0]))
    assert found == pytest.approx(17.0) and following is None
    found, following = next_factor(17.0, 1.0, np.array([100.0, 100.0, 100.0]))
    assert found == pytest.approx(100.0) and following == pytest.approx(0.25)
    assert next_factor(17.0, 1.0, np.array([5.0])) == (None, None)


def test_resize_keeps_probabilities_and_labels_keep_ids():
    probabilities = np.random.default_rng(0).dirichlet(np.ones(3), size=(40, 50)).transpose(2, 0, 1)
    for shape in ((80, 100), (13, 17)):
        resized = resize(probabilities.astype(np.float32), shape)
        assert resized.shape == (3,) + shape
        np.testing.assert_allclose(resized.sum(axis=0), 1.0, atol=1e-5)
    labels = _discs((40, 40), 6, [(20, 20)])
    assert set(np.unique(resize_labels(labels, (97, 61)))) == {0, 1}


def test_a_model_with_a_diameter_segments_on_the_images_own_grid():
    model = nas.new_model(ModelConfig(base_width=4, depth=2, diameter=17.0), seed=0)
    image = np.random.default_rng(1).random((96, 80)).astype(np.float32)
    prediction = predict(image, model, InferConfig(device="cpu", diameter=34.0))
    assert prediction.scale == pytest.approx(0.5) and prediction.diameter == 34.0
    assert prediction.probabilities.shape == (3, 96, 80)
    assert nas.segment(image, model, InferConfig(device="cpu")).shape == (96, 80)  # estimated: any answer


def test_old_models_are_not_rescaled():
    model = nas.new_model(ModelConfig(base_width=4, depth=2), seed=0)
    prediction = predict(np.zeros((64, 64), np.float32), model, InferConfig(device="cpu", diameter=5.0))
    assert prediction.scale == 1.0 and prediction.diameter == 5.0
