"""Run the engine's progress generators in napari thread workers.

The rules (CONTRIBUTING.md): every long job is a generator that yields small progress reports
and returns its result; the worker yields the engine's progress dataclasses; every handler runs in
the main thread, so handlers may touch layers, and nothing else touches them. Stop is
``worker.quit()``: superqt stops advancing the generator at its next yield (at most one batch or
tile later) and emits ``aborted`` instead of ``returned``.
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


class WorkerError(Exception):
    """A RuntimeError raised in a worker, re-raised as a type superqt reports.

    superqt treats a RuntimeError from a worker as "the worker was deleted" and then emits neither
    ``errored`` nor ``finished``, which would leave the widget's buttons disabled for good (torch's
    out-of-memory errors are RuntimeErrors).
    """


def _guarded(generator_function, outcome: dict, *args, **kwargs):
    try:
        result = yield from generator_function(*args, **kwargs)
    except RuntimeError as error:
        raise WorkerError(f"{type(error).__name__}: {error}") from error
    outcome["result"] = result
    return result


def start_worker(
    generator_function: Callable[..., Generator],
    *args: Any,
    description: str,
    on_yield: Callable[[Any], None] | None = None,
    on_return: Callable[[Any], None] | None = None,
    on_abort: Callable[[], None] | None = None,
    on_finish: Callable[[], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> GeneratorWorker:
    """Start ``generator_function(*args, **kwargs)`` in a thread and show it in the activity dock.

    ``on_finish`` runs last in every case (returned, aborted or failed): restore controls there.
    Errors appear as napari notifications; a user mistake (AttnSegError) shows its message only.
    ``on_error`` gets the same message (for the dock's status line).
    A Stop that arrives after the generator's last yield still delivers its result to
    ``on_return`` (superqt would otherwise drop it).
    """
    outcome: dict[str, Any] = {}

    def advance(report: Any) -> None:
        if "finished" in outcome:
            return
        # The handler first: napari's activity-dock bar calls processEvents() when it moves, which
        # would run the queued aborted/finished handlers *before* this report's handler (a Stop
        # would then see a stale state, and a late report would overwrite "cancelled").
        if on_yield is not None:
            on_yield(report)
        fraction = getattr(report, "fraction", None)
        if fraction is not None and "finished" not in outcome:
            target = int(round(min(max(fraction, 0.0), 1.0) * _STEPS))
            if target > bar.n:
                bar.update(target - bar.n)

    def failed(error: Exception) -> None:
        if isinstance(error, AttnSegError):
            message = f"{description}: {error}"
        else:
            logger.error("%s failed", description, exc_info=error)
            message = f"{description} failed: {type(error).__name__}: {error}"
        show_error(message)
        if on_error is not None:
            on_error(message)

    # Giving "errored" a handler here stops superqt from re-raising the error in the event loop.
    worker = create_worker(_guarded, generator_function, outcome, *args, _start_thread=False,
                           _connect={"errored": failed}, **kwargs)
    bar = napari_progress(total=_STEPS, desc=description)
    worker.yielded.connect(advance)
    worker.returned.connect(lambda _result: outcome.setdefault("delivered", True))
    worker.aborted.connect(lambda: outcome.setdefault("delivered", True))
    if on_return is not None:
        worker.returned.connect(on_return)
    if on_abort is not None:
        worker.aborted.connect(on_abort)

    def finished() -> None:
        outcome["finished"] = True
        bar.close()
        if "result" in outcome and "delivered" not in outcome and on_return is not None:
            on_return(outcome["result"])
        if on_finish is not None:
            on_finish()

    worker.finished.connect(finished)
    worker.start()
    return worker
