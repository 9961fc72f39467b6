"""AttnSeg: Images — open an image or a folder as an annotation project; browse it; autosave."""

from __future__ import annotations

import logging
import weakref
from pathlib import Path

import napari
import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QListWidget, QVBoxLayout, QWidget

from . import _common
from ._session import LayerNames, PredictionRecord, session_for

logger = logging.getLogger(__name__)

AUTOSAVE_MS = 30_000
STATUS_TEXT = {"new": "new", "segmented": "segmented", "corrected": "corrected", "training": "in training set"}


class _CloseWatcher(QObject):
    """Saves before napari's main window closes."""

    def __init__(self, callback) -> None:
        super().__init__()
        self.callback = callback

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt naming)
        if event.type() == QEvent.Close:
            self.callback()
        return False


class ImagesWidget(QWidget):
    """Open files or a project folder; list images with their status; next/previous; autosave."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self._dirty = False
        self._shown_layers: tuple = ()  # (labels, checked) of the project image on screen
        self._base = None  # the labels the shown labels layer was loaded from (or last saved)

        self.image_list = QListWidget()
        self.image_list.currentRowChanged.connect(self._on_row_changed)
        self.folder_label = QLabel("No project open. Open a folder to annotate its images.")
        self.folder_label.setWordWrap(True)
        self.save_label = QLabel("")

        open_row = QHBoxLayout()
        open_row.addWidget(_common.button("Open image…", self.open_image_dialog, "open one image file"))
        open_row.addWidget(_common.button("Open folder…", self.open_folder_dialog,
                                          "open a folder of images as an annotation project"))
        nav_row = QHBoxLayout()
        nav_row.addWidget(_common.button("Previous", self.previous_image, "previous image (Alt+Left)"))
        nav_row.addWidget(_common.button("Next", self.next_image, "next image (Alt+Right)"))
        nav_row.addWidget(_common.button("Save", self.save_now, "save labels and checked regions now"))

        layout = QVBoxLayout(self)
        layout.addLayout(open_row)
        layout.addWidget(self.folder_label)
        layout.addWidget(self.image_list)
        layout.addLayout(nav_row)
        layout.addWidget(self.save_label)

        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self._autosave_tick)
        self.timer.start()
        self.session.add_autosave_hook(self.autosave)
        self.session.project_changed.connect(self.refresh_list)
        self.session.save_state_changed.connect(self._on_save_state)
        self.viewer.bind_key("Alt-Right", lambda _viewer: self.next_image(), overwrite=True)
        self.viewer.bind_key("Alt-Left", lambda _viewer: self.previous_image(), overwrite=True)
        self._close_watcher = _CloseWatcher(self._on_close)
        self._watched_window = None

    # -- opening ---------------------------------------------------------------------------------
    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "",
                                              "Images (*.tif *.tiff *.png *.jpg *.jpeg *.bmp)")
        if path:
            self.open_image(path)

    def open_image(self, path: str | Path) -> None:
        try:
            self.viewer.open(str(path), plugin="napari-attnseg")
        except Exception as error:  # napari wraps reader errors; show the reason, keep napari usable
            show_error(f"Open image: {error}")

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder as project")
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path) -> None:
        """Open ``folder`` as a project and show its first image (or the first not yet corrected)."""
        from ..errors import AttnSegError
        from ..project.folder import Project

        if not self.autosave(announce=True):
            return
        try:
            project = Project.open(folder)
        except AttnSegError as error:
            show_error(f"Open folder: {error}")
            return
        self._close_current()
        self._hide_other_layers()
        self.session.project = project
        self._restore_model(project)
        self._restore_rescued(project)
        self.folder_label.setText(f"Project: {project.folder} ({len(project)} images; "
                                  f"saved in {project.data_dir.name}/)")
        self.refresh_list()
        self.session.project_changed.emit()
        first = next((i for i, e in enumerate(project.entries) if e.status not in ("corrected", "training")), 0)
        self.image_list.blockSignals(True)
        self.image_list.setCurrentRow(first)
        self.image_list.blockSignals(False)
        self.show_entry(first)

    def _hide_other_layers(self) -> None:
        """Layers open before the project would lie under its images: hide them (they stay open)."""
        shown = [layer for layer in self.viewer.layers if layer.visible]
        for layer in shown:
            layer.visible = False
        if shown:
            show_info(f"Hid {len(shown)} layer(s) opened before the project, so they do not cover its images "
                      "(they are still in the layer list)")

    def _restore_rescued(self, project) -> None:
        """Put back edits that napari could only rescue outside the project when it last closed."""
        from ..errors import AttnSegError
        from ..project.rescue import rescue_folder, restore_rescues

        try:
            restored = restore_rescues(project)
        except (OSError, AttnSegError) as error:
            show_error(f"Edits rescued when napari last closed are in {rescue_folder(project)}, but the project "
                       f"still cannot be written ({error}); they stay there until it can")
            return
        if restored:
            show_info(f"Restored edits that could not be saved when napari last closed: {', '.join(restored)}")

    def _restore_model(self, project) -> None:
        """Use the project's last fine-tuned model again, if it is still there."""
        from ..errors import AttnSegError
        from ..files.loading import load_model

        if not project.model_file:
            return
        path = project.data_dir / project.model_file
        try:
            model = load_model(path)
        except AttnSegError as error:
            show_error(f"The project's model could not be loaded ({error}); using the bundled one")
            return
        self.session.set_model(model, model.name, tuned=True)

    def refresh_list(self) -> None:
        project = self.session.project
        row = self.image_list.currentRow()
        self.image_list.blockSignals(True)
        self.image_list.clear()
        if project is not None:
            for entry in project.entries:
                self.image_list.addItem(f"{entry.file}  —  {STATUS_TEXT[entry.status]}")
            self.image_list.setCurrentRow(max(row, 0) if project.entries else -1)
        self.image_list.blockSignals(False)

    # -- navigation ------------------------------------------------------------------------------
    def next_image(self) -> None:
        if self.session.project is not None:
            self.image_list.setCurrentRow(min(self.image_list.currentRow() + 1, len(self.session.project) - 1))

    def previous_image(self) -> None:
        if self.session.project is not None:
            self.image_list.setCurrentRow(max(self.image_list.currentRow() - 1, 0))

    def _on_row_changed(self, row: int) -> None:
        project = self.session.project
        if project is None or not 0 <= row < len(project):
            return
        self.show_entry(row)

    def show_entry(self, row: int) -> None:
        """Save the image on screen, then show image ``row`` with its saved labels and checks."""
        from ..errors import AttnSegError

        project = self.session.project
        if not self.autosave(announce=True):
            self._select_row_of_current()
            return  # the edits on screen could not be saved: keep them there
        entry = project.entries[row]
        try:
            image = project.read_image(entry)
            pending = self.session.pending_labels(entry)  # newer than its files, which could not be written
            labels = pending.labels if pending is not None else project.load_labels(entry)
            checked = pending.checked if pending is not None and pending.checked is not None \
                else project.load_checked(entry)
        except AttnSegError as error:
            show_error(f"Open {entry.file}: {error}")
            self._select_row_of_current()
            return
        self._close_current()
        names = LayerNames(entry.stem)
        key = str(project.labels_path(entry))
        self.session.stamps[key] = project.labels_stamp(entry) if pending is None else None
        rgb = image.ndim == 3 and image.shape[-1] in (3, 4)
        self.viewer.add_image(image, name=names.image, rgb=rgb)
        spatial = image.shape[:-1] if rgb else image.shape
        if labels is None or labels.shape != spatial:
            labels = np.zeros(spatial, dtype=np.int32)
        if checked is None or checked.shape != spatial:
            checked = np.zeros(spatial, dtype=bool)
        _common.add_checked_layer(self.viewer, checked, names.checked)
        labels_layer = self.viewer.add_labels(_common.labels_for_display(labels), name=names.labels)
        self._base = np.array(labels, dtype=np.int32, copy=True)  # what the layer was loaded from
        if entry.status in ("new", "segmented"):
            # machine labels: edits are measured against them (Segment asks before replacing edits
            # only, and an autosave marks the image corrected only when something was changed)
            self.session.predictions[names.image] = PredictionRecord(self._base.copy())
        else:
            self.session.predictions.pop(names.image, None)
        self.session.current_entry = entry
        self._shown_layers = (labels_layer, self.viewer.layers[names.checked])
        for layer in self._shown_layers:
            self._watch(layer)
        self.viewer.layers.selection.active = labels_layer
        self.viewer.reset_view()
        self.session.image_shown.emit(names.image)

    def _select_row_of_current(self) -> None:
        """Point the list back at the image still on screen (a switch was refused)."""
        entry, project = self.session.current_entry, self.session.project
        if entry is None or project is None or entry not in project.entries:
            return
        self.image_list.blockSignals(True)
        self.image_list.setCurrentRow(project.entries.index(entry))
        self.image_list.blockSignals(False)

    def _close_current(self) -> None:
        entry = self.session.current_entry
        if entry is None:
            return
        names = LayerNames(entry.stem)
        for layer in list(self.viewer.layers):
            shown = {shown_layer.unique_id for shown_layer in self._shown_layers}
            if layer.unique_id in shown or layer.name == names.image or layer.name.startswith(f"{names.image}_"):
                self.viewer.layers.remove(layer)
        self.session.current_entry = None
        self._shown_layers = ()
        self._dirty = False

    # -- autosave --------------------------------------------------------------------------------
    def _autosave_tick(self) -> None:
        """The timer: save the shown edits and retry whatever an earlier save could not write."""
        self.session.autosave()

    def _watch(self, layer) -> None:
        layer.events.paint.connect(self._mark_dirty)
        layer.events.data.connect(self._mark_dirty)
        if hasattr(layer.events, "labels_update"):
            layer.events.labels_update.connect(self._mark_dirty)

    def _mark_dirty(self, _event=None) -> None:
        self._dirty = True

    def save_now(self) -> None:
        self._dirty = True
        if self.autosave(announce=True):
            self.session.retry_unsaved()

    def autosave(self, announce: bool = False) -> bool:
        """Save the shown image's labels and checks if they changed; a corrected image is marked so.

        Returns False only when there were edits and they could not be written: they stay on screen
        (and in the session, which retries) and the user is told once per fault, not every tick.
        """
        project, entry = self.session.project, self.session.current_entry
        if project is None or entry is None or not self._dirty or not self._shown_layers:
            return True
        names = LayerNames(entry.stem)
        labels_layer, checked_layer = self._shown_layers  # by reference: a renamed layer still saves
        labels = np.asarray(labels_layer.data)
        checked = np.asarray(checked_layer.data) > 0
        labels = self._merged_with_newer_file(project, entry, labels, labels_layer)
        status = entry.status
        if self.session.labels_edited(names.image, labels) or checked.any():
            status = "corrected" if status != "training" else status
        if not self.session.save_labels(entry, labels, checked, status=status, announce=announce):
            return False  # still dirty: the next autosave tries again
        self._base = np.array(labels, dtype=np.int32, copy=True)
        self._dirty = False
        self.save_label.setText(f"saved {entry.file}")
        self.refresh_list()
        logger.info("autosaved %s", entry.file)
        return True

    def _merged_with_newer_file(self, project, entry, labels: np.ndarray, labels_layer) -> np.ndarray:
        """The labels to save: the layer's, unless the file was written by someone else since this
        layer was loaded. Then only the edits made here go onto the newer file's labels (an edit on a
        stale layer must not wipe out what the file holds), and the layer shows the result."""
        from ..errors import AttnSegError
        from ..project.editing import merge_edits

        key = str(project.labels_path(entry))
        if key not in self.session.stamps or project.labels_stamp(entry) == self.session.stamps[key]:
            return labels
        try:
            newer = project.load_labels(entry)
        except AttnSegError:
            return labels
        if newer is None or newer.shape != labels.shape:
            return labels
        merged = merge_edits(self._base, labels.astype(np.int32), newer)
        labels_layer.data = _common.labels_for_display(merged)
        record = self.session.predictions.get(entry.stem)
        if record is not None and entry.status in ("new", "segmented"):
            record.labels = newer.copy()
        show_info(f"{entry.file} was saved by another program since it was opened here; your edits were "
                  "merged into that newer version")
        return merged

    def _on_close(self) -> None:
        """napari is closing: save, and what cannot be saved goes to a rescue copy outside the project."""
        if not self.session.autosave():  # it runs our autosave too, then retries failed writes
            self.session.rescue_unsaved()

    def _on_save_state(self, reason: str) -> None:
        if reason:
            self.save_label.setText(f"NOT SAVED ({reason}); retrying every {AUTOSAVE_MS // 1000} s")

    def showEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self.watch_window(self.window())
        super().showEvent(event)

    def watch_window(self, window) -> None:
        """Save before ``window`` (napari's, once docked) closes; called when shown, and by the panel
        that holds this widget in a tab that may never be shown."""
        watched = self._watched_window() if self._watched_window is not None else None
        if window is not self and window is not watched:
            window.installEventFilter(self._close_watcher)
            self._watched_window = weakref.ref(window)  # weak: holding napari's window leaks it

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self.autosave()
        super().closeEvent(event)

