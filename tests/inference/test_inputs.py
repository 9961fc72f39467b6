"""Input checks and normalisation: what the network and the metrics are given."""

import numpy as np
import pytest

from napari_attnseg.errors import InputError
from napari_attnseg.inference.inputs import as_channels_first, check_labels, normalize


def test_normalize_maps_percentiles_to_unit_range():
    image = np.arange(10000, dtype=np.uint16).reshape(100, 100)[np.newaxis]
    normalised = normalize(image, (1.0, 99.0))
    assert np.percentile(normalised, 1) == pytest.approx(0.0, abs=1e-4)
    assert np.percentile(normalised, 99) == pytest.approx(1.0, abs=1e-4)


def test_constant_image_normalises_without_nan():
    assert np.isfinite(normalize(np.full((1, 8, 8), 7.0), (1.0, 99.8))).all()


@pytest.mark.parametrize(
    "image, kwargs, fragment",
    [
        (np.zeros(10), {}, "neither"),
        (np.zeros((2, 3, 8, 8)), {}, "neither"),
        (np.zeros((0, 8)), {}, "empty"),
        (np.zeros((2, 2)), {}, "too small"),
        (np.zeros((8, 8), dtype=bool), {}, "numbers"),
        (np.full((8, 8), np.nan), {}, "NaN"),
        (np.zeros((8, 8, 2)), {"channel_axis": -1}, "2"),
        (np.zeros((8, 8)), {"channel_axis": 3}, "channel_axis"),
    ],
)
def test_bad_images_get_one_clear_error(image, kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        as_channels_first(image, 1, kwargs.get("channel_axis"))


def test_rgb_image_is_reduced_for_a_grey_model():
    rgb = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    assert as_channels_first(rgb, 1, -1).shape == (1, 20, 30)


def test_label_checks():
    with pytest.raises(InputError, match="negative"):
        check_labels(np.array([[-1, 0]]), (1, 2))
    with pytest.raises(InputError, match="whole numbers"):
        check_labels(np.array([[0.5, 0]]), (1, 2))
    with pytest.raises(InputError, match="differs"):
        check_labels(np.zeros((3, 3), int), (3, 4))
    assert check_labels(np.array([[1.0, 2.0]]), (1, 2)).dtype == np.int32


def test_channel_axis_on_a_grey_image_is_explained():
    with pytest.raises(InputError, match="has no channel axis"):
        as_channels_first(np.zeros((16, 16)), 1, -1)
