"""Instance and pixel metrics: AP at IoU thresholds (one-to-one matching), Dice, IoU, precision, recall."""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .inference.inputs import check_labels
from .inference.postprocess import pair_iou

#: evaluate()'s scores as a person reads them, in table order: (key, title)
SCORE_ROWS = (("ap50", "AP50"), ("ap75", "AP75"), ("dice", "Dice"), ("precision50", "precision"),
              ("recall50", "recall"), ("n_pred", "objects found"), ("n_true", "objects corrected"))


def format_score(value) -> str:
    """A count as it is, a score with three decimals."""
    return str(value) if isinstance(value, (int, np.integer)) else f"{value:.3f}"


def matched_pairs(pred_labels: np.ndarray, true_labels: np.ndarray, iou_threshold: float) -> int:
    """Number of one-to-one matches with IoU of at least ``iou_threshold``.

    Above 0.5 a match is unique by construction (two objects cannot both cover more than half of
    the union with a third); otherwise pairs are taken greedily, best IoU first.
    """
    pred_ids, true_ids, iou = pair_iou(pred_labels, true_labels)
    keep = iou >= iou_threshold
    if iou_threshold > 0.5:
        return int(keep.sum())
    used_pred: set[int] = set()
    used_true: set[int] = set()
    for index in np.argsort(iou)[::-1]:
        if not keep[index]:
            break
        pred_id, true_id = int(pred_ids[index]), int(true_ids[index])
        if pred_id not in used_pred and true_id not in used_true:
            used_pred.add(pred_id)
            used_true.add(true_id)
    return len(used_pred)


def evaluate(pred_labels: np.ndarray, true_labels: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """Scores of predicted against true instance labels of the same shape.

    Args:
        mask: optional bool array; only pixels inside it are compared (objects are cut to it).

    Returns:
        dict with ap50, ap75 (TP / (TP + FP + FN)), precision50, recall50, dice, iou (foreground),
        n_true, n_pred, and the matches tp50, tp75 (for pooling, see ``pooled``).
    """
    pred_labels = np.asarray(pred_labels)
    true_labels = np.asarray(true_labels)
    if pred_labels.shape != true_labels.shape:
        raise InputError(f"prediction shape {pred_labels.shape} differs from truth {true_labels.shape}")
    # Integral floats (a label image saved as float) are accepted, as for training.
    pred_labels = check_labels(pred_labels, pred_labels.shape, name="prediction labels")
    true_labels = check_labels(true_labels, true_labels.shape, name="true labels")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != pred_labels.shape:
            raise InputError(f"mask shape {mask.shape} differs from the labels' {pred_labels.shape}")
        pred_labels = np.where(mask, pred_labels, 0)
        true_labels = np.where(mask, true_labels, 0)
    n_pred = int(np.unique(pred_labels[pred_labels > 0]).size)
    n_true = int(np.unique(true_labels[true_labels > 0]).size)
    scores: dict = {"n_true": n_true, "n_pred": n_pred}
    for threshold, key in ((0.5, "50"), (0.75, "75")):
        true_positive = matched_pairs(pred_labels, true_labels, threshold)
        scores[f"tp{key}"] = true_positive
        false_positive, false_negative = n_pred - true_positive, n_true - true_positive
        denominator = true_positive + false_positive + false_negative
        scores[f"ap{key}"] = true_positive / denominator if denominator else 1.0
        if key == "50":
            scores["precision50"] = true_positive / n_pred if n_pred else float(n_true == 0)
            scores["recall50"] = true_positive / n_true if n_true else 1.0
    pred_fg, true_fg = pred_labels > 0, true_labels > 0
    intersection = int(np.logical_and(pred_fg, true_fg).sum())
    total = int(pred_fg.sum() + true_fg.sum())
    scores["dice"] = 2 * intersection / total if total else 1.0
    union = total - intersection
    scores["iou"] = intersection / union if union else 1.0
    return scores


def pooled(scores: list[dict]) -> dict:
    """Scores over many images as one: AP = sum of TP / sum of (TP + FP + FN), objects summed, and the
    per-image means of AP50 and Dice beside them. A field of many nuclei weighs more than a sparse one."""
    if not scores:
        raise InputError("no scores to pool")
    result: dict = {"images": len(scores), "n_true": sum(s["n_true"] for s in scores),
                    "n_pred": sum(s["n_pred"] for s in scores)}
    for key in ("50", "75"):
        tp = sum(s[f"tp{key}"] for s in scores)
        denominator = result["n_true"] + result["n_pred"] - tp
        result[f"ap{key}"] = tp / denominator if denominator else 1.0
        result[f"tp{key}"] = tp
    result["mean_ap50"] = float(np.mean([s["ap50"] for s in scores]))
    result["mean_dice"] = float(np.mean([s["dice"] for s in scores]))
    return result
