"""AttnSeg: Model — what the model in use is and how it was made; open, save and export it."""

from __future__ import annotations

from pathlib import Path

import napari
from magicgui.widgets import ComboBox, Container, FileEdit
from napari.utils.notifications import show_info
from qtpy.QtWidgets import QLabel, QPlainTextEdit, QVBoxLayout

from . import _common
from ._model_picker import MODEL_FILE_FILTER
from ._workers import start_worker

SAVE_FORMATS = {"napari-attnseg model (.safetensors)": ("safetensors", ".safetensors"),
                "ONNX (.onnx)": ("onnx", ".onnx"), "TorchScript (.pt)": ("torchscript", ".pt"),
                "bioimage.io package (.zip)": ("bioimageio", ".zip")}


def _load_job(path: Path):
    """Worker: read a model file (the first one imports torch)."""
    from ..files.loading import load_model

    yield None
    return load_model(path)


def _card_job(session):
    """Worker: the model in use's card (loading the bundled model on first use)."""
    yield None
    return session.model.summary()


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
        """The card of the model in use; the bundled one is loaded in a worker the first time."""
        label = self.session.model_label
        if self.session.current_model is not None or self.session.default_loaded:
            self.card.setPlainText(f"in use: {label}\n\n{self.session.model.summary()}")
            return
        self.card.setPlainText("loading the bundled model…")
        self._card_worker = start_worker(
            _card_job, self.session, description="Loading the model",
            on_return=lambda summary: self.card.setPlainText(f"in use: {label}\n\n{summary}"),
            on_error=lambda message: self.status.setText(message))

    def open_model(self) -> None:
        path = Path(str(self.open_file.value))
        if not path.name or path == Path("."):
            self.fail("Model: choose a model file first")
            return
        self.open_button.setEnabled(False)
        self.status.setText(f"reading {path.name}…")

        def opened(model) -> None:
            # one name for one model: its card's (the file it came from is said here once)
            self.session.set_model(model, model.name)
            self.status.setText(f"now using {model.name} (from {path.name})")
            show_info(f"AttnSeg now uses {model.name} (from {path.name})")

        self.worker = start_worker(_load_job, path, description=f"Opening {path.name}", on_return=opened,
                                   on_error=lambda message: self.status.setText(message),
                                   on_finish=self._open_finished)

    def _open_finished(self) -> None:
        self.open_button.setEnabled(True)
        self.worker = None

    def _suggest_suffix(self, choice: str) -> None:
        current = Path(str(self.save_file.value))
        if current.name:
            self.save_file.value = current.with_suffix(SAVE_FORMATS[choice][1])

    def save(self) -> None:
        """Save (safetensors) or export the model in use to the chosen file, in a worker."""
        path = Path(str(self.save_file.value))
        if not path.name or path.is_dir():
            self.fail("Model: choose a file to save to")
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
            on_error=lambda message: self.status.setText(message),
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
