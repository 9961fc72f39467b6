"""Export a model to ONNX or TorchScript, each checked against torch at export time.

An exported file computes class probabilities (the network followed by softmax) for inputs that are
already normalised, shape (batch, channels, y, x) with y and x multiples of ``config.multiple``. Our
ModelConfig and card travel with it (ONNX ``metadata_props``; TorchScript extra files), so
``load_model`` can run it through the same ``segment()`` path.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import logging
import math
import os
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ExportError, MissingExtraError
from .atomic import atomic_write_bytes
from .card import weights_sha256
from .modelfile import FORMAT_NAME, FORMAT_VERSION, SegModel, library_versions

logger = logging.getLogger(__name__)

ONNX_OPSET = 17  # onnxruntime >= 1.13 (2022), TensorRT 8.6, OpenCV 4.8 run opset 17
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
META_FORMAT = "napari-attnseg.format"
META_FORMAT_VERSION = "napari-attnseg.format_version"
META_CONFIG = "napari-attnseg.config"
META_CARD = "napari-attnseg.card"
TORCHSCRIPT_EXTRA = "napari-attnseg.json"
TOLERANCE = 1e-4  # max abs difference of probabilities allowed between torch and the exported file
EXTRA_HINT = "pip install 'napari-attnseg[export]'"


def require(module: str, purpose: str):
    """Import an optional dependency, or raise MissingExtraError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{purpose} needs the optional package {module}: {EXTRA_HINT}") from None


class ProbabilityNetwork(nn.Module):
    """The network followed by softmax over classes: what exported files compute."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(image), dim=1)


def _export_module(model: SegModel) -> ProbabilityNetwork:
    from ..model import AttentionUNet

    if not isinstance(model.network, AttentionUNet):
        raise ExportError(f"model {model.name!r} already runs from an exported file; export the "
                          "napari-attnseg model it came from")
    network = copy.deepcopy(model.network).to("cpu", torch.float32).to(memory_format=torch.contiguous_format)
    return ProbabilityNetwork(network).eval()


def check_shapes(model: SegModel) -> list[tuple[int, int, int, int]]:
    """Two input shapes with different batch sizes and aspect ratios, both allowed by the model."""
    multiple = model.config.multiple
    unit = multiple * math.ceil(32 / multiple)
    channels = model.config.in_channels
    return [(2, channels, 2 * unit, 3 * unit), (1, channels, unit + multiple, 2 * unit + 3 * multiple)]


def _check_inputs(model: SegModel) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(shape, generator=generator) * 1.2 - 0.1 for shape in check_shapes(model)]


def exported_card(model: SegModel, export_info: dict[str, Any]) -> dict[str, Any]:
    """The card an exported file carries: the model's card plus versions, size, weight hash, export."""
    card = copy.deepcopy(model.card)
    card.pop("source", None)
    card["versions"] = library_versions()
    card["parameters"] = sum(parameter.numel() for parameter in model.network.parameters())
    card["weights_sha256"] = weights_sha256(model.network)
    card["exported"] = export_info
    return card


def _metadata(model: SegModel, export_info: dict[str, Any]) -> dict[str, str]:
    from .modelfile import _json_default

    return {
        META_FORMAT: FORMAT_NAME,
        META_FORMAT_VERSION: str(FORMAT_VERSION),
        META_CONFIG: json.dumps(model.config.to_dict()),
        META_CARD: json.dumps(exported_card(model, export_info), default=_json_default),
    }


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' progress messages and deprecation warnings (they go to the log)."""
    names = ("torch", "torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        for name in names:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _max_difference(outputs: list[np.ndarray], references: list[np.ndarray]) -> float:
    differences = []
    for output, reference in zip(outputs, references):
        if output.shape != reference.shape:
            return math.inf
        differences.append(float(np.max(np.abs(output.astype(np.float64) - reference))))
    return max(differences)


def _references(module: nn.Module, inputs: list[torch.Tensor]) -> list[np.ndarray]:
    with torch.inference_mode():
        return [module(tensor).numpy() for tensor in inputs]


def _onnx_proto(module: nn.Module, example: torch.Tensor, opset: int, multiple: int):
    """(ModelProto, exporter name): torch.export-based exporter first, the TorchScript-based one if
    that fails or cannot produce the requested opset (its native opsets start at 18)."""
    onnx = require("onnx", "ONNX export")
    require("onnxscript", "ONNX export")
    from torch.export import Dim

    failures = []
    try:
        blocks = 65536 // multiple
        shapes = {"image": {0: Dim("batch", min=1, max=4096), 2: multiple * Dim("y_blocks", min=1, max=blocks),
                            3: multiple * Dim("x_blocks", min=1, max=blocks)}}
        with _quiet():
            program = torch.onnx.export(module, (example,), dynamo=True, opset_version=opset,
                                        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                        dynamic_shapes=shapes, verbose=False)
        proto = program.model_proto
        if _opset(proto) == opset:
            return proto, "torch.export"
        failures.append(f"torch.export-based exporter gave opset {_opset(proto)}")
    except Exception as error:  # the exporters raise many untyped errors; the fallback decides
        failures.append(f"torch.export-based exporter: {type(error).__name__}")
    logger.info("%s; using the TorchScript-based ONNX exporter", failures[-1])
    axes = {0: "batch", 2: "y", 3: "x"}
    buffer = io.BytesIO()
    try:
        with _quiet():
            torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes})
    except Exception as error:
        failures.append(f"TorchScript-based exporter: {type(error).__name__}: {str(error).splitlines()[0]}")
        raise ExportError(f"the model could not be exported to ONNX opset {opset} ({'; '.join(failures)})") from None
    return onnx.load_from_string(buffer.getvalue()), "torchscript-based"


