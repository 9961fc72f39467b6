"""Pay the engine's one-time costs when a dock opens, not in a click or at the start of a job.

Importing torch and the engine takes ~1.2 s, and the first backward pass of a session ~0.3 s more
(PyTorch sets up its autograd machinery); done in a click handler or at a job's start, either froze
napari. ``warm_up`` does both once per process, when the first AttnSeg dock opens: the imports in
the main thread (a worker importing torch's shared libraries while the main thread loaded a Qt
plugin hung napari for good, seen here; loading libraries is the dynamic loader's, one at a time,
so only the main thread does it), the backward pass in a worker. It also tells which devices this
machine has, so the device pickers offer only those.
"""

from __future__ import annotations

import logging
from typing import Callable

logger = logging.getLogger(__name__)

_state: dict = {"worker": None, "devices": None, "listeners": []}


def _load_qt_plugins() -> None:
    """Load Qt's image-format plugins now, before any worker runs: a job's first progress bar starts
    the activity dock's spinning GIF, and loading its plugin then, while a worker loaded libraries,
    was part of the hang described above."""
    from qtpy.QtGui import QImageReader

    QImageReader.supportedImageFormats()


def _import_engine() -> list[str]:
    """Main thread: import torch and the engine; the devices this machine has."""
    import torch  # noqa: F401 (imported for its one-time cost)

    from ..files import loading  # noqa: F401
    from ..inference import chunked, predict  # noqa: F401
    from ..runtime.devices import cuda_available, mps_available
    from ..train import training  # noqa: F401

    return ["auto", "cpu"] + (["cuda"] if cuda_available() else []) + (["mps"] if mps_available() else [])


def _first_backward_pass():
    """Worker: one tiny backward pass, so the first fine-tune does not pay autograd's set-up."""
    import torch

    from ..config import ModelConfig
    from ..files.modelfile import new_model

    yield
    network = new_model(ModelConfig(base_width=4, depth=2), seed=0).network.train()
    network(torch.zeros(1, 1, 16, 16)).float().mean().backward()


def available_devices() -> list[str] | None:
    """The devices found by the warm-up, or None while it runs."""
    return _state["devices"]


def when_devices_known(callback: Callable[[list[str]], None]) -> None:
    """Call ``callback(devices)`` in the main thread once they are known (at once if they are)."""
    if _state["devices"] is not None:
        callback(_state["devices"])
    else:
        _state["listeners"].append(callback)


def warm_up() -> None:
    """The warm-up, once per process: imports now, the first backward pass in a worker."""
    from napari.qt.threading import create_worker

    if _state["worker"] is not None:
        return
    _load_qt_plugins()
    _state["devices"] = _import_engine()
    for callback in _state["listeners"]:
        try:
            callback(_state["devices"])
        except RuntimeError:  # its widget was closed (Qt deleted it) meanwhile
            pass
    _state["listeners"].clear()
    worker = create_worker(_first_backward_pass, _start_thread=False)
    worker.errored.connect(lambda error: logger.warning("warm-up failed: %s", error))
    _state["worker"] = worker
    worker.start()
