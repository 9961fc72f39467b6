"""A model chooser (bundled default, last fine-tuned, or a file) that several docks share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, FileEdit

if TYPE_CHECKING:
    from ..files.modelfile import SegModel
    from ._session import Session

MODEL_IN_USE, MODEL_DEFAULT, MODEL_TUNED, MODEL_FILE = "Model in use", "Bundled default", "Last fine-tuned", "From file"
MODEL_FILE_FILTER = "*.model *.safetensors *.onnx *.zip"


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

    def resolve(self, session: Session) -> tuple[SegModel, str]:
        """The chosen model and a short name for it; AttnSegError with a clear message if unavailable."""
        from ..errors import ModelFileError
        from ..files.loading import load_model

        choice = self.combo.value
        if choice == MODEL_IN_USE:
            return session.model, session.model_label
        if choice == MODEL_TUNED:
            if session.tuned_model is None:
                raise ModelFileError("no model has been fine-tuned in this session yet")
            return session.tuned_model, session.tuned_model.name
        if choice == MODEL_FILE:
            if not str(self.file.value) or Path(str(self.file.value)) == Path("."):
                raise ModelFileError("choose a model file first")
            path = Path(str(self.file.value))
            return load_model(path), path.name
        return session.default_model, "bundled default"
