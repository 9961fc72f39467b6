"""AttnSeg: Compare — two models on one image, scored against the user's corrected labels."""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container
from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning
from qtpy.QtGui import QFont
from qtpy.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..metrics import SCORE_ROWS, format_score
from . import _common, _warmup
from ._model_picker import MODEL_DEFAULT, MODEL_IN_USE, ModelPicker, Resolved
from ._session import LayerNames
from ._workers import start_worker

SLOTS = ("A", "B")
#: where to score, as the picker says it: the engine's region names
SCORE_REGIONS = {"auto (checked part; unchecked if a model trained on it)": "auto", "checked part": "checked",
                 "unchecked part": "unchecked", "whole image": "whole"}


def _compare_job(resolvers, image, reference, checked, channel_axis, region):
    """Worker: load both models (the first use imports torch), then segment and score with each."""
    from ..project.comparison import compare_steps

    models = []
    for slot, resolve in zip(SLOTS, resolvers):
        model, label = resolve()
        models.append((f"{slot}: {label}", model))
        yield Resolved(model, label)
    return (yield from compare_steps(image, reference, models, None, channel_axis, checked, region))


class CompareWidget(_common.WorkerDock):
    """Pick an image, its corrected labels and two models; Compare; keep the better model."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(napari_viewer)
        self.models: list = []
        self._resolved: list = []
        _common.warm_up_labels()
        _warmup.warm_up()

        self.image_combo = _common.layer_combo(self.viewer, Image, "image")
        self.reference_combo = _common.layer_combo(self.viewer, Labels, "corrected labels",
                                                   keep=lambda name: not _common.is_checked_layer(name))
        self.checked_combo = ComboBox(label="checked regions", nullable=True, choices=self._checked_choices)
        self.region_combo = ComboBox(label="score in", choices=list(SCORE_REGIONS))
        self.pickers = [ModelPicker("model A", MODEL_IN_USE), ModelPicker("model B", MODEL_DEFAULT)]
        self.form = Container(widgets=[self.image_combo, self.reference_combo, self.checked_combo, self.region_combo,
                                       *(widget for picker in self.pickers for widget in picker.widgets)])
        self.compare_button = _common.button("Compare", self.start, "segment the image with both models")
        self.cancel_button = _common.button("Cancel", self.cancel, "stop the comparison")
        self.cancel_button.setEnabled(False)
        self.use_buttons = [_common.button(f"Use {slot}", lambda index=index: self.use(index),
                                           f"segment and fine-tune with model {slot} from now on")
                            for index, slot in enumerate(SLOTS)]
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.table = QTableWidget(0, len(SLOTS))
        self.table.setHorizontalHeaderLabels(list(SLOTS))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        rows = len(SCORE_ROWS)
        self.table.setMinimumHeight(self.table.verticalHeader().defaultSectionSize() * (rows + 1) + 6)
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.status.setText("Scores count only what you corrected: pick your corrected labels, and their "
                            "checked regions if you marked some.")

        run_buttons = QHBoxLayout()
        run_buttons.addWidget(self.compare_button)
        run_buttons.addWidget(self.cancel_button)
        use_buttons = QHBoxLayout()
        for widget in self.use_buttons:
            widget.setEnabled(False)
            use_buttons.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addLayout(run_buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.legend)
        layout.addWidget(self.table)
        layout.addLayout(use_buttons)
        layout.addWidget(self.status)
        layout.addStretch()
        _common.watch_layers(self.viewer, self.form)
        self.image_combo.changed.connect(self._follow_image)
        self._follow_image(self.image_combo.value)

    def _checked_choices(self, _widget=None) -> list[str]:
        return [layer.name for layer in self.viewer.layers
                if isinstance(layer, Labels) and _common.is_checked_layer(layer.name)]

    def _follow_image(self, image_name: str | None) -> None:
        """Pick the image's own labels and checked layers when they exist."""
        if not image_name:
            return
        names = LayerNames(image_name)
        if names.labels in self.reference_combo.choices:
            self.reference_combo.value = names.labels
        self.checked_combo.value = names.checked if names.checked in self.checked_combo.choices else None

    # -- run -------------------------------------------------------------------------------------
    def start(self) -> None:
        from ..errors import AttnSegError

        image_layer = _common.get_layer(self.viewer, self.image_combo.value)
        reference_layer = _common.get_layer(self.viewer, self.reference_combo.value)
        if image_layer is None or reference_layer is None:
            self.fail("Compare: open an image and its corrected labels first")
            return
        checked_layer = _common.get_layer(self.viewer, self.checked_combo.value)
        try:
            for picker in self.pickers:
                picker.check_choice(self.session)
        except AttnSegError as error:
            self.fail(f"Compare: {error}")
            return
        session = self.session
        resolvers = [lambda picker=picker, choice=picker.combo.value, file=picker.file.value:
                     picker.resolve(session, choice, file) for picker in self.pickers]
        checked = np.asarray(checked_layer.data) > 0 if checked_layer is not None else None
        self.models = []
        self._resolved = []
        self._set_running(True)
        self.status.setText(f"comparing two models on {image_layer.name}…")
        self.worker = start_worker(
            _compare_job, resolvers, np.asarray(image_layer.data), np.asarray(reference_layer.data), checked,
            -1 if image_layer.rgb else None, SCORE_REGIONS[self.region_combo.value],
            description=f"Comparing models on {image_layer.name}",
            on_yield=self._on_progress,
            on_return=lambda result, name=image_layer.name: self._on_result(name, result),
            on_abort=lambda: self.status.setText("comparison cancelled"),
            on_error=lambda message: self.status.setText(message),
            on_finish=lambda: self._set_running(False),
        )

    def _on_progress(self, report) -> None:
        if isinstance(report, Resolved):
            self._resolved.append((report.model, report.label))
            return
        self.progress.setValue(int(report.fraction * 1000))
        self.status.setText(f"segmenting with {report.name}…")

    def _on_result(self, image_name: str, comparison) -> None:
        """Main thread: one labels layer per model next to the image, and the scores table."""
        if image_name not in self.viewer.layers:
            self.status.setText(f"{image_name} was closed while the models ran; nothing shown")
            return
        scale = self.viewer.layers[image_name].scale[-comparison.labels[0].ndim:]
        for slot, labels in zip(SLOTS, comparison.labels):
            _common.put_layer(self.viewer, f"{image_name}_model_{slot}", labels, Labels, scale=scale)
        self._fill_table(comparison)
        self.models = list(self._resolved)
        for button in self.use_buttons:
            button.setEnabled(True)
        best = comparison.best()
        message = (f"{comparison.names[best]} scores higher (AP50 {comparison.scores[best]['ap50']:.3f}, "
                   f"{comparison.region})")
        if comparison.scores[0]["ap50"] == comparison.scores[1]["ap50"]:
            message = f"both models score AP50 {comparison.scores[0]['ap50']:.3f} ({comparison.region})"
        if comparison.warnings:
            message += ". Note: " + "; ".join(comparison.warnings)
            show_warning("Compare: " + "; ".join(comparison.warnings))
        self.status.setText(message)
        self.progress.setValue(1000)

    def _fill_table(self, comparison) -> None:
        self.table.setRowCount(len(SCORE_ROWS))
        self.legend.setText("  ".join(comparison.names))  # 'A: <model>  B: <model>'
        self.table.setVerticalHeaderLabels([title for _key, title in SCORE_ROWS])
        bold = QFont()
        bold.setBold(True)
        for row, (key, _title) in enumerate(SCORE_ROWS):
            values = [score[key] for score in comparison.scores]
            for column, value in enumerate(values):
                item = QTableWidgetItem(format_score(value))
                if key.startswith(("ap", "dice", "precision", "recall")) and value == max(values):
                    item.setFont(bold)
                self.table.setItem(row, column, item)

    # -- controls --------------------------------------------------------------------------------
    def use(self, index: int) -> None:
        """Make model A or B the one the Segment and Fine-tune docks use."""
        if not self.models:
            return
        model, label = self.models[index]
        self.session.set_model(model, label, tuned=model is self.session.tuned_model)
        show_info(f"AttnSeg now uses {label}")

    def _set_running(self, running: bool) -> None:
        self.compare_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if not running:
            self.worker = None

