"""Disk full, read-only folders and killed writers' leftovers: typed errors, nothing lost, retry works."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_attnseg.cli import main
from napari_attnseg.errors import AttnSegError, SaveError
from napari_attnseg.files import atomic as _atomic
from napari_attnseg.files.loading import load_model
from napari_attnseg.files.modelfile import save_model
from napari_attnseg.project import folder as project_module
from napari_attnseg.project.folder import Project

SHAPE = (32, 32)


@pytest.fixture
def project(tmp_path):
    tifffile.imwrite(tmp_path / "cells.tif", np.zeros(SHAPE, np.uint8))
    project = Project.open(tmp_path)
    first = np.zeros(SHAPE, np.int32)
    first[2:6, 2:6] = 1
    project.save_labels(project.entries[0], first, np.ones(SHAPE, bool), status="segmented")
    return project


def _fail_writes(monkeypatch, code: int) -> None:
    """Make the low-level write of every atomic save fail with ``code`` (after creating the temporary)."""

    def failing_write(handle, payload):
        os.close(handle)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(_atomic, "_write_all", failing_write)


def _edited() -> np.ndarray:
    edited = np.zeros(SHAPE, np.int32)
    edited[10:20, 10:20] = 7
    return edited


FAULTS = [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"), (errno.EACCES, "no permission"),
          (errno.EDQUOT, "quota")]


@pytest.mark.parametrize("code, fragment", FAULTS, ids=[errno.errorcode[code] for code, _ in FAULTS])
def test_failed_autosave_keeps_everything_and_the_next_save_succeeds(project, monkeypatch, code, fragment):
    entry = project.entries[0]
    before = (entry.status, entry.updated)
    on_disk = project.load_labels(entry)
    edited = _edited()
    _fail_writes(monkeypatch, code)
    with pytest.raises(SaveError, match=fragment) as failure:
        project.save_labels(entry, edited, np.ones(SHAPE, bool), status="corrected")
    assert "kept in memory" in str(failure.value) and "cells.tif" in str(failure.value)
    assert isinstance(failure.value, OSError) and isinstance(failure.value, AttnSegError)
    assert re.search(fragment, failure.value.reason) and "kept in memory" not in failure.value.reason
    assert (entry.status, entry.updated) == before  # the in-memory entry is untouched
    np.testing.assert_array_equal(project.load_labels(entry), on_disk)  # the last save is intact
    assert list(project.folder.rglob(f"*{_atomic.TEMP_SUFFIX}")) == []

    monkeypatch.undo()  # the disk has room again
    project.save_labels(entry, edited, np.ones(SHAPE, bool), status="corrected")
    reopened = Project.open(project.folder)
    assert reopened.entries[0].status == "corrected"
    np.testing.assert_array_equal(reopened.load_labels(reopened.entries[0]), edited)


def test_manifest_failing_after_the_labels_rolls_the_entry_back(project, monkeypatch):
    entry = project.entries[0]
    before = (entry.status, entry.updated)
    real_write = project_module.atomic_write_bytes

    def manifest_fails(path, payload):
        if Path(path).name == "project.json":
            raise _atomic.save_error(Path(path), OSError(errno.ENOSPC, "No space left on device"))
        real_write(path, payload)

    monkeypatch.setattr(project_module, "atomic_write_bytes", manifest_fails)
    with pytest.raises(SaveError, match="disk is full"):
        project.save_labels(entry, _edited(), status="corrected")
    assert (entry.status, entry.updated) == before
    assert Project.open(project.folder).entries[0].status == "segmented"


def test_no_room_to_even_create_the_temporary(project, monkeypatch):
    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_atomic.tempfile, "mkstemp", no_room)
    with pytest.raises(SaveError, match="disk is full"):
        project.save()


def test_model_save_on_a_full_disk_keeps_the_previous_model(tmp_path, tiny_model, monkeypatch):
    path = save_model(tiny_model, tmp_path / "m.model")
    original = path.read_bytes()
    tiny_model.card["name"] = "newer"
    _fail_writes(monkeypatch, errno.ENOSPC)
    with pytest.raises(SaveError, match="could not save .*m.model: the disk is full"):
        save_model(tiny_model, path)
    assert path.read_bytes() == original and sorted(os.listdir(tmp_path)) == ["m.model"]
    monkeypatch.undo()
    save_model(tiny_model, path)
    assert load_model(path).name == "newer"


def test_cli_on_a_full_disk_exits_1_with_one_line(tmp_path, tiny_model, monkeypatch, capsys):
    model = save_model(tiny_model, tmp_path / "m.model")
    tifffile.imwrite(tmp_path / "cells.tif", np.zeros(SHAPE, np.uint8))
    _fail_writes(monkeypatch, errno.ENOSPC)
    code = main(["segment", str(tmp_path / "cells.tif"), "-o", str(tmp_path / "out"), "--model", str(model)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "disk is full" in lines[0], lines
    assert not (tmp_path / "out" / "cells_labels.tif").exists()


def _chmod_blocks_writes(folder) -> bool:
    probe = folder / "probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return True
    probe.unlink()
    return False


def test_read_only_project_folder(project):
    data_dir = project.data_dir
    folders = [data_dir, data_dir / "labels", data_dir / "checked"]
    for folder in folders:
        folder.chmod(0o555)
    try:
        if not _chmod_blocks_writes(data_dir / "labels"):
            pytest.skip("chmod does not stop this user from writing (root): the ENOSPC/EROFS tests above "
                        "stand in for a read-only folder")
        with pytest.raises(SaveError, match="no permission|read-only"):
            project.save_labels(project.entries[0], _edited(), status="corrected")
        assert project.entries[0].status == "segmented"
    finally:
        for folder in folders:
            folder.chmod(0o755)
    project.save_labels(project.entries[0], _edited(), status="corrected")


def test_stale_temporaries_are_removed_but_a_live_writers_are_kept(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead_pid = int(finished.stdout)
    try:
        live = tmp_path / f".a.tif.{sleeper.pid}.x1y2z3{_atomic.TEMP_SUFFIX}"
        mine = tmp_path / f".a.tif.{os.getpid()}.x1y2z3{_atomic.TEMP_SUFFIX}"
        dead = tmp_path / f".a.tif.{dead_pid}.q9w8e7{_atomic.TEMP_SUFFIX}"
        other = tmp_path / f".b.tif.{dead_pid}.q9w8e7{_atomic.TEMP_SUFFIX}"
        for path in (live, mine, dead, other):
            path.write_bytes(b"half a file")
        assert _atomic.remove_stale_temporaries(tmp_path, "a.tif") == [dead]
        assert _atomic.remove_stale_temporaries(tmp_path) == [other]
        assert live.exists() and mine.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("DefaultCPUAllocator: can't allocate memory"),
                                   RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")],
                         ids=["numpy", "torch-cpu", "torch-cuda"])
def test_cli_out_of_memory_is_one_line_not_a_traceback(tmp_path, tiny_model, monkeypatch, capsys, error):
    from napari_attnseg.inference import predict as inference

    def exhausted(*args, **kwargs):
        raise error
        yield  # a generator, like the real one

    model = save_model(tiny_model, tmp_path / "m.model")
    tifffile.imwrite(tmp_path / "cells.tif", np.zeros(SHAPE, np.uint8))
    monkeypatch.setattr(inference, "predict_steps", exhausted)
    code = main(["segment", str(tmp_path / "cells.tif"), "-o", str(tmp_path / "out"), "--model", str(model)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "out of memory" in lines[0], lines


def test_cli_does_not_hide_a_runtime_error_that_is_a_bug(tmp_path, tiny_model, monkeypatch):
    from napari_attnseg.inference import predict as inference

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch in layer 3")
        yield

    model = save_model(tiny_model, tmp_path / "m.model")
    tifffile.imwrite(tmp_path / "cells.tif", np.zeros(SHAPE, np.uint8))
    monkeypatch.setattr(inference, "predict_steps", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        main(["segment", str(tmp_path / "cells.tif"), "-o", str(tmp_path / "out"), "--model", str(model)])
