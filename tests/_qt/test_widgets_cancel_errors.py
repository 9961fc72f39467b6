"""Cancel and error paths: napari stays usable, nothing half-done lands in a layer."""

import numpy as np

from napari_attnseg._qt import CorrectWidget, SegmentWidget
from napari_attnseg._qt._session import session_for

from .helpers import finetune_widget_for, quick_training, segment_layer, wait_idle


def test_cancel_segmentation_leaves_layers_unchanged(viewer, qtbot):
    viewer.add_image(np.random.default_rng(0).random((1024, 1024)).astype(np.float32), name="big")
    segment = SegmentWidget(viewer)
    qtbot.addWidget(segment)
    segment.image_combo.value = "big"
    segment.tile_size.value = 64
    aborted = []
    segment.start()
    segment.worker.aborted.connect(lambda: aborted.append(True))
    qtbot.waitUntil(lambda: segment.progress.value() > 0, timeout=30_000)
    segment.cancel()
    wait_idle(qtbot, segment)
    assert aborted == [True]
    assert "big_labels" not in viewer.layers
    assert segment.segment_button.isEnabled() and not segment.cancel_button.isEnabled()


def test_stop_before_any_epoch_ends_keeps_the_model_in_use(viewer, qtbot, nuclei_image, monkeypatch):
    image, truth = nuclei_image
    finetune = finetune_widget_for(viewer, qtbot, image, truth, np.ones(image.shape, bool))
    quick_training(finetune, monkeypatch, steps_per_epoch=10_000)  # no epoch can end before Stop
    finetune.seconds.value = 600
    session = session_for(viewer)
    before = session.model
    finetune.start()
    qtbot.waitUntil(lambda: len(finetune.plot.loss) >= 2, timeout=60_000)
    finetune.stop()
    wait_idle(qtbot, finetune)
    assert finetune.start_button.isEnabled() and not finetune.stop_button.isEnabled()
    assert finetune.best is None and session.model is before
    assert "model in use is unchanged" in finetune.status.text()


def test_stop_after_an_improvement_adopts_the_best_so_far(viewer, qtbot, nuclei_image, monkeypatch):
    image, truth = nuclei_image
    finetune = finetune_widget_for(viewer, qtbot, image, truth, np.ones(image.shape, bool))
    quick_training(finetune, monkeypatch, steps_per_epoch=4)
    finetune.seconds.value = 600
    finetune.epochs.value = 1000
    session = session_for(viewer)
    finetune.start()
    qtbot.waitUntil(lambda: finetune.best is not None, timeout=120_000)  # an epoch beat the untrained model
    finetune.stop()
    wait_idle(qtbot, finetune)
    assert session.model is finetune.best and session.tuned_model is finetune.best
    assert finetune.status.text().startswith("stopped: now using finetuned-")
    assert finetune.progress.value() == 1000


def test_finetune_without_checked_regions_explains_what_to_do(viewer, qtbot, nuclei_image, errors):
    image, truth = nuclei_image
    finetune = finetune_widget_for(viewer, qtbot, image, truth, np.zeros(image.shape, bool))
    finetune.start()
    assert finetune.worker is None
    assert len(errors) == 1 and "checked" in errors[0]


def test_segment_errors_are_notifications(viewer, qtbot, errors):
    segment = SegmentWidget(viewer)
    qtbot.addWidget(segment)
    segment.start()
    assert errors and "open an image" in errors[-1]
    viewer.add_image(np.zeros((64, 64)), name="blank")
    segment.image_combo.value = "blank"
    segment.model_combo.value = "Last fine-tuned"
    segment.start()
    assert "no model has been fine-tuned" in errors[-1] and segment.worker is None
    assert segment.status.text() == errors[-1]  # the status line says it too
    segment.model_combo.value = "Bundled default"
    import napari_attnseg.runtime.devices as devices
    from napari_attnseg._qt import _warmup

    qtbot.waitUntil(lambda: _warmup.available_devices() is not None, timeout=60_000)
    # only the devices this machine has are offered
    assert ("cuda" in segment.device_combo.choices) == devices.cuda_available()
    assert segment.device_combo.choices[:2] == ("auto", "cpu")


