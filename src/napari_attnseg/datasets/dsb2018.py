"""The DSB 2018 nuclei folder (`shared/data/dsb2018`): its images, acquisition types, and one fixed split.

The folder holds ``<id>_image.tif`` / ``<id>_labels.tif`` pairs and a ``manifest.json`` (id, modality,
shape, object count); its README says how to rebuild it from the public sources. The split is made
once, by a fixed seed, stratified by acquisition type (modality + image shape, the proxy the data's
README suggests): within each type a fixed share goes to validation, and one whole type is kept out
of training altogether, so that fine-tuning can be measured on a kind of image the default never saw.
Nothing trains or tunes on the validation part or on the held-out type.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

SPLIT_SEED = 2018
VAL_FRACTION = 0.2
#: the acquisition type no default model is trained on (7 dim, noisy 512x640 fluorescence fields)
HELD_OUT_TYPE = "fluorescence 512x640"
#: types with fewer images than this all go to training (too few to split)
MIN_TYPE_SIZE = 5
ENV_VARIABLE = "ATTNSEG_DSB2018"


@dataclass(frozen=True)
class Entry:
    """One image of the folder."""

    id: str
    modality: str  # "fluorescence" or "histology (H&E, RGB)"
    shape: tuple[int, ...]
    objects: int

    @property
    def kind(self) -> str:
        """The acquisition type: modality and image size, e.g. 'fluorescence 256x256', 'H&E 256x320'."""
        name = "H&E" if self.modality.startswith("histology") else self.modality
        return f"{name} {self.shape[0]}x{self.shape[1]}"


@dataclass(frozen=True)
class Split:
    """Which images train, which validate, and which belong to the type kept out of training."""

    train: tuple[Entry, ...]
    val: tuple[Entry, ...]
    held_out: tuple[Entry, ...]

    def counts(self) -> dict[str, dict[str, int]]:
        """{kind: {"train": n, "val": n, "held_out": n}}"""
        table: dict[str, dict[str, int]] = {}
        for part in ("train", "val", "held_out"):
            for entry in getattr(self, part):
                table.setdefault(entry.kind, {"train": 0, "val": 0, "held_out": 0})[part] += 1
        return dict(sorted(table.items(), key=lambda item: -sum(item[1].values())))


def default_folder() -> Path:
    """$ATTNSEG_DSB2018, else ``shared/data/dsb2018`` beside the project's checkout."""
    if os.environ.get(ENV_VARIABLE):
        return Path(os.environ[ENV_VARIABLE])
    return Path(__file__).resolve().parents[4] / "shared" / "data" / "dsb2018"


def read_manifest(folder: str | os.PathLike | None = None) -> list[Entry]:
    """The folder's images, in manifest order; InputError if it is not the DSB 2018 folder."""
    folder = Path(folder) if folder is not None else default_folder()
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise InputError(f"{folder} holds no manifest.json: not the DSB 2018 nuclei folder (see its README to "
                         f"rebuild it, or set {ENV_VARIABLE})")
    return [Entry(item["id"], item["modality"], tuple(item["shape"]), int(item["objects"]))
            for item in json.loads(manifest.read_text())]


def split(entries: list[Entry], seed: int = SPLIT_SEED, val_fraction: float = VAL_FRACTION,
          held_out_type: str | None = HELD_OUT_TYPE) -> Split:
    """The fixed split: per acquisition type, a seeded ``val_fraction`` to validation, the rest to
    training; the whole ``held_out_type`` apart. The same entries and seed always give the same split."""
    rng = np.random.default_rng(seed)
    by_kind: dict[str, list[Entry]] = {}
    for entry in sorted(entries, key=lambda e: e.id):
        by_kind.setdefault(entry.kind, []).append(entry)
    train, val, held_out = [], [], []
    for kind in sorted(by_kind):
        members = by_kind[kind]
        if kind == held_out_type:
            held_out += members
            continue
        order = rng.permutation(len(members))
        n_val = int(round(val_fraction * len(members))) if len(members) >= MIN_TYPE_SIZE else 0
        val += [members[i] for i in order[:n_val]]
        train += [members[i] for i in order[n_val:]]
    return Split(tuple(train), tuple(val), tuple(held_out))


def load_pair(entry: Entry, folder: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(image, instance labels) of one entry, as stored (uint8 grey or RGB; uint16 labels)."""
    import tifffile

    folder = Path(folder) if folder is not None else default_folder()
    image = tifffile.imread(folder / f"{entry.id}_image.tif")
    labels = tifffile.imread(folder / f"{entry.id}_labels.tif")
    return image, labels.astype(np.int32)


def channel_axis_of(entry: Entry) -> int | None:
    """-1 for the RGB images, None for grey ones."""
    return -1 if len(entry.shape) == 3 else None
