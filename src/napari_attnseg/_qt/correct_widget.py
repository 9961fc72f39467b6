"""AttnSeg: Correct — instance edits napari's label tools lack, checked regions, live counts."""

from __future__ import annotations

import logging

import napari
import numpy as np
from magicgui.widgets import Container, SpinBox
from napari.layers import Labels, Shapes
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QGridLayout, QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from ..config import InferConfig
from ..inference.postprocess import remove_small
from ..project import editing
from . import _common
from ._session import session_for
from ._suggest import camera

DELETE_REGION = "delete region"

logger = logging.getLogger(__name__)

class CorrectWidget(QWidget):
    """Buttons act on the labels layer's selected label; shortcuts act on the object under the cursor."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.labels_combo = _common.layer_combo(self.viewer, Labels, "labels",
                                                keep=lambda name: not _common.is_checked_layer(name))
        self.merge_with = SpinBox(label="merge into id", value=1, min=1, max=2**31 - 1)
        self.min_size = SpinBox(label="minimum size", value=max(InferConfig.min_size, 1), min=1, max=10**7)
        self.form = Container(widgets=[self.labels_combo, self.merge_with, self.min_size])
        self.counts = QLabel("")
        self.counts.setWordWrap(True)

        edits = QGroupBox("Objects (the selected label)")
        grid = QGridLayout(edits)
        actions = [
            ("Delete object", self.delete_selected, "remove the selected label (Shift+D: object under cursor)"),
            ("Merge objects", self.merge_selected, "give the selected label's pixels to 'merge into id'"),
            ("Split along line", self.split_along_line, "cut the selected object along the last line drawn "
                                                        "in the 'split line' Shapes layer"),
            ("Split by watershed", self.split_watershed_selected, "split at the necks (Shift+W: under cursor)"),
            ("Fill holes", self.fill_holes, "fill holes inside every object"),
            ("Remove small", self.remove_small, "remove objects below the minimum size"),
            ("Relabel", self.relabel, "renumber objects 1..N"),
            ("New label", self.new_label, "select an unused id for painting a new object (Shift+N)"),
            ("Draw region to delete", self.draw_delete_region, "draw shapes around false detections in the "
                                                               f"'{DELETE_REGION}' layer"),
            ("Delete inside region", self.delete_inside_region, "delete every object that lies mostly inside "
                                                                f"the shapes of the '{DELETE_REGION}' layer"),
        ]
        for index, (text, slot, tip) in enumerate(actions):
            grid.addWidget(_common.button(text, slot, tip), index // 2, index % 2)
        self.click_delete = QPushButton("Click to delete: off")
        self.click_delete.setCheckable(True)
        self.click_delete.setToolTip("while on, a click on an object deletes it (one undo step each)")
        self.click_delete.toggled.connect(self._toggle_click_delete)
        grid.addWidget(self.click_delete, len(actions) // 2 + len(actions) % 2, 0, 1, 2)

        checks = QGroupBox("Checked regions (only these train the model)")
        check_grid = QGridLayout(checks)
        check_grid.addWidget(_common.button("Mark whole image checked", self.check_all,
                                            "every pixel of this image was reviewed"), 0, 0)
        check_grid.addWidget(_common.button("Mark rectangles checked", self.check_rectangles,
                                            "add the rectangles of the 'review' Shapes layer"), 0, 1)
        check_grid.addWidget(_common.button("Draw rectangles", self.draw_rectangles,
                                            "add a 'review' Shapes layer in rectangle mode"), 1, 0)
        check_grid.addWidget(_common.button("Clear checked", self.clear_checked,
                                            "mark nothing of this image as checked"), 1, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(edits)
        layout.addWidget(checks)
        layout.addWidget(self.counts)
        layout.addStretch()

        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(200)  # coalesce paint strokes into one recount
        self._count_timer.timeout.connect(self.update_counts)
        self._bound_layer = None
        _common.watch_layers(self.viewer, self.form)
        self.labels_combo.changed.connect(lambda _value: self._bind_layer())
        self.session.image_shown.connect(self._select_image)
        self._bind_layer()

    def _select_image(self, image_name: str) -> None:
        self.form.reset_choices()
        if f"{image_name}_labels" in self.labels_combo.choices:
            self.labels_combo.value = f"{image_name}_labels"

    # -- helpers ---------------------------------------------------------------------------------
    def layer(self) -> Labels | None:
        return _common.get_layer(self.viewer, self.labels_combo.value)

    def _image_name(self, layer: Labels) -> str:
        return layer.name[: -len("_labels")] if layer.name.endswith("_labels") else layer.name

    def _apply(self, action, *args, layer: Labels | None = None) -> bool:
        """Run an editing function and write only the changed pixels, as one undoable step."""
        from ..errors import AttnSegError

        layer = layer if layer is not None else self.layer()
        if layer is None:
            show_error("Correct: choose a labels layer first")
            return False
        before = np.asarray(layer.data)
        try:
            after = action(before, *args)
        except AttnSegError as error:
            show_error(f"Correct: {error}")
            return False
        indices, values = editing.changed_pixels(before, after)
        if len(values):
            with layer.block_history():
                layer.data_setitem(indices, values)
        self.update_counts()
        return True

    def _selected(self) -> int:
        layer = self.layer()
        return int(layer.selected_label) if layer is not None else 0

    def _under_cursor(self, layer: Labels) -> int:
        """The label under the mouse, through napari's public API only (cursor, camera, dims)."""
        three_d = self.viewer.dims.ndisplay == 3
        value = layer.get_value(self.viewer.cursor.position,
                                view_direction=camera(self.viewer).view_direction if three_d else None,
                                dims_displayed=list(self.viewer.dims.displayed) if three_d else None, world=True)
        return int(value) if value is not None else 0

    # -- object edits ----------------------------------------------------------------------------
    def delete_selected(self) -> None:
        self._apply(editing.delete_object, self._selected())

    def merge_selected(self) -> None:
        self._apply(editing.merge_objects, int(self.merge_with.value), self._selected())

    def split_watershed_selected(self) -> None:
        self._apply(editing.split_by_watershed, self._selected())

    def split_along_line(self) -> None:
        shapes = _common.get_layer(self.viewer, "split line")
        if not isinstance(shapes, Shapes) or len(shapes.data) == 0:
            layer = self.viewer.add_shapes(name="split line", shape_type="path", edge_color="yellow",
                                           edge_width=2) if shapes is None else shapes
            layer.mode = "add_path"
            show_info("Split along line: draw a line across the object in the 'split line' layer (double-click "
                      "ends it), then click Split along line again")
            return
        labels_layer = self.layer()
        if labels_layer is None:
            show_error("Correct: choose a labels layer first")
            return
        points = np.asarray([labels_layer.world_to_data(p) for p in shapes.data[-1]])[:, -2:]
        label_id = self._selected()
        if label_id == 0 or not (np.asarray(labels_layer.data) == label_id).any():
            label_id = self._label_on_line(labels_layer, points)
        if self._apply(editing.split_by_line, label_id, points):
            shapes.data = shapes.data[:-1]

    @staticmethod
    def _label_on_line(layer: Labels, points: np.ndarray) -> int:
        data = np.asarray(layer.data)
        middle = np.round(points.mean(axis=0)).astype(int)
        if data.ndim == 2 and 0 <= middle[0] < data.shape[0] and 0 <= middle[1] < data.shape[1]:
            return int(data[middle[0], middle[1]])
        return 0

    def fill_holes(self) -> None:
        self._apply(editing.fill_holes)

    def remove_small(self) -> None:
        self._apply(remove_small, int(self.min_size.value))

    # -- deleting many objects at once -----------------------------------------------------------
    def draw_delete_region(self) -> None:
        region = _common.get_layer(self.viewer, DELETE_REGION)
        if region is None:
            region = self.viewer.add_shapes(name=DELETE_REGION, edge_color="red", face_color=[1, 0, 0, 0.15],
                                            edge_width=2)
        self.viewer.layers.selection.active = region
        region.mode = "add_polygon"
        show_info(f"Draw around the objects to delete in '{DELETE_REGION}' (rectangles or polygons), then "
                  "click Delete inside region")

    def delete_inside_region(self) -> None:
        layer, region = self.layer(), _common.get_layer(self.viewer, DELETE_REGION)
        if layer is None or not isinstance(region, Shapes) or len(region.data) == 0:
            show_error(f"Correct: draw around the objects first (Draw region to delete, layer '{DELETE_REGION}')")
            return
        inside = np.asarray(region.to_masks(mask_shape=layer.data.shape[-2:])).any(axis=0)
        if layer.data.ndim == 3:  # a stack: the region applies to the plane on screen
            plane = np.zeros(layer.data.shape, dtype=bool)
            plane[int(self.viewer.dims.current_step[0])] = inside
            inside = plane
        before = int(editing.object_count(np.asarray(layer.data)))
        if self._apply(editing.delete_inside, inside, layer=layer):
            region.data = []
            removed = before - int(editing.object_count(np.asarray(layer.data)))
            self.counts.setText(f"deleted {removed} object(s) inside the region; " + self.counts.text())

    def _toggle_click_delete(self, on: bool) -> None:
        self.click_delete.setText(f"Click to delete: {'on' if on else 'off'}")
        layer = self._bound_layer
        if layer is None:
            return
        if on:
            layer.mode = "pan_zoom"  # a click must not also paint
            if self._delete_on_click not in layer.mouse_drag_callbacks:
                layer.mouse_drag_callbacks.append(self._delete_on_click)
        elif self._delete_on_click in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.remove(self._delete_on_click)

    def _delete_on_click(self, layer, event) -> None:
        """A click (not a drag) on an object deletes it."""
        value = layer.get_value(event.position, view_direction=event.view_direction,
                                dims_displayed=list(event.dims_displayed), world=True)
        yield  # the press; napari calls on again for moves and the release
        dragged = False
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged and value:
            self._apply(editing.delete_object, int(value), layer=layer)

    def relabel(self) -> None:
        self._apply(editing.relabel)

    def new_label(self, layer: Labels | None = None) -> None:
        layer = layer if layer is not None else self.layer()
        if layer is not None:
            layer.selected_label = editing.next_free_label(np.asarray(layer.data))
            layer.mode = "paint"

    # -- checked regions -------------------------------------------------------------------------
    def _checked_layer(self) -> Labels | None:
        layer = self.layer()
        if layer is None:
            show_error("Correct: choose a labels layer first")
            return None
        name = f"{self._image_name(layer)}_checked"
        checked = _common.get_layer(self.viewer, name)
        if checked is None:
            checked = _common.add_checked_layer(self.viewer, np.zeros(layer.data.shape, dtype=bool), name,
                                                scale=layer.scale)
            self.viewer.layers.selection.active = layer
        return checked

    def _set_checked(self, mask: np.ndarray) -> None:
        checked = self._checked_layer()
        if checked is None:
            return
        before = np.asarray(checked.data)
        indices, values = editing.changed_pixels(before > 0, mask)
        if len(values):
            with checked.block_history():
                checked.data_setitem(indices, values.astype(before.dtype))
        self.update_counts()

    def check_all(self) -> None:
        layer = self.layer()
        if layer is not None:
            self._set_checked(np.ones(layer.data.shape, dtype=bool))

    def clear_checked(self) -> None:
        layer = self.layer()
        if layer is not None:
            self._set_checked(np.zeros(layer.data.shape, dtype=bool))

    def draw_rectangles(self) -> None:
        review = _common.get_layer(self.viewer, "review")
        if review is None:
            review = self.viewer.add_shapes(name="review", edge_color="lime", face_color="transparent",
                                            edge_width=2)
        self.viewer.layers.selection.active = review
        review.mode = "add_rectangle"

    def check_rectangles(self) -> None:
        layer, review = self.layer(), _common.get_layer(self.viewer, "review")
        if layer is None or not isinstance(review, Shapes) or len(review.data) == 0:
            show_error("Correct: draw rectangles in the 'review' layer first (Draw rectangles)")
            return
        shape = layer.data.shape[-2:]
        masks = review.to_masks(mask_shape=shape)
        added = np.asarray(masks).any(axis=0)
        checked_layer = self._checked_layer()
        current = np.asarray(checked_layer.data) > 0
        if current.ndim == 3:  # a stack: rectangles apply to the plane on screen
            plane = int(self.viewer.dims.current_step[0])
            updated = current.copy()
            updated[plane] |= added
        else:
            updated = current | added
        self._set_checked(updated)
        review.data = []

    # -- counts and shortcuts --------------------------------------------------------------------
    def update_counts(self) -> None:
        layer = self.layer()
        if layer is None:
            self.counts.setText("")
            return
        labels = np.asarray(layer.data)
        text = f"objects: {editing.object_count(labels)}"
        record = self.session.predictions.get(self._image_name(layer))
        if record is not None and record.labels.shape == labels.shape:
            text += f"   pixels changed vs the model: {int(np.count_nonzero(record.labels != labels)):,}"
        checked = _common.get_layer(self.viewer, f"{self._image_name(layer)}_checked")
        if checked is not None:
            text += f"   checked: {100 * float(np.mean(np.asarray(checked.data) > 0)):.0f}%"
        self.counts.setText(text)

    def _bind_layer(self) -> None:
        layer = self.layer()
        bound_id = self._bound_layer.unique_id if self._bound_layer is not None else None
        if (layer.unique_id if layer is not None else None) == bound_id:
            return
        if self._bound_layer is not None:
            for event in (self._bound_layer.events.paint, self._bound_layer.events.data):
                event.disconnect(self._schedule_count)
            if self._delete_on_click in self._bound_layer.mouse_drag_callbacks:
                self._bound_layer.mouse_drag_callbacks.remove(self._delete_on_click)
        self._bound_layer = layer
        if layer is not None and self.click_delete.isChecked():
            layer.mouse_drag_callbacks.append(self._delete_on_click)
        if layer is None:
            return
        layer.events.paint.connect(self._schedule_count)
        layer.events.data.connect(self._schedule_count)
        # Shortcuts act on the layer they were pressed in, whatever the combo box shows by then.
        layer.bind_key("Shift-D", lambda lyr: self._apply(editing.delete_object, self._under_cursor(lyr),
                                                          layer=lyr), overwrite=True)
        layer.bind_key("Shift-W", lambda lyr: self._apply(editing.split_by_watershed, self._under_cursor(lyr),
                                                          layer=lyr), overwrite=True)
        layer.bind_key("Shift-N", lambda lyr: self.new_label(lyr), overwrite=True)
        self.update_counts()

    def _schedule_count(self, _event=None) -> None:
        self._count_timer.start()