def test_worker_failure_becomes_a_notification(viewer, qtbot, errors):
    viewer.add_image(np.zeros((2, 3, 4, 64, 64)), name="5d")
    segment = SegmentWidget(viewer)
    qtbot.addWidget(segment)
    segment.image_combo.value = "5d"
    segment.start()
    wait_idle(qtbot, segment)
    assert errors and "neither" in errors[-1]
    assert segment.segment_button.isEnabled()


def test_correct_tools_are_undoable(viewer, qtbot):
    labels = np.zeros((60, 60), dtype=np.int32)
    labels[5:25, 5:25] = 1
    labels[30:50, 30:50] = 2
    labels[12:15, 12:15] = 0  # a hole
    layer = viewer.add_labels(labels.copy(), name="cells_labels")
    correct = CorrectWidget(viewer)
    qtbot.addWidget(correct)
    correct.labels_combo.value = "cells_labels"
    correct.fill_holes()
    assert layer.data[13, 13] == 1
    layer.selected_label = 2
    correct.delete_selected()
    assert not np.any(layer.data == 2)
    layer.undo()
    assert np.any(layer.data == 2)
    layer.undo()
    np.testing.assert_array_equal(layer.data, labels)
    correct.new_label()
    assert layer.selected_label == 3


def test_runtime_error_in_a_worker_restores_the_controls(viewer, qtbot, nuclei_image, errors, monkeypatch):
    import napari_attnseg.inference.predict as inference

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")
        yield  # a generator, like the real one

    monkeypatch.setattr(inference, "segment_steps", out_of_memory)
    segment = segment_layer(viewer, qtbot, nuclei_image[0])
    assert segment.segment_button.isEnabled()
    assert errors and "out of memory" in errors[-1]


def test_stop_after_the_last_step_still_delivers_the_result(qtbot):
    """Stop lands while the generator runs its last step (it waits for the Stop): the result counts."""
    import threading

    from napari_attnseg._qt._workers import start_worker

    gate = threading.Event()

    def quick():
        yield 1
        gate.wait(10)  # the last step: Stop is pressed while it runs
        return "done"

    results, aborted, finished = [], [], []

    def stop_now(_report):
        worker.quit()
        gate.set()

    worker = start_worker(quick, description="quick", on_yield=stop_now, on_return=results.append,
                          on_abort=lambda: aborted.append(True), on_finish=lambda: finished.append(True))
    qtbot.waitUntil(lambda: bool(finished), timeout=10_000)
    assert results == ["done"] and aborted == []


def test_review_rectangles_become_checked_pixels_and_lines_split(viewer, qtbot):
    labels = np.zeros((60, 90), dtype=np.int32)
    labels[10:50, 10:80] = 1  # one wide object, to be cut in two
    layer = viewer.add_labels(labels, name="cells_labels")
    correct = CorrectWidget(viewer)
    qtbot.addWidget(correct)
    correct.labels_combo.value = "cells_labels"

    correct.draw_rectangles()
    viewer.layers["review"].add_rectangles(np.array([[0, 0], [30, 40]]))
    correct.check_rectangles()
    checked = np.asarray(viewer.layers["cells_checked"].data) > 0
    assert checked[5, 5] and checked[29, 39] and not checked[40, 60]
    assert len(viewer.layers["review"].data) == 0

    correct.split_along_line()  # first click creates the line layer
    viewer.layers["split line"].add_paths(np.array([[0, 45], [59, 45]]))
    layer.selected_label = 1
    correct.split_along_line()
    assert len(np.unique(layer.data)) == 3
    layer.undo()
    np.testing.assert_array_equal(layer.data, labels)
