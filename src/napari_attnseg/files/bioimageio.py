"""bioimage.io model packages (format 0.5): ONNX + TorchScript weights, test tensors, cover, docs.

The package states our preprocessing as the spec's ``scale_range`` (per-channel percentiles over y
and x), so other bioimage.io tools normalise as we do, and declares spatial sizes as ``min + n * step``
with both equal to the network's multiple. The output is class probabilities (softmax inside the
weights). ``export_bioimageio`` validates the package with bioimageio.spec without network access:
it references no URL, so the only I/O checks are the sha256 of its own files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ExportError, InputError
from .modelfile import FORMAT_NAME, FORMAT_VERSION, SegModel, _json_default
from .torch_export import _export_module, export_onnx, export_torchscript, require

logger = logging.getLogger(__name__)

SCALE_RANGE_EPS = 1e-6
CLASS_NAMES = {"instance": ["background", "interior", "boundary"]}
CITATION = {
    "text": "Oktay O. et al. (2018) Attention U-Net: Learning Where to Look for the Pancreas. MIDL.",
    "doi": "10.48550/arXiv.1804.03999",
}
TEST_SIZE = 128


def scale_range(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """The spec's scale_range over (y, x) per sample and channel: (x - p_low) / (p_high - p_low + eps)."""
    lower = np.percentile(image, low, axis=(-2, -1), keepdims=True)
    upper = np.percentile(image, high, axis=(-2, -1), keepdims=True)
    return ((image - lower) / (upper - lower + SCALE_RANGE_EPS)).astype(np.float32)


def _test_input(model: SegModel) -> np.ndarray:
    from ..datasets.synthetic import synthetic_nuclei

    size = model.config.multiple * max(1, round(TEST_SIZE / model.config.multiple))
    image, _ = synthetic_nuclei((size, size), seed=7, radius_range=(6.0, 12.0))
    return np.repeat(image[np.newaxis, np.newaxis].astype(np.float32), model.config.in_channels, axis=1)


