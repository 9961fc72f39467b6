"""napari-attnseg: attention U-Net segmentation you can correct and fine-tune.

The public API is imported lazily so that `import napari_attnseg` (and napari's start-up) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_model": "files.loading",
    "save_model": "files.modelfile",
    "new_model": "files.modelfile",
    "SegModel": "files.modelfile",
    "segment": "inference.predict",
    "predict": "inference.predict",
    "predict_steps": "inference.predict",
    "finetune": "train.training",
    "train_steps": "train.training",
    "evaluate": "metrics",
    "synthetic_nuclei": "datasets.synthetic",
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
