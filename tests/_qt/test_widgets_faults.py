"""Issue 5, GUI side: a full disk or read-only project folder, bad input, crash recovery.

Nothing the user edited may be lost, napari stays usable, and a fault is reported once — not once
per 30-s autosave tick.
"""

import errno
import shutil

import numpy as np
import pytest
import tifffile

from napari_attnseg._qt import FinetuneWidget, ImagesWidget, SegmentWidget
from napari_attnseg._qt._session import session_for
from napari_attnseg.project.folder import PROJECT_DIR, Project

from .helpers import DiskFault, check_project_files, leftovers, painted, wait_idle

FAULTS = {"disk full": errno.ENOSPC, "read-only": errno.EROFS}
REASONS = {errno.ENOSPC: "disk is full", errno.EROFS: "read-only"}


def open_project(viewer, qtbot, folder) -> ImagesWidget:
    images = ImagesWidget(viewer)
    qtbot.addWidget(images)
    images.open_folder(folder)
    return images


def levels(notices, level: str) -> list[str]:
    return [message for kind, message in notices if kind == level]


# -- 3. disk full / read-only folder ---------------------------------------------------------------
@pytest.mark.parametrize("code", FAULTS.values(), ids=FAULTS.keys())
def test_failing_autosave_is_reported_once_and_the_edits_are_written_when_it_clears(
        viewer, qtbot, project_folder, notices, monkeypatch, code):
    images = open_project(viewer, qtbot, project_folder)
    session = session_for(viewer)
    labels_file = project_folder / PROJECT_DIR / "labels" / "cells_0_labels.tif"
    checked_file = project_folder / PROJECT_DIR / "checked" / "cells_0_checked.tif"
    labels_layer, checked_layer = viewer.layers["cells_0_labels"], viewer.layers["cells_0_checked"]
    fault = DiskFault(monkeypatch, code)
    fault.active = True

    ticks = 20  # ten minutes of 30-s autosaves, with the user painting between them
    for tick in range(ticks):
        labels_layer.data_setitem((np.array([tick + 2]), np.array([5])), tick + 1)
        checked_layer.data_setitem((np.array([tick + 2]), np.array([5])), 1)
        images.timer.timeout.emit()
    expected_labels = np.asarray(labels_layer.data).copy()
    assert [expected_labels[tick + 2, 5] for tick in range(ticks)] == list(range(1, ticks + 1))

    errors = levels(notices, "error")
    assert len(errors) == 1, errors
    assert "cells_0" in errors[0] and REASONS[code] in errors[0]
    assert fault.failures == ticks
    assert "NOT SAVED" in images.save_label.text()
    # The edits are on screen and in the session; nothing (not even a temporary file) reached the disk.
    np.testing.assert_array_equal(session.pending_labels(session.current_entry).labels, expected_labels)
    assert not labels_file.exists() and not checked_file.exists()
    assert leftovers(project_folder) == []

    # Switching images would drop the edits from the screen: refused, said (the user clicked), list kept.
    images.next_image()
    assert "cells_0_labels" in viewer.layers and "cells_1" not in viewer.layers
    assert images.image_list.currentRow() == 0
    assert len(levels(notices, "error")) == 2

    fault.active = False
    images.timer.timeout.emit()
    np.testing.assert_array_equal(tifffile.imread(labels_file), expected_labels)
    saved_checked = tifffile.imread(checked_file) > 0
    assert saved_checked[2:ticks + 2, 5].all() and saved_checked.sum() == ticks
    assert Project.open(project_folder).entries[0].status == "corrected"
    assert session.unsaved == {} and session.save_fault is None
    assert any("works again" in message for message in levels(notices, "info"))
    assert images.save_label.text() == "saved cells_0.tif"
    images.timer.timeout.emit()
    assert len(levels(notices, "error")) == 2
    check_project_files(project_folder)


def test_a_result_for_a_closed_image_waits_in_the_session_until_the_disk_has_room(
        viewer, qtbot, project_folder, notices, monkeypatch):
    images = open_project(viewer, qtbot, project_folder)
    session = session_for(viewer)
    segment = SegmentWidget(viewer)
    qtbot.addWidget(segment)
    segment.image_combo.value = "cells_0"
    fault = DiskFault(monkeypatch, errno.ENOSPC)
    fault.active = True
    segment.start()
    images.next_image()  # cells_0 leaves the screen while it is segmented
    wait_idle(qtbot, segment)
    assert "cells_0_labels" not in viewer.layers and "cells_1_labels" in viewer.layers
    assert not np.any(viewer.layers["cells_1_labels"].data)  # nothing landed on the image now shown
    labels_file = project_folder / PROJECT_DIR / "labels" / "cells_0_labels.tif"
    assert not labels_file.exists() and fault.failures == 1
    assert len(levels(notices, "error")) == 1
    kept = session.unsaved[str(labels_file.resolve())].labels
    assert kept.max() > 0

    images.timer.timeout.emit()  # still full: retried, not re-announced
    assert fault.failures == 2 and len(levels(notices, "error")) == 1
    # Going back to cells_0 shows the result the disk could not take yet.
    images.previous_image()
    np.testing.assert_array_equal(viewer.layers["cells_0_labels"].data, kept)

    fault.active = False
    images.timer.timeout.emit()
    np.testing.assert_array_equal(tifffile.imread(labels_file), kept)
    assert session.unsaved == {}
    assert Project.open(project_folder).entries[0].status == "segmented"
    check_project_files(project_folder)


