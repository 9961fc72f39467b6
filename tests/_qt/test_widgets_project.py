"""Projects: statuses, autosave on switching, restore on re-opening, Segment all."""

import numpy as np
import tifffile

from napari_attnseg._qt import ImagesWidget, SegmentWidget
from napari_attnseg._qt._session import session_for
from napari_attnseg.project.folder import Project

from .helpers import painted, wait_idle


def test_open_folder_edit_switch_and_restore(viewer, qtbot, project_folder, make_napari_viewer):
    images = ImagesWidget(viewer)
    qtbot.addWidget(images)
    images.open_folder(project_folder)
    assert images.image_list.count() == 3
    assert "cells_0" in viewer.layers and "cells_0_labels" in viewer.layers

    edited = painted(np.asarray(viewer.layers["cells_0_labels"].data))
    viewer.layers["cells_0_labels"].data = edited
    images.next_image()  # autosaves cells_0
    assert "cells_1" in viewer.layers and "cells_0" not in viewer.layers
    saved = tifffile.imread(project_folder / "attnseg_project" / "labels" / "cells_0_labels.tif")
    np.testing.assert_array_equal(saved, edited)
    assert "corrected" in images.image_list.item(0).text()

    # A second napari (e.g. after a crash) restores the edits and statuses.
    other = make_napari_viewer()
    restored = ImagesWidget(other)
    qtbot.addWidget(restored)
    restored.open_folder(project_folder)
    restored.image_list.setCurrentRow(0)
    np.testing.assert_array_equal(other.layers["cells_0_labels"].data, edited)
    assert Project.open(project_folder).entries[0].status == "corrected"


def test_timer_autosave_writes_the_current_edits(viewer, qtbot, project_folder):
    images = ImagesWidget(viewer)
    qtbot.addWidget(images)
    images.open_folder(project_folder)
    layer = viewer.layers["cells_0_labels"]
    layer.data_setitem((np.array([5, 6]), np.array([5, 6])), 4)  # a paint stroke
    images.timer.timeout.emit()
    saved = tifffile.imread(project_folder / "attnseg_project" / "labels" / "cells_0_labels.tif")
    assert saved[5, 5] == 4 and saved[6, 6] == 4


def test_segment_all_skips_corrected_images(viewer, qtbot, project_folder):
    images = ImagesWidget(viewer)
    segment = SegmentWidget(viewer)
    qtbot.addWidget(images)
    qtbot.addWidget(segment)
    images.open_folder(project_folder)
    edited = painted(np.asarray(viewer.layers["cells_0_labels"].data))
    viewer.layers["cells_0_labels"].data = edited
    images.autosave()
    segment.start_all()
    wait_idle(qtbot, segment)
    project = session_for(viewer).project
    assert [entry.status for entry in project.entries] == ["corrected", "segmented", "segmented"]
    saved = tifffile.imread(project_folder / "attnseg_project" / "labels" / "cells_0_labels.tif")
    np.testing.assert_array_equal(saved, edited)
    assert (project_folder / "attnseg_project" / "labels" / "cells_2_labels.tif").exists()


