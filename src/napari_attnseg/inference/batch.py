"""Segment many image files into one folder of label files: the CLI's `segment`, usable from scripts.

Output names are ``<image stem>_labels.tif`` directly inside the output folder, whatever the input
path looks like (``../x.tif``, odd characters): nothing is ever written outside that folder.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Generator, Sequence

from ..config import InferConfig
from ..errors import InputError
from ..files.images import IMAGE_SUFFIXES, list_images, read_image, write_labels

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileResult:
    """What became of one image: its label file and object count, or why it was skipped."""

    image: Path
    output: Path
    n_objects: int = 0
    error: str | None = None


@dataclass(frozen=True)
class BatchProgress:
    """Image ``index`` of ``n_images``: ``tiles_done`` of ``tiles_total``; ``result`` once it is done."""

    index: int
    n_images: int
    image: Path
    tiles_done: int
    tiles_total: int
    result: FileResult | None = None

    @property
    def fraction(self) -> float:
        within = self.tiles_done / self.tiles_total if self.tiles_total else 0.0
        return (self.index + (1.0 if self.result else within)) / self.n_images


def expand_images(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files from files and folders (a folder gives the images directly inside it, by name)."""
    images: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise InputError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            images.extend(found)
        elif path.is_file():
            images.append(path)
        else:
            raise InputError(f"no such image file or folder: {path}")
    return images


def label_path(out_dir: str | os.PathLike, image: str | os.PathLike) -> Path:
    """``out_dir/<stem>_labels.tif``; refuses any name that would land outside ``out_dir``."""
    out_dir = Path(out_dir)
    output = out_dir / f"{Path(image).stem}_labels.tif"
    # abspath, not resolve: a symlink already in out_dir is replaced by the write, not followed.
    if Path(os.path.abspath(output)).parent != Path(os.path.abspath(out_dir)):
        raise InputError(f"the label file name for {image} would leave the output folder {out_dir}")
    return output


def plan_outputs(images: Sequence[Path], out_dir: str | os.PathLike, overwrite: bool) -> list[Path]:
    """The label file of every image; refuses collisions and, without ``overwrite``, existing files."""
    outputs = [label_path(out_dir, image) for image in images]
    if len(set(outputs)) != len(outputs):
        raise InputError("two images share a file name, so their label files would collide; "
                         "segment them into different folders")
    existing = [str(path) for path in outputs if os.path.lexists(path)]
    if existing and not overwrite:
        raise InputError(f"{existing[0]} exists; pass --overwrite to replace label files")
    return outputs


def segment_files_steps(
    images: Sequence[Path],
    outputs: Sequence[Path],
    model,
    config: InferConfig | None = None,
    channel_axis: int | None = None,
) -> Generator[BatchProgress, None, list[FileResult]]:
    """Segment each image and write its labels; yields after every batch of tiles and every file.

    An image that cannot be used (InputError) is skipped and reported in its FileResult; each
    image is read, segmented and written before the next is read, so memory stays flat.
    """
    from .predict import labels_from_prediction, predict_steps, relay

    config = config or InferConfig()
    results: list[FileResult] = []
    for index, (image_path, output) in enumerate(zip(images, outputs)):
        yield BatchProgress(index, len(images), image_path, 0, 0)
        try:
            image = read_image(image_path)
            prediction = yield from relay(
                predict_steps(image, model, config, channel_axis=channel_axis),
                lambda report, index=index, image_path=image_path: BatchProgress(
                    index, len(images), image_path, report.done, report.total))
            labels = labels_from_prediction(prediction, model, config)
        except InputError as error:
            result = FileResult(image_path, output, error=str(error))
        else:
            write_labels(output, labels)
            result = FileResult(image_path, output, n_objects=int(labels.max(initial=0)))
            logger.info("%s: %d objects -> %s", image_path.name, result.n_objects, output)
        results.append(result)
        yield BatchProgress(index, len(images), image_path, 0, 0, result=result)
    return results
