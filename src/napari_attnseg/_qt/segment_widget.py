"""AttnSeg: Segment — run the model on an image layer (or the whole project) in a worker."""

from __future__ import annotations

import logging

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, SpinBox
from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import QHBoxLayout, QProgressBar, QVBoxLayout
from superqt import QCollapsible

from ..config import InferConfig
from . import _common, _suggest, _warmup
from ._model_picker import MODEL_TUNED, ModelPicker, Resolved
from ._segment_jobs import _project_job, _segment_job, _Target
from ._session import LayerNames, PredictionRecord
from ._workers import start_worker

logger = logging.getLogger(__name__)


class SegmentWidget(_common.WorkerDock):
    """Pick an image, a model and a device; Segment; Cancel; optional probability/uncertainty/attention."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(napari_viewer)
        _common.warm_up_labels()
        _warmup.warm_up()

        defaults = InferConfig()
        self.image_combo = _common.layer_combo(self.viewer, Image, "image")
        self.model_picker = ModelPicker("model")
        self.model_combo, self.model_file = self.model_picker.combo, self.model_picker.file
        self.device_combo = ComboBox(label="device", choices=["auto", "cpu"], value="auto")
        self.diameter = FloatSpinBox(label="object diameter (px)", value=0.0, min=0.0, max=2000.0, step=1.0,
                                     tooltip="the nuclei's typical diameter; auto measures it on the image")
        self.diameter.native.setSpecialValueText("auto")
        self.form = Container(widgets=[self.image_combo, self.model_combo, self.model_file, self.device_combo,
                                       self.diameter])
        self.tile_size = SpinBox(label="tile size", value=defaults.tile_size, min=32, max=4096, step=32)
        self.threshold = FloatSpinBox(label="probability threshold", value=defaults.prob_threshold, min=0.05,
                                      max=0.95, step=0.05)
        self.min_size = SpinBox(label="minimum object size", value=defaults.min_size, min=0, max=100000)
        self.show_probability = CheckBox(text="foreground probability layer", value=False)
        self.show_uncertainty = CheckBox(text="uncertainty layer", value=False)
        self.show_attention = CheckBox(text="attention-gate layers", value=False)
        self.advanced_form = Container(widgets=[self.tile_size, self.threshold, self.min_size,
                                                self.show_probability, self.show_uncertainty,
                                                self.show_attention])
        self.advanced = QCollapsible("Advanced")
        self.advanced.addWidget(self.advanced_form.native)

        self.segment_button = _common.button("Segment", self.start, "segment the chosen image")
        self.segment_all_button = _common.button("Segment all", self.start_all,
                                                 "segment every image of the project not yet corrected")
        self.cancel_button = _common.button("Cancel", self.cancel, "stop the running segmentation")
        self.cancel_button.setEnabled(False)
        self.suggest_button = _common.button("Suggest where to correct", self.suggest,
                                             "outline the most uncertain region you have not checked, and go there")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status.setText("model: bundled default (loads on first use)")

        buttons = QHBoxLayout()
        for widget in (self.segment_button, self.segment_all_button, self.cancel_button):
            buttons.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.advanced)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.suggest_button)
        layout.addWidget(self.status)
        layout.addStretch()

        _common.watch_layers(self.viewer, self.form)
        self.session.model_changed.connect(self._on_model_changed)
        self.session.project_changed.connect(self._update_buttons)
        self.session.image_shown.connect(self._select_image)
        self._scratch: dict[str, str] = {}  # chunked labels on disk, by their layer's unique_id
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        _warmup.when_devices_known(self._set_devices)
        self._update_buttons()

    # -- options ---------------------------------------------------------------------------------
    def _set_devices(self, devices: list[str]) -> None:
        """Offer only the devices this machine has (known once the engine is imported)."""
        current = self.device_combo.value
        self.device_combo.choices = devices
        self.device_combo.value = current if current in devices else "auto"

    def _select_image(self, image_name: str) -> None:
        """Follow the project: the image just shown is the one to segment."""
        self.form.reset_choices()
        if image_name in self.image_combo.choices:
            self.image_combo.value = image_name

    def infer_config(self) -> InferConfig:
        tile_size = int(self.tile_size.value)
        diameter = float(self.diameter.value) or None
        return InferConfig(tile_size=tile_size, overlap=min(InferConfig.overlap, tile_size // 2),
                           prob_threshold=float(self.threshold.value), min_size=int(self.min_size.value),
                           device=str(self.device_combo.value), diameter=diameter)

    def _resolver(self):
        """What the worker calls to get the chosen model (read the choice now, load it there)."""
        picker, session = self.model_picker, self.session
        choice, file = picker.combo.value, picker.file.value
        return lambda: picker.resolve(session, choice, file)

    def _use_resolved(self, resolved: Resolved) -> None:
        """Main thread: the model the job runs with becomes the session's model in use."""
        if resolved.model is not self.session.current_model:
            self.session.set_model(resolved.model, resolved.label, tuned=self.model_combo.value == MODEL_TUNED)

    # -- segment one image -----------------------------------------------------------------------
    def start(self) -> None:
        from ..errors import AttnSegError

        layer = _common.get_layer(self.viewer, self.image_combo.value)
        if layer is None:
            self.fail("Segment: open an image first")
            return
        names = LayerNames(layer.name)
        existing = _common.get_layer(self.viewer, names.labels)
        confirmed_replace = False
        if (existing is not None and isinstance(existing.data, np.ndarray)
                and self.session.labels_edited(layer.name, existing.data)):
            if not _common.confirm(self, f"'{names.labels}' holds your edits. Replace it with a new "
                                         "segmentation (and clear its checked regions)?"):
                return
            confirmed_replace = True
        channel_axis = -1 if layer.rgb else None
        try:
            chunked = self._takes_chunked_path(layer, channel_axis)
            config = self.infer_config()
            self.model_picker.check_choice(self.session)
        except AttnSegError as error:
            self.fail(f"Segment: {error}")
            return
        entry = self.session.current_entry
        target = _Target(layer.unique_id, layer.name,
                         entry if entry is not None and entry.stem == layer.name else None, confirmed_replace)
        self._set_running(True)
        self.status.setText(f"segmenting {layer.name}…")
        image = layer.data if chunked else np.asarray(layer.data)
        self.worker = start_worker(
            _segment_job, self._resolver(), image, config, channel_axis, bool(self.show_attention.value), chunked,
            description=f"Segmenting {layer.name}",
            on_yield=self._on_progress,
            on_return=lambda result: self._on_result(target, result),
            on_abort=lambda: self.status.setText("segmentation cancelled; layers unchanged"),
            on_error=lambda message: self.status.setText(message),
            on_finish=lambda: self._set_running(False),
        )

    def _takes_chunked_path(self, layer, channel_axis) -> bool:
        """Lazy layers (zarr, dask, pyramids) and huge images outside a project are segmented chunk by
        chunk into labels on disk; a project image stays in memory so its labels are saved with it."""
        from importlib.util import find_spec

        from ..errors import MissingExtraError
        from ..inference.chunked import needs_chunked

        if not needs_chunked(layer.data, channel_axis):
            return False
        lazy = not isinstance(layer.data, np.ndarray)
        if find_spec("zarr") is None:
            if lazy:
                raise MissingExtraError(f"{layer.name} is a lazy (zarr/dask) layer; segmenting it chunk by chunk "
                                        "needs zarr: pip install 'napari-attnseg[dask]'")
            return False
        entry = self.session.current_entry
        return lazy or entry is None or entry.stem != layer.name

    def _on_progress(self, report) -> None:
        if isinstance(report, Resolved):
            self._use_resolved(report)
            self.status.setText(f"segmenting with {report.label}…")
            return
        self.progress.setValue(int(report.fraction * 1000))
        if getattr(report, "stage", None):  # the chunked path counts chunks
            self.status.setText(f"{report.stage} on {report.device}: chunk {report.done}/{report.total}")
        elif getattr(report, "device", None) and report.done:
            self.status.setText(f"segmenting on {report.device}: {report.done}/{report.total} tiles")

    def _target_layer(self, target: _Target):
        """The image layer ``target`` names now: the same layer (maybe renamed), or its project image
        shown again; None when it was closed."""
        layer = _common.layer_by_id(self.viewer, target.layer_id)
        if layer is not None:
            return layer
        if target.entry is not None and self.session.current_entry is target.entry:
            return _common.get_layer(self.viewer, target.entry.stem)
        return None

    def _on_result(self, target: _Target, result) -> None:
        """Main thread: put the labels (and the chosen maps) into layers of *that* image."""
        if not hasattr(result, "prediction"):  # chunked: labels in a zarr on disk, no maps
            self._on_large_result(target, result)
            return
        labels, uncertainty = result.labels, result.uncertainty
        layer = self._target_layer(target)
        if layer is None:
            # The user moved on while this ran: keep the result for the project image, touch no layer.
            entry = target.entry if self._in_project(target.entry) else None
            if entry is not None and self._save_to_project(entry, labels):
                message = f"{target.name} was closed while it was segmented; its labels went to the project"
                show_info(message)
            elif entry is not None:
                message = f"{target.name} was corrected by hand while it was segmented; the new result was dropped"
                show_warning(message)
            else:
                message = f"{target.name} was closed while it was segmented; the result was dropped"
                show_warning(message)
            self.status.setText(message)
            return
        image_name = layer.name
        names = LayerNames(image_name)
        existing = _common.get_layer(self.viewer, names.labels)
        if (existing is not None and not target.confirmed_replace
                and self.session.labels_edited(image_name, np.asarray(existing.data))):
            names.labels = f"{image_name}_labels_model"  # edited while this ran: never overwrite edits
            show_info(f"You edited {image_name}_labels while segmenting; the new result is in {names.labels}")
        elif target.confirmed_replace:
            checked = _common.get_layer(self.viewer, names.checked)
            if checked is not None:
                checked.data = np.zeros_like(np.asarray(checked.data))
        self.session.predictions[image_name] = PredictionRecord(labels.copy(), uncertainty)
        scale = layer.scale[-labels.ndim:]
        _common.put_layer(self.viewer, names.labels, labels, Labels, scale=scale)
        # Each new layer costs napari ~0.1 s of main-thread work (a vispy visual and its controls),
        # so the optional ones are off by default.
        extra = []
        if self.show_probability.value:
            extra.append((f"{image_name}_probability", result.foreground, "magma"))
        if self.show_uncertainty.value:
            extra.append((f"{image_name}_uncertainty", uncertainty, "inferno"))
        attention = result.prediction.attention
        if self.show_attention.value and attention is not None:
            extra += [(f"{image_name}_attention_{level + 1}", attention[..., level, :, :], "viridis")
                      for level in range(attention.shape[-3])]
        for name, data, colormap in extra:
            _common.put_layer(self.viewer, name, data, Image, scale=scale, colormap=colormap, visible=False,
                              contrast_limits=(0, 1))
        self.viewer.layers.selection.active = self.viewer.layers[names.labels]
        diameter = result.prediction.diameter
        size = f", nuclei ~{diameter:.0f} px" if diameter else ""
        self.status.setText(f"{image_name}: {int(labels.max())} objects "
                            f"({self.session.model_label}, {result.prediction.device}{size})")
        self.progress.setValue(1000)
        on_screen = target.entry is not None and self.session.current_entry is target.entry
        if on_screen and names.labels == f"{image_name}_labels":
            self._save_to_project(target.entry, labels, force=True, clear_checked=target.confirmed_replace)

    def _on_large_result(self, target: _Target, result) -> None:
        """A chunked result: napari shows (and paints into) the zarr labels without loading them."""
        layer = self._target_layer(target)
        if layer is None:
            message = f"{target.name} was closed while it was segmented; its labels are in {result.path}"
            show_warning(message)
        else:
            name = LayerNames(layer.name).labels
            if name in self.viewer.layers:
                name = f"{layer.name}_labels_model"  # never replace a layer that may hold edits
            added = self.viewer.add_labels(result.labels, name=name, scale=layer.scale[-2:],
                                           translate=layer.translate[-2:])
            self._scratch[added.unique_id] = result.path  # removed with the layer
            message = f"{layer.name}: {result.n_objects} objects, segmented chunk by chunk; labels in {result.path}"
        self.status.setText(message)
        self.progress.setValue(1000)

    def _on_layer_removed(self, event) -> None:
        """Closing a chunked labels layer discards it, as closing any unsaved layer does: its folder
        in the temporary directory goes too (File › Save Selected Layers keeps a copy)."""
        import shutil

        path = self._scratch.pop(event.value.unique_id, None)
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)

    def _in_project(self, entry) -> bool:
        """Whether ``entry`` is an image of the project open now (not of one closed since)."""
        project = self.session.project
        return entry is not None and project is not None and any(e is entry for e in project.entries)

    def _save_to_project(self, entry, labels, force: bool = False, clear_checked: bool = False) -> bool:
        """Store machine labels for a project image; never over an image corrected by hand.

        Returns True if they were kept (written, or held by the session until writing works again).
        """
        if not self._in_project(entry) or (entry.status not in ("new", "segmented") and not force):
            return False
        self.session.save_labels(entry, labels, np.zeros(labels.shape, dtype=bool) if clear_checked else None,
                                 status="segmented")
        self.session.project_changed.emit()
        return True

    # -- segment the project ---------------------------------------------------------------------
    def start_all(self) -> None:
        from ..errors import AttnSegError

        project = self.session.project
        if project is None:
            self.fail("Segment all: open a folder as a project first (AttnSeg: Images)")
            return
        try:
            config = self.infer_config()
            self.model_picker.check_choice(self.session)
        except AttnSegError as error:
            self.fail(f"Segment all: {error}")
            return
        self.session.autosave()
        entry = self.session.current_entry
        hold = entry if entry is not None and entry.status in ("new", "segmented") else None
        # the image on screen comes back to this dock, which shows and saves it like a Segment
        target = _Target(_common.get_layer(self.viewer, entry.stem).unique_id, entry.stem, entry, False) \
            if hold is not None and _common.get_layer(self.viewer, entry.stem) is not None else None
        self._set_running(True)
        self.status.setText("segmenting the project…")
        self.worker = start_worker(
            _project_job, self._resolver(), project, config, hold if target is not None else None,
            description="Segmenting project", on_yield=lambda report: self._on_progress_all(report, target),
            on_return=self._on_all_done,
            on_abort=lambda: self.status.setText("project segmentation cancelled; finished images kept"),
            on_error=lambda message: self.status.setText(message),
            on_finish=lambda: (self._set_running(False), self.session.project_changed.emit()),
        )

    def _on_progress_all(self, report, target: _Target | None) -> None:
        if isinstance(report, Resolved):
            self._use_resolved(report)
            return
        self.progress.setValue(int(report.fraction * 1000))
        self.status.setText(f"image {report.image + 1}/{report.n_images}: {report.name}")
        if report.held is not None and target is not None:
            self._on_result(target, report.held)

    def _on_all_done(self, summary: dict) -> None:
        message = f"Segmented {summary['segmented']} image(s); corrected images were left as they are"
        if summary["failed"]:
            message += f". Could not read: {', '.join(summary['failed'])}"
            self.fail(message)
            return
        show_info(message)
        self.status.setText(message)

    # -- controls --------------------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self.segment_button.setEnabled(not running)
        self.segment_all_button.setEnabled(not running and self.session.project is not None)
        self.suggest_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if not running:
            self.worker = None

    def _update_buttons(self) -> None:
        self.segment_all_button.setEnabled(self.worker is None and self.session.project is not None)

    def _on_model_changed(self, label: str) -> None:
        self.status.setText(f"model: {label}")

    # -- suggest ---------------------------------------------------------------------------------
    def suggest(self) -> None:
        """Outline the most uncertain unchecked region and go there; first measure the uncertainty in
        a worker if this image has none yet (say, it was segmented by Segment all)."""
        from ..errors import AttnSegError

        name = self.image_combo.value
        layer = _common.get_layer(self.viewer, name)
        if layer is None:
            self.fail("Suggest: open an image first")
            return
        record = self.session.predictions.get(name)
        if record is not None and record.uncertainty is not None:
            self.status.setText(_suggest.show_most_uncertain(self.viewer, layer, record.uncertainty))
            return
        try:
            config = self.infer_config()
            self.model_picker.check_choice(self.session)
        except AttnSegError as error:
            self.fail(f"Suggest: {error}")
            return
        self._set_running(True)
        self.status.setText(f"measuring where the model is unsure on {name}…")
        image_id, channel_axis = layer.unique_id, -1 if layer.rgb else None

        def measured(result) -> None:
            self.status.setText(_suggest.keep_and_show(self.viewer, self.session, image_id, name, result))

        self.worker = start_worker(
            _segment_job, self._resolver(), np.asarray(layer.data), config, channel_axis, False, False,
            description=f"Measuring uncertainty on {name}", on_yield=self._on_progress, on_return=measured,
            on_abort=lambda: self.status.setText("cancelled"), on_error=lambda message: self.status.setText(message),
            on_finish=lambda: self._set_running(False))
