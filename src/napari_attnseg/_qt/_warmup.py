"""Pay the engine's one-time costs in the background as soon as a dock opens, not in a click.

Importing torch and the engine takes ~1.5 s, and the first backward pass of a session ~0.3 s more
(PyTorch sets up its autograd machinery); done in a click handler or at the start of a job, either
freezes napari. ``warm_up`` runs them once per process in a worker thread, and tells which devices
this machine has, so the device pickers offer only those.
"""

from __future__ import annotations

import logging
from typing import Callable

logger = logging.getLogger(__name__)

_state: dict = {"worker": None, "devices": None, "listeners": []}


def _load_qt_plugins() -> None:
    """Load Qt's image-format plugins in the main thread first. torch's shared libraries take the
    dynamic loader's lock while they wait for the GIL; if the main thread (holding the GIL) loads a
    Qt plugin meanwhile (the activity dock's spinning GIF, at a job's first progress bar), the two
    wait for each other for ever (seen here: Segment clicked while torch was importing)."""
    from qtpy.QtGui import QImageReader

    QImageReader.supportedImageFormats()


def _import_engine(training: bool = True):
    """Worker: import torch and the engine, then run one tiny backward pass (autograd's set-up)."""
    import torch

    from ..inference import chunked, predict  # noqa: F401 (imported for its one-time cost)
    from ..runtime.devices import cuda_available, mps_available

    devices = ["auto", "cpu"] + (["cuda"] if cuda_available() else []) + (["mps"] if mps_available() else [])
    yield devices
    if training:
        from ..config import ModelConfig
        from ..files.modelfile import new_model
        from ..train import training as _training  # noqa: F401

        network = new_model(ModelConfig(base_width=4, depth=2), seed=0).network.train()
        loss = network(torch.zeros(1, 1, 16, 16)).float().mean()
        loss.backward()
    return devices


def available_devices() -> list[str] | None:
    """The devices found by the warm-up, or None while it runs."""
    return _state["devices"]


def when_devices_known(callback: Callable[[list[str]], None]) -> None:
    """Call ``callback(devices)`` in the main thread once they are known (at once if they are)."""
    if _state["devices"] is not None:
        callback(_state["devices"])
    else:
        _state["listeners"].append(callback)


def warm_up(training: bool = True) -> None:
    """Start the warm-up once per process (the training part too, unless ``training`` is False)."""
    from napari.qt.threading import create_worker

    if _state["worker"] is not None:
        return
    _load_qt_plugins()

    def found(devices) -> None:
        if _state["devices"] is None:
            _state["devices"] = list(devices)
            for callback in _state["listeners"]:
                try:
                    callback(_state["devices"])
                except RuntimeError:  # its widget was closed (Qt deleted it) meanwhile
                    pass
            _state["listeners"].clear()

    worker = create_worker(_import_engine, training, _start_thread=False)
    worker.yielded.connect(found)
    worker.errored.connect(lambda error: logger.warning("warm-up failed: %s", error))
    _state["worker"] = worker
    worker.start()
