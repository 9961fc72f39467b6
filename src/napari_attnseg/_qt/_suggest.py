"""Suggest where to correct: outline the most uncertain unchecked region and bring it into view."""

from __future__ import annotations

import numpy as np

from ._session import LayerNames

WINDOW = 128  # pixels of the region suggested
LAYER = "suggested region"


def camera(viewer):
    """napari's camera (``viewer.scene.camera`` from napari 0.9 on, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def show_most_uncertain(viewer, layer, uncertainty: np.ndarray) -> str:
    """Outline the region in the '{LAYER}' Shapes layer, centre the view on it; returns a status line."""
    from ..inference.uncertainty import most_uncertain_window

    checked_layer = next((candidate for candidate in viewer.layers
                          if candidate.name == LayerNames(layer.name).checked), None)
    checked = np.asarray(checked_layer.data) > 0 if checked_layer is not None else None
    plane = None
    if uncertainty.ndim == 3:  # a stack: look in the plane on screen
        plane = int(viewer.dims.current_step[0])
        uncertainty = uncertainty[plane]
        checked = checked[plane] if checked is not None else None
    centre = most_uncertain_window(uncertainty, checked, window=WINDOW)
    if centre is None:
        return "Every pixel of this image is marked checked: nothing left to suggest"
    half = WINDOW / 2
    corners = np.array([[centre[0] - half, centre[1] - half], [centre[0] + half, centre[1] + half]])
    corners = np.clip(corners, 0, np.array(uncertainty.shape) - 1)
    rectangle = np.array([corners[0], [corners[0][0], corners[1][1]], corners[1], [corners[1][0], corners[0][1]]])
    if plane is not None:
        rectangle = np.column_stack([np.full(4, plane), rectangle])
    scale, translate = layer.scale[-rectangle.shape[1]:], layer.translate[-rectangle.shape[1]:]
    if LAYER in viewer.layers:
        viewer.layers[LAYER].data = [rectangle]
    else:
        viewer.add_shapes([rectangle], shape_type="rectangle", name=LAYER, edge_color="orange",
                          face_color="transparent", edge_width=3, scale=scale, translate=translate)
    labels = next((candidate for candidate in viewer.layers if candidate.name == LayerNames(layer.name).labels),
                  None)
    if labels is not None:
        viewer.layers.selection.active = labels  # ready to paint
    world = np.asarray(centre) * np.asarray(layer.scale[-2:]) + np.asarray(layer.translate[-2:])
    view = camera(viewer)
    # Zoom so the region fills about half the view, from the zoom that shows the whole image: the
    # same on every screen, and never a fixed zoom that stays behind for the next image.
    viewer.reset_view()
    fit = float(view.zoom)
    view.zoom = fit * max(1.0, min(uncertainty.shape) / (2.0 * WINDOW))
    view.center = tuple(world)
    return (f"Most uncertain unchecked region: outlined in orange around row {centre[0]}, column {centre[1]}; "
            "correct it, then mark it checked")


def keep_and_show(viewer, session, image_id: str, name: str, result) -> str:
    """Main thread, after a worker measured the uncertainty of image ``image_id``: keep it in the
    session (the labels on screen stay as they are) and show the region; returns a status line."""
    from . import _common
    from ._session import PredictionRecord

    current = _common.layer_by_id(viewer, image_id)
    if current is None:
        return f"{name} was closed; nothing to suggest"
    kept = session.predictions.get(current.name)
    if kept is None:
        kept = session.predictions[current.name] = PredictionRecord(result.labels.copy())
    kept.uncertainty = result.uncertainty
    return show_most_uncertain(viewer, current, result.uncertainty)
