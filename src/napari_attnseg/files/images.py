"""Reading images and writing label images, with one clear error for every bad file."""

from __future__ import annotations

import io as _io
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import atomic_write_bytes

TIFF_SUFFIXES = (".tif", ".tiff")
OTHER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGE_SUFFIXES = TIFF_SUFFIXES + OTHER_SUFFIXES


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a TIFF (multi-page stacks included), PNG, JPEG or BMP file into an array."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image file")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(f"{path.name}: unsupported file type {suffix or '(none)'}; "
                         f"use one of {', '.join(IMAGE_SUFFIXES)}")
    try:
        if suffix in TIFF_SUFFIXES:
            import tifffile

            image = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            image = iio.imread(path)
    except Exception as error:  # readers raise many types for damaged files; all mean the same here
        raise InputError(f"{path.name} could not be read as an image ({type(error).__name__}: "
                         f"{str(error)[:120]})") from None
    image = np.asarray(image)
    if image.size == 0:
        raise InputError(f"{path.name} holds an empty image")
    return image


def write_tiff(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as a compressed TIFF, atomically (a crash never leaves half a file)."""
    import tifffile

    path = Path(path)
    buffer = _io.BytesIO()
    # minisblack: a stack of 3 or 4 planes is planes, not an RGB(A) picture
    tifffile.imwrite(buffer, np.asarray(array), compression="zlib", photometric="minisblack")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def write_labels(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Write labels as an int32 compressed TIFF, atomically."""
    return write_tiff(path, np.asarray(labels, dtype=np.int32))


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"no such folder: {folder}")
    return sorted(
        entry for entry in folder.iterdir()
        if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES and not entry.name.startswith(".")
    )
