"""npe2 writer: a Labels layer to a 32-bit TIFF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .files.images import write_labels


def write_labels_layer(path: str, data: Any, meta: dict) -> list[str]:
    """Write one Labels layer; napari passes the path the user chose."""
    target = Path(path)
    if target.suffix.lower() not in (".tif", ".tiff"):
        target = target.with_suffix(".tif")
    write_labels(target, data)
    return [str(target)]
