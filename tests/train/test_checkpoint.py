"""Checkpoints during fine-tuning: the best model so far is on disk every few seconds, atomically."""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tifffile
import torch

import napari_attnseg
from napari_attnseg.config import TrainConfig
from napari_attnseg.files import atomic as _atomic
from napari_attnseg.files.loading import load_model
from napari_attnseg.files.modelfile import save_model
from napari_attnseg.train import training
from napari_attnseg.train.training import train_steps

QUICK = TrainConfig(max_seconds=3.0, max_epochs=10_000, steps_per_epoch=2, batch_size=2, crop_size=64,
                    patience=10_000, checkpoint_every_s=0.5, device="cpu", seed=3)


def _drain(steps):
    reports = []
    while True:
        try:
            reports.append(next(steps))
        except StopIteration as stop:
            return reports, stop.value


def _same_weights(first, second) -> bool:
    return all(torch.equal(a, b) for a, b in zip(first.network.state_dict().values(),
                                                  second.network.state_dict().values()))


class _FakeClock:
    """Stands in for training's clock: every reading is 0.1 s later, whatever this machine's load."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 0.1
        return self.now


def test_checkpoints_come_every_half_second_of_training(tiny_model, nuclei_pair, tmp_path, monkeypatch):
    monkeypatch.setattr(training, "time", _FakeClock())
    path = tmp_path / "checkpoint.model"
    config = QUICK.replace(val_fraction=0.0)  # no validation: every epoch's weights are the best so far
    reports, tuned = _drain(train_steps(tiny_model, [nuclei_pair[0]], [nuclei_pair[1]], None, config,
                                        checkpoint=path))
    saved_at = [report.elapsed for report in reports if report.checkpointed]
    assert 4 <= len(saved_at) <= 7, saved_at  # every 0.5 s of a 3 s budget, and at the end
    gaps = [later - earlier for earlier, later in zip(saved_at, saved_at[1:])]
    assert min(gaps[:-1]) >= 0.5 - 1e-9 and max(gaps[:-1]) <= 0.5 + 0.5, gaps
    assert reports[-1].checkpointed
    assert _same_weights(load_model(path), tuned)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.model"]


def test_checkpoints_in_real_time(tiny_model, nuclei_pair, tmp_path):
    path = tmp_path / "checkpoint.model"
    config = QUICK.replace(max_seconds=4.0, steps_per_epoch=1, val_fraction=0.0)
    reports, tuned = _drain(train_steps(tiny_model, [nuclei_pair[0]], [nuclei_pair[1]], None, config,
                                        checkpoint=path))
    assert sum(report.checkpointed for report in reports) >= 2
    assert _same_weights(load_model(path), tuned)


def test_checkpoint_with_validation_holds_the_best_not_the_last(tiny_model, nuclei_pair, tmp_path):
    path = tmp_path / "checkpoint.model"
    reports, tuned = _drain(train_steps(tiny_model, [nuclei_pair[0]], [nuclei_pair[1]], None,
                                        QUICK.replace(max_seconds=2.0, learning_rate=5e-3), checkpoint=path))
    improved = [index for index, report in enumerate(reports) if report.improved]
    checkpointed = [index for index, report in enumerate(reports) if report.checkpointed]
    if improved:
        # a checkpoint may come epochs after the improvement it saves (every checkpoint_every_s),
        # never before the first one, and the file ends as the best model, not the last
        assert checkpointed and checkpointed[0] >= improved[0] and checkpointed[-1] >= improved[-1]
        assert _same_weights(load_model(path), tuned)
    else:  # nothing beat the starting model: no checkpoint, and the model returned is the one given
        assert not path.exists() and _same_weights(tuned, tiny_model)


def test_a_checkpoint_that_cannot_be_written_does_not_stop_training(tiny_model, nuclei_pair, tmp_path,
                                                                    monkeypatch, caplog):
    def disk_full(handle, payload):
        os.close(handle)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_atomic, "_write_all", disk_full)
    with caplog.at_level(logging.WARNING, logger="napari_attnseg.train.training"):
        reports, tuned = _drain(train_steps(tiny_model, [nuclei_pair[0]], [nuclei_pair[1]], None,
                                            QUICK.replace(max_seconds=1.5, val_fraction=0.0),
                                            checkpoint=tmp_path / "c.model"))
    assert not any(report.checkpointed for report in reports)
    assert "disk is full" in caplog.text
    assert tuned.history and os.listdir(tmp_path) == []


def test_no_checkpoint_file_unless_asked(tiny_model, nuclei_pair, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reports, _ = _drain(train_steps(tiny_model, [nuclei_pair[0]], [nuclei_pair[1]], None,
                                    QUICK.replace(max_seconds=1.0)))
    assert not any(report.checkpointed for report in reports) and os.listdir(tmp_path) == []


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only")
def test_a_killed_finetune_leaves_its_last_checkpoint(tiny_model, nuclei_pair, tmp_path):
    tifffile.imwrite(tmp_path / "image.tif", nuclei_pair[0])
    tifffile.imwrite(tmp_path / "labels.tif", nuclei_pair[1])
    base = save_model(tiny_model, tmp_path / "base.model")
    output = tmp_path / "tuned.model"
    src = str(Path(napari_attnseg.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = ("import sys, tifffile\n"
              "import napari_attnseg as nas\n"
              "from napari_attnseg.config import TrainConfig\n"
              "image, labels, base, output = sys.argv[1:]\n"
              "config = TrainConfig(max_seconds=120, max_epochs=10_000, steps_per_epoch=2, batch_size=2,\n"
              "                     crop_size=64, patience=10_000, checkpoint_every_s=0.3, val_fraction=0.0,\n"
              "                     device='cpu')\n"
              "nas.finetune(nas.load_model(base), [tifffile.imread(image)], [tifffile.imread(labels)],\n"
              "             config=config, checkpoint=output)\n")
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "image.tif"),
                              str(tmp_path / "labels.tif"), str(base), str(output)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not output.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert output.exists(), "no checkpoint appeared"
        time.sleep(0.7)  # let it write a few more, then kill it mid-run
        assert child.poll() is None, "the run ended before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    checkpoint = load_model(output)
    assert "fine-tuned" in checkpoint.name and checkpoint.history
    assert not _same_weights(checkpoint, tiny_model)