def test_a_fine_tuned_model_the_disk_cannot_take_stays_in_use_and_is_saved_later(
        viewer, qtbot, project_folder, notices, monkeypatch):
    from napari_attnseg.files.loading import load_model

    open_project(viewer, qtbot, project_folder)
    session = session_for(viewer)
    finetune = FinetuneWidget(viewer)
    qtbot.addWidget(finetune)
    viewer.layers["cells_0_checked"].data = np.ones((96, 96), dtype=np.uint8)
    viewer.layers["cells_0_labels"].data = painted(np.zeros((96, 96), dtype=np.int32))
    finetune.seconds.value, finetune.epochs.value = 5, 1
    fault = DiskFault(monkeypatch, errno.EROFS)
    finetune.start()  # autosaves the shown image first, while the disk still works
    fault.active = True
    wait_idle(qtbot, finetune)
    tuned = session.tuned_model
    assert tuned is not None and session.model is tuned  # in use although not written
    assert session.unsaved_model is tuned and fault.failures >= 1
    assert len(levels(notices, "error")) == 1 and "read-only" in levels(notices, "error")[0]
    assert list((project_folder / PROJECT_DIR).rglob("*.model")) == []
    assert leftovers(project_folder) == []
    qtbot.waitUntil(lambda: finetune.segment_worker is None, timeout=30_000)

    fault.active = False
    session.autosave()
    project = Project.open(project_folder)
    assert project.model_file is not None
    reloaded = load_model(project_folder / PROJECT_DIR / project.model_file)
    for key, tensor in tuned.network.state_dict().items():
        assert np.array_equal(reloaded.network.state_dict()[key].numpy(), tensor.numpy()), key
    assert project.entries[0].status == "training"
    check_project_files(project_folder)


# -- 5. crash recovery ----------------------------------------------------------------------------
def test_after_a_crash_the_last_autosave_comes_back(viewer, qtbot, project_folder, make_napari_viewer,
                                                   tmp_path_factory):
    from napari_attnseg.config import ModelConfig
    from napari_attnseg.files.modelfile import new_model

    images = open_project(viewer, qtbot, project_folder)
    tuned = new_model(ModelConfig(base_width=8, depth=3), name="finetuned-before-crash", seed=5)
    assert session_for(viewer).save_model(tuned) == "finetuned-before-crash.model"
    first = painted(np.asarray(viewer.layers["cells_0_labels"].data))
    viewer.layers["cells_0_labels"].data = first
    viewer.layers["cells_0_checked"].data_setitem((np.array([1, 2]), np.array([1, 2])), 1)
    images.next_image()  # autosaves cells_0 as corrected
    second = np.asarray(viewer.layers["cells_1_labels"].data).copy()
    second[40:50, 40:50] = 9
    viewer.layers["cells_1_labels"].data = second.copy()
    images.timer.timeout.emit()  # the last autosave before the crash
    viewer.layers["cells_1_labels"].data_setitem((np.array([0]), np.array([0])), 5)  # never saved

    # The process dies: no close, no last save. What it leaves is the folder as it is now, plus
    # the temporary file of a write the kill interrupted.
    crashed = tmp_path_factory.mktemp("crashed")
    shutil.copytree(project_folder, crashed, dirs_exist_ok=True)
    labels_dir = crashed / PROJECT_DIR / "labels"
    (labels_dir / ".cells_1_labels.tif.x1y2z3.part").write_bytes(tifffile.imread.__doc__.encode()[:100])

    other = make_napari_viewer()
    restored = open_project(other, qtbot, crashed)
    project = session_for(other).project
    assert [entry.status for entry in project.entries] == ["corrected", "corrected", "new"]
    assert "cells_2" in other.layers  # opens on the first image not yet corrected
    restored.image_list.setCurrentRow(0)
    np.testing.assert_array_equal(other.layers["cells_0_labels"].data, first)
    checked = np.asarray(other.layers["cells_0_checked"].data) > 0
    assert checked[1, 1] and checked[2, 2] and checked.sum() == 2
    restored.image_list.setCurrentRow(1)
    np.testing.assert_array_equal(other.layers["cells_1_labels"].data, second)
    model = session_for(other).model  # the project's fine-tuned model is in use again
    assert model.name == "finetuned-before-crash"
    for key, tensor in tuned.network.state_dict().items():
        assert np.array_equal(model.network.state_dict()[key].numpy(), tensor.numpy()), key
