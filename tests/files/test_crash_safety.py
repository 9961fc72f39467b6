"""SIGKILL in the middle of saving: the previous file stays whole, and the next open cleans up.

A child process saves ever newer versions of a big model file or of a project's labels through the
real writers, printing each version number once its save has returned; it is killed with SIGKILL at
a random moment. Afterwards the file on disk must be a complete version no older than the last one
reported, and the hidden temporary a kill can leave must disappear on the next open or save.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

import napari_attnseg
from napari_attnseg.files.atomic import TEMP_SUFFIX
from napari_attnseg.files.loading import load_model
from napari_attnseg.files.modelfile import save_model
from napari_attnseg.project.folder import Project

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only")

SRC = str(Path(napari_attnseg.__file__).resolve().parents[1])
LABELS_SHAPE = (1024, 1024)
KILLS_PER_WRITER = 4

CHILD = r"""
import os, signal, sys
import numpy as np
mode, target, kill_before_rename = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

if mode == "model":
    from napari_attnseg.config import ModelConfig
    from napari_attnseg.files.modelfile import new_model, save_model
    model = new_model(ModelConfig(base_width=32, depth=4), seed=0)  # about 8 MB of weights

    def save(version):
        model.card["version"] = version
        save_model(model, target)
else:
    from napari_attnseg.project.folder import Project
    project = Project.open(target)
    entry = project.entries[0]
    base = np.random.default_rng(0).integers(0, 1000, LABELS_SHAPE, dtype=np.int32)  # compresses poorly

    def save(version):
        project.save_labels(entry, base + version, np.ones(LABELS_SHAPE, bool), status="corrected")

save(1)
print(1, flush=True)
if kill_before_rename:  # the worst moment: the new file is complete, the rename not yet done
    import napari_attnseg.files.atomic as atomic
    atomic.os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
version = 2
while True:
    save(version)
    print(version, flush=True)
    version += 1
""".replace("LABELS_SHAPE", repr(LABELS_SHAPE))


def _run_and_kill(mode: str, target: Path, delay: float | None) -> int:
    """Start the writer, SIGKILL it ``delay`` s after its first save (None: it kills itself); last version."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(target), "0" if delay is not None else "1"],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        first = child.stdout.readline()
        assert first.strip() == "1", "the writer did not start"
        if delay is not None:
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    reported = [int(line) for line in [first, *child.stdout.read().split()] if str(line).strip()]
    return max(reported)


def _temporaries(folder: Path) -> list[Path]:
    return sorted(folder.rglob(f"*{TEMP_SUFFIX}"))


def _delays():
    generator = random.Random(5)
    return [generator.uniform(0.0, 1.0) for _ in range(KILLS_PER_WRITER)] + [None]


@pytest.fixture
def project_folder(tmp_path):
    tifffile.imwrite(tmp_path / "cells.tif", np.zeros(LABELS_SHAPE, np.uint8))
    return tmp_path


@pytest.mark.parametrize("delay", _delays(), ids=lambda d: "before-rename" if d is None else f"after-{d:.2f}s")
def test_killed_while_saving_a_model(tmp_path, tiny_model, delay):
    path = tmp_path / "tuned.model"
    last_reported = _run_and_kill("model", path, delay)
    model = load_model(path)  # whole, or this raises
    assert last_reported <= model.card["version"] <= last_reported + 1
    if delay is None:
        assert model.card["version"] == 1 and len(_temporaries(tmp_path)) == 1
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["tuned.model"]
    save_model(tiny_model, path)  # the next save of that file removes what the killed one left
    assert _temporaries(tmp_path) == []
    assert load_model(path).config == tiny_model.config


@pytest.mark.parametrize("delay", _delays(), ids=lambda d: "before-rename" if d is None else f"after-{d:.2f}s")
def test_killed_while_autosaving_labels(project_folder, delay):
    last_reported = _run_and_kill("labels", project_folder, delay)
    project = Project.open(project_folder)  # opening removes the killed writer's temporaries
    assert _temporaries(project_folder) == []
    entry = project.entries[0]
    assert entry.status == "corrected"
    labels = project.load_labels(entry)
    base = np.random.default_rng(0).integers(0, 1000, LABELS_SHAPE, dtype=np.int32)
    versions = np.unique(labels - base)
    assert versions.size == 1, "the labels on disk mix two saves"
    assert last_reported <= int(versions[0]) <= last_reported + 1
    if delay is None:
        assert int(versions[0]) == 1
    assert project.load_checked(entry).all()
