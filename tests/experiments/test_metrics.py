"""Tests experiments.metrics against brute-force definitions on small cases."""

import itertools
import math

import numpy as np
import pytest

from experiments import metrics


def brute_force_average_precision(targets, scores):
    """Mean over positives of the precision at the threshold "score >= that positive's"."""
    targets = np.asarray(targets, bool)
    scores = np.asarray(scores, float)
    precisions = []
    for i in np.flatnonzero(targets):
        selected = scores >= scores[i]
        precisions.append(targets[selected].sum() / selected.sum())
    return float(np.mean(precisions)) if precisions else float("nan")


def brute_force_auc(targets, scores):
    """Fraction of (positive, negative) pairs ordered correctly, ties counting 1/2."""
    targets = np.asarray(targets, bool)
    scores = np.asarray(scores, float)
    pairs = list(itertools.product(scores[targets], scores[~targets]))
    return float(np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs]))


@pytest.mark.parametrize("seed", range(20))
def test_average_precision_and_auc_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(2, 15))
    targets = rng.integers(0, 2, size)
    targets[0], targets[-1] = 1, 0  # At least one of each.
    # Few distinct values so that ties happen often.
    scores = rng.integers(0, 4, size) if seed % 2 else rng.normal(size=size)
    assert metrics.average_precision(targets, scores) == pytest.approx(
        brute_force_average_precision(targets, scores), abs=1e-12
    )
    assert metrics.roc_auc(targets, scores) == pytest.approx(
        brute_force_auc(targets, scores), abs=1e-12
    )


def test_known_values():
    # Perfect ranking.
    assert metrics.average_precision([1, 1, 0], [3, 2, 1]) == 1.0
    assert metrics.roc_auc([1, 1, 0], [3, 2, 1]) == 1.0
    # Worst ranking: positives at ranks 2 and 3 of 3 → AP = (1/2 + 2/3) / 2.
    assert metrics.average_precision([0, 1, 1], [3, 2, 1]) == pytest.approx(7 / 12)
    assert metrics.roc_auc([0, 1, 1], [3, 2, 1]) == 0.0
    # All tied: AUC 1/2, AP = prevalence.
    assert metrics.roc_auc([0, 1, 1, 0], [1, 1, 1, 1]) == 0.5
    assert metrics.average_precision([0, 1, 1, 0], [1, 1, 1, 1]) == 0.5
    # Undefined cases are NaN, not errors.
    assert math.isnan(metrics.average_precision([0, 0], [1, 2]))
    assert math.isnan(metrics.roc_auc([1, 1], [1, 2]))


def test_d_prime():
    assert metrics.d_prime(0.5) == pytest.approx(0.0, abs=1e-12)
    # Φ(1/√2) ≈ 0.76025 → d' = √2 · (1/√2) = 1.
    assert metrics.d_prime(0.5 * (1 + math.erf(0.5))) == pytest.approx(1.0, abs=1e-9)
    assert metrics.d_prime(1.0) == math.inf
    assert metrics.d_prime(0.25) == pytest.approx(-metrics.d_prime(0.75))


def test_accuracy():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert metrics.accuracy([1, 0, 0], scores) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="shape"):
        metrics.accuracy([1, 0], scores)


def test_multilabel_metrics_average_over_defined_classes():
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1], [0.7, 0.4, 0.2], [0.1, 0.6, 0.5]])
    result = metrics.multilabel_metrics(targets, scores)
    # Class 2 has no positive: skipped.
    assert result["num_classes_evaluated"] == 2
    assert result["num_classes_skipped"] == 1
    expected_ap = np.mean(
        [brute_force_average_precision(targets[:, c], scores[:, c]) for c in range(2)]
    )
    expected_auc = np.mean([brute_force_auc(targets[:, c], scores[:, c]) for c in range(2)])
    assert result["mAP"] == pytest.approx(expected_ap)
    assert result["AUC"] == pytest.approx(expected_auc)
    assert result["d_prime"] == pytest.approx(metrics.d_prime(expected_auc))
    with pytest.raises(ValueError, match="shape|\\[N, C\\]"):
        metrics.multilabel_metrics(targets, scores[:, :2])
