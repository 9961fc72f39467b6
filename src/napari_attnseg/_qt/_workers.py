"""Run the engine's progress generators in napari thread workers (DESIGN.md rules 2-4).

The worker yields the engine's progress dataclasses; every handler runs in the main thread, so
handlers may touch layers. Stop is ``worker.quit()``: the generator is closed at its next yield
(at most one batch or tile later) and ``aborted`` is emitted instead of ``returned``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Generator

from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils import progress as napari_progress
from napari.utils.notifications import show_error

from ..errors import AttnSegError

logger = logging.getLogger(__name__)

_STEPS = 1000  # resolution of the activity-dock bar; the engine reports fractions


def start_worker(
    generator_function: Callable[..., Generator],
    *args: Any,
    description: str,
    on_yield: Callable[[Any], None] | None = None,
    on_return: Callable[[Any], None] | None = None,
    on_abort: Callable[[], None] | None = None,
    on_finish: Callable[[], None] | None = None,
    **kwargs: Any,
) -> GeneratorWorker:
    """Start ``generator_function(*args, **kwargs)`` in a thread and show it in the activity dock.

    ``on_finish`` runs last in every case (returned, aborted or failed): restore controls there.
    Errors appear as napari notifications; a user mistake (AttnSegError) shows its message only.
    """

    def advance(report: Any) -> None:
        fraction = getattr(report, "fraction", None)
        if fraction is not None:
            target = int(round(min(max(fraction, 0.0), 1.0) * _STEPS))
            if target > bar.n:
                bar.update(target - bar.n)
        if on_yield is not None:
            on_yield(report)

    def failed(error: Exception) -> None:
        if isinstance(error, AttnSegError):
            show_error(f"{description}: {error}")
        else:
            logger.error("%s failed", description, exc_info=error)
            show_error(f"{description} failed: {type(error).__name__}: {error}")

    # Giving "errored" a handler here stops superqt from re-raising the error in the event loop.
    worker = create_worker(generator_function, *args, _start_thread=False, _connect={"errored": failed},
                           **kwargs)
    bar = napari_progress(total=_STEPS, desc=description)
    worker.yielded.connect(advance)
    if on_return is not None:
        worker.returned.connect(on_return)
    if on_abort is not None:
        worker.aborted.connect(on_abort)
    worker.finished.connect(bar.close)
    if on_finish is not None:
        worker.finished.connect(on_finish)
    worker.start()
    return worker
