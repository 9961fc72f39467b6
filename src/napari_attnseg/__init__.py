"""napari-attnseg: attention U-Net segmentation you can correct and fine-tune.

The public API is imported lazily so that `import napari_attnseg` (and napari's start-up) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_model": "modelio",
    "save_model": "modelio",
    "new_model": "modelio",
    "SegModel": "modelio",
    "segment": "inference",
    "predict": "inference",
    "predict_steps": "inference",
    "finetune": "training",
    "train_steps": "training",
    "evaluate": "metrics",
    "synthetic_nuclei": "synthetic",
    "ModelConfig": "config",
    "InferConfig": "config",
    "TrainConfig": "config",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'napari_attnseg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
