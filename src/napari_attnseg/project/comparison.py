"""Run several models on one image and score each against the user's corrected labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generator, Sequence

import numpy as np

from ..config import InferConfig
from ..errors import InputError
from ..files.modelfile import SegModel
from ..inference.inputs import as_channels_first, check_mask
from ..inference.predict import relay, segment_steps
from ..metrics import SCORE_ROWS, evaluate, format_score


@dataclass(frozen=True)
class CompareProgress:
    """Model ``model`` of ``n_models`` (``name``) is ``within`` of the way through the image."""

    model: int
    n_models: int
    name: str
    within: float

    @property
    def fraction(self) -> float:
        return (self.model + self.within) / self.n_models


@dataclass
class Comparison:
    """Each model's labels and scores, in the order the models were given."""

    names: list[str]
    labels: list[np.ndarray]
    scores: list[dict]
    region: str = "whole image"
    seconds: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def best(self, key: str = "ap50") -> int:
        """Index of the model with the highest ``key`` (the first one on a tie)."""
        return int(np.argmax([score[key] for score in self.scores]))

    def table(self) -> str:
        """A plain-text table, one row per score and one column per model."""
        width = max(12, *(len(name) for name in self.names))
        lines = [f"{'':18}" + "".join(f"{name:>{width + 2}}" for name in self.names)]
        for key, title in SCORE_ROWS:
            cells = [format_score(score[key]) for score in self.scores]
            lines.append(f"{title:18}" + "".join(f"{cell:>{width + 2}}" for cell in cells))
        return "\n".join(lines)


REGIONS = ("auto", "checked", "unchecked", "whole")


def trained_on(model: SegModel, image: np.ndarray) -> bool:
    """Whether ``model`` was fine-tuned on this very image (its training record holds its hash)."""
    from ..files.card import array_sha256

    record = model.card.get("record") or {}
    hashes = {entry.get("sha256") for entry in record.get("images", []) if isinstance(entry, dict)}
    return bool(hashes) and array_sha256(np.asarray(image)) in hashes


def compare_steps(
    image: np.ndarray,
    reference: np.ndarray,
    models: Sequence[tuple[str, SegModel]],
    config: InferConfig | None = None,
    channel_axis: int | None = None,
    checked: np.ndarray | None = None,
    region: str = "auto",
) -> Generator[CompareProgress, None, Comparison]:
    """Segment ``image`` with each model and score it against ``reference`` (corrected labels).

    ``checked`` (optional) marks the pixels a human checked. ``region`` says where to score:
    "checked" (objects cut to the checked pixels, since unchecked parts of the reference may still
    hold the old model's mistakes), "unchecked", "whole", or "auto": the checked pixels, unless a
    model was fine-tuned on this image (it has seen those very pixels, so its score there says
    little), then the unchecked part where the reference has objects there. The comparison's
    ``region`` and ``warnings`` say what was done.
    """
    import time

    if len(models) < 1:
        raise InputError("give at least one model to compare")
    if region not in REGIONS:
        raise InputError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    reference = np.asarray(reference)
    if checked is not None:
        checked = check_mask(checked, reference.shape)
        if not checked.any():
            checked = None
    seen = [name for name, model in models if trained_on(model, image)]
    warnings = [f"{name} was fine-tuned on this image" + (", on its checked pixels" if checked is not None else "")
                + ": its score here is not a test on new data" for name in seen]
    if region == "auto":
        region = "checked"
        if seen and checked is not None and np.any(reference[~checked]):
            region = "unchecked"
            warnings.append("so the scores count only the part not checked (not trained on)")
    if region == "unchecked" and checked is not None:
        checked = ~checked
    elif region == "whole":
        checked = None
    planes = as_channels_first(image, models[0][1].config.in_channels, channel_axis)
    spatial = planes.shape[-2:] if planes.ndim == 3 else (planes.shape[0], *planes.shape[-2:])
    if tuple(spatial) != reference.shape:
        raise InputError(f"the corrected labels {reference.shape} do not match the image's shape "
                         f"{tuple(spatial)}")
    names, labels, scores, seconds = [], [], [], []
    for index, (name, model) in enumerate(models):
        started = time.perf_counter()
        segmentation = yield from relay(
            segment_steps(image, model, config, channel_axis),
            lambda report, index=index, name=name: CompareProgress(index, len(models), name, report.fraction))
        names.append(name)
        labels.append(segmentation.labels)
        scores.append(evaluate(segmentation.labels, reference, checked))
        seconds.append(time.perf_counter() - started)
        yield CompareProgress(index, len(models), name, 1.0)
    where = "unchecked part" if region == "unchecked" else "checked pixels"
    region_text = "whole image" if checked is None else f"{where} ({checked.mean():.0%} of the image)"
    return Comparison(names, labels, scores, region_text, seconds, warnings)
