"""A last resort for edits that could not be saved into their project when napari closed.

If the project folder cannot be written (disk full, read-only, unplugged) while napari closes, the
labels are written to a rescue folder outside it, and put back into the project the next time it
is opened where it can be written. Nothing here needs Qt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AttnSegError, SaveError
from ..files.atomic import atomic_write_bytes
from ..files.images import read_image, write_tiff
from .folder import ImageEntry, Project

log = logging.getLogger(__name__)

RESCUE_ENV = "NAPARI_ATTNSEG_RESCUE_DIR"


def rescue_root() -> Path:
    """Where rescued edits go: $NAPARI_ATTNSEG_RESCUE_DIR, else ~/.napari-attnseg/rescue."""
    configured = os.environ.get(RESCUE_ENV)
    return Path(configured) if configured else Path.home() / ".napari-attnseg" / "rescue"


def rescue_folder(project: Project) -> Path:
    """The rescue folder of one project (named after it, unique by its absolute path)."""
    key = hashlib.sha256(str(project.folder.resolve()).encode()).hexdigest()[:12]
    return rescue_root() / f"{project.folder.name}-{key}"


@dataclass
class Rescued:
    """Labels (and checked regions) of one image, waiting in the rescue folder."""

    entry: ImageEntry
    labels: np.ndarray
    checked: np.ndarray | None
    status: str | None
    files: list[Path]


def write_rescue(project: Project, entry: ImageEntry, labels: np.ndarray, checked: np.ndarray | None,
                 status: str | None) -> Path:
    """Write one image's unsaved edits to the rescue folder; returns that folder (SaveError if even
    that fails)."""
    folder = rescue_folder(project)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SaveError(f"could not write a rescue copy to {folder}: {error.strerror or error}") from error
    write_tiff(folder / f"{entry.stem}_labels.tif", np.asarray(labels, dtype=np.int32))
    if checked is not None:
        write_tiff(folder / f"{entry.stem}_checked.tif", np.asarray(checked, dtype=np.uint8))
    record = {"file": entry.file, "status": status, "checked": checked is not None}
    atomic_write_bytes(folder / f"{entry.stem}.json", json.dumps(record).encode())
    log.warning("saved a rescue copy of %s to %s", entry.file, folder)
    return folder


def pending_rescues(project: Project) -> list[Rescued]:
    """The rescued edits waiting for ``project`` (unreadable or stray files are skipped)."""
    folder = rescue_folder(project)
    if not folder.is_dir():
        return []
    entries = {entry.file: entry for entry in project.entries}
    found = []
    for record_path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            entry = entries[record["file"]]
            labels_path = folder / f"{entry.stem}_labels.tif"
            checked_path = folder / f"{entry.stem}_checked.tif"
            labels = read_image(labels_path)
            checked = read_image(checked_path) > 0 if record.get("checked") else None
        except (OSError, ValueError, KeyError, TypeError, AttnSegError) as error:
            log.warning("skipping rescue record %s: %s", record_path, error)
            continue
        files = [record_path, labels_path] + ([checked_path] if checked is not None else [])
        found.append(Rescued(entry, labels, checked, record.get("status"), files))
    return found


def restore_rescues(project: Project) -> list[str]:
    """Put rescued edits back into ``project`` and remove them from the rescue folder.

    Returns the image files restored. A SaveError (the project still cannot be written) leaves the
    rescue copies where they are.
    """
    restored = []
    for rescued in pending_rescues(project):
        project.save_labels(rescued.entry, rescued.labels, rescued.checked, status=rescued.status)
        for path in rescued.files:
            path.unlink(missing_ok=True)
        restored.append(rescued.entry.file)
    folder = rescue_folder(project)
    if folder.is_dir() and not any(folder.iterdir()):
        shutil.rmtree(folder, ignore_errors=True)
    return restored
