"""Evaluation metrics in NumPy: accuracy, average precision, ROC AUC and d-prime.

Multi-label metrics follow the AudioSet convention (Gemmeke et al. 2017; Hershey et al.
2017; used by the LEAF paper): per-class average precision and ROC AUC averaged over the
classes that have both positive and negative test examples (the others are undefined and
counted in ``num_classes_skipped``), and d-prime computed from the mean AUC,
d' = sqrt(2) · Φ⁻¹(AUC), with Φ the standard normal CDF.
"""

import math
import statistics

import numpy as np


def _as_1d(array, name):
    array = np.asarray(array)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}.")
    return array


def accuracy(labels, scores):
    """Top-1 accuracy.

    Args:
        labels: int class indices, shape [N].
        scores: logits or probabilities, shape [N, C].

    Returns:
        The fraction of rows whose argmax equals the label (float).
    """
    labels = _as_1d(labels, "labels")
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(
            f"scores must have shape [N, C] with N = {labels.shape[0]}, got {scores.shape}."
        )
    if labels.size == 0:
        raise ValueError("accuracy of an empty set is undefined (0 examples).")
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def average_precision(targets, scores):
    """Average precision of one binary problem (area under the step precision-recall curve).

    AP = Σ_k (R_k − R_{k−1}) · P_k over the distinct score thresholds k in decreasing order,
    where examples with equal scores enter together (as scikit-learn computes it).

    Args:
        targets: 0/1 (or bool) labels, shape [N].
        scores: real scores, shape [N].

    Returns:
        AP in [0, 1], or NaN if there is no positive example.
    """
    targets = _as_1d(targets, "targets").astype(bool)
    scores = _as_1d(scores, "scores").astype(np.float64)
    num_positives = int(targets.sum())
    if num_positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_targets = scores[order], targets[order]
    # Index of the last example of each group of tied scores.
    last_of_group = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    true_positives = np.cumsum(sorted_targets)[last_of_group]
    predicted = last_of_group + 1
    precision = true_positives / predicted
    recall = true_positives / num_positives
    recall_steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_steps * precision))


def roc_auc(targets, scores):
    """Area under the ROC curve = P(score of a positive > score of a negative).

    Ties count one half (the Mann–Whitney U statistic with average ranks).

    Args:
        targets: 0/1 labels, shape [N].
        scores: real scores, shape [N].

    Returns:
        AUC in [0, 1], or NaN if there is no positive or no negative example.
    """
    targets = _as_1d(targets, "targets").astype(bool)
    scores = _as_1d(scores, "scores").astype(np.float64)
    num_positives = int(targets.sum())
    num_negatives = targets.size - num_positives
    if num_positives == 0 or num_negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, np.float64)
    # Average 1-based rank within each group of equal scores.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], scores.size]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    rank_sum = ranks[targets].sum()
    u_statistic = rank_sum - num_positives * (num_positives + 1) / 2.0
    return float(u_statistic / (num_positives * num_negatives))


def d_prime(auc):
    """Sensitivity index d' = sqrt(2) · Φ⁻¹(AUC) (±inf at AUC = 1 / 0, NaN for NaN)."""
    auc = float(auc)
    if math.isnan(auc):
        return float("nan")
    if auc >= 1.0:
        return float("inf")
    if auc <= 0.0:
        return float("-inf")
    return math.sqrt(2.0) * statistics.NormalDist().inv_cdf(auc)


def multilabel_metrics(targets, scores):
    """Class-averaged mAP, AUC and d' of a multi-label problem.

    Args:
        targets: multi-hot labels, shape [N, C].
        scores: logits or probabilities, shape [N, C] (only their order matters).

    Returns:
        dict with ``mAP``, ``AUC`` (means over the classes where they are defined),
        ``d_prime`` (from the mean AUC), ``num_classes_evaluated`` and
        ``num_classes_skipped`` (classes without positives, or without negatives).
    """
    targets = np.asarray(targets)
    scores = np.asarray(scores)
    if targets.ndim != 2 or targets.shape != scores.shape:
        raise ValueError(
            f"targets and scores must both be [N, C]; got {targets.shape} and {scores.shape}."
        )
    precisions = np.array(
        [average_precision(targets[:, c], scores[:, c]) for c in range(targets.shape[1])]
    )
    aucs = np.array([roc_auc(targets[:, c], scores[:, c]) for c in range(targets.shape[1])])
    defined = ~np.isnan(aucs)
    if not defined.any():
        raise ValueError(
            "No class has both positive and negative examples: mAP/AUC are "
            f"undefined (targets shape {targets.shape})."
        )
    mean_auc = float(np.mean(aucs[defined]))
    return {
        "mAP": float(np.mean(precisions[defined])),
        "AUC": mean_auc,
        "d_prime": d_prime(mean_auc),
        "num_classes_evaluated": int(defined.sum()),
        "num_classes_skipped": int((~defined).sum()),
    }
