"""Helpers for widget tests."""

import numpy as np


def wait_idle(qtbot, widget, timeout: int = 60_000) -> None:
    """Wait until the widget's worker has finished and its handlers have run (worker reset to None)."""
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def painted(labels: np.ndarray) -> np.ndarray:
    edited = labels.copy()
    edited[10:20, 10:20] = edited.max() + 1
    return edited


def segment_layer(viewer, qtbot, image, name: str = "cells", wait: bool = True, **options):
    """Add ``image`` as a layer and run the Segment widget on it; returns the widget."""
    from napari_attnseg._qt import SegmentWidget

    viewer.add_image(image, name=name)
    segment = SegmentWidget(viewer)
    qtbot.addWidget(segment)
    segment.image_combo.value = name
    for option, value in options.items():
        getattr(segment, option).value = value
    segment.start()
    if wait:
        wait_idle(qtbot, segment)
    return segment


def finetune_widget_for(viewer, qtbot, image, labels, checked, name: str = "cells"):
    """Layers '<name>', '<name>_labels', '<name>_checked' and a Fine-tune widget set to use them."""
    from napari_attnseg._qt import FinetuneWidget

    viewer.add_image(image, name=name)
    viewer.add_labels(np.asarray(labels, dtype=np.int32), name=f"{name}_labels")
    viewer.add_labels(np.asarray(checked, dtype=np.uint8), name=f"{name}_checked")
    finetune = FinetuneWidget(viewer)
    qtbot.addWidget(finetune)
    finetune.image_combo.value, finetune.labels_combo.value = name, f"{name}_labels"
    finetune.checked_combo.value = f"{name}_checked"
    return finetune


class DiskFault:
    """Make napari-attnseg's atomic writes fail like a full disk or a read-only folder.

    Patches the ``os``/``tempfile`` that ``_atomic`` uses (not the global modules): ENOSPC strikes at
    fsync, after the temporary file was written (so its clean-up runs); EROFS at creating it.
    Tests may run as root, where chmod would not stop a write. ``failures`` counts injected faults.
    """

    def __init__(self, monkeypatch, code: int) -> None:
        import errno
        import os
        import tempfile
        import types

        from napari_attnseg.files import atomic as _atomic

        self.code, self.active, self.failures = code, False, 0
        fault = self

        def fsync(fd):
            if fault.active and code == errno.ENOSPC:
                fault.failures += 1
                raise OSError(code, os.strerror(code))
            return os.fsync(fd)

        def mkstemp(*args, **kwargs):
            if fault.active and code != errno.ENOSPC:
                fault.failures += 1
                raise OSError(code, os.strerror(code))
            return tempfile.mkstemp(*args, **kwargs)

        faulty_os = types.SimpleNamespace(**{name: getattr(os, name) for name in dir(os) if not name.startswith("__")})
        faulty_os.fsync = fsync
        monkeypatch.setattr(_atomic, "os", faulty_os)
        monkeypatch.setattr(_atomic, "tempfile", types.SimpleNamespace(mkstemp=mkstemp))


def leftovers(folder) -> list:
    """Temporary files that an interrupted or failed write left in ``folder`` (recursively)."""
    from pathlib import Path

    return sorted(str(path) for path in Path(folder).rglob("*") if path.name.endswith(".part")
                  or path.name.startswith(".") and path.is_file())


def check_project_files(folder) -> dict:
    """Every file of the project folder loads: labels, checked masks, models, project.json.

    Returns {relative path: loaded object}. Fails on a temporary or half-written file.
    """
    import json
    from pathlib import Path

    import tifffile

    from napari_attnseg.files.loading import load_model
    from napari_attnseg.project.folder import PROJECT_DIR, Project

    data_dir = Path(folder) / PROJECT_DIR
    assert leftovers(data_dir) == []
    loaded = {}
    for path in sorted(data_dir.rglob("*")):
        if path.is_dir():
            continue
        relative = str(path.relative_to(data_dir))
        if path.suffix == ".tif":
            loaded[relative] = tifffile.imread(path)
        elif path.suffix == ".model":
            loaded[relative] = load_model(path)
        elif path.name == "project.json":
            loaded[relative] = json.loads(path.read_text())
        else:
            raise AssertionError(f"unexpected file in the project: {relative}")
    Project.open(folder)  # statuses and model pointer parse
    return loaded


def quick_training(finetune, monkeypatch, steps_per_epoch: int = 4) -> None:
    """Make the Fine-tune widget's epochs tiny (``steps_per_epoch`` batches of 2 crops of 48x48)."""
    widget_config = finetune.train_config
    monkeypatch.setattr(finetune, "train_config", lambda: widget_config().replace(
        steps_per_epoch=steps_per_epoch, batch_size=2, crop_size=48))
