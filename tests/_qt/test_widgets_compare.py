"""The Compare dock: two models on one image, scored against the corrected labels."""

import numpy as np

import napari_attnseg as nas
from napari_attnseg._qt import CompareWidget
from napari_attnseg._qt._model_picker import MODEL_DEFAULT, MODEL_FILE, MODEL_TUNED
from napari_attnseg._qt._session import session_for

from .helpers import wait_idle


def _compare_widget(viewer, qtbot, image, truth, checked=None):
    viewer.add_image(image, name="cells")
    viewer.add_labels(truth.astype(np.int32), name="cells_labels")
    if checked is not None:
        viewer.add_labels(checked.astype(np.uint8), name="cells_checked")
    compare = CompareWidget(viewer)
    qtbot.addWidget(compare)
    compare.image_combo.value = "cells"
    return compare


def test_both_models_get_a_layer_and_scores_and_the_better_one_can_be_kept(viewer, qtbot, nuclei_image):
    image, truth = nuclei_image
    session = session_for(viewer)
    session.tuned_model = nas.load_model()  # a trained model against the tiny untrained default
    compare = _compare_widget(viewer, qtbot, image, truth)
    assert compare.reference_combo.value == "cells_labels"  # follows the image
    compare.pickers[0].combo.value, compare.pickers[1].combo.value = MODEL_TUNED, MODEL_DEFAULT
    compare.start()
    wait_idle(qtbot, compare)

    layer_a, layer_b = viewer.layers["cells_model_A"], viewer.layers["cells_model_B"]
    assert layer_a.data.shape == layer_b.data.shape == truth.shape
    expected_a = nas.evaluate(np.asarray(layer_a.data).astype(np.int32), truth)
    assert compare.table.verticalHeaderItem(0).text() == "AP50"
    assert compare.table.item(0, 0).text() == f"{expected_a['ap50']:.3f}"
    assert compare.table.item(0, 0).font().bold() and not compare.table.item(0, 1).font().bold()
    assert "A: " in compare.status.text() and "scores higher" in compare.status.text()

    compare.use(0)
    assert session.model is session.tuned_model


def test_checked_regions_are_picked_up_and_limit_the_scores(viewer, qtbot, nuclei_image):
    image, truth = nuclei_image
    checked = np.zeros(truth.shape, bool)
    checked[: truth.shape[0] // 2] = True
    compare = _compare_widget(viewer, qtbot, image, truth, checked)
    assert compare.checked_combo.value == "cells_checked"
    compare.pickers[0].combo.value = compare.pickers[1].combo.value = MODEL_DEFAULT
    compare.start()
    wait_idle(qtbot, compare)
    assert "checked pixels (50%" in compare.status.text()
    labels = np.asarray(viewer.layers["cells_model_A"].data).astype(np.int32)
    expected = nas.evaluate(labels, truth, checked)
    assert compare.table.item(0, 1).text() == f"{expected['ap50']:.3f}"


def test_a_missing_model_is_one_notification_and_nothing_runs(viewer, qtbot, nuclei_image, errors):
    image, truth = nuclei_image
    compare = _compare_widget(viewer, qtbot, image, truth)
    compare.pickers[0].combo.value = MODEL_TUNED  # nothing fine-tuned yet
    compare.start()
    compare.pickers[0].combo.value = MODEL_DEFAULT
    compare.pickers[1].combo.value = MODEL_FILE  # and no file chosen
    compare.start()
    assert errors == ["Compare: no model has been fine-tuned in this session yet",
                      "Compare: choose a model file first"]
    assert compare.worker is None and compare.compare_button.isEnabled()
    assert "cells_model_A" not in viewer.layers


def test_labels_of_another_shape_are_a_notification(viewer, qtbot, nuclei_image, errors):
    image, _truth = nuclei_image
    viewer.add_image(image, name="cells")
    viewer.add_labels(np.zeros((20, 20), np.int32), name="cells_labels")
    compare = CompareWidget(viewer)
    qtbot.addWidget(compare)
    compare.pickers[0].combo.value = compare.pickers[1].combo.value = MODEL_DEFAULT
    compare.start()
    wait_idle(qtbot, compare)
    assert len(errors) == 1 and "do not match the image" in errors[0]
    assert compare.compare_button.isEnabled()
