"""The synthetic nuclei generator."""

import numpy as np

from napari_attnseg.datasets.synthetic import synthetic_nuclei


def test_synthetic_images_are_reproducible_and_labelled():
    first_image, first_labels = synthetic_nuclei((96, 96), seed=3)
    second_image, second_labels = synthetic_nuclei((96, 96), seed=3)
    np.testing.assert_array_equal(first_image, second_image)
    np.testing.assert_array_equal(first_labels, second_labels)
    assert first_image.dtype == np.uint16 and first_labels.max() > 0
    inside = first_image[first_labels > 0].mean()
    outside = first_image[first_labels == 0].mean()
    assert inside > outside