def test_torch_is_imported_when_the_dock_opens_never_in_a_click():
    """The first Segment click froze napari ~1.7 s importing torch. Now the dock pays that once as it
    opens (in the main thread, where libraries are loaded safely), and the click only starts a worker."""
    import subprocess
    import sys

    code = (
        "import sys, importlib.abc, time\n"
        "phase = ['start']\n"
        "imports = []\n"
        "class Spy(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'torch':\n"
        "            imports.append(phase[0])\n"
        "sys.meta_path.insert(0, Spy())\n"
        "import napari, numpy as np\n"
        "from qtpy.QtWidgets import QApplication\n"
        "viewer = napari.Viewer(show=False)\n"
        "viewer.add_image(np.zeros((64, 64), np.uint8), name='cells')\n"
        "phase[0] = 'dock'\n"
        "_dock, panel = viewer.window.add_plugin_dock_widget('napari-attnseg', 'AttnSeg')\n"
        "phase[0] = 'click'\n"
        "segment = panel.tabs['Segment']\n"
        "segment.image_combo.value = 'cells'\n"
        "segment.start()\n"
        "deadline = time.time() + 120\n"
        "while segment.worker is not None and time.time() < deadline:\n"
        "    QApplication.processEvents(); time.sleep(0.01)\n"
        "print(imports, 'cells_labels' in viewer.layers)\n"
        "viewer.close()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "['dock'] True"


def test_closing_napari_saves_the_edits(make_napari_viewer, qtbot, project_folder):
    viewer = make_napari_viewer(show=True)
    images = ImagesWidget(viewer)
    viewer.window.add_dock_widget(images)
    qtbot.waitUntil(lambda: images.window() is not images and images.isVisible(), timeout=5_000)
    images.open_folder(project_folder)
    layer = viewer.layers["cells_0_labels"]
    layer.data_setitem((np.array([3]), np.array([4])), 7)
    viewer.close()  # closes napari's main window, as File > Quit does
    saved = tifffile.imread(project_folder / "attnseg_project" / "labels" / "cells_0_labels.tif")
    assert saved[3, 4] == 7


def test_closing_napari_while_the_project_cannot_be_written_rescues_the_edits(
        make_napari_viewer, qtbot, project_folder, tmp_path_factory, monkeypatch):
    from napari_attnseg.errors import SaveError
    from napari_attnseg.project.folder import Project
    from napari_attnseg.project.rescue import RESCUE_ENV, rescue_folder

    monkeypatch.setenv(RESCUE_ENV, str(tmp_path_factory.mktemp("rescue")))
    viewer = make_napari_viewer(show=True)
    images = ImagesWidget(viewer)
    viewer.window.add_dock_widget(images)
    qtbot.waitUntil(lambda: images.window() is not images and images.isVisible(), timeout=5_000)
    images.open_folder(project_folder)
    viewer.layers["cells_0_labels"].data_setitem((np.array([3]), np.array([4])), 7)
    labels_file = project_folder / "attnseg_project" / "labels" / "cells_0_labels.tif"
    saved_before = tifffile.imread(labels_file) if labels_file.exists() else None

    def unwritable(*args, **kwargs):  # the project's disk filled up, or its drive was unplugged
        raise SaveError("could not save the labels of cells_0.tif: the disk is full")

    with monkeypatch.context() as fault:
        fault.setattr(Project, "save_labels", unwritable)
        viewer.close()
    rescued = rescue_folder(Project.open(project_folder))
    assert tifffile.imread(rescued / "cells_0_labels.tif")[3, 4] == 7
    if saved_before is None:  # the project's own file was not touched
        assert not labels_file.exists()
    else:
        np.testing.assert_array_equal(tifffile.imread(labels_file), saved_before)

    again = make_napari_viewer()
    reopened = ImagesWidget(again)
    qtbot.addWidget(reopened)
    reopened.open_folder(project_folder)  # the disk has room again
    assert tifffile.imread(labels_file)[3, 4] == 7
    assert session_for(again).project.entries[0].status == "corrected"  # so the next image is shown
    assert not rescued.exists()


def test_fine_tuning_checkpoints_into_the_open_project_only(viewer, qtbot, project_folder, monkeypatch):
    from napari_attnseg._qt import FinetuneWidget
    from napari_attnseg._qt import finetune_widget as module

    finetune = FinetuneWidget(viewer)
    qtbot.addWidget(finetune)
    assert finetune._checkpoint_path() is None  # no project: nowhere of the user's to write
    images = ImagesWidget(viewer)
    qtbot.addWidget(images)
    images.open_folder(project_folder)
    asked = {}
    monkeypatch.setattr(module, "start_worker", lambda *args, **kwargs: asked.update(kwargs, args=args))
    viewer.layers["cells_0_labels"].data = painted(np.zeros((96, 96), dtype=np.int32))
    viewer.layers["cells_0_checked"].data = np.ones((96, 96), dtype=np.uint8)
    finetune.start()
    assert asked["args"][-1] == project_folder.resolve() / "attnseg_project" / "models" / "checkpoint.model"
