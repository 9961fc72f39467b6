"""`export_model`: one entry point for every export format (ONNX, TorchScript, bioimage.io)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ExportError
from .modelfile import SegModel

EXPORT_FORMATS = ("onnx", "torchscript", "bioimageio")


def export_model(model: SegModel, path: str | os.PathLike, format: str, **options: Any) -> dict[str, Any]:
    """Export to "onnx", "torchscript" or "bioimageio" (see the functions for each)."""
    path = Path(path)
    if format == "onnx":
        from .torch_export import export_onnx

        return export_onnx(model, path, **options)
    if format == "torchscript":
        from .torch_export import export_torchscript

        return export_torchscript(model, path)
    if format == "bioimageio":
        from .bioimageio import export_bioimageio

        return export_bioimageio(model, path, **options)
    raise ExportError(f"unknown export format {format!r}; use {', '.join(EXPORT_FORMATS)}")
