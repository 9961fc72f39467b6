"""A model chooser (bundled default, last fine-tuned, or a file) that several docks share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, FileEdit

if TYPE_CHECKING:
    from ..files.modelfile import SegModel
    from ._session import Session

MODEL_IN_USE, MODEL_DEFAULT, MODEL_TUNED, MODEL_FILE = "Model in use", "Bundled default", "Last fine-tuned", "From file"
MODEL_FILE_FILTER = "*.model *.safetensors *.onnx *.zip"


@dataclass(frozen=True)
class Resolved:
    """A job's first report: the model it runs with (loaded in the worker) and its name."""

    model: object  # SegModel
    label: str


def _file_path(value) -> Path | None:
    text = str(value) if value is not None else ""
    return Path(text) if text and Path(text) != Path(".") else None


class ModelPicker:
    """A combo box of model sources and a file field shown when 'From file' is chosen.

    'Model in use' is the session's current model: the last one fine-tuned, chosen in another dock
    (Compare's *Use A*, the Model dock), or the bundled default.
    """

    def __init__(self, label: str = "model", value: str = MODEL_IN_USE) -> None:
        choices = [MODEL_IN_USE, MODEL_DEFAULT, MODEL_TUNED, MODEL_FILE]
        self.combo = ComboBox(label=label, choices=choices, value=value)
        self.file = FileEdit(label=f"{label} file", mode="r", filter=MODEL_FILE_FILTER,
                             visible=value == MODEL_FILE)
        self.combo.changed.connect(lambda choice: setattr(self.file, "visible", choice == MODEL_FILE))

    @property
    def widgets(self) -> list:
        return [self.combo, self.file]

    def check_choice(self, session: Session, choice: str | None = None, file=None) -> None:
        """A quick check in the main thread (no file is read, torch is not imported): AttnSegError if
        the choice cannot work."""
        from ..errors import ModelFileError

        choice = self.combo.value if choice is None else choice
        if choice == MODEL_TUNED and session.tuned_model is None:
            raise ModelFileError("no model has been fine-tuned in this session yet")
        if choice == MODEL_FILE and _file_path(self.file.value if file is None else file) is None:
            raise ModelFileError("choose a model file first")

    def resolve(self, session: Session, choice: str | None = None, file=None) -> tuple[SegModel, str]:
        """The chosen model and its name; AttnSegError with a clear message if unavailable.

        May load a model file (and import torch): jobs call it in their worker, with the choice read
        in the main thread when the button was clicked.
        """
        from ..files.loading import load_model

        choice = self.combo.value if choice is None else choice
        file = self.file.value if file is None else file
        self.check_choice(session, choice, file)
        if choice == MODEL_IN_USE:
            return session.model, session.model_label
        if choice == MODEL_TUNED:
            return session.tuned_model, session.tuned_model.name
        if choice == MODEL_FILE:
            model = load_model(_file_path(file))
            return model, model.name  # one name for a model: its card's, wherever it was loaded from
        return session.default_model, "bundled default"
