"""An annotation project on disk: a folder of images plus labels, checked regions and statuses.

Layout (beside the user's images, which are never modified)::

    <folder>/attnseg_project/project.json          statuses, validated JSON
    <folder>/attnseg_project/labels/<name>_labels.tif
    <folder>/attnseg_project/checked/<name>_checked.tif
    <folder>/attnseg_project/models/*.model

Every write is atomic, so the last save survives a crash of napari mid-write; the hidden temporary
such a crash leaves behind is removed when the project is next opened.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import InputError, SaveError
from ..files.atomic import atomic_write_bytes, remove_stale_temporaries
from ..files.images import list_images, read_image, write_labels, write_tiff

logger = logging.getLogger(__name__)

PROJECT_DIR = "attnseg_project"
PROJECT_FORMAT = "napari-attnseg-project"
PROJECT_VERSION = 1
STATUSES = ("new", "segmented", "corrected", "training")


@dataclass
class ImageEntry:
    """One image of the project and what has been done to it."""

    file: str
    status: str = "new"
    updated: str | None = None

    @property
    def stem(self) -> str:
        return Path(self.file).stem


def _safe_relative(name: str) -> str:
    """Refuse absolute paths and `..`: a project file may only point inside its folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts or ":" in path.parts[0]:
        raise InputError(f"project file names must stay inside the project folder, got {name!r}")
    return str(path)


