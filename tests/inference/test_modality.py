"""Fluorescence, brightfield and H&E are told apart and read with the nuclei bright."""

import numpy as np
import pytest

from napari_attnseg.config import ModelConfig
from napari_attnseg.datasets.synthetic import synthetic_nuclei
from napari_attnseg.errors import InputError
from napari_attnseg.inference.inputs import model_input
from napari_attnseg.inference.modality import background_level, detect, to_grey


@pytest.fixture
def fluorescence():
    image, labels = synthetic_nuclei((128, 128), seed=1, radius_range=(8.0, 10.0))
    return image.astype(np.float32), labels


def _he_like(labels: np.ndarray) -> np.ndarray:
    """Purple nuclei on a pale pink background, RGB uint8."""
    rgb = np.empty(labels.shape + (3,), np.float32)
    rgb[:] = (235, 215, 230)
    rgb[labels > 0] = (90, 60, 160)
    noise = np.random.default_rng(0).normal(0, 6, rgb.shape)
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)


def test_fluorescence_is_read_as_it_is(fluorescence):
    image, labels = fluorescence
    planes = image[np.newaxis]
    assert detect(planes) == "fluorescence"
    grey, used = to_grey(planes)
    assert used == "fluorescence"
    np.testing.assert_array_equal(grey[0], image)


def test_brightfield_is_inverted(fluorescence):
    image, labels = fluorescence
    brightfield = image.max() - image  # dark nuclei on a bright field
    assert background_level(brightfield) > 0.5 > background_level(image)
    grey, used = to_grey(brightfield[np.newaxis])
    assert used == "brightfield"
    assert grey[0][labels > 0].mean() > grey[0][labels == 0].mean()


def test_he_is_read_as_its_hematoxylin_channel(fluorescence):
    _image, labels = fluorescence
    rgb = np.moveaxis(_he_like(labels), -1, 0).astype(np.float32)
    assert detect(rgb) == "he"
    grey, used = to_grey(rgb)
    assert used == "he" and grey.shape == (1,) + labels.shape
    assert grey[0][labels > 0].mean() > grey[0][labels == 0].mean() + 0.05


def test_a_colour_fluorescence_composite_takes_its_brightest_channel(fluorescence):
    image, labels = fluorescence
    composite = np.stack([np.zeros_like(image), np.zeros_like(image), image])  # blue nuclei on black
    grey, used = to_grey(composite)
    assert used == "fluorescence"
    np.testing.assert_array_equal(grey[0], image)


def test_a_given_modality_wins_and_a_bad_one_is_refused(fluorescence):
    image, _labels = fluorescence
    grey, used = to_grey(image[np.newaxis], "brightfield")
    assert used == "brightfield"
    np.testing.assert_allclose(grey[0], -image)
    with pytest.raises(InputError, match="modality must be one of"):
        to_grey(image[np.newaxis], "phase")
    with pytest.raises(InputError, match="3 colour channels"):
        to_grey(image[np.newaxis], "he")


def test_a_constant_image_counts_as_fluorescence():
    assert detect(np.full((1, 32, 32), 7.0, np.float32)) == "fluorescence"


def test_models_without_the_transform_read_rgb_as_its_mean(fluorescence):
    _image, labels = fluorescence
    rgb = _he_like(labels)
    planes, used = model_input(rgb, ModelConfig(), channel_axis=-1)
    assert used is None
    np.testing.assert_allclose(planes[0], rgb.astype(np.float32).mean(axis=-1), rtol=1e-6)
    planes, used = model_input(rgb, ModelConfig(input_transform="auto"), channel_axis=-1)
    assert used == "he" and planes.shape == (1,) + labels.shape
