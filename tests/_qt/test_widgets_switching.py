"""Issue 5, GUI side: results reach the image they were computed for, whatever the user does meanwhile.

Switching project images, changing the picker, closing, renaming or replacing the target layer
while Segment or Fine-tune runs: the result lands on its own image (layer or project file) or
nowhere, with a notification — never on another image.
"""

import numpy as np
import pytest
import tifffile

from napari_attnseg._qt import FinetuneWidget, ImagesWidget, SegmentWidget
from napari_attnseg._qt._session import session_for
from napari_attnseg.datasets.synthetic import synthetic_nuclei
from napari_attnseg.inference.predict import drain, segment_steps
from napari_attnseg.project.folder import PROJECT_DIR, Project

from .helpers import painted, quick_training, wait_idle


def expected_labels(segment: SegmentWidget, image: np.ndarray) -> np.ndarray:
    """What the widget's model and options make of ``image``, computed without the GUI."""
    return drain(segment_steps(image, segment.session.model, segment.infer_config())).labels


def on_report(worker, action, at=(1,)) -> list:
    """Run ``action(n)`` in the main thread when the worker's n-th report (n in ``at``) arrives."""
    seen = []

    def handle(_report):
        seen.append(1)
        if len(seen) in at:
            action(len(seen))

    worker.yielded.connect(handle)
    return seen


def two_images(viewer):
    first, _ = synthetic_nuclei((96, 96), seed=21, radius_range=(7.0, 9.0))
    second, _ = synthetic_nuclei((80, 112), seed=22, radius_range=(7.0, 9.0))
    viewer.add_image(first, name="a")
    viewer.add_image(second, name="b")
    return first, second


def segment_widget(viewer, qtbot, name: str) -> SegmentWidget:
    segment = SegmentWidget(viewer)
    qtbot.addWidget(segment)
    segment.image_combo.value = name
    segment.tile_size.value = 32  # several tile batches, so there is a "meanwhile"
    return segment


@pytest.fixture
def project(viewer, qtbot, project_folder):
    images = ImagesWidget(viewer)
    qtbot.addWidget(images)
    images.timer.stop()
    images.open_folder(project_folder)
    return images


# -- project images ------------------------------------------------------------------------------
@pytest.mark.parametrize("come_back", [False, True], ids=["stays away", "comes back"])
def test_switching_project_images_repeatedly_while_segmenting(viewer, qtbot, project, project_folder,
                                                             notices, come_back):
    segment = segment_widget(viewer, qtbot, "cells_0")
    expected = expected_labels(segment, np.asarray(viewer.layers["cells_0"].data))
    segment.start()
    moves = [project.next_image, project.next_image, project.previous_image]
    if come_back:
        moves.append(project.previous_image)
    seen = on_report(segment.worker, lambda n: moves[n - 1](), at=range(1, len(moves) + 1))
    wait_idle(qtbot, segment)
    assert len(seen) >= len(moves)

    labels_file = project_folder / PROJECT_DIR / "labels" / "cells_0_labels.tif"
    np.testing.assert_array_equal(tifffile.imread(labels_file), expected)
    assert Project.open(project_folder).entries[0].status == "segmented"
    for other in ("cells_1", "cells_2"):  # shown meanwhile, never given the result
        assert not (project_folder / PROJECT_DIR / "labels" / f"{other}_labels.tif").exists()
        if f"{other}_labels" in viewer.layers:
            assert not np.any(viewer.layers[f"{other}_labels"].data)
    if come_back:
        np.testing.assert_array_equal(viewer.layers["cells_0_labels"].data, expected)
        assert notices == []
    else:
        assert "cells_1" in viewer.layers and "cells_0_labels" not in viewer.layers
        assert [level for level, _ in notices] == ["info"] and "went to the project" in notices[0][1]
        project.image_list.setCurrentRow(0)  # and it is there when the user goes back
        np.testing.assert_array_equal(viewer.layers["cells_0_labels"].data, expected)


def test_an_image_corrected_meanwhile_keeps_its_corrections(viewer, qtbot, project, project_folder, notices):
    segment = segment_widget(viewer, qtbot, "cells_0")
    segment.start()
    edited = painted(np.zeros((96, 96), dtype=np.int32))

    def correct_then_leave(_n):
        viewer.layers["cells_0_labels"].data = edited.copy()
        project.next_image()  # autosaves cells_0 as corrected

    on_report(segment.worker, correct_then_leave)
    wait_idle(qtbot, segment)
    labels_file = project_folder / PROJECT_DIR / "labels" / "cells_0_labels.tif"
    np.testing.assert_array_equal(tifffile.imread(labels_file), edited)
    assert Project.open(project_folder).entries[0].status == "corrected"
    assert [level for level, _ in notices] == ["warning"] and "corrected by hand" in notices[0][1]
    assert not np.any(viewer.layers["cells_1_labels"].data)


