"""Run exported models (ONNX, TorchScript, bioimage.io packages of ours) through ``segment()``.

``load_model`` hands these files here. The returned SegModel's ``network`` is a small torch module
that takes normalised (N, C, Y, X) tensors and returns log-probabilities, which the inference path
treats as logits (softmax of log p is p).

Safety: an ONNX file is a graph of standard operators run by onnxruntime; opening it runs no code of
its author's, and as the session is built from the file's bytes, references to external data files
are refused rather than followed (tried by hand with onnxruntime 1.31). A TorchScript file is a
program: torch.jit.load runs no Python pickle, but the file's TorchScript code runs (its
``__setstate__`` methods on load, ``forward`` on every call), and PyTorch's security policy says to
treat such models as code from their author. So TorchScript files (and packages used through their
TorchScript weights) load only with ``trust_code=True``.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError, ModelFileError
from .modelfile import FORMAT_NAME, FORMAT_VERSION, SegModel
from .torch_export import (
    META_CARD,
    META_CONFIG,
    META_FORMAT,
    META_FORMAT_VERSION,
    TORCHSCRIPT_EXTRA,
    onnx_session,
    require,
)

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
_TINY = torch.finfo(torch.float32).tiny


def _as_logits(probabilities: torch.Tensor) -> torch.Tensor:
    return torch.log(probabilities.float().clamp_min(_TINY))


class OnnxNetwork(nn.Module):
    """An onnxruntime session behind the torch interface inference uses (no weights of its own).

    Inputs are run in float32 on the CPU whatever the autocast state or the tensor's device; the
    result comes back on the input's device. ``.to()`` and ``.eval()`` are harmless no-ops.
    """

    def __init__(self, session: Any, model_bytes: bytes) -> None:
        super().__init__()
        self.session = session
        self.model_bytes = model_bytes  # to rebuild the session in another process (dask workers)
        self.input_name = session.get_inputs()[0].name

    def forward(self, image: torch.Tensor, return_attention: bool = False):
        array = image.detach().to("cpu", torch.float32).contiguous().numpy()
        probabilities = self.session.run(None, {self.input_name: array})[0]
        logits = _as_logits(torch.from_numpy(probabilities)).to(image.device)
        return (logits, []) if return_attention else logits

    def __deepcopy__(self, memo: dict) -> OnnxNetwork:
        return OnnxNetwork(self.session, self.model_bytes)  # a session is immutable and thread-safe

    def __reduce__(self):
        return _onnx_network, (self.model_bytes,)


def _onnx_network(model_bytes: bytes) -> OnnxNetwork:
    return OnnxNetwork(onnx_session(model_bytes), model_bytes)


class TorchscriptNetwork(nn.Module):
    """A traced probability network (from ``export_torchscript``) behind the inference interface."""

    def __init__(self, scripted: nn.Module) -> None:
        super().__init__()
        self.scripted = scripted

    def forward(self, image: torch.Tensor, return_attention: bool = False):
        logits = _as_logits(self.scripted(image.float()))
        return (logits, []) if return_attention else logits


def _parse_metadata(metadata: dict[str, str], where: str) -> tuple[ModelConfig, dict[str, Any]]:
    if metadata.get(META_FORMAT) != FORMAT_NAME or META_CONFIG not in metadata:
        raise ModelFileError(f"{where} was not exported by napari-attnseg (its metadata holds no model configuration)")
    try:
        version = int(metadata.get(META_FORMAT_VERSION, "0"))
        config = ModelConfig.from_dict(json.loads(metadata[META_CONFIG]))
        card = json.loads(metadata.get(META_CARD, "{}"))
    except (ValueError, TypeError, ConfigError) as error:
        raise ModelFileError(f"{where}: its model configuration is invalid ({error})") from None
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{where} was written by a newer napari-attnseg: pip install -U napari-attnseg")
    return config, card if isinstance(card, dict) else {}


def load_onnx(source: Path | bytes, where: str) -> SegModel:
    """A SegModel running an ONNX file (path or bytes) exported by napari-attnseg, via onnxruntime."""
    ort = require("onnxruntime", "Running an ONNX model")
    model_bytes = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        session = onnx_session(model_bytes, ort)
    except Exception as error:  # onnxruntime raises its own untyped errors for damaged files
        raise ModelFileError(f"{where} is not a readable ONNX model ({str(error).splitlines()[0][:200]})") from None
    config, card = _parse_metadata(session.get_modelmeta().custom_metadata_map, where)
    channels = session.get_inputs()[0].shape[1]
    if isinstance(channels, int) and channels != config.in_channels:
        raise ModelFileError(f"{where}: the network reads {channels} channels but its configuration says "
                             f"{config.in_channels}")
    card["source"] = {"format": "onnx", "file": where, "runtime": f"onnxruntime {ort.__version__}"}
    return SegModel(network=OnnxNetwork(session, model_bytes), config=config, card=card)


def load_torchscript(source: Path | bytes, where: str, trust_code: bool = False) -> SegModel:
    """A SegModel running a TorchScript file exported by napari-attnseg (only with ``trust_code``)."""
    if not trust_code:
        raise ModelFileError(f"{where} is TorchScript, a program that runs when loaded; load it only if you "
                             "trust its author (trust_code=True, or --trust-code), or use its ONNX export")
    extra = {TORCHSCRIPT_EXTRA: ""}
    stream = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        scripted = torch.jit.load(stream, map_location="cpu", _extra_files=extra)
    except Exception as error:  # torch.jit raises RuntimeErrors of many kinds for foreign files
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ModelFileError(f"{where} is not a readable TorchScript file ({reason})") from None
    try:
        metadata = json.loads(extra[TORCHSCRIPT_EXTRA] or "{}")
    except json.JSONDecodeError:
        metadata = {}
    config, card = _parse_metadata(metadata if isinstance(metadata, dict) else {}, where)
    card["source"] = {"format": "torchscript", "file": where, "runtime": f"torch {torch.__version__}"}
    return SegModel(network=TorchscriptNetwork(scripted.eval()), config=config, card=card)


class _Package:
    """Files of a bioimage.io package, a folder or a zip, read by relative name only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = None if path.is_dir() else zipfile.ZipFile(path)

    def __enter__(self) -> _Package:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.zip is not None:
            self.zip.close()

    def names(self) -> list[str]:
        if self.zip is not None:
            return self.zip.namelist()
        return [str(item.relative_to(self.path)) for item in self.path.iterdir()]

    def read(self, name: str) -> bytes:
        relative = PurePosixPath(str(name))
        if relative.is_absolute() or ".." in relative.parts or "://" in str(name):
            raise ModelFileError(f"{self.path.name}: file {name!r} lies outside the package")
        try:
            if self.zip is not None:
                return self.zip.read(str(relative))
            return (self.path / relative).read_bytes()
        except (KeyError, OSError):
            raise ModelFileError(f"{self.path.name}: the package lacks its file {name}") from None


