"""OME-Zarr (NGFF 0.4 and 0.5) images: read the axes and levels of an image, write a labels image.

0.4 keeps the metadata in the group's attributes (``.zattrs``, zarr format 2); 0.5 nests it under an
``"ome"`` key of ``zarr.json``'s attributes (zarr format 3). Labels are written in the format and
version of the image they belong to. Everything is read and written chunk by chunk (dask), never
whole in memory. No ome-zarr library is needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

logger = logging.getLogger(__name__)

_ROLE_BY_NAME = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
_ROLES = ("time", "channel", "space")


@dataclass(frozen=True)
class OmeImage:
    """The first multiscale image of an OME-Zarr group, as its metadata describes it."""

    path: str
    version: str
    zarr_format: int
    axes: tuple[dict, ...]
    level_paths: tuple[str, ...]
    level_transforms: tuple[tuple[dict, ...], ...]
    multiscale_transforms: tuple[dict, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(axis["name"] for axis in self.axes)

    @property
    def channel_axis(self) -> int | None:
        roles = [axis["type"] for axis in self.axes]
        return roles.index("channel") if "channel" in roles else None

    def level(self, index: int = 0):
        """Level ``index`` (0 is full resolution) as a lazy dask array with the zarr's chunks."""
        import dask.array as da
        import zarr

        return da.from_zarr(zarr.open_array(str(Path(self.path) / self.level_paths[index]), mode="r"))

    def levels(self) -> list:
        return [self.level(index) for index in range(len(self.level_paths))]

    def scale(self, level: int = 0) -> list[float]:
        """Pixel size along every axis at ``level`` (1 where the metadata gives none)."""
        scale = [1.0] * len(self.axes)
        for transforms in (self.level_transforms[level], self.multiscale_transforms):
            for transform in transforms:
                if transform.get("type") == "scale":
                    scale = [a * float(b) for a, b in zip(scale, transform["scale"])]
        return scale

    def translation(self, level: int = 0) -> list[float] | None:
        for transform in self.level_transforms[level]:
            if transform.get("type") == "translation":
                return [float(value) for value in transform["translation"]]
        return None

    def plane(self) -> tuple:
        """Level 0 as (Y, X), or (C, Y, X) with the channel axis first; singleton axes are dropped.

        Returns the dask array and the channel axis in it (0 or None).
        """
        array = self.level(0)
        names = self.names
        index: list = []
        for axis, (name, size) in enumerate(zip(names, array.shape)):
            if name in ("y", "x") or axis == self.channel_axis:
                index.append(slice(None))
            elif size == 1:
                index.append(0)
            else:
                raise InputError(f"{self.path} has {size} planes along axis '{name}'; the chunked path segments "
                                 "one 2D plane (with channels), so write the plane you want to its own image")
        kept = [name for name, item in zip(names, index) if isinstance(item, slice)]
        plane = array[tuple(index)]
        if self.channel_axis is None:
            return plane, None
        import dask.array as da

        plane = da.moveaxis(plane, kept.index(names[self.channel_axis]), 0)
        return plane, 0


def ngff_attributes(group) -> dict:
    """A group's NGFF attributes, wherever its version keeps them (see ``_ome_attributes``)."""
    return _ome_attributes(group)[0]


def _ome_attributes(group) -> tuple[dict, str | None]:
    """The NGFF attributes of a group and their version: under "ome" (0.5) or at the top (0.4)."""
    attributes = dict(group.attrs)
    if isinstance(attributes.get("ome"), dict):
        ome = attributes["ome"]
        return ome, str(ome.get("version", "0.5"))
    multiscales = attributes.get("multiscales")
    if isinstance(multiscales, list) and multiscales and isinstance(multiscales[0], dict):
        return attributes, str(multiscales[0].get("version", "0.4"))
    return attributes, None