def test_fine_tuning_while_switching_project_images(viewer, qtbot, project, project_folder, errors,
                                                    monkeypatch):
    viewer.layers["cells_0_labels"].data = painted(np.zeros((96, 96), dtype=np.int32))
    viewer.layers["cells_0_checked"].data = np.ones((96, 96), dtype=np.uint8)
    finetune = FinetuneWidget(viewer)
    qtbot.addWidget(finetune)
    finetune.seconds.value, finetune.epochs.value, finetune.val_fraction.value = 60, 2, 0.0
    quick_training(finetune, monkeypatch)
    finetune.start()
    on_report(finetune.worker, lambda _n: project.next_image(), at=(2, 4))
    wait_idle(qtbot, finetune)
    qtbot.waitUntil(lambda: finetune.segment_worker is None, timeout=30_000)
    session = session_for(viewer)
    assert session.tuned_model is not None and session.model is session.tuned_model
    assert [entry.status for entry in Project.open(project_folder).entries] == ["training", "new", "new"]
    # The image trained on is no longer open: no re-segmentation lands on the one shown now.
    assert "cells_2" in viewer.layers
    assert not any(layer.name.endswith("_tuned_labels") for layer in viewer.layers)
    assert not np.any(viewer.layers["cells_2_labels"].data)
    assert not (project_folder / PROJECT_DIR / "labels" / "cells_1_labels.tif").exists()
    assert errors == []


# -- plain layers ----------------------------------------------------------------------------------
def test_changing_the_picker_mid_run_sends_the_result_to_the_image_it_was_computed_for(viewer, qtbot, notices):
    first, _ = two_images(viewer)
    segment = segment_widget(viewer, qtbot, "a")
    expected = expected_labels(segment, first)
    segment.start()

    def look_at_b(_n):
        segment.image_combo.value = "b"
        viewer.layers.selection.active = viewer.layers["b"]

    on_report(segment.worker, look_at_b)
    wait_idle(qtbot, segment)
    np.testing.assert_array_equal(viewer.layers["a_labels"].data, expected)
    assert "b_labels" not in viewer.layers and notices == []


def test_closing_the_target_layer_mid_run_drops_the_result_with_a_notice(viewer, qtbot, notices):
    two_images(viewer)
    segment = segment_widget(viewer, qtbot, "a")
    segment.start()
    on_report(segment.worker, lambda _n: viewer.layers.remove("a"))
    wait_idle(qtbot, segment)
    assert [layer.name for layer in viewer.layers] == ["b"]
    assert [level for level, _ in notices] == ["warning"]
    assert "a was closed" in notices[0][1] and "dropped" in notices[0][1]
    assert segment.segment_button.isEnabled()
    segment.image_combo.value = "b"  # napari and the widget still work
    segment.start()
    wait_idle(qtbot, segment)
    assert viewer.layers["b_labels"].data.shape == (80, 112)


def test_a_new_layer_with_the_closed_layers_name_does_not_get_its_result(viewer, qtbot, notices):
    two_images(viewer)
    segment = segment_widget(viewer, qtbot, "a")
    segment.start()
    impostor = np.zeros((40, 50), dtype=np.float32)

    def replace_a(_n):
        viewer.layers.remove("a")
        viewer.add_image(impostor, name="a")

    on_report(segment.worker, replace_a)
    wait_idle(qtbot, segment)
    assert "a_labels" not in viewer.layers
    assert [level for level, _ in notices] == ["warning"]


def test_a_renamed_target_layer_gets_its_result_under_its_new_name(viewer, qtbot, notices):
    first, _ = two_images(viewer)
    segment = segment_widget(viewer, qtbot, "a")
    expected = expected_labels(segment, first)
    segment.start()
    on_report(segment.worker, lambda _n: setattr(viewer.layers["a"], "name", "renamed"))
    wait_idle(qtbot, segment)
    np.testing.assert_array_equal(viewer.layers["renamed_labels"].data, expected)
    assert "a_labels" not in viewer.layers and "b_labels" not in viewer.layers and notices == []


@pytest.mark.parametrize("meanwhile", ["picker moves to b", "a is closed"])
def test_fine_tuning_re_segments_only_the_image_it_trained_on(viewer, qtbot, notices, meanwhile, monkeypatch):
    first, second = two_images(viewer)
    viewer.add_labels(painted(np.zeros(first.shape, dtype=np.int32)), name="a_labels")
    viewer.add_labels(np.ones(first.shape, dtype=np.uint8), name="a_checked")
    viewer.add_labels(painted(np.zeros(second.shape, dtype=np.int32)), name="b_labels")
    viewer.add_labels(np.ones(second.shape, dtype=np.uint8), name="b_checked")
    finetune = FinetuneWidget(viewer)
    qtbot.addWidget(finetune)
    finetune.image_combo.value, finetune.labels_combo.value, finetune.checked_combo.value = (
        "a", "a_labels", "a_checked")
    finetune.seconds.value, finetune.epochs.value, finetune.val_fraction.value = 60, 2, 0.0
    quick_training(finetune, monkeypatch)
    finetune.start()

    def act(_n):
        if meanwhile == "a is closed":
            viewer.layers.remove("a")
        else:
            finetune.image_combo.value, finetune.labels_combo.value = "b", "b_labels"

    on_report(finetune.worker, act, at=(2,))
    wait_idle(qtbot, finetune)
    qtbot.waitUntil(lambda: finetune.segment_worker is None, timeout=30_000)
    assert session_for(viewer).tuned_model is not None
    assert "b_tuned_labels" not in viewer.layers
    if meanwhile == "a is closed":
        assert "a_tuned_labels" not in viewer.layers
        assert any("closed" in message for level, message in notices if level == "info")
    else:
        assert viewer.layers["a_tuned_labels"].data.shape == first.shape
    assert not [message for level, message in notices if level == "error"]