class Project:
    """A folder of images opened as an annotation project."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder).resolve()
        self.data_dir = self.folder / PROJECT_DIR
        self.entries: list[ImageEntry] = []
        self.model_file: str | None = None
        # Segment all saves from its worker thread while napari's autosave saves from the main one:
        # each write must hold the statuses as they are when it is written, not as they were read.
        self._save_lock = threading.Lock()

    # -- opening and saving ----------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | os.PathLike) -> Project:
        """Open (or start) the project of ``folder``, restoring saved statuses."""
        project = cls(folder)
        on_disk = [path.name for path in list_images(project.folder)]
        if not on_disk:
            raise InputError(f"{project.folder} holds no images (.tif, .tiff, .png, .jpg, .jpeg, .bmp)")
        stems = [Path(name).stem for name in on_disk]
        clashes = sorted({name for name, stem in zip(on_disk, stems) if stems.count(stem) > 1})
        if clashes:
            raise InputError(f"images share a name but not an extension ({', '.join(clashes)}); "
                             "their labels would collide, so rename one of each pair")
        for folder in (project.data_dir, project.data_dir / "labels", project.data_dir / "checked",
                       project.models_dir()):
            remove_stale_temporaries(folder)
        saved = project._read_manifest()
        project.entries = [saved.get(name, ImageEntry(name)) for name in on_disk]
        for entry in project.entries:
            if entry.status != "new" and not project.labels_path(entry).exists():
                entry.status = "new"  # labels were deleted by hand: start that image over
        return project

    def _read_manifest(self) -> dict[str, ImageEntry]:
        path = self.data_dir / "project.json"
        if not path.exists():
            return {}
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(f"{path} is damaged ({error}); move it away to start the project afresh") from None
        if not isinstance(manifest, dict) or manifest.get("format") != PROJECT_FORMAT:
            raise InputError(f"{path} is not a napari-attnseg project file")
        version = manifest.get("version", 0)
        if not isinstance(version, int):
            raise InputError(f"{path} has an unreadable version {version!r}")
        if version > PROJECT_VERSION:
            raise InputError(f"{path} was written by a newer napari-attnseg; upgrade to open it")
        images = manifest.get("images", [])
        if not isinstance(images, list):
            raise InputError(f"{path}: 'images' must be a list, got {type(images).__name__}")
        entries = {}
        for item in images:
            if not isinstance(item, dict) or not isinstance(item.get("file"), str):
                raise InputError(f"{path}: every image needs a file name")
            name = _safe_relative(item["file"])
            status = item.get("status", "new")
            if status not in STATUSES:
                raise InputError(f"{path}: unknown status {status!r} for {name}")
            updated = item.get("updated")
            if updated is not None and not isinstance(updated, str):
                raise InputError(f"{path}: the time {name} was updated must be text, got {updated!r}")
            entries[name] = ImageEntry(name, status, updated)
        model_file = manifest.get("model")
        if model_file is not None and not isinstance(model_file, str):
            raise InputError(f"{path}: 'model' must be a file name, got {model_file!r}")
        self.model_file = _safe_relative(model_file) if model_file is not None else None
        return entries

    def save(self) -> None:
        """Write project.json atomically (one writer at a time, from any thread)."""
        with self._save_lock:
            manifest = {
                "format": PROJECT_FORMAT,
                "version": PROJECT_VERSION,
                "model": self.model_file,
                "images": [{"file": e.file, "status": e.status, "updated": e.updated} for e in self.entries],
            }
            atomic_write_bytes(self.data_dir / "project.json", json.dumps(manifest, indent=1).encode())

    # -- per-image data --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def image_path(self, entry: ImageEntry) -> Path:
        return self.folder / entry.file

    def labels_path(self, entry: ImageEntry) -> Path:
        return self.data_dir / "labels" / f"{entry.stem}_labels.tif"

    def checked_path(self, entry: ImageEntry) -> Path:
        return self.data_dir / "checked" / f"{entry.stem}_checked.tif"

    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def read_image(self, entry: ImageEntry) -> np.ndarray:
        return read_image(self.image_path(entry))

    def load_labels(self, entry: ImageEntry) -> np.ndarray | None:
        path = self.labels_path(entry)
        return read_image(path).astype(np.int32) if path.exists() else None

    def labels_stamp(self, entry: ImageEntry) -> tuple[int, int] | None:
        """(modification time, size) of the labels file, or None: tells whether it changed since."""
        try:
            stat = self.labels_path(entry).stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def load_checked(self, entry: ImageEntry) -> np.ndarray | None:
        path = self.checked_path(entry)
        return read_image(path) > 0 if path.exists() else None

    def save_labels(self, entry: ImageEntry, labels: np.ndarray, checked: np.ndarray | None = None,
                    status: str | None = None) -> None:
        """Save labels (and the checked mask) atomically, then the statuses.

        Raises:
            SaveError: something could not be written (disk full, read-only folder); ``entry`` is
                left as it was, so the same call can simply be repeated later.
        """
        if status is not None and status not in STATUSES:
            raise InputError(f"unknown status {status!r}")
        previous = (entry.status, entry.updated)
        try:
            write_labels(self.labels_path(entry), labels)
            if checked is not None:
                write_tiff(self.checked_path(entry), np.asarray(checked, dtype=np.uint8))
            entry.status = status if status is not None else entry.status
            entry.updated = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            self.save()
        except SaveError as error:
            entry.status, entry.updated = previous
            reason = error.reason or str(error)
            raise SaveError(f"could not save the labels of {entry.file}: {reason}; your edits are kept in "
                            "memory and will be saved on the next autosave", reason=reason) from error

    def training_set(self) -> list[tuple[ImageEntry, np.ndarray, np.ndarray, np.ndarray]]:
        """(entry, image, labels, checked) of every corrected image with checked pixels."""
        triples = []
        for entry in self.entries:
            if entry.status not in ("corrected", "training"):
                continue
            labels, checked = self.load_labels(entry), self.load_checked(entry)
            if labels is None or checked is None or not checked.any():
                continue
            triples.append((entry, self.read_image(entry), labels, checked))
        return triples


@dataclass(frozen=True)
class ProjectProgress:
    """Where a project-wide segmentation is: image ``image`` of ``n_images``.

    ``held``: the finished Segmentation of the image given as ``hold`` (set on one report only).
    """

    image: int
    n_images: int
    name: str
    fraction: float
    held: object | None = None


def segment_project_steps(project: Project, model, config=None, hold: ImageEntry | None = None):
    """Segment every project image that is new or only machine-segmented; corrections are kept.

    Yields ProjectProgress after every batch of tiles; returns {"segmented": n, "failed": [names]}.
    Each image's labels are saved as soon as it is done, so a cancel keeps the finished ones. The
    image ``hold`` (the one a viewer shows) is not saved here: its result comes in a report's
    ``held``, for the viewer to show and save, so what is on screen and on disk cannot part.
    """
    from ..inference.predict import relay, segment_steps

    todo = [entry for entry in project.entries if entry.status in ("new", "segmented")]
    failed: list[str] = []
    for index, entry in enumerate(todo):
        try:
            image = project.read_image(entry)
            result = yield from relay(
                segment_steps(image, model, config, with_uncertainty=entry is hold),
                lambda report, index=index, entry=entry: ProjectProgress(
                    index, len(todo), entry.file, (index + report.fraction) / len(todo)))
        except InputError as error:
            logger.warning("skipped %s: %s", entry.file, error)
            failed.append(entry.file)
            continue
        if entry is hold:
            yield ProjectProgress(index, len(todo), entry.file, (index + 1) / len(todo), held=result)
            continue
        if entry.status not in ("new", "segmented"):
            continue  # corrected by hand while this ran: the corrections win
        project.save_labels(entry, result.labels, status="segmented")
    return {"segmented": len(todo) - len(failed), "failed": failed}