def _axes(raw_axes, path: str, ndim: int) -> tuple[dict, ...]:
    if not isinstance(raw_axes, list) or len(raw_axes) != ndim:
        raise InputError(f"{path}: the OME-Zarr 'axes' list must name each of the image's {ndim} axes, "
                         f"got {raw_axes!r}")
    axes = []
    for raw in raw_axes:
        axis = {"name": raw} if isinstance(raw, str) else dict(raw)  # 0.3 listed bare names
        name = str(axis.get("name", "")).lower()
        role = axis.get("type") or _ROLE_BY_NAME.get(name)
        if role not in _ROLES:
            raise InputError(f"{path}: axis '{axis.get('name')}' of type '{axis.get('type')}' is not a time, "
                             "channel or space axis (t, c, z, y, x), so it cannot be segmented")
        axes.append({**axis, "name": name, "type": role})
    names = [axis["name"] for axis in axes]
    spatial = [axis["name"] for axis in axes if axis["type"] == "space"]
    channels = sum(axis["type"] == "channel" for axis in axes)
    if spatial[-2:] != ["y", "x"] or len(set(names)) != len(names) or channels > 1:
        raise InputError(f"{path}: axes {names} do not end in distinct space axes 'y', 'x' with at most one "
                         "channel axis; napari-attnseg needs (t, c, z, y, x) in that order, any subset")
    return tuple(axes)


def open_ome_image(path: str | Path) -> OmeImage:
    """Read the metadata of the OME-Zarr image group at ``path`` (its first multiscale image)."""
    import zarr

    path = str(path)
    try:
        group = zarr.open_group(path, mode="r")
    except Exception as error:  # zarr raises several types for "not a group"; all mean the same here
        raise InputError(f"{path} is not a zarr group ({type(error).__name__})") from None
    attributes, version = _ome_attributes(group)
    multiscales = attributes.get("multiscales")
    if version is None or not multiscales:
        raise InputError(f"{path} is a zarr group without OME-Zarr 'multiscales' metadata; give an OME-Zarr "
                         "image or the path of a 2D zarr array")
    image = multiscales[0]
    datasets = image.get("datasets") or []
    if not datasets or not all(isinstance(entry, dict) and "path" in entry for entry in datasets):
        raise InputError(f"{path}: the OME-Zarr multiscales entry lists no datasets with a 'path'")
    level_paths = tuple(str(entry["path"]) for entry in datasets)
    try:
        full = group[level_paths[0]]
    except KeyError:
        raise InputError(f"{path}: OME-Zarr dataset '{level_paths[0]}' is missing") from None
    axes = _axes(image.get("axes") or _default_axes(full.ndim), path, full.ndim)
    return OmeImage(path=path, version=version, zarr_format=group.metadata.zarr_format, axes=axes,
                    level_paths=level_paths,
                    level_transforms=tuple(tuple(entry.get("coordinateTransformations") or ())
                                           for entry in datasets),
                    multiscale_transforms=tuple(image.get("coordinateTransformations") or ()))


def _default_axes(ndim: int) -> list[str]:
    """0.1/0.2 had no axes: always (t, c, z, y, x), the trailing ``ndim`` of them."""
    return list("tczyx"[-ndim:]) if ndim <= 5 else []


def is_ome_zarr(path: str | Path) -> bool:
    """True for a zarr group with NGFF multiscales metadata (checked cheaply, without reading pixels)."""
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception:  # not a group (an array, or not zarr at all)
        return False
    return _ome_attributes(group)[1] is not None


def label_levels(shape: tuple[int, int], levels: int, smallest: int = 64) -> int:
    """How many stride-2 levels to write: at most ``levels``, stopping before a side under ``smallest``."""
    count = 1
    while count < levels and min(shape) // 2 ** count >= smallest:
        count += 1
    return count


def check_labels_target(image: OmeImage, destination: str | Path | None, name: str) -> None:
    """Refuse, before any work, to write labels over something that exists."""
    if destination is not None:
        if Path(destination).exists():
            raise InputError(f"{destination} exists; choose a new output path")
        return
    if not name or "/" in name or name.startswith("."):
        raise InputError(f"labels name {name!r} must be a plain folder name such as 'attnseg'")
    if (Path(image.path) / "labels" / name).exists():
        raise InputError(f"{image.path}/labels/{name} exists; choose another labels name or delete it")


