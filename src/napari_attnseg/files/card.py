"""The training record a fine-tuned model carries in its card, and a readable rendering of it.

The record says where a model came from without holding any pixels: the base model's name and
weight hash, each training image's name, content hash, shape and checked fraction, the training
configuration, seed, library versions, validation scores, wall time and device.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any, Sequence

import numpy as np

RECORD_VERSION = 1


def array_sha256(array: np.ndarray) -> str:
    """sha256 of an array's bytes, its dtype and its shape (two arrays with equal bytes but
    different shapes or dtypes hash differently)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(memoryview(array.reshape(-1)).cast("B"))
    return digest.hexdigest()


def weights_sha256(network: Any) -> str | None:
    """sha256 over a network's state (names, dtypes, shapes and values, in name order).

    None for a network without weights of its own (an ONNX runtime wrapper).
    """
    import torch

    state = network.state_dict()
    if not state:
        return None
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().to("cpu").contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def describe_images(images: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                    masks: Sequence[np.ndarray | None] | None,
                    names: Sequence[str | None] | None) -> list[dict[str, Any]]:
    """One entry per training image: name (if known), hashes, shape, dtype and checked fraction."""
    masks = [None] * len(images) if masks is None else list(masks)
    names = [None] * len(images) if names is None else list(names)
    entries = []
    for image, label_image, mask, name in zip(images, labels, masks, names):
        image = np.asarray(image)
        entry: dict[str, Any] = {
            "name": None if name is None else str(name),
            "sha256": array_sha256(image),
            "shape": list(image.shape),
            "dtype": str(image.dtype),
            "labels_sha256": array_sha256(np.asarray(label_image)),
        }
        if mask is None:
            entry["checked_fraction"] = 1.0
        else:
            mask = np.asarray(mask)
            entry["checked_fraction"] = round(float(np.count_nonzero(mask)) / max(mask.size, 1), 6)
            entry["mask_sha256"] = array_sha256(mask)
        entries.append(entry)
    return entries


def training_record(base_card: dict[str, Any], base_weights: str | None, images: list[dict[str, Any]],
                    train_config: dict[str, Any], versions: dict[str, str], device: str,
                    precision: str, elapsed: float, epochs: int, steps: int,
                    validation: dict[str, Any]) -> dict[str, Any]:
    """The record of one fine-tuning run (JSON types only)."""
    return {
        "record_version": RECORD_VERSION,
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "base_model": {"name": str(base_card.get("name", "unnamed")), "weights_sha256": base_weights,
                       "record": base_card.get("record")},
        "images": images,
        "train_config": train_config,
        "seed": train_config.get("seed"),
        "versions": versions,
        "device": device,
        "precision": precision,
        "wall_seconds": round(float(elapsed), 2),
        "epochs": epochs,
        "steps": steps,
        "validation": validation,
    }


def record_lines(card: dict[str, Any]) -> list[str]:
    """Readable lines describing ``card["exported"]`` and ``card["record"]`` (empty when neither).

    A card comes from a file that anyone may have edited: a part of the wrong shape is reported as
    unreadable rather than raised.
    """
    try:
        lines = _export_lines(card.get("exported"))
    except (TypeError, ValueError, AttributeError, KeyError):
        lines = ["exported:    (unreadable export report)"]
    record = card.get("record")
    if not isinstance(record, dict):
        return lines
    try:
        return lines + _training_lines(record)
    except (TypeError, ValueError, AttributeError, KeyError):
        return lines + ["fine-tuned:  (unreadable training record)"]


def _export_lines(exported: Any) -> list[str]:
    if not isinstance(exported, dict):
        return []
    reports = exported.get("formats") if isinstance(exported.get("formats"), dict) else {"": exported}
    lines = []
    for report in reports.values():
        if isinstance(report, dict) and "max_abs_difference" in report:
            opset = f" opset {report['opset']} ({report.get('exporter', '?')})" if "opset" in report else ""
            lines.append(f"exported:    {report.get('format', '?')}{opset} with torch {report.get('torch', '?')}; "
                         f"max abs difference to torch {report['max_abs_difference']:.1e}")
    return lines


def _training_lines(record: dict[str, Any]) -> list[str]:
    base = record.get("base_model") or {}
    weights = base.get("weights_sha256") or "?"
    lines = [f"fine-tuned:  {record.get('finished', '?')} from {base.get('name', '?')} "
             f"(weights sha256 {weights[:12]}…)"]
    config = record.get("train_config") or {}
    lines.append(f"             {record.get('epochs', '?')} epochs, {record.get('steps', '?')} steps, "
                 f"{record.get('wall_seconds', '?')} s on {record.get('device', '?')} "
                 f"({record.get('precision', '?')}), seed {record.get('seed')}, "
                 f"lr {config.get('learning_rate', '?')}, crops {config.get('crop_size', '?')}")
    validation = record.get("validation") or {}
    before, after = validation.get("before"), validation.get("after")
    if before and after:
        nan = float("nan")
        lines.append(f"validation:  AP50 {before.get('ap50', nan):.3f} -> {after.get('ap50', nan):.3f}, "
                     f"Dice {before.get('dice', nan):.3f} -> {after.get('dice', nan):.3f}")
    else:
        lines.append("validation:  none (nothing could be held back)")
    for index, image in enumerate(record.get("images") or []):
        name = image.get("name") or f"image {index + 1} (unnamed)"
        shape = "x".join(str(size) for size in image.get("shape", []))
        lines.append(f"  image:     {name}: {shape} {image.get('dtype', '?')}, "
                     f"{100 * image.get('checked_fraction', 0.0):.1f}% checked, "
                     f"sha256 {str(image.get('sha256', '?'))[:12]}…")
    versions = record.get("versions") or {}
    if versions:
        lines.append("libraries:   " + ", ".join(f"{name} {version}" for name, version in versions.items()))
    return lines