def load_bioimageio(path: Path, trust_code: bool = False) -> SegModel:
    """A SegModel from a bioimage.io package (folder or zip) exported by napari-attnseg.

    Uses the ONNX weights (onnxruntime); the TorchScript weights only if there are no ONNX weights
    and ``trust_code`` is set.
    """
    import yaml

    try:
        with _Package(path) as package:
            rdf_name = next((name for name in RDF_NAMES if name in package.names()), None)
            if rdf_name is None:
                raise ModelFileError(f"{path.name} holds no rdf.yaml, so it is not a bioimage.io package")
            rdf = yaml.safe_load(package.read(rdf_name))
            weights = (rdf.get("weights") or {}) if isinstance(rdf, dict) else {}
            kind = "onnx" if "onnx" in weights else "torchscript" if "torchscript" in weights else None
            weights_file = str(weights[kind]["source"]) if kind else ""
            payload = package.read(weights_file) if kind else b""
    except (zipfile.BadZipFile, yaml.YAMLError, UnicodeDecodeError, TypeError, KeyError) as error:
        raise ModelFileError(f"{path.name} is damaged ({error})") from None
    section = rdf.get("config") if isinstance(rdf, dict) else None
    ours = section.get(FORMAT_NAME) if isinstance(section, dict) else None
    if not isinstance(ours, dict) or "model_config" not in ours:
        raise ModelFileError(f"{path.name} is a bioimage.io package that napari-attnseg did not export; "
                             "only packages exported by napari-attnseg can be loaded")
    if kind == "onnx":
        model = load_onnx(payload, f"{path.name}:{weights_file}")
    elif kind == "torchscript":
        model = load_torchscript(payload, f"{path.name}:{weights_file}", trust_code)
    else:
        raise ModelFileError(f"{path.name} has neither ONNX nor TorchScript weights")
    try:
        config = ModelConfig.from_dict(ours["model_config"])
    except ConfigError as error:
        raise ModelFileError(f"{path.name}: its model configuration is invalid ({error})") from None
    if config != model.config:
        raise ModelFileError(f"{path.name}: rdf.yaml and the {kind} weights disagree on the model configuration")
    card = ours.get("card") if isinstance(ours.get("card"), dict) else model.card
    card["source"] = dict(model.card["source"], format=f"bioimage.io package ({kind} weights)", file=path.name)
    return SegModel(network=model.network, config=config, card=card)


def is_torchscript_zip(names: list[str]) -> bool:
    return any(name.endswith("/constants.pkl") for name in names) and any("/code/" in name for name in names)


def load_exported(path: Path, trust_code: bool = False) -> SegModel | None:
    """The SegModel for an exported file or package, or None when ``path`` is not one of those."""
    if path.is_dir():
        return load_bioimageio(path, trust_code)
    if path.suffix.lower() == ".onnx":
        return load_onnx(path, path.name)
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any(name in RDF_NAMES for name in names):
        return load_bioimageio(path, trust_code)
    if is_torchscript_zip(names):
        return load_torchscript(path, path.name, trust_code)
    return None

