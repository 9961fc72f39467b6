"""AttnSeg: Model — what the model in use is and how it was made; open, save and export it."""

from __future__ import annotations

from pathlib import Path

import napari
from magicgui.widgets import ComboBox, Container, FileEdit
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QLabel, QPlainTextEdit, QVBoxLayout

from . import _common
from ._model_picker import MODEL_FILE_FILTER
from ._workers import start_worker

SAVE_FORMATS = {"napari-attnseg model (.safetensors)": ("safetensors", ".safetensors"),
                "ONNX (.onnx)": ("onnx", ".onnx"), "TorchScript (.pt)": ("torchscript", ".pt"),
                "bioimage.io package (.zip)": ("bioimageio", ".zip")}


def _save_job(model, path: Path, save_format: str):
    """Save or export in a worker (exports run their output checks): one yield first, so the activity
    dock shows it at once."""
    yield None
    if save_format == "safetensors":
        from ..files.modelfile import save_model

        save_model(model, path)
        return {"format": save_format}
    from ..files.export import export_model

    return export_model(model, path, save_format)


class ModelWidget(_common.WorkerDock):
    """The model in use: its card and training record; open one, save it, export it."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(napari_viewer)

        self.card = QPlainTextEdit()
        self.card.setReadOnly(True)
        self.card.setMinimumHeight(16 * self.card.fontMetrics().lineSpacing())  # the card and its record
        self.card.setPlaceholderText("The bundled default model (loaded on first use). Press Show to read "
                                     "its card.")
        self.show_button = _common.button("Show", self.show_card, "load the model in use and show its card")
        self.open_file = FileEdit(label="model file", mode="r", filter=MODEL_FILE_FILTER)
        self.open_button = _common.button("Use this file", self.open_model, "segment with the chosen model file")
        self.save_format = ComboBox(label="save as", choices=list(SAVE_FORMATS))
        self.save_file = FileEdit(label="save to", mode="w")
        self.save_button = _common.button("Save", self.save, "save or export the model in use")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Model in use"))
        layout.addWidget(self.card)
        layout.addWidget(self.show_button)
        layout.addWidget(Container(widgets=[self.open_file]).native)
        layout.addWidget(self.open_button)
        layout.addWidget(Container(widgets=[self.save_format, self.save_file]).native)
        layout.addWidget(self.save_button)
        layout.addWidget(self.status)
        layout.addStretch()
        self.session.model_changed.connect(self._on_model_changed)  # a bound method: held weakly
        self.save_format.changed.connect(self._suggest_suffix)

    def _on_model_changed(self, _label: str) -> None:
        self.show_card()

    def show_card(self) -> None:
        self.card.setPlainText(f"in use: {self.session.model_label}\n\n{self.session.model.summary()}")

    def open_model(self) -> None:
        from ..errors import AttnSegError
        from ..files.loading import load_model

        path = Path(str(self.open_file.value))
        if not path.name:
            show_error("Model: choose a model file first")
            return
        try:
            model = load_model(path)
        except AttnSegError as error:
            show_error(f"Model: {error}")
            return
        self.session.set_model(model, path.name)
        show_info(f"AttnSeg now uses {path.name}")

    def _suggest_suffix(self, choice: str) -> None:
        current = Path(str(self.save_file.value))
        if current.name:
            self.save_file.value = current.with_suffix(SAVE_FORMATS[choice][1])

    def save(self) -> None:
        """Save (safetensors) or export the model in use to the chosen file, in a worker."""
        path = Path(str(self.save_file.value))
        if not path.name or path.is_dir():
            show_error("Model: choose a file to save to")
            return
        save_format, suffix = SAVE_FORMATS[self.save_format.value]
        if not path.suffix:
            path = path.with_suffix(suffix)
        model = self.session.model
        self.save_button.setEnabled(False)
        self.status.setText(f"saving {model.name} as {save_format}…")
        self.worker = start_worker(
            _save_job, model, path, save_format, description=f"Saving {model.name}",
            on_return=lambda report, where=path: self._on_saved(where, report),
            on_finish=self._finished,
        )

    def _on_saved(self, path: Path, report: dict) -> None:
        difference = report.get("max_abs_difference")
        checked = f"; its outputs match torch's to {difference:.1e}" if isinstance(difference, float) else ""
        validation = f"; bioimage.io validation: {report['validation']}" if "validation" in report else ""
        self.status.setText(f"saved {path}{checked}{validation}")
        show_info(f"Saved the model to {path.name}")

    def _finished(self) -> None:
        self.save_button.setEnabled(True)
        self.worker = None
