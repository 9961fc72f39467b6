"""Issue 5, GUI side: cancel segmentation and fine-tuning at random points, many times.

After every cancel napari must be usable (controls back, a layer can be added, the next job starts),
the model in use must be the last good one, nothing half-done may land in a layer, and the project
folder must hold no temporary or half-written file. Seeded, tiny model, 96x96 project images.
"""

import numpy as np
import torch
from qtpy.QtCore import QTimer

from napari_attnseg._qt import FinetuneWidget, ImagesWidget, SegmentWidget
from napari_attnseg._qt._session import session_for
from napari_attnseg.project.folder import PROJECT_DIR, Project

from .helpers import check_project_files, painted, quick_training, wait_idle

SEGMENT_CANCELS = 16
TRAIN_CANCELS = 10


def weights(model) -> dict[str, np.ndarray]:
    return {key: tensor.detach().cpu().numpy().copy() for key, tensor in model.network.state_dict().items()}


def assert_same_weights(model, expected: dict[str, np.ndarray]) -> None:
    state = model.network.state_dict()
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(state[key].cpu(), torch.from_numpy(value)), key


def open_project(viewer, qtbot, folder) -> ImagesWidget:
    images = ImagesWidget(viewer)
    qtbot.addWidget(images)
    images.timer.stop()  # the test decides when to save
    images.open_folder(folder)
    return images


def assert_napari_usable(viewer, iteration: int, last: int) -> None:
    """A layer can still be added (every few rounds: it costs napari ~0.5 s here)."""
    if iteration % 4 and iteration != last:
        return
    probe = viewer.add_labels(np.zeros((8, 8), dtype=np.uint8), name="probe")
    assert viewer.layers[-1] is probe
    viewer.layers.remove(probe)


def cancel_later(rng, worker, cancel, n_yields: int) -> str:
    """Arrange for ``cancel`` after a random number of progress reports or a random delay."""
    if rng.random() < 0.5:
        after = int(rng.integers(0, n_yields + 2))  # n_yields and beyond: the job has finished by then
        if after == 0:
            cancel()
            return "at once"
        seen = []
        worker.yielded.connect(lambda _report: seen.append(1) or (len(seen) == after and cancel()))
        return f"after {after} reports"
    delay = int(rng.integers(0, 80))
    QTimer.singleShot(delay, cancel)
    return f"after {delay} ms"


def test_cancel_segmentation_at_random_points(viewer, qtbot, project_folder, errors):
    images = open_project(viewer, qtbot, project_folder)
    session = session_for(viewer)
    segment = SegmentWidget(viewer)
    qtbot.addWidget(segment)
    segment.image_combo.value = "cells_0"
    segment.tile_size.value = 32  # 25 tiles in 7 batches: room to stop in the middle
    labels_layer = viewer.layers["cells_0_labels"]
    labels_file = project_folder / PROJECT_DIR / "labels" / "cells_0_labels.tif"

    reports = []
    segment.start()
    model = session.model
    model_weights = weights(model)
    segment.worker.yielded.connect(reports.append)
    wait_idle(qtbot, segment)
    reference = np.asarray(labels_layer.data).copy()
    assert reference.max() > 0 and len(reports) >= 5

    rng = np.random.default_rng(20261122)
    outcomes = {"aborted": 0, "delivered": 0}
    at_once = 0
    for iteration in range(SEGMENT_CANCELS):
        labels_layer.data = np.zeros_like(reference)  # so that a half result would show
        session.predictions.pop("cells_0", None)
        file_before = labels_file.read_bytes()
        aborted = []
        segment.start()
        worker = segment.worker
        worker.aborted.connect(lambda aborted=aborted: aborted.append(True))
        how = cancel_later(rng, worker, segment.cancel, len(reports))
        at_once += how == "at once"
        wait_idle(qtbot, segment)

        if aborted:
            outcomes["aborted"] += 1
            assert not np.any(labels_layer.data), how
            assert "cells_0" not in session.predictions
            assert labels_file.read_bytes() == file_before, how
            assert "cancelled" in segment.status.text()
        else:  # the stop came after the last tile: the whole result, never part of it
            outcomes["delivered"] += 1
            np.testing.assert_array_equal(labels_layer.data, reference, err_msg=how)
            np.testing.assert_array_equal(check_project_files(project_folder)["labels/cells_0_labels.tif"],
                                          reference)
        assert segment.segment_button.isEnabled() and segment.segment_all_button.isEnabled()
        assert not segment.cancel_button.isEnabled()
        assert session.model is model
        check_project_files(project_folder)
        assert_napari_usable(viewer, iteration, SEGMENT_CANCELS - 1)
    assert_same_weights(model, model_weights)
    # A stop right after the start always aborts; later ones may come after a fast worker's last tile.
    assert outcomes["aborted"] >= max(at_once, 1), (outcomes, at_once)
    assert errors == []
    assert images.image_list.count() == 3


