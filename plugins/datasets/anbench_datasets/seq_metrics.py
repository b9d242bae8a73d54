"""Task metrics of the NAS-Bench-360 tasks (spec 9.2), in NumPy (scikit-learn only checks them in tests).

* ECG: ``macro_f1`` (0..1) over the 4 classes at recording level: each recording's class is
  the majority vote of its windows' argmax predictions (a tie goes to the class seen first
  in window order, like ``Counter.most_common``), compared with the recording's label.
  A class with no true and no predicted recording scores 0.
* Satellite: ``top1``/``top5`` accuracy in percent (:func:`anbench.train.metrics.topk_accuracy`).
* DeepSEA: ``mean_auroc`` and ``mean_aupr`` (0..1), the NaN-mean over the 36 targets of the
  area under the ROC curve and under the precision-recall curve (trapezoids over every
  distinct score, as scikit-learn's ``roc_curve``/``precision_recall_curve`` + ``auc``). A
  target with only one class in the evaluated samples has no curve: NaN, left out of the mean.
"""

from __future__ import annotations

import numpy as np


def _numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().float().numpy() if values.is_floating_point() else values.detach().cpu().numpy()
    return np.asarray(values)


# --- classification (top-k accuracy is the trainer's :func:`anbench.train.metrics.topk_accuracy`) -----


def macro_f1(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of the per-class F1 over ``range(num_classes)``; an undefined F1 counts 0."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    scores = []
    for c in range(num_classes):
        tp = np.sum((predicted == c) & (true == c))
        fp = np.sum((predicted == c) & (true != c))
        fn = np.sum((predicted != c) & (true == c))
        denominator = 2 * tp + fp + fn
        scores.append(2.0 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def _first_mode(values: np.ndarray) -> int:
    """Most frequent value; among equally frequent ones, the one that occurs first."""
    uniques, first, counts = np.unique(values, return_index=True, return_counts=True)
    best = counts == counts.max()
    return int(uniques[best][np.argmin(first[best])])


def vote_by_group(predicted: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(group ids, majority of predicted per group)``, groups in increasing id order."""
    predicted, groups = np.asarray(predicted), np.asarray(groups)
    order = np.argsort(groups, kind="stable")  # keeps window order inside each group
    ids, starts = np.unique(groups[order], return_index=True)
    parts = np.split(predicted[order], starts[1:])
    return ids, np.array([_first_mode(part) for part in parts], dtype=np.int64)


def record_macro_f1(outputs, targets, groups, num_classes: int) -> dict[str, float]:
    """ECG: recording-level macro F1 of window logits ``outputs`` grouped by recording id ``groups``."""
    scores, labels, groups = _numpy(outputs), _numpy(targets).astype(np.int64), _numpy(groups).astype(np.int64)
    if len(labels) == 0:
        return {"macro_f1": 0.0, "window_top1": 0.0, "records": 0.0}
    window_predictions = np.argmax(scores, axis=1)
    _, record_predictions = vote_by_group(window_predictions, groups)
    _, record_labels = vote_by_group(labels, groups)
    return {
        "macro_f1": macro_f1(record_labels, record_predictions, num_classes),
        "record_top1": float(np.mean(record_predictions == record_labels)) * 100.0,
        "window_top1": float(np.mean(window_predictions == labels)) * 100.0,
        "records": float(len(record_labels)),
    }


# --- multi-label (DeepSEA) ---------------------------------------------------------------------


def _curve_counts(score: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, highest score first."""
    order = np.argsort(-score, kind="mergesort")
    score, truth = score[order], truth[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.cumsum(truth)[last_of_run]
    fps = (last_of_run + 1) - tps
    return tps.astype(np.float64), fps.astype(np.float64)


def auroc(score, truth) -> float:
    """Area under the ROC curve (trapezoids through (0, 0) and every distinct threshold); NaN for one class."""
    score, truth = np.asarray(score, dtype=np.float64), np.asarray(truth).astype(bool)
    positives, negatives = truth.sum(), (~truth).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    tps, fps = _curve_counts(score, truth)
    tpr = np.r_[0.0, tps / positives]
    fpr = np.r_[0.0, fps / negatives]
    return float(np.trapezoid(tpr, fpr))


def aupr(score, truth) -> float:
    """Area under the precision-recall curve, trapezoids over recall ending at (recall 0, precision 1); NaN for one class."""
    score, truth = np.asarray(score, dtype=np.float64), np.asarray(truth).astype(bool)
    positives = truth.sum()
    if positives == 0 or positives == len(truth):
        return float("nan")
    tps, fps = _curve_counts(score, truth)
    precision = tps / (tps + fps)
    recall = tps / positives
    precision, recall = np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]
    return float(-np.trapezoid(precision, recall))


def multilabel_auc(outputs, targets) -> dict[str, float]:
    """DeepSEA: NaN-means over targets of AUROC and AUPR of the raw ``outputs`` (logits) against 0/1 ``targets``."""
    scores, truth = _numpy(outputs), _numpy(targets)
    aurocs = np.array([auroc(scores[:, j], truth[:, j]) for j in range(scores.shape[1])])
    auprs = np.array([aupr(scores[:, j], truth[:, j]) for j in range(scores.shape[1])])
    defined = int(np.sum(~np.isnan(aurocs)))
    return {
        "mean_auroc": float(np.nanmean(aurocs)) if defined else float("nan"),
        "mean_aupr": float(np.nanmean(auprs)) if defined else float("nan"),
        "targets_scored": float(defined),
    }
