"""Widget-test fixtures: a viewer whose session uses a tiny model, and recorded notifications."""

from __future__ import annotations

import pytest

from napari_attnseg.config import ModelConfig
from napari_attnseg.datasets.synthetic import synthetic_nuclei
from napari_attnseg.files.modelfile import new_model


@pytest.fixture
def viewer(make_napari_viewer):
    from napari_attnseg._qt._session import session_for

    viewer = make_napari_viewer()
    session_for(viewer)._default_model = new_model(ModelConfig(base_width=8, depth=3), name="tiny", seed=0)
    return viewer


@pytest.fixture
def errors(monkeypatch):
    """Messages the widgets sent to napari's error notifications."""
    messages: list[str] = []
    for module in _notifying_modules():
        if hasattr(module, "show_error"):
            monkeypatch.setattr(module, "show_error", messages.append)
    return messages


@pytest.fixture
def notices(monkeypatch):
    """Every notification the widgets sent, as (level, message): 'error', 'warning' or 'info'."""
    sent: list[tuple[str, str]] = []
    for module in _notifying_modules():
        for level in ("error", "warning", "info"):
            if hasattr(module, f"show_{level}"):
                monkeypatch.setattr(module, f"show_{level}", lambda message, level=level: sent.append((level, message)))
    return sent


def _notifying_modules():
    import napari_attnseg._qt._common as common
    import napari_attnseg._qt._session as session
    import napari_attnseg._qt._workers as workers
    from napari_attnseg._qt import (
        compare_widget,
        correct_widget,
        finetune_widget,
        images_widget,
        model_widget,
        segment_widget,
    )

    return (common, session, workers, compare_widget, correct_widget, finetune_widget, images_widget, model_widget,
            segment_widget)


@pytest.fixture
def nuclei_image():
    image, truth = synthetic_nuclei((160, 160), seed=3, radius_range=(8.0, 10.0))
    return image, truth


@pytest.fixture
def project_folder(tmp_path):
    import tifffile

    for index in range(3):
        image, _ = synthetic_nuclei((96, 96), seed=index, radius_range=(7.0, 9.0))
        tifffile.imwrite(tmp_path / f"cells_{index}.tif", image)
    return tmp_path
