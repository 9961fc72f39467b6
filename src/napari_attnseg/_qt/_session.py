"""What the four dock widgets of one viewer share: the current model, the project, predictions.

Kept free of widgets so that each dock stays thin; one Session per viewer.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from napari.utils.notifications import show_error, show_info
from psygnal import Signal

from ..files.atomic import describe_os_error

if TYPE_CHECKING:
    import napari

    from ..files.modelfile import SegModel
    from ..project.folder import ImageEntry, Project

logger = logging.getLogger(__name__)

_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class PendingLabels:
    """Labels (and checks, status) of a project image that could not be written yet."""

    project: Project
    entry: ImageEntry
    labels: np.ndarray
    checked: np.ndarray | None
    status: str | None


def _reason(error: Exception) -> str:
    """What went wrong with a save, in words a biologist can act on."""
    reason = getattr(error, "reason", None)  # the engine's own words, where it gives them
    if isinstance(reason, str) and reason:
        return reason
    if isinstance(error, OSError) and error.errno is not None:
        return describe_os_error(error)  # the same words the engine gives
    return f"{type(error).__name__}: {error}"


@dataclass
class PredictionRecord:
    """The model's own output for an image layer, to tell user edits apart from it."""

    labels: np.ndarray
    uncertainty: np.ndarray | None = None


