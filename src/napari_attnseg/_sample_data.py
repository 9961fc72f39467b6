"""npe2 sample data: a synthetic fluorescence-nuclei image and its true labels."""

from __future__ import annotations

from .datasets.synthetic import synthetic_nuclei

SAMPLE_SEED = 7


def nuclei_sample() -> list[tuple]:
    """A 512x512 synthetic nuclei image (uint16) with its ground-truth labels."""
    image, labels = synthetic_nuclei((512, 512), seed=SAMPLE_SEED, radius_range=(9.0, 14.0))
    return [
        (image, {"name": "nuclei"}, "image"),
        (labels, {"name": "nuclei_truth", "visible": False}, "labels"),
    ]
