"""AttnSeg: Fine-tune — train on the corrected, checked labels in a worker with a live plot."""

from __future__ import annotations

import datetime as _dt
import logging
import math
import time

import napari
import numpy as np
from magicgui.widgets import CheckBox, Container, FloatSpinBox, SpinBox
from napari.layers import Image, Labels
from napari.utils.notifications import show_info
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QVBoxLayout

from ..config import TrainConfig
from . import _common, _warmup
from ._plot import LivePlot
from ._session import LayerNames
from ._workers import start_worker

logger = logging.getLogger(__name__)

REDRAW_S = 0.25  # the plot, bar and status line follow training at most this often (and every epoch)


def _train_job(session, images, labels, masks, config, channel_axis, names, checkpoint):
    """Worker: the model in use (the first use loads it and imports torch), then fine-tuning."""
    from ..train.training import train_steps

    return (yield from train_steps(session.model, images, labels, masks, config, channel_axis, names=names,
                                   checkpoint=checkpoint))


def _segment_job(image, model, channel_axis):
    from ..inference.predict import segment_steps

    return (yield from segment_steps(image, model, None, channel_axis))


def _beats(after, before) -> bool:
    from ..train.training import beats

    return beats(after, before)


class FinetuneWidget(_common.WorkerDock):
    """Start/Stop fine-tuning; a model that beat the one in use on the held-back part replaces it."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(napari_viewer)
        _common.warm_up_labels()
        _warmup.warm_up()  # torch and its training machinery, before the first Start
        self.best = None
        self.used_entries: list = []
        self.segment_worker = None
        self._trained_layer_id: str | None = None  # the image layer the job trains on
        self._last_drawn = 0.0

        defaults = TrainConfig()
        self.image_combo = _common.layer_combo(self.viewer, Image, "image")
        self.labels_combo = _common.layer_combo(self.viewer, Labels, "corrected labels",
                                                keep=lambda name: not _common.is_checked_layer(name))
        self.checked_combo = _common.layer_combo(self.viewer, Labels, "checked regions",
                                                 keep=_common.is_checked_layer)
        self.seconds = SpinBox(label="time budget (s)", value=int(defaults.max_seconds), min=5, max=24 * 3600,
                               step=30)
        self.epochs = SpinBox(label="max epochs", value=defaults.max_epochs, min=1, max=100000)
        self.learning_rate = FloatSpinBox(label="learning rate", value=defaults.learning_rate, min=1e-5, max=0.1,
                                          step=0.0005)
        self.augment = CheckBox(text="augment (flips, rotations, intensity, size)", value=defaults.augment)
        self.val_fraction = FloatSpinBox(label="validation fraction", value=defaults.val_fraction, min=0.0,
                                         max=0.5, step=0.05)
        self.form = Container(widgets=[self.image_combo, self.labels_combo, self.checked_combo, self.seconds,
                                       self.epochs, self.learning_rate, self.augment, self.val_fraction])
        self.start_button = _common.button("Start", self.start, "fine-tune the current model")
        self.stop_button = _common.button("Stop", self.stop, "stop now and keep the best model so far")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.plot = LivePlot()
        self.status.setText("Train on corrected labels; only checked regions count.")
        self.result = QLabel("")
        self.result.setWordWrap(True)

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.plot)
        layout.addWidget(self.status)
        layout.addWidget(self.result)
        layout.addStretch()
        _common.watch_layers(self.viewer, self.form)
        self.session.image_shown.connect(self._select_image)

    def _select_image(self, image_name: str) -> None:
        names = LayerNames(image_name)
        self.form.reset_choices()
        for combo, name in ((self.image_combo, names.image), (self.labels_combo, names.labels),
                            (self.checked_combo, names.checked)):
            if name in combo.choices:
                combo.value = name

    def train_config(self) -> TrainConfig:
        return TrainConfig(max_seconds=float(self.seconds.value), max_epochs=int(self.epochs.value),
                           learning_rate=float(self.learning_rate.value), augment=bool(self.augment.value),
                           val_fraction=float(self.val_fraction.value))

    def training_data(self):
        """Images, labels and masks: the current layer pair plus the project's corrected images."""
        from ..errors import InputError

        image_layer = _common.get_layer(self.viewer, self.image_combo.value)
        labels_layer = _common.get_layer(self.viewer, self.labels_combo.value)
        checked_layer = _common.get_layer(self.viewer, self.checked_combo.value)
        if image_layer is None or labels_layer is None:
            raise InputError("choose an image and its corrected labels")
        if (checked_layer is None or checked_layer.unique_id == labels_layer.unique_id
                or not np.any(checked_layer.data)):
            raise InputError("mark the regions you reviewed as checked first (AttnSeg: Correct)")
        spatial = tuple(image_layer.data.shape[:-1] if image_layer.rgb else image_layer.data.shape)
        for layer in (labels_layer, checked_layer):
            if tuple(layer.data.shape) != spatial:
                raise InputError(f"'{layer.name}' is {tuple(layer.data.shape)} but the image '{image_layer.name}' "
                                 f"is {spatial}; choose the layers made for this image")
        # Copies: the worker must never read arrays the user keeps painting in the main thread.
        images = [np.array(image_layer.data, copy=True)]
        labels = [np.array(labels_layer.data, copy=True)]
        masks = [np.asarray(checked_layer.data) > 0]
        self.image_names = [image_layer.name]  # recorded (with content hashes) in the tuned model's card
        self.used_entries = []
        project = self.session.project
        if project is not None:
            current = self.session.current_entry
            if current is not None and current.stem != image_layer.name:
                current = None  # training on a layer that is not the project image on screen
            if current is not None:
                self.image_names[0] = current.file
            for entry, image, entry_labels, checked in project.training_set():
                if current is not None and entry.file == current.file:
                    continue  # the layers on screen are newer than its saved files
                images.append(image)
                labels.append(entry_labels)
                masks.append(checked)
                self.image_names.append(entry.file)
                self.used_entries.append(entry)
            if current is not None and current not in self.used_entries:
                self.used_entries.append(current)
        channel_axis = -1 if image_layer.rgb else None
        return images, labels, masks, channel_axis

    def start(self) -> None:
        from ..errors import AttnSegError

        self.session.autosave()
        try:
            config = self.train_config()
            images, labels, masks, channel_axis = self.training_data()
        except AttnSegError as error:
            self.fail(f"Fine-tune: {error}")
            return
        self.best = None
        self._trained_layer_id = _common.get_layer(self.viewer, self.image_combo.value).unique_id
        self.plot.clear()
        self.result.setText("")
        self.progress.setValue(0)
        self._set_running(True)
        self.status.setText(f"fine-tuning {self.session.model_label} on {len(images)} image(s)…")
        self.worker = start_worker(
            _train_job, self.session, images, labels, masks, config, channel_axis, self.image_names,
            self._checkpoint_path(),
            description="Fine-tuning", on_yield=self._on_progress, on_return=self._finished_training,
            on_abort=self._on_abort, on_error=lambda message: self.status.setText(message),
            on_finish=self._on_finish,
        )

    def _checkpoint_path(self):
        """In a project, the best model so far is kept on disk while training runs (every minute), so a
        crash of napari during a long fine-tune keeps what it had learnt; it goes once training ends."""
        project = self.session.project
        return project.models_dir() / "checkpoint.model" if project is not None else None

    stop = _common.WorkerDock.cancel  # Stop: the best model so far is kept (see _on_abort)

    def _on_progress(self, report) -> None:
        if report.val is None:
            self.plot.add_loss(report.step, report.loss)
        else:
            self.plot.add_score(report.step, report.val["ap50"])
        if report.model is not None:
            self.best = report.model
        # Redraw a few times a second, not after every batch: each redraw is main-thread work
        now = time.perf_counter()
        if report.val is None and now - self._last_drawn < REDRAW_S:
            return
        self._last_drawn = now
        self.progress.setValue(int(report.fraction * 1000))
        self.plot.update()
        eta = f", about {report.eta:.0f} s left" if math.isfinite(report.eta) else ""
        score = f", best val AP50 {report.best_score:.3f}" if report.best_score is not None else ""
        saved = ", best model saved to the project" if getattr(report, "checkpointed", False) else ""
        self.status.setText(f"epoch {report.epoch}, step {report.step}, loss {report.loss:.3f}{score}{eta}{saved}")

    def _on_abort(self) -> None:
        if self.best is None:
            self.status.setText("stopped before any improvement; the model in use is unchanged")
            self.progress.setValue(0)
            return
        self._adopt(self.best, stopped=True)

    def _finished_training(self, model) -> None:
        self._adopt(model)

    def _on_finish(self) -> None:
        self._set_running(False)
        path = self._checkpoint_path()
        if path is not None:
            path.unlink(missing_ok=True)  # its job was to survive a crash; training has ended

    def _adopt(self, model, stopped: bool = False) -> None:
        """Main thread: make ``model`` current if it beat the model in use on the held-back part, save
        it into the project, re-segment the image. One rule for Stop and for the end of the budget."""
        validation = model.card.get("validation") or {}
        before, after = validation.get("before"), validation.get("after")
        self.progress.setValue(1000)
        if before and after:
            self.result.setText(f"validation AP50 {before['ap50']:.3f} → {after['ap50']:.3f}, "
                                f"Dice {before['dice']:.3f} → {after['dice']:.3f}")
        if before and not _beats(after, before):
            message = ("Fine-tuning did not beat the model in use on the held-back part, so it stays in use; "
                       "correct and check more of the image, or give it more time")
            self.status.setText(message)
            show_info(message)
            return
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        model.card["name"] = f"finetuned-{stamp}"
        self.session.set_model(model, model.card["name"], tuned=True)
        saved = ""
        if self.session.project is not None:
            # Statuses first: they reach project.json with the model file, or with the next save.
            for entry in self.used_entries:
                entry.status = "training"
            file_name = self.session.save_model(model)  # a failed write is kept and retried
            saved = f"; saved to {file_name}" if file_name else "; not saved yet (will retry)"
            self.session.project_changed.emit()
        unvalidated = "" if before else " (nothing could be held back to validate it)"
        self.status.setText(f"{'stopped' if stopped else 'done'}: now using {model.card['name']}{saved}{unvalidated}")
        show_info(f"Fine-tuned model {model.card['name']} is now in use{saved}")
        self._resegment(model)

    def _resegment(self, model) -> None:
        """Segment the training image with the new model into '<image>_tuned_labels' (edits untouched).

        The image is the one trained on, not whatever the picker shows now; if it was closed, skip.
        """
        layer = _common.layer_by_id(self.viewer, self._trained_layer_id)
        if layer is None:
            show_info("The image trained on was closed, so nothing was re-segmented with the new model")
            return
        layer_id, name, scale = layer.unique_id, layer.name, layer.scale

        def show(result) -> None:
            current = _common.layer_by_id(self.viewer, layer_id)
            if current is None:
                show_info(f"{name} was closed; its re-segmentation with the new model was dropped")
                return
            _common.put_layer(self.viewer, f"{current.name}_tuned_labels", result.labels, Labels, scale=scale)
            self.status.setText(f"{self.status.text()}; {current.name}_tuned_labels shows what it finds "
                                f"({int(result.labels.max())} objects)")

        self.segment_worker = start_worker(_segment_job, np.asarray(layer.data), model, -1 if layer.rgb else None,
                                           description=f"Re-segmenting {name}", on_return=show,
                                           on_finish=self._resegment_done)

    def _resegment_done(self) -> None:
        self.segment_worker = None

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        if not running:
            self.worker = None
