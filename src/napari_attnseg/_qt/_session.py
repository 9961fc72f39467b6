"""What the four dock widgets of one viewer share: the current model, the project, predictions.

Kept free of widgets so that each dock stays thin; one Session per viewer.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from psygnal import Signal

if TYPE_CHECKING:
    import napari

    from ..modelio import SegModel
    from ..project import ImageEntry, Project

_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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

    # -- model -----------------------------------------------------------------------------------
    @property
    def default_model(self) -> SegModel:
        """The bundled model, loaded (and torch imported) on first use only."""
        if self._default_model is None:
            from ..modelio import load_model

            self._default_model = load_model()
        return self._default_model

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

    def autosave(self) -> None:
        """Ask every widget that holds unsaved edits to save them now."""
        for reference in list(self._autosave_hooks):
            hook = reference()
            if hook is None:
                self._autosave_hooks.remove(reference)
            else:
                hook()

    # -- predictions -----------------------------------------------------------------------------
    def labels_edited(self, image_name: str, labels: np.ndarray) -> bool:
        """True if ``labels`` differ from what the model predicted for ``image_name``."""
        record = self.predictions.get(image_name)
        if record is None:
            return bool(np.any(labels))
        return record.labels.shape != labels.shape or bool(np.any(record.labels != labels))


def session_for(viewer: napari.Viewer) -> Session:
    """The Session of ``viewer`` (created on first use)."""
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