def test_cancel_segment_all_keeps_finished_images_whole(viewer, qtbot, project_folder, errors):
    open_project(viewer, qtbot, project_folder)
    session = session_for(viewer)
    segment = SegmentWidget(viewer)
    qtbot.addWidget(segment)
    segment.tile_size.value = 32
    rng = np.random.default_rng(7)
    for iteration in range(4):
        segment.start_all()
        cancel_later(rng, segment.worker, segment.cancel, 21)
        wait_idle(qtbot, segment)
        files = check_project_files(project_folder)
        for entry in Project.open(project_folder).entries:
            saved = files.get(f"labels/{entry.stem}_labels.tif")
            assert (entry.status == "segmented") == (saved is not None)
            if saved is not None:
                assert saved.shape == (96, 96) and saved.max() > 0
        assert segment.segment_all_button.isEnabled() and not segment.cancel_button.isEnabled()
        assert_napari_usable(viewer, iteration, 3)
    assert errors == []
    assert session.project is not None


def test_stop_fine_tuning_at_random_points(viewer, qtbot, project_folder, errors, monkeypatch):
    open_project(viewer, qtbot, project_folder)
    session = session_for(viewer)
    labels = painted(painted(np.zeros((96, 96), dtype=np.int32))[::-1].copy())
    viewer.layers["cells_0_labels"].data = labels
    viewer.layers["cells_0_checked"].data = np.ones((96, 96), dtype=np.uint8)
    finetune = FinetuneWidget(viewer)
    qtbot.addWidget(finetune)
    finetune.seconds.value, finetune.epochs.value = 600, 1000
    finetune.val_fraction.value = 0.0  # no validation: every epoch's model is the best so far
    quick_training(finetune, monkeypatch)  # epochs of 4 batches

    rng = np.random.default_rng(11)
    # One report before training, one per batch (4 per epoch), one at the end of each epoch with a
    # snapshot of the model: a stop after 6 or more reports keeps a snapshot.
    plan = [0, 1, 3, 7, 8, 13] + [int(k) for k in rng.integers(0, 14, TRAIN_CANCELS - 6)]
    outcomes = {"unchanged": 0, "best kept": 0}
    for iteration, after in enumerate(plan):
        before = session.model
        before_weights = weights(before)
        finetune.start()
        assert finetune.worker is not None and not finetune.start_button.isEnabled()
        if after == 0:
            finetune.stop()
        else:
            seen = []
            finetune.worker.yielded.connect(
                lambda _report, seen=seen, after=after: seen.append(1) or (len(seen) == after and finetune.stop()))
        wait_idle(qtbot, finetune, timeout=120_000)
        qtbot.waitUntil(lambda: finetune.segment_worker is None, timeout=60_000)

        assert finetune.start_button.isEnabled() and not finetune.stop_button.isEnabled()
        assert_same_weights(before, before_weights)  # training never touches the model it starts from
        files = check_project_files(project_folder)
        if finetune.best is None:
            outcomes["unchanged"] += 1
            assert session.model is before, after
        else:
            outcomes["best kept"] += 1
            assert session.model is finetune.best and session.tuned_model is finetune.best, after
            model_file = Project.open(project_folder).model_file
            assert_same_weights(files[model_file], weights(finetune.best))
            assert "cells_0_tuned_labels" in viewer.layers
        assert_napari_usable(viewer, iteration, len(plan) - 1)
    # Deterministic whatever the speed: a stop before the first report keeps the model in use; one
    # after the 6th report (the first snapshot) keeps a snapshot. Between, it depends on the race.
    assert outcomes["unchanged"] >= plan.count(0) >= 1, outcomes
    assert outcomes["best kept"] >= sum(after >= 6 for after in plan) >= 3, outcomes
    assert errors == []


def test_a_stop_from_a_progress_handler_sees_every_report_first(viewer, qtbot):
    """napari's progress bar runs processEvents(): the handlers must still run in order."""
    import threading
    import time

    from napari_attnseg._qt._workers import start_worker

    resume = threading.Event()

    def steps():
        for index in range(50):
            yield type("Report", (), {"fraction": index / 50, "index": index})()
            if index == 5:
                resume.wait(10)  # hold here until the main thread has asked to stop
        return "done"

    calls = []

    def on_yield(report):
        calls.append(("yield", report.index))
        if report.index == 3:
            worker.quit()
            resume.set()
            time.sleep(0.2)  # the main thread is busy while the worker queues reports and 'aborted'

    worker = start_worker(steps, description="ordered", on_yield=on_yield,
                          on_abort=lambda: calls.append(("abort",)), on_finish=lambda: calls.append(("finish",)))
    qtbot.waitUntil(lambda: ("finish",) in calls, timeout=10_000)
    qtbot.wait(50)  # anything still queued would land now
    yields = [call[1] for call in calls if call[0] == "yield"]
    assert yields == list(range(len(yields))) and 4 <= len(yields) < 50
    assert calls[-2:] == [("abort",), ("finish",)], calls
