"""SegModel (network + config + card) and its safe, atomic model files.

A model file is a safetensors file: plain tensors plus a JSON header. Nothing in it is ever
unpickled, so opening a model from a colleague cannot run code.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import platform
import struct
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from ..config import ModelConfig
from ..errors import ConfigError, ModelFileError
from ..model import AttentionUNet, build_network, count_parameters
from .atomic import atomic_write_bytes
from .card import record_lines

FORMAT_NAME = "napari-attnseg"
FORMAT_VERSION = 1
DEFAULT_MODEL_FILE = "default.safetensors"
_MAX_HEADER_BYTES = 16 * 1024 * 1024


@dataclass
class SegModel:
    """A network ready to segment, with the config that built it and its metadata card."""

    network: AttentionUNet
    config: ModelConfig
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.card.get("name", "unnamed"))

    @property
    def history(self) -> list[dict[str, Any]]:
        """Per-epoch training records (empty for a model that was never fine-tuned here)."""
        return self.card.setdefault("history", [])

    def copy(self) -> SegModel:
        """An independent deep copy (weights, config, card) on the CPU."""
        network = copy.deepcopy(self.network).to("cpu")
        return SegModel(network=network, config=self.config, card=copy.deepcopy(self.card))

    def parameter_count(self) -> int:
        """Trainable parameters (from the card for a model that runs from an exported file)."""
        return count_parameters(self.network) or int(self.card.get("parameters", 0))

    def summary(self) -> str:
        """A few readable lines: name, architecture, size, training."""
        lines = [
            f"name:        {self.name}",
            f"created:     {self.card.get('created', '?')}",
            f"task:        {self.config.task} ({self.config.n_classes} classes)",
            f"network:     attention U-Net, attention={self.config.attention}, "
            f"depth={self.config.depth}, base width={self.config.base_width}, "
            f"{self.parameter_count():,} parameters",
            f"input:       {self.config.in_channels} channel(s), percentile normalisation "
            f"{self.config.norm_percentiles[0]}-{self.config.norm_percentiles[1]}",
            f"trained on:  {self.card.get('trained_on', '?')}",
        ]
        scored = [(record, key) for record in self.history for key in ("val_ap50", "dev_ap50") if key in record]
        if scored:
            best, key = max(scored, key=lambda pair: pair[0][pair[1]])
            when = f"epoch {best['epoch']}" if "epoch" in best else f"step {best.get('step')}"
            what = "validation" if key == "val_ap50" else "dev-set"
            lines.append(f"history:     {len(self.history)} evaluations, best {what} AP50 {best[key]:.3f} at {when}")
        if self.card.get("description"):
            lines.append(f"description: {self.card['description']}")
        source = self.card.get("source")
        if isinstance(source, dict):
            lines.append(f"runs from:   {source.get('format', '?')} file {source.get('file', '?')} "
                         f"({source.get('runtime', '?')})")
        lines.extend(record_lines(self.card))
        return "\n".join(lines)


def new_model(config: ModelConfig | None = None, name: str = "untrained", seed: int = 0) -> SegModel:
    """A freshly initialised model (weights seeded)."""
    config = config or ModelConfig()
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    network = build_network(config)
    torch.random.set_rng_state(generator_state)
    return SegModel(network=_cpu_layout(network), config=config, card=_new_card(name))


def _new_card(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "trained_on": "nothing yet",
        "history": [],
    }


def library_versions() -> dict[str, str]:
    from .. import __version__

    return {
        "napari-attnseg": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def save_model(model: SegModel, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` atomically (a crash leaves the previous file intact)."""
    path = Path(path)
    if not isinstance(model.network, AttentionUNet):
        raise ModelFileError(f"model {model.name!r} runs from an exported file, which cannot be re-saved as a "
                             "napari-attnseg model file; share the exported file itself")
    card = dict(model.card)
    card.pop("source", None)
    card["versions"] = library_versions()
    state = {key: tensor.detach().to("cpu").contiguous() for key, tensor in model.network.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(model.config.to_dict()),
        "card": json.dumps(card, default=_json_default),
    }
    payload = save_safetensors_bytes(state, metadata=metadata)
    atomic_write_bytes(path, payload)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def default_model_path() -> Path:
    return Path(str(resources.files("napari_attnseg") / "weights" / DEFAULT_MODEL_FILE))


def read_model_file(path: Path) -> SegModel:
    """Read a napari-attnseg model file (safetensors with our header). Never unpickles."""
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file (nor a bioimage.io package: no rdf.yaml)")
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        payload = path.read_bytes()
    except OSError as error:  # no permission, a disk error
        raise ModelFileError(f"cannot read {path}: {error.strerror or error}") from None
    metadata = _read_header(path, payload)
    try:
        config = ModelConfig.from_dict(json.loads(metadata["config"]))
        card = json.loads(metadata.get("card", "{}"))
        if not isinstance(card, dict):
            raise TypeError("the card is not a mapping")
    except (json.JSONDecodeError, ConfigError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path.name}: its model configuration is invalid ({error})") from None
    try:
        state = load_safetensors_bytes(payload)
    except Exception as error:  # safetensors raises its own untyped errors for damaged files
        raise ModelFileError(f"{path.name} is damaged and cannot be read ({error})") from None
    network = build_network(config)
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [key for key in expected if key in state and state[key].shape != expected[key].shape]
    if missing or unexpected or wrong_shape:
        raise ModelFileError(
            f"{path.name}: weights do not fit its configuration "
            f"({len(missing)} missing, {len(unexpected)} unexpected, {len(wrong_shape)} wrong shape)"
        )
    network.load_state_dict(state)
    network.eval()
    return SegModel(network=_cpu_layout(network), config=config, card=card)



def _cpu_layout(network: AttentionUNet) -> AttentionUNet:
    """Channels-last weights: faster convolutions on CPUs, and inference need not convert (in place)
    a network that another thread may be copying."""
    return network.to(memory_format=torch.channels_last)


def _read_header(path: Path, payload: bytes) -> dict[str, str]:
    # A safetensors file starts with the length of its JSON header, whose first byte is 0x80 for
    # one header length in 32 (lengths are multiples of 8): so look for that framing before
    # taking 0x80/"PK" for the start of a pickle or a torch.save zip.
    header_length = struct.unpack("<Q", payload[:8])[0] if len(payload) >= 8 else None
    framed = (header_length is not None and header_length <= min(_MAX_HEADER_BYTES, len(payload) - 8)
              and payload[8:9] == b"{")
    if not framed:
        if payload[:2] == b"PK" or payload[:1] == b"\x80":
            raise ModelFileError(
                f"{path.name} is a pickled PyTorch file; napari-attnseg never unpickles model files "
                "because unpickling can run code. Re-save it with napari-attnseg."
            )
        if len(payload) < 8:
            raise ModelFileError(f"{path.name} is not a napari-attnseg model (file too short)")
        raise ModelFileError(f"{path.name} is not a napari-attnseg model, or it is truncated")
    try:
        header = json.loads(payload[8: 8 + header_length])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFileError(f"{path.name} is not a napari-attnseg model (unreadable header)") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    if metadata.get("format") != FORMAT_NAME or "config" not in metadata:
        raise ModelFileError(f"{path.name} is a safetensors file but not a napari-attnseg model")
    try:
        version = int(metadata.get("format_version", "0"))
    except ValueError:
        raise ModelFileError(f"{path.name} has an unreadable format version") from None
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path.name} was written by a newer napari-attnseg (model format {version}; this "
            f"version reads up to {FORMAT_VERSION}): upgrade with `pip install -U napari-attnseg`"
        )
    return metadata
