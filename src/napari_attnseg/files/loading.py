"""`load_model`: a napari-attnseg model file, the bundled default, or a file exported from one.

Model files know nothing of export formats; this module is where both meet (imports go one way:
loading -> imported -> torch_export -> modelfile).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelFileError
from .modelfile import SegModel, default_model_path, read_model_file


def load_model(path: str | os.PathLike | None = None, *, trust_code: bool = False) -> SegModel:
    """Load a model file, or the bundled default model when ``path`` is None. Never unpickles.

    Also reads what ``napari_attnseg.files.export`` writes: ``.onnx`` files (run by onnxruntime) and
    bioimage.io packages (folder or zip); TorchScript files only with ``trust_code=True``, because
    loading one runs the program inside it (see imported.py).
    """
    path = default_model_path() if path is None else Path(path)
    try:
        exported = (any((path / name).is_file() for name in ("rdf.yaml", "bioimageio.yaml"))
                    or (path.is_file() and (path.suffix.lower() == ".onnx" or _first_bytes(path, 2) == b"PK")))
    except OSError as error:
        raise ModelFileError(f"cannot read {path}: {error.strerror or error}") from None
    if exported:
        from .imported import load_exported

        model = load_exported(path, trust_code=trust_code)
        if model is not None:
            return model
    return read_model_file(path)


def _first_bytes(path: Path, count: int) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(count)
