"""Shared fixtures: tiny models and synthetic images keep engine tests fast."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attnseg.config import ModelConfig
from napari_attnseg.datasets.synthetic import synthetic_nuclei

TINY = ModelConfig(base_width=8, depth=3)


@pytest.fixture
def tiny_model():
    from napari_attnseg.files.modelfile import new_model

    return new_model(TINY, name="tiny", seed=0)


@pytest.fixture(scope="session")
def nuclei_pair() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_nuclei((192, 192), seed=11, radius_range=(7.0, 10.0))