class Session:
    """Shared state of the AttnSeg widgets in one napari viewer."""

    model_changed = Signal(str)
    project_changed = Signal()
    image_shown = Signal(str)  # name of the image layer of the project image now shown
    save_state_changed = Signal(str)  # why saving fails now, or "" once everything is saved again

    def __init__(self) -> None:
        self._default_model: SegModel | None = None
        self.current_model: SegModel | None = None
        self.model_label = "bundled default"
        self.tuned_model: SegModel | None = None
        self.project: Project | None = None
        self.current_entry: ImageEntry | None = None
        self.predictions: dict[str, PredictionRecord] = {}
        # Weak: the sessions live in a module-level dict keyed (weakly) by viewer, so a strong
        # reference to a widget here would keep its viewer alive forever.
        self._autosave_hooks: list[weakref.WeakMethod] = []
        # Writes that failed (disk full, read-only folder): kept here and retried by every autosave,
        # so no edit is lost while the fault lasts, and the user hears about it once, not every tick.
        self.unsaved: dict[str, PendingLabels] = {}  # by labels file path
        self.unsaved_model: SegModel | None = None
        self.save_fault: str | None = None
        self._tried_this_pass: set[str] | None = None
        # (mtime, size) of each labels file as this session last read or wrote it: a file that
        # differs was written by someone else meanwhile, and is merged into, not overwritten
        self.stamps: dict[str, tuple[int, int] | None] = {}

    # -- model -----------------------------------------------------------------------------------
    @property
    def default_model(self) -> SegModel:
        """The bundled model, loaded (and torch imported) on first use only."""
        if self._default_model is None:
            from ..files.loading import load_model

            self._default_model = load_model()
        return self._default_model

    @property
    def default_loaded(self) -> bool:
        """Whether the bundled model is in memory already (reading it would not load torch)."""
        return self._default_model is not None

    @property
    def model(self) -> SegModel:
        """The model in use: the last one segmented with or fine-tuned, else the bundled one."""
        return self.current_model if self.current_model is not None else self.default_model

    def set_model(self, model: SegModel, label: str, tuned: bool = False) -> None:
        """Make ``model`` the one in use (and, if ``tuned``, the session's last fine-tuned model)."""
        self.current_model = model
        self.model_label = label
        if tuned:
            self.tuned_model = model
        self.model_changed.emit(label)

    # -- autosave --------------------------------------------------------------------------------
    def add_autosave_hook(self, method: Callable[[], Any]) -> None:
        """Register a widget's bound ``autosave`` method (held weakly)."""
        self._autosave_hooks.append(weakref.WeakMethod(method))

    def autosave(self) -> bool:
        """Ask every widget that holds unsaved edits to save them now, then retry failed writes.

        Returns True when nothing is left unsaved.
        """
        self._tried_this_pass = set()  # a file a widget just failed to write is not retried at once
        try:
            for reference in list(self._autosave_hooks):
                hook = reference()
                if hook is None:
                    self._autosave_hooks.remove(reference)
                else:
                    hook()
            return self.retry_unsaved()
        finally:
            self._tried_this_pass = None

    # -- saving ----------------------------------------------------------------------------------
    def save_labels(self, entry: ImageEntry, labels: np.ndarray, checked: np.ndarray | None = None,
                    status: str | None = None, announce: bool = False, project: Project | None = None) -> bool:
        """Write a project image's labels; if that fails keep a copy here for the next autosave.

        ``announce``: notify even if this fault was already reported (the user clicked Save).
        ``project``: the entry's project when it is no longer the open one.
        """
        from ..errors import AttnSegError

        project = project if project is not None else self.project
        key = str(project.labels_path(entry))
        if self._tried_this_pass is not None:
            self._tried_this_pass.add(key)
        pending = self.unsaved.get(key)
        if checked is None and pending is not None:
            checked = pending.checked  # an earlier, still unwritten mask must not be dropped
        if status is None and pending is not None:
            status = pending.status
        try:
            project.save_labels(entry, labels, checked, status=status)
        except (OSError, AttnSegError) as error:
            self.unsaved[key] = PendingLabels(
                project, entry, np.array(labels, copy=True),
                None if checked is None else np.array(checked, dtype=bool, copy=True), status)
            self._save_failed(entry.file, error, announce)
            return False
        self.unsaved.pop(key, None)
        self.stamps[key] = project.labels_stamp(entry)
        self._save_worked()
        return True

    def pending_labels(self, entry: ImageEntry) -> PendingLabels | None:
        """The not yet written labels of ``entry`` of the open project, if any."""
        if self.project is None:
            return None
        return self.unsaved.get(str(self.project.labels_path(entry)))

    def save_model(self, model: SegModel) -> str | None:
        """Save a fine-tuned model into the project and point the project at it.

        Returns the file name, or None when there is no project or the write failed (the model is
        kept here and written by the next autosave).
        """
        from ..files.modelfile import save_model

        project = self.project
        if project is None:
            return None
        path = project.models_dir() / f"{model.name}.model"
        try:
            save_model(model, path)
            project.model_file = str(path.relative_to(project.data_dir))
            project.save()
        except OSError as error:
            self.unsaved_model = model
            self._save_failed(path.name, error, announce=False)
            return None
        if self.unsaved_model is model:
            self.unsaved_model = None
        self._save_worked()
        return path.name

    def retry_unsaved(self) -> bool:
        """Write what earlier saves could not; True when nothing is left unsaved."""
        for key, pending in list(self.unsaved.items()):
            if self._tried_this_pass is not None and key in self._tried_this_pass:
                continue
            self.save_labels(pending.entry, pending.labels, pending.checked, pending.status,
                             project=pending.project)
        if self.unsaved_model is not None:
            self.save_model(self.unsaved_model)
        return not self.has_unsaved()

    def has_unsaved(self) -> bool:
        return bool(self.unsaved) or self.unsaved_model is not None

    def rescue_unsaved(self) -> list[str]:
        """Last resort as napari closes with writes still failing: copy the unsaved labels outside the
        project (see rescue.py); the project puts them back when it is next opened. Returns the files."""
        from ..errors import AttnSegError
        from ..project.rescue import write_rescue

        rescued = []
        for pending in self.unsaved.values():
            try:
                write_rescue(pending.project, pending.entry, pending.labels, pending.checked, pending.status)
            except (OSError, AttnSegError) as error:
                logger.error("could not rescue the edits of %s either: %s", pending.entry.file, error)
                continue
            rescued.append(pending.entry.file)
        return rescued

    def _save_failed(self, file: str, error: Exception, announce: bool) -> None:
        reason = _reason(error)
        logger.warning("could not save %s: %s", file, error)
        first = self.save_fault is None
        self.save_fault = reason
        if first or announce:
            show_error(f"Could not save {file}: {reason}. Your edits stay in napari and are saved "
                       "automatically as soon as writing works again.")
        self.save_state_changed.emit(reason)

    def _save_worked(self) -> None:
        if self.save_fault is not None and not self.has_unsaved():
            self.save_fault = None
            show_info("Saving works again: every edit is saved.")
            self.save_state_changed.emit("")

    # -- predictions -----------------------------------------------------------------------------
    def labels_edited(self, image_name: str, labels: np.ndarray) -> bool:
        """True if ``labels`` differ from what the model predicted for ``image_name``."""
        record = self.predictions.get(image_name)
        if record is None:
            return bool(np.any(labels))
        return record.labels.shape != labels.shape or bool(np.any(record.labels != labels))


def session_for(viewer: napari.Viewer) -> Session:
    """The Session of ``viewer`` (created on first use).

    Docks opened from napari's Plugins menu each get their own proxy of the viewer; the Session is
    keyed by the viewer behind the proxy (wrapt's documented ``__wrapped__``), so all docks of one
    window share one Session however many proxies come and go.
    """
    viewer = getattr(viewer, "__wrapped__", viewer)
    session = _SESSIONS.get(viewer)
    if session is None:
        session = _SESSIONS[viewer] = Session()
    return session


@dataclass
class LayerNames:
    """Names of the layers that belong to one image."""

    image: str
    labels: str = field(init=False)
    checked: str = field(init=False)

    def __post_init__(self) -> None:
        self.labels = f"{self.image}_labels"
        self.checked = f"{self.image}_checked"
