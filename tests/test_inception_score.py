"""Inception Score against a slow loop implementation of its definition, closed forms, and torch-fidelity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_fidelity.metric_isc import isc_features_to_metric

from ganeval.metrics.inception_score import DEFAULT_SEED, IS_SPLITS, inception_score


def slow_inception_score(logits: np.ndarray, splits: int, order: np.ndarray) -> list[float]:
    """Salimans et al.: per split, exp(1/n Σ_x KL(p(y|x) ‖ p(y))) with p(y) = 1/n Σ_x p(y|x); plain loops."""
    n, classes = logits.shape
    scores = []
    for s in range(splits):
        rows = [order[i] for i in range(s * n // splits, (s + 1) * n // splits)]
        probs = []
        for r in rows:
            top = max(float(v) for v in logits[r])
            weights = [math.exp(float(v) - top) for v in logits[r]]
            total = sum(weights)
            probs.append([w / total for w in weights])
        marginal = [sum(p[c] for p in probs) / len(rows) for c in range(classes)]
        kl_total = 0.0
        for p in probs:
            kl_total += sum(p[c] * math.log(p[c] / marginal[c]) for c in range(classes) if p[c] > 0)
        scores.append(math.exp(kl_total / len(rows)))
    return scores


def test_defaults_follow_the_protocol() -> None:
    assert (DEFAULT_SEED, IS_SPLITS) == (2020, 10)


def test_matches_slow_loops_with_seeded_shuffle() -> None:
    """Unequal splits (37 rows in 4) and the shuffle RandomState(seed).permutation(N)."""
    logits = np.random.default_rng(0).standard_normal((37, 7)) * 3
    result = inception_score(logits, splits=4, seed=5)
    expected = slow_inception_score(logits, 4, np.random.RandomState(5).permutation(37))
    np.testing.assert_allclose(result.values, expected, rtol=1e-10)
    mean = sum(expected) / 4
    assert result.mean == pytest.approx(mean, rel=1e-10)
    assert result.std == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in expected) / 4), rel=1e-8)
    assert (result.splits, result.seed) == (4, 5)
    assert result.values.dtype == np.float64 and not result.values.flags.writeable
    unshuffled = inception_score(logits, splits=4, shuffle=False)
    np.testing.assert_allclose(unshuffled.values, slow_inception_score(logits, 4, np.arange(37)), rtol=1e-10)


def test_hand_computed_two_images() -> None:
    """Logits (ln 3, 0) and (0, ln 3): p = (3/4, 1/4), (1/4, 3/4), p(y) = (1/2, 1/2),
    KL = 3/4 ln(3/2) + 1/4 ln(1/2) = 3/4 ln 3 − ln 2 for both, so IS = 3^(3/4) / 2."""
    logits = np.array([[math.log(3.0), 0.0], [0.0, math.log(3.0)]])
    result = inception_score(logits, splits=1)
    assert result.mean == pytest.approx(3**0.75 / 2, rel=1e-14)
    assert result.std == 0.0


def test_hand_computed_two_splits() -> None:
    """Unshuffled, split 1 = two identical rows (IS 1), split 2 = the case above (IS 3^(3/4)/2):
    mean (1 + a)/2, population std |a − 1|/2."""
    logits = np.array([[0.3, -1.0], [0.3, -1.0], [math.log(3.0), 0.0], [0.0, math.log(3.0)]])
    result = inception_score(logits, splits=2, shuffle=False)
    a = 3**0.75 / 2
    np.testing.assert_allclose(result.values, [1.0, a], rtol=1e-14)
    assert result.mean == pytest.approx((1 + a) / 2, rel=1e-14)
    assert result.std == pytest.approx(abs(a - 1) / 2, rel=1e-12)


@pytest.mark.parametrize("classes", [1, 2, 5, 10])
def test_confident_balanced_predictions_score_the_class_count(classes: int) -> None:
    """Each image a one-hot over 1008 classes with a huge logit (other probabilities underflow to exactly 0),
    K classes balanced within each split: KL = ln K per image, so IS = K."""
    splits, per_class = 4, 3
    labels = np.tile(np.repeat(np.arange(classes), per_class), splits)
    logits = np.zeros((labels.size, 1008))
    logits[np.arange(labels.size), labels * 97] = 1e3
    result = inception_score(logits, splits=splits, shuffle=False)
    np.testing.assert_allclose(result.values, classes, rtol=1e-6)
    assert result.mean == pytest.approx(classes, rel=1e-6)


def test_same_prediction_everywhere_scores_one() -> None:
    row = np.random.default_rng(1).standard_normal(1008) * 4
    result = inception_score(np.tile(row, (50, 1)), splits=5)
    np.testing.assert_allclose(result.values, 1.0, rtol=1e-12)
    assert result.std == pytest.approx(0.0, abs=1e-12)


def test_seed_reproducible_and_matters() -> None:
    logits = np.random.default_rng(2).standard_normal((60, 20)) * 2
    a = inception_score(logits, splits=3, seed=11)
    b = inception_score(logits, splits=3, seed=11)
    c = inception_score(logits, splits=3, seed=12)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.allclose(a.values, c.values)
    np.testing.assert_array_equal(
        inception_score(logits, splits=3, shuffle=False, seed=11).values,
        inception_score(logits, splits=3, shuffle=False, seed=12).values,
    )


@pytest.mark.parametrize(
    "logits, kwargs, message",
    [
        (np.zeros(5), {}, "2-D"),
        (np.zeros((5, 3)), {"splits": 0}, "splits"),
        (np.zeros((5, 3)), {"splits": 6}, "at least as many images as splits"),
        (np.full((5, 3), np.nan), {"splits": 1}, "NaN or infinite"),
        (np.full((5, 3), -np.inf), {"splits": 1}, "NaN or infinite"),
    ],
)
def test_invalid_input_raises(logits: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        inception_score(logits, **kwargs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.peers
def test_matches_torch_fidelity(dtype: type) -> None:
    """torch-fidelity shuffles with the same RandomState permutation and computes in float64 (it casts
    float32 logits up after the shuffle, as this does), so both agree to round-off."""
    logits = (np.random.default_rng(3).standard_normal((503, 1008)) * 2.5).astype(dtype)
    ours = inception_score(logits, splits=10, seed=2020)
    theirs = isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=True, rng_seed=2020)
    assert ours.mean == pytest.approx(theirs["inception_score_mean"], rel=1e-12)
    assert ours.std == pytest.approx(theirs["inception_score_std"], rel=1e-10)
