"""Train the bundled default model from synthetic images only, reproducibly.

    .venv/bin/python scripts/train_default.py            # writes src/napari_attnseg/weights/default.safetensors

Every number that shapes the model is here, and the run is seeded with an epoch budget (not a time
budget), so the same machine and library versions give the same weights.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from napari_attnseg.config import InferConfig, ModelConfig, TrainConfig
from napari_attnseg.datasets.synthetic import synthetic_nuclei
from napari_attnseg.files.modelfile import default_model_path, new_model, save_model
from napari_attnseg.inference.predict import drain
from napari_attnseg.train.training import train_steps

MODEL = ModelConfig(in_channels=1, task="instance", base_width=16, depth=4, attention="gate")
TRAIN = TrainConfig(
    max_seconds=1e9,  # epoch budget only, for reproducibility
    max_epochs=45,
    steps_per_epoch=200,
    batch_size=8,
    crop_size=128,
    learning_rate=3e-3,
    val_fraction=0.1,
    patience=45,
    seed=2026,
)
N_IMAGES = 360
IMAGE_SHAPE = (256, 256)
SEED = 2026


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=default_model_path())
    parser.add_argument("--epochs", type=int, default=TRAIN.max_epochs, help="override for a quick trial")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    log = logging.getLogger("train_default")

    started = time.perf_counter()
    pairs = [synthetic_nuclei(IMAGE_SHAPE, seed=SEED + index) for index in range(N_IMAGES)]
    images, labels = zip(*pairs)
    log.info("generated %d synthetic images in %.1f s", N_IMAGES, time.perf_counter() - started)

    model = new_model(MODEL, name="attnseg-default-nuclei", seed=SEED)
    model.card["description"] = (
        "Fluorescence nuclei (instance: background/interior/boundary). Trained only on synthetic "
        "images from napari_attnseg.datasets.synthetic by scripts/train_default.py."
    )
    config = TRAIN.replace(max_epochs=args.epochs, patience=args.epochs)

    def report(progress) -> None:
        if progress.val is not None:
            log.info("epoch %3d step %5d loss %.3f val ap50 %.3f ap75 %.3f dice %.3f (%.0f s)",
                     progress.epoch, progress.step, progress.loss, progress.val["ap50"],
                     progress.val["ap75"], progress.val["dice"], progress.elapsed)

    trained = drain(train_steps(model, images, labels, None, config,
                                infer_config=InferConfig(device=config.device, tile_size=256)), report)

    trained.card["name"] = "attnseg-default-nuclei"
    trained.card["trained_on"] = (f"{N_IMAGES} synthetic {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} nuclei images "
                                  f"(napari_attnseg.datasets.synthetic, seeds {SEED}..{SEED + N_IMAGES - 1})")
    trained.card.pop("base_model", None)
    path = save_model(trained, args.output)
    log.info("saved %s (%.1f MB) after %.0f s", path, path.stat().st_size / 1e6, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
