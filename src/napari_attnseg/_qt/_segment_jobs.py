"""The Segment dock's worker jobs, and the image a result belongs to."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import InferConfig
from ._model_picker import Resolved


@dataclass
class _Target:
    """The image layer a segmentation belongs to, and its project image if it is one.

    Followed by its unique_id, not by name: the user may switch images, close or rename the layer,
    or open another image of the same name while the worker runs; the result must reach this image
    or none.
    """

    layer_id: str
    name: str
    entry: object | None  # ImageEntry
    confirmed_replace: bool


def _segment_job(resolve, image, config: InferConfig, channel_axis, return_attention: bool, chunked: bool):
    """Worker: load the model (the first one imports torch), check the device, then segment."""
    from ..runtime.devices import resolve_device

    model, label = resolve()
    resolve_device(config.device)  # an absent GPU is one clear message before any work
    yield Resolved(model, label)
    if chunked:  # a pyramid, a zarr/dask array, or a huge image that is not a project's
        from ..inference.chunked import segment_large_steps

        return (yield from segment_large_steps(image, model, config, channel_axis))
    from ..inference.predict import segment_steps

    return (yield from segment_steps(image, model, config, channel_axis, return_attention, True))


def _project_job(resolve, project, config: InferConfig, hold):
    from ..project.folder import segment_project_steps
    from ..runtime.devices import resolve_device

    model, label = resolve()
    resolve_device(config.device)
    yield Resolved(model, label)
    return (yield from segment_project_steps(project, model, config, hold=hold))
