import json

import numpy as np
import pytest
import tifffile

from napari_attnseg.datasets.synthetic import synthetic_nuclei
from napari_attnseg.errors import InputError
from napari_attnseg.project.folder import Project, segment_project_steps


@pytest.fixture
def folder(tmp_path):
    for index in range(2):
        image, _ = synthetic_nuclei((64, 64), seed=index)
        tifffile.imwrite(tmp_path / f"img{index}.tif", image)
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_open_lists_images_and_restores_statuses(folder):
    project = Project.open(folder)
    assert [entry.file for entry in project.entries] == ["img0.tif", "img1.tif"]
    labels = np.zeros((64, 64), dtype=np.int32)
    labels[5:9, 5:9] = 1
    checked = np.zeros((64, 64), dtype=bool)
    checked[:32] = True
    project.save_labels(project.entries[0], labels, checked, status="corrected")
    reopened = Project.open(folder)
    assert reopened.entries[0].status == "corrected"
    np.testing.assert_array_equal(reopened.load_labels(reopened.entries[0]), labels)
    np.testing.assert_array_equal(reopened.load_checked(reopened.entries[0]), checked)
    assert [entry.file for entry, *_ in reopened.training_set()] == ["img0.tif"]


def test_project_file_cannot_point_outside_the_folder(folder):
    Project.open(folder).save()
    manifest_path = folder / "attnseg_project" / "project.json"
    for bad in ("../../etc/passwd", "/etc/passwd"):
        manifest = json.loads(manifest_path.read_text())
        manifest["images"][0]["file"] = bad
        manifest_path.write_text(json.dumps(manifest))
        with pytest.raises(InputError, match="inside the project folder"):
            Project.open(folder)


def test_damaged_or_foreign_project_file_is_explained(folder):
    (folder / "attnseg_project").mkdir()
    (folder / "attnseg_project" / "project.json").write_text("{not json")
    with pytest.raises(InputError, match="damaged"):
        Project.open(folder)
    (folder / "attnseg_project" / "project.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(InputError, match="not a napari-attnseg project"):
        Project.open(folder)


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match="holds no images"):
        Project.open(tmp_path)


def test_segment_project_keeps_corrections_and_reports_progress(folder, tiny_model):
    project = Project.open(folder)
    corrected = np.ones((64, 64), dtype=np.int32)
    project.save_labels(project.entries[0], corrected, status="corrected")
    steps = segment_project_steps(project, tiny_model)
    fractions = []
    while True:
        try:
            fractions.append(next(steps).fraction)
        except StopIteration as stop:
            summary = stop.value
            break
    assert summary == {"segmented": 1, "failed": []}
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    np.testing.assert_array_equal(project.load_labels(project.entries[0]), corrected)
    assert project.entries[1].status == "segmented"


def test_same_name_different_extension_is_refused(folder):
    import imageio.v3 as iio

    iio.imwrite(folder / "img0.png", np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(InputError, match="share a name"):
        Project.open(folder)


def test_saves_from_two_threads_leave_the_latest_statuses(folder, monkeypatch):
    import threading
    import time

    from napari_attnseg.project import folder as project_module

    project = Project.open(folder)
    real_write = project_module.atomic_write_bytes
    writing = threading.Event()

    def slow_write(path, payload):  # the worker is caught between building its manifest and writing it
        if threading.current_thread().name == "segment-all":
            writing.set()
            time.sleep(0.3)
        real_write(path, payload)

    monkeypatch.setattr(project_module, "atomic_write_bytes", slow_write)
    worker = threading.Thread(target=project.save, name="segment-all")
    worker.start()
    assert writing.wait(5)
    project.entries[0].status = "corrected"  # the user's autosave, meanwhile, on the main thread
    project.save()
    worker.join()
    manifest = json.loads((project.data_dir / "project.json").read_text())
    assert manifest["images"][0]["status"] == "corrected"  # the later state, not the worker's older one
