"""Edits that could not be saved into their project when napari closed are rescued and put back."""

import numpy as np
import pytest
import tifffile

from napari_attnseg.errors import SaveError
from napari_attnseg.project.folder import Project
from napari_attnseg.project.rescue import RESCUE_ENV, pending_rescues, rescue_folder, restore_rescues, write_rescue


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv(RESCUE_ENV, str(tmp_path / "rescue"))
    folder = tmp_path / "cells"
    folder.mkdir()
    for index in range(2):
        tifffile.imwrite(folder / f"cells_{index}.tif", np.full((20, 24), index, np.uint16))
    return Project.open(folder)


def test_rescued_edits_go_back_into_the_project_and_leave_the_rescue_folder(project):
    entry = project.entries[1]
    labels = np.zeros((20, 24), np.int32)
    labels[3:9, 4:10] = 7
    checked = labels > 0
    folder = write_rescue(project, entry, labels, checked, "corrected")
    assert folder == rescue_folder(project) and not str(folder).startswith(str(project.folder))
    assert [rescued.entry.file for rescued in pending_rescues(project)] == ["cells_1.tif"]

    reopened = Project.open(project.folder)
    assert restore_rescues(reopened) == ["cells_1.tif"]
    entry = reopened.entries[1]
    np.testing.assert_array_equal(reopened.load_labels(entry), labels)
    np.testing.assert_array_equal(reopened.load_checked(entry), checked)
    assert Project.open(project.folder).entries[1].status == "corrected"
    assert not folder.exists() and pending_rescues(reopened) == []


def test_a_project_that_still_cannot_be_written_keeps_the_rescue(project, monkeypatch):
    labels = np.ones((20, 24), np.int32)
    write_rescue(project, project.entries[0], labels, None, "corrected")

    def full(*args, **kwargs):
        raise SaveError("could not save the labels of cells_0.tif: the disk is full")

    monkeypatch.setattr(Project, "save_labels", full)
    with pytest.raises(SaveError):
        restore_rescues(project)
    assert len(pending_rescues(project)) == 1


def test_rescues_of_images_the_project_no_longer_has_are_skipped(project):
    write_rescue(project, project.entries[0], np.ones((20, 24), np.int32), None, None)
    (project.folder / "cells_0.tif").unlink()
    assert pending_rescues(Project.open(project.folder)) == []