def _opset(proto) -> int:
    return next((entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")), -1)


def onnx_session(source: bytes | str, ort=None):
    """An onnxruntime CPU session for a model file's bytes or path."""
    ort = ort or require("onnxruntime", "Running an ONNX model")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def export_onnx(model: SegModel, path: str | os.PathLike, opset: int = ONNX_OPSET) -> dict[str, Any]:
    """Write ``model`` as an ONNX file with dynamic batch and spatial axes; returns an export report.

    Before writing, onnxruntime runs the file on random inputs of two sizes and batch sizes; an
    ExportError is raised if its probabilities differ from torch's by more than ``TOLERANCE``.
    """
    if not isinstance(opset, int) or opset < 13:
        raise ExportError(f"ONNX opset must be an integer >= 13, got {opset!r}")
    onnx = require("onnx", "ONNX export")
    ort = require("onnxruntime", "ONNX export")
    module = _export_module(model)
    inputs = _check_inputs(model)
    proto, exporter = _onnx_proto(module, inputs[0], opset, model.config.multiple)
    session = onnx_session(proto.SerializeToString(), ort)
    outputs = [session.run(None, {session.get_inputs()[0].name: tensor.numpy()})[0] for tensor in inputs]
    difference = _max_difference(outputs, _references(module, inputs))
    if not difference <= TOLERANCE:
        raise ExportError(f"the ONNX file does not reproduce the model (max probability difference "
                          f"{difference:.2e} > {TOLERANCE:.0e}); it was not written")
    report = {"format": "onnx", "opset": opset, "exporter": exporter, "torch": torch.__version__,
              "onnxruntime": ort.__version__, "checked_shapes": [list(tensor.shape) for tensor in inputs],
              "max_abs_difference": difference}
    onnx.helper.set_model_props(proto, _metadata(model, report))
    proto.producer_name = FORMAT_NAME
    atomic_write_bytes(path, proto.SerializeToString())
    logger.info("exported %s to %s (%s, max abs difference %.2e)", model.name, path, exporter, difference)
    return report


def export_torchscript(model: SegModel, path: str | os.PathLike) -> dict[str, Any]:
    """Write ``model`` as a traced TorchScript file; returns an export report.

    Tracing records the operations for one input; the trace is checked on a second size and batch
    size so a file that only works at the traced size is never written (ExportError).
    """
    module = _export_module(model)
    inputs = _check_inputs(model)
    with _quiet(), torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.trace(module, inputs[0], check_trace=False)
        outputs = [traced(tensor).numpy() for tensor in inputs]
    difference = _max_difference(outputs, _references(module, inputs))
    if not difference <= TOLERANCE:
        raise ExportError(f"the TorchScript trace does not reproduce the model on other sizes (max "
                          f"probability difference {difference:.2e}); it was not written")
    report = {"format": "torchscript", "torch": torch.__version__,
              "checked_shapes": [list(tensor.shape) for tensor in inputs], "max_abs_difference": difference}
    buffer = io.BytesIO()
    with _quiet():
        torch.jit.save(traced, buffer, _extra_files={TORCHSCRIPT_EXTRA: json.dumps(_metadata(model, report))})
    atomic_write_bytes(path, buffer.getvalue())
    logger.info("exported %s to %s (TorchScript, max abs difference %.2e)", model.name, path, difference)
    return report

