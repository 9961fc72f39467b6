"""Pay the engine's one-time costs when a dock opens, not in a click or at the start of a job.

Importing torch and the engine takes ~1.2 s, and the first backward pass of a session ~0.3 s more
(PyTorch sets up its autograd machinery); done in a click handler or at a job's start, either froze
napari. ``warm_up`` does both once per process, in the main thread, when the first AttnSeg dock
opens. Not in a worker: a worker importing torch's shared libraries while the main thread loaded a
Qt plugin hung napari for good (seen here), and a worker's first optimiser step, importing more of
torch while a Segment result was being shown, froze the main thread for 1.6 s on the import lock.
It also tells which devices this machine has, so the device pickers offer only those.

Last, it moves every object alive by then (napari's, Qt's, torch's: hundreds of thousands) out of
the cyclic garbage collector's reach (``gc.freeze``). A full collection holds the GIL for as long as
it walks them, and the workers' allocations trigger such collections: one in a fine-tune's first
validation froze napari for 0.4-0.5 s (seen here by sampling both threads' stacks). Objects that
exist at start-up mostly live as long as napari does; the few that die later are freed by reference
counting, only cycles among them are not.
"""

from __future__ import annotations

import gc
import logging
from typing import Callable

logger = logging.getLogger(__name__)

_state: dict = {"devices": None, "listeners": []}


def _load_qt_plugins() -> None:
    """Load Qt's image-format plugins now, before any job's worker runs: a job's first progress bar
    starts the activity dock's spinning GIF, whose plugin was being loaded in the hang above."""
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


def _first_training_step() -> None:
    """One tiny training step, so the first fine-tune does not pay the set-up of autograd and of the
    optimiser (whose first step imports more of torch)."""
    import torch

    from ..config import ModelConfig
    from ..files.modelfile import new_model

    network = new_model(ModelConfig(base_width=4, depth=2), seed=0).network.train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    network(torch.zeros(1, 1, 16, 16)).float().mean().backward()
    optimizer.step()


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
    """The warm-up, once per process, in the main thread (see above)."""
    if _state["devices"] is not None:
        return
    _load_qt_plugins()
    _state["devices"] = _import_engine()
    try:
        _first_training_step()
    except Exception as error:  # a warm-up that fails costs only the time it saves
        logger.warning("warm-up step failed: %s", error)
    gc.freeze()
    for callback in _state["listeners"]:
        try:
            callback(_state["devices"])
        except RuntimeError:  # its widget was closed (Qt deleted it) meanwhile
            pass
    _state["listeners"].clear()
