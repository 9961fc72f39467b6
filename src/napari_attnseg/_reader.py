"""npe2 reader: images as Image layers, our `*_labels.tif` files as Labels layers, and zarr / OME-Zarr
images opened lazily (dask), a multiscale pyramid as its list of levels, so napari never loads them whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .errors import InputError
from .files.images import IMAGE_SUFFIXES, read_image

LayerData = tuple[Any, dict, str]
ZARR_SUFFIX = ".zarr"


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Return a reader for image files or zarr folders this plugin understands, else None."""
    paths = [path] if isinstance(path, str) else list(path)
    if paths and all(Path(p).suffix.lower() == ZARR_SUFFIX and Path(p).is_dir() for p in paths):
        return read_zarr_layers
    if not paths or not all(Path(p).suffix.lower() in IMAGE_SUFFIXES for p in paths):
        return None
    return read_layers


def read_layers(path: str | list[str]) -> list[LayerData]:
    """Layer data for each file; a file whose name ends in `_labels` opens as Labels."""
    paths = [path] if isinstance(path, str) else list(path)
    layers: list[LayerData] = []
    for file_path in map(Path, paths):
        try:
            data = read_image(file_path)
        except InputError as error:
            raise ValueError(str(error)) from None  # napari shows reader errors as notifications
        if file_path.stem.endswith("_labels") and data.dtype.kind in "iu":
            layers.append((data, {"name": file_path.stem}, "labels"))
        else:
            rgb = data.ndim == 3 and data.shape[-1] in (3, 4)
            layers.append((data, {"name": file_path.stem, "rgb": rgb}, "image"))
    return layers


def read_zarr_layers(path: str | list[str]) -> list[LayerData]:
    """Lazy layers for each zarr folder: an OME-Zarr image (and its labels images), or a plain array."""
    paths = [path] if isinstance(path, str) else list(path)
    layers: list[LayerData] = []
    for zarr_path in paths:
        try:
            layers += _zarr_layers(str(zarr_path))
        except InputError as error:
            raise ValueError(str(error)) from None
    return layers


def _zarr_layers(path: str) -> list[LayerData]:
    import zarr

    from .files.ome_zarr import is_ome_zarr, ngff_attributes, open_ome_image

    name = Path(path).name.split(".")[0]
    if not is_ome_zarr(path):
        try:
            array = zarr.open_array(path, mode="r")
        except Exception:  # a group: open_ome_image says what it lacks
            open_ome_image(path)
            raise
        import dask.array as da

        data = da.from_zarr(array)
        return [(data, {"name": name}, "labels" if name.endswith("_labels") and data.dtype.kind in "iu" else "image")]

    image = open_ome_image(path)
    levels, keep = _squeezed(image.levels())
    channel = image.channel_axis if image.channel_axis is not None and keep[image.channel_axis] else None
    kept_axes = [axis for axis, kept in enumerate(keep) if kept and axis != channel]
    metadata: dict = {"name": name, "multiscale": len(levels) > 1, **_placement(image, kept_axes)}
    if channel is not None:
        metadata["channel_axis"] = sum(keep[:channel])
        metadata["name"] = [f"{name}_c{index}" for index in range(levels[0].shape[metadata["channel_axis"]])]
    layers = [(levels if len(levels) > 1 else levels[0], metadata, "image")]
    labels_root = Path(path) / "labels"
    if labels_root.is_dir():
        for label_name in ngff_attributes(zarr.open_group(str(labels_root), mode="r")).get("labels", []):
            labels_image = open_ome_image(labels_root / label_name)
            label_levels, label_keep = _squeezed(labels_image.levels())
            label_axes = [axis for axis, kept in enumerate(label_keep) if kept]
            label_metadata = {"name": f"{name}_{label_name}", "multiscale": len(label_levels) > 1,
                              **_placement(labels_image, label_axes)}
            layers.append((label_levels if len(label_levels) > 1 else label_levels[0], label_metadata, "labels"))
    return layers


def _placement(image, axes: list[int]) -> dict:
    """napari's ``scale`` (and ``translate``, if given) of an OME-Zarr image's level 0 along ``axes``."""
    placement = {"scale": [image.scale(0)[axis] for axis in axes]}
    translation = image.translation(0)
    if translation is not None:
        placement["translate"] = [translation[axis] for axis in axes]
    return placement


def _squeezed(levels: list) -> tuple[list, list[bool]]:
    """Levels without the axes of size 1 at full resolution (except y and x), and which axes stay."""
    full = levels[0]
    keep = [size > 1 or axis >= full.ndim - 2 for axis, size in enumerate(full.shape)]
    index = tuple(slice(None) if kept else 0 for kept in keep)
    return [level[index] for level in levels], keep