def _cover(raw: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """A 2:1 RGB picture: the test image beside its foreground probability (magenta on grey)."""
    grey = scale_range(raw[0, :1], 1.0, 99.8)[0].clip(0, 1)
    foreground = 1.0 - probabilities[0, 0]
    tinted = grey * (1 - 0.5 * foreground)
    overlay = np.stack([tinted + 0.5 * foreground, tinted, tinted + 0.5 * foreground])
    left = np.stack([grey] * 3)
    picture = np.concatenate([left, overlay], axis=2).transpose(1, 2, 0)
    return (picture * 255).round().astype(np.uint8)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _documentation(model: SegModel, reports: dict[str, dict[str, Any]]) -> str:
    multiple = model.config.multiple
    low, high = model.config.norm_percentiles
    lines = [
        f"# {model.name}",
        "",
        "An attention U-Net (Oktay et al. 2018) for nuclei segmentation, exported by napari-attnseg.",
        "",
        "## Input and output",
        f"- input `raw`: (batch, channel, y, x) float32, {model.config.in_channels} channel(s); y and x must be "
        f"multiples of {multiple} (pad or tile larger images).",
        f"- preprocessing: `scale_range` per sample and channel over y and x, percentiles {low}–{high} "
        "(values are not clipped).",
        f"- output `probabilities`: (batch, {model.config.n_classes}, y, x), softmax class probabilities "
        f"({', '.join(CLASS_NAMES.get(model.config.task, ['class']))}).",
        "- instances: napari-attnseg seeds a watershed on the interior probability inside the foreground "
        "(1 - background); `pip install napari-attnseg[export]` and "
        "`napari_attnseg.segment(image, napari_attnseg.load_model('this_package.zip'))` does it for you.",
        "",
        "## Validation",
        "",
        "Checked when the package was written (random inputs of two shapes, outputs compared with torch):",
    ]
    for kind, report in reports.items():
        lines.append(f"- {kind}: max abs difference to torch {report['max_abs_difference']:.2e} on input shapes "
                     f"{report['checked_shapes']}")
    lines += ["", "## Model card", "", "```", model.summary(), "```", "",
              "## License", "", "BSD-3-Clause, as napari-attnseg.", ""]
    return "\n".join(lines)


def _rdf(model: SegModel, files: dict[str, str], reports: dict[str, dict[str, Any]], authors: Sequence[str],
         description: str | None) -> dict[str, Any]:
    from bioimageio.spec.model.v0_5 import ModelDescr

    from .torch_export import exported_card

    multiple = model.config.multiple
    low, high = model.config.norm_percentiles
    channels = [f"channel{index}" for index in range(model.config.in_channels)]
    classes = CLASS_NAMES.get(model.config.task, [f"class{index}" for index in range(model.config.n_classes)])
    spatial = {"min": multiple, "step": multiple}
    card = exported_card(model, {"formats": reports})
    return {
        "type": "model",
        "format_version": ModelDescr.implemented_format_version,
        "name": _safe_name(model.name),
        "description": description or f"Attention U-Net nuclei segmentation ({model.config.task}), "
                                      "exported by napari-attnseg.",
        "authors": [{"name": author} for author in authors],
        "cite": [CITATION],
        "license": "BSD-3-Clause",
        "documentation": {"source": "README.md", "sha256": files["README.md"]},
        "covers": [{"source": "cover.png", "sha256": files["cover.png"]}],
        "tags": ["napari-attnseg", "segmentation", "instance-segmentation", "nuclei", "unet", "attention",
                 "2d", "pytorch", "onnx"],
        "inputs": [{
            "id": "raw",
            "description": "image, normalised by scale_range before the network",
            "axes": [{"type": "batch"}, {"type": "channel", "channel_names": channels},
                     {"type": "space", "id": "y", "size": dict(spatial)},
                     {"type": "space", "id": "x", "size": dict(spatial)}],
            "test_tensor": {"source": "test_input.npy", "sha256": files["test_input.npy"]},
            "sample_tensor": {"source": "sample_input.tif", "sha256": files["sample_input.tif"]},
            "data": {"type": "float32"},
            "preprocessing": [{"id": "scale_range", "kwargs": {
                "axes": ["y", "x"], "min_percentile": float(low), "max_percentile": float(high),
                "eps": SCALE_RANGE_EPS}}],
        }],
        "outputs": [{
            "id": "probabilities",
            "description": "softmax class probabilities",
            "axes": [{"type": "batch"}, {"type": "channel", "channel_names": classes},
                     {"type": "space", "id": "y", "size": {"tensor_id": "raw", "axis_id": "y"}},
                     {"type": "space", "id": "x", "size": {"tensor_id": "raw", "axis_id": "x"}}],
            "test_tensor": {"source": "test_output.npy", "sha256": files["test_output.npy"]},
            "sample_tensor": {"source": "sample_output.tif", "sha256": files["sample_output.tif"]},
            "data": {"type": "float32", "range": [0.0, 1.0]},
        }],
        "weights": {
            "onnx": {"source": "weights.onnx", "sha256": files["weights.onnx"],
                     "opset_version": reports["onnx"]["opset"]},
            "torchscript": {"source": "weights_torchscript.pt", "sha256": files["weights_torchscript.pt"],
                            "pytorch_version": torch.__version__.split("+")[0], "parent": "onnx"},
        },
        "config": {FORMAT_NAME: {"format_version": FORMAT_VERSION, "model_config": model.config.to_dict(),
                                 "card": card}},
    }


def _safe_name(name: str) -> str:
    cleaned = "".join(char if char.isalnum() or char in " _-()" else "-" for char in name).strip()
    return (cleaned or "napari-attnseg model")[:128].ljust(5, "_")


def validate_package(path: str | os.PathLike) -> str:
    """Validate a package with bioimageio.spec, offline; returns the validation status ("valid-format")
    or raises ExportError with the first error."""
    spec = require("bioimageio.spec", "Validating a bioimage.io package")
    path = Path(path)
    source = path / "rdf.yaml" if path.is_dir() else path  # a bare folder name would be looked up online
    description = spec.load_description(source, perform_io_checks=True, format_version="discover")
    summary = description.validation_summary
    if summary.status not in ("passed", "valid-format"):
        errors = [f"{'.'.join(str(part) for part in error.loc)}: {error.msg}" for error in summary.errors]
        raise ExportError(f"the bioimage.io package is invalid: {'; '.join(errors[:3]) or summary.status}")
    return str(summary.status)


def export_bioimageio(model: SegModel, path: str | os.PathLike, authors: Sequence[str] | None = None,
                      description: str | None = None, validate: bool = True) -> dict[str, Any]:
    """Write a bioimage.io model package to ``path``: a zip if it ends in ``.zip`` (an older zip is
    replaced), else a new or empty folder.

    Returns a report: validation status, the largest difference to torch, each format's export check.
    """
    require("yaml", "Writing a bioimage.io package")
    require("bioimageio.spec", "Writing a bioimage.io package")
    import imageio.v3 as iio
    import tifffile
    import yaml

    path = Path(path)
    zipped = path.suffix.lower() == ".zip"
    if path.is_dir() and (zipped or any(path.iterdir())) or (path.is_file() and not zipped):
        raise InputError(f"{path} exists; choose a new path for the bioimage.io package")
    authors = list(authors or [str(model.card.get("author") or "napari-attnseg user")])
    staging = Path(tempfile.mkdtemp(prefix=".bioimageio-", dir=path.parent if path.parent.exists() else None))
    try:
        reports = {"onnx": export_onnx(model, staging / "weights.onnx"),
                   "torchscript": export_torchscript(model, staging / "weights_torchscript.pt")}
        raw = _test_input(model)
        low, high = model.config.norm_percentiles
        with torch.inference_mode():
            probabilities = _export_module(model)(torch.from_numpy(scale_range(raw, low, high))).numpy()
        np.save(staging / "test_input.npy", raw)
        np.save(staging / "test_output.npy", probabilities)
        iio.imwrite(staging / "cover.png", _cover(raw, probabilities))
        (staging / "README.md").write_text(_documentation(model, reports), encoding="utf-8")
        tifffile.imwrite(staging / "sample_input.tif", raw)
        tifffile.imwrite(staging / "sample_output.tif", probabilities)
        files = {item.name: _sha256(item) for item in staging.iterdir()}
        # JSON round trip: plain types only (torch's version string is a str subclass yaml refuses)
        rdf = json.loads(json.dumps(_rdf(model, files, reports, authors, description), default=_json_default))
        (staging / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False, allow_unicode=True), encoding="utf-8")
        status = validate_package(staging) if validate else "not validated"
        if zipped:
            _zip_folder(staging, path)  # replaces an older zip atomically
        else:
            if path.exists():
                path.rmdir()
            shutil.move(str(staging), path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote bioimage.io package %s (%s)", path, status)
    worst = max(report["max_abs_difference"] for report in reports.values())
    return {"format": "bioimageio", "path": str(path), "validation": status, "max_abs_difference": worst, **reports}


def _zip_folder(folder: Path, path: Path) -> None:
    """Zip ``folder`` into ``path`` atomically: a failure (disk full) leaves no partial zip behind."""
    from .atomic import save_error

    temporary = path.with_name(f".{path.name}.part")
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for item in sorted(folder.iterdir()):
                archive.write(item, item.name)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise save_error(path, error) from error
