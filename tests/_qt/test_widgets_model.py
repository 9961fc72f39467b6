"""The Model dock: the card of the model in use; open, save and export models."""

import numpy as np
import pytest

import napari_attnseg as nas
from napari_attnseg._qt import ModelWidget
from napari_attnseg._qt._session import session_for
from napari_attnseg._qt.model_widget import SAVE_FORMATS

from .helpers import wait_idle


@pytest.fixture
def model_dock(viewer, qtbot):
    dock = ModelWidget(viewer)
    qtbot.addWidget(dock)
    return dock


def test_the_card_follows_the_model_in_use(viewer, model_dock):
    assert model_dock.card.toPlainText() == ""  # nothing loaded (or imported) until asked
    model_dock.show_card()
    assert "name:        tiny" in model_dock.card.toPlainText()
    session_for(viewer).set_model(nas.load_model(), "bundled default")
    assert "attnseg-default-nuclei" in model_dock.card.toPlainText()
    assert "504,326 parameters" in model_dock.card.toPlainText()


def test_save_then_open_round_trips_the_model_in_use(viewer, qtbot, model_dock, tmp_path):
    session = session_for(viewer)
    model_dock.save_format.value = "napari-attnseg model (.safetensors)"
    model_dock.save_file.value = tmp_path / "mine"
    model_dock.save()
    wait_idle(qtbot, model_dock)
    saved = tmp_path / "mine.safetensors"
    assert "saved" in model_dock.status.text() and saved.is_file()
    model_dock.open_file.value = saved
    model_dock.open_model()
    wait_idle(qtbot, model_dock)
    assert session.model_label == "tiny"  # one name for the model: its card's
    assert "from mine.safetensors" in model_dock.status.text()
    original, reopened = session.default_model.network.state_dict(), session.model.network.state_dict()
    assert all(np.array_equal(original[key].numpy(), reopened[key].numpy()) for key in original)


def test_a_file_that_is_not_a_model_is_one_notification(viewer, qtbot, model_dock, tmp_path, errors):
    bad = tmp_path / "notes.safetensors"
    bad.write_text("not a model")
    model_dock.open_file.value = bad
    model_dock.open_model()
    wait_idle(qtbot, model_dock)
    assert model_dock.status.text() == errors[0]  # the status says what the notification said
    model_dock.save_file.value = tmp_path  # a folder, not a file
    model_dock.save()
    assert len(errors) == 2
    assert errors[0].startswith("Opening notes.safetensors: notes.safetensors")
    assert "not a napari-attnseg model" in errors[0]
    assert errors[1] == "Model: choose a file to save to"
    assert session_for(viewer).model_label == "bundled default"


def test_choosing_a_format_changes_the_suffix(model_dock, tmp_path):
    model_dock.save_file.value = tmp_path / "shared.safetensors"
    model_dock.save_format.value = "ONNX (.onnx)"
    assert str(model_dock.save_file.value).endswith("shared.onnx")
    assert set(fmt for fmt, _suffix in SAVE_FORMATS.values()) == {"safetensors", "onnx", "torchscript", "bioimageio"}


def test_export_to_onnx_from_the_dock_then_open_it(viewer, qtbot, model_dock, tmp_path, errors):
    pytest.importorskip("onnxscript", reason="ONNX export needs the 'export' extra")
    model_dock.save_format.value = "ONNX (.onnx)"
    model_dock.save_file.value = tmp_path / "shared"
    model_dock.save()
    wait_idle(qtbot, model_dock, timeout=120_000)
    assert errors == [] and "match torch's" in model_dock.status.text()
    model_dock.open_file.value = tmp_path / "shared.onnx"
    model_dock.open_model()
    wait_idle(qtbot, model_dock)
    session = session_for(viewer)
    assert session.model_label == "tiny" and "from shared.onnx" in model_dock.status.text()
    assert "runs from:   onnx file" in session.model.summary()


def test_segment_uses_the_model_opened_here(viewer, qtbot, model_dock, nuclei_image, tmp_path):
    from .helpers import segment_layer

    image, truth = nuclei_image
    nas.save_model(nas.load_model(), tmp_path / "trained.safetensors")  # vs the session's tiny untrained one
    model_dock.open_file.value = tmp_path / "trained.safetensors"
    model_dock.open_model()
    wait_idle(qtbot, model_dock)
    segment = segment_layer(viewer, qtbot, image)  # its model picker left at "Model in use"
    assert "attnseg-default-nuclei" in segment.status.text()
    labels = np.asarray(viewer.layers["cells_labels"].data).astype(np.int32)
    assert nas.evaluate(labels, truth)["ap50"] > 0.6
