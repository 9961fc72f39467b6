"""npe2 reader: images as Image layers, our `*_labels.tif` files as Labels layers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .errors import InputError
from .io import IMAGE_SUFFIXES, read_image

LayerData = tuple[Any, dict, str]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Return a reader for image files this plugin understands, else None."""
    paths = [path] if isinstance(path, str) else list(path)
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