def write_labels_image(labels, image: OmeImage, destination: str | Path | None = None, name: str = "attnseg",
                       levels: int = 3) -> str:
    """Write 2D ``labels`` (dask, image's Y, X) as an OME-Zarr labels image; return its path.

    By default the labels go to ``<image>/labels/<name>`` and are listed in ``<image>/labels``; with
    ``destination`` they become a standalone labels image group there. Axes are the image's, a channel
    axis and every other non-spatial axis of size 1; the pixel size carries over. Level k (nearest,
    every 2**k-th pixel) is read back from level k-1, chunk by chunk.
    """
    import zarr

    labels_axes = [dict(axis) for axis in image.axes]
    full_shape = image.level(0).shape
    shape = tuple(size if axis["name"] in ("y", "x") else 1 for axis, size in zip(labels_axes, full_shape))
    if shape[-2:] != tuple(labels.shape):
        raise InputError(f"labels of shape {labels.shape} do not match the image's (y, x) = {shape[-2:]}")
    check_labels_target(image, destination, name)
    if destination is None:
        root = zarr.open_group(image.path, mode="r+")
        labels_group = root.require_group("labels")
        listed = ngff_attributes(labels_group).get("labels", [])
        _write_ngff(labels_group, image.version, {"labels": [*listed, name] if name not in listed else listed})
        target = labels_group.create_group(name)
        target_path = f"{image.path}/labels/{name}"
    else:
        target = zarr.open_group(str(destination), mode="w-", zarr_format=image.zarr_format)
        target_path = str(destination)

    count = label_levels(shape[-2:], levels)
    chunk_options = {"chunk_key_encoding": {"name": "v2", "separator": "/"}} if image.zarr_format == 2 else {}
    previous = None
    datasets = []
    for level in range(count):
        data = labels if previous is None else previous[::2, ::2]
        level_shape = (1,) * (len(shape) - 2) + tuple(data.shape)
        chunks = (1,) * (len(shape) - 2) + tuple(min(1024, size) for size in data.shape)
        array = target.create_array(str(level), shape=level_shape, chunks=chunks, dtype=np.int32,
                                    fill_value=0, **chunk_options)
        data = data.astype(np.int32).rechunk(chunks[-2:])
        data.store(_Trailing2D(array), lock=False)
        previous = _open_2d(target_path, level)
        scale = [value * (2 ** level if axis["name"] in ("y", "x") else 1)
                 for value, axis in zip(image.scale(0), labels_axes)]
        transforms: list[dict] = [{"type": "scale", "scale": scale}]
        if image.translation(0) is not None:
            transforms.append({"type": "translation", "translation": image.translation(0)})
        datasets.append({"path": str(level), "coordinateTransformations": transforms})
        logger.info("wrote labels level %d %s to %s", level, level_shape, target_path)

    multiscale = {"name": name, "axes": labels_axes, "datasets": datasets}
    if image.version.startswith("0.4"):
        multiscale["version"] = image.version
    _write_ngff(target, image.version, {"multiscales": [multiscale],
                                        "image-label": {"version": image.version, "source": {"image": "../../"}}
                                        if destination is None else {"version": image.version}})
    return target_path


def _open_2d(path: str, level: int):
    import dask.array as da
    import zarr

    array = zarr.open_array(f"{path}/{level}", mode="r")
    lazy = da.from_zarr(array)
    return lazy[(0,) * (array.ndim - 2)]


class _Trailing2D:
    """A store target that writes 2D blocks into an array whose leading axes all have size 1."""

    def __init__(self, array) -> None:
        self.array = array
        self.lead = (0,) * (array.ndim - 2)

    def __setitem__(self, key, value) -> None:
        self.array[self.lead + tuple(key)] = value


def _write_ngff(group, version: str, values: dict) -> None:
    """Store NGFF keys where this version keeps them: at the top (0.4) or under "ome" (0.5)."""
    if version.startswith("0.4"):
        group.attrs.update(values)
    else:
        ome = dict(group.attrs.get("ome", {}))
        ome.update(values)
        ome["version"] = version
        group.attrs["ome"] = ome
