"""The percentile bootstrap against its defining property (coverage) and a hand-checkable case."""

from __future__ import annotations

import numpy as np
import pytest

from ganeval.metrics.bootstrap import bootstrap_interval


def mean_difference(x: np.ndarray, y: np.ndarray) -> float:
    return float(x.mean() - y.mean())


@pytest.mark.slow
def test_interval_covers_the_true_value_about_95_percent_of_the_time() -> None:
    """Normal samples with a known mean difference of 1: over 300 independent data sets, the 95% percentile
    interval contains 1 in roughly 95% of them (binomial spread ±2.5%; the percentile method under-covers a
    little at N = 100)."""
    hits = 0
    trials = 300
    for trial in range(trials):
        rng = np.random.default_rng(trial)
        x, y = rng.normal(1.0, 1.0, 100), rng.normal(0.0, 2.0, 120)
        result = bootstrap_interval(x, y, mean_difference, resamples=400, seed=trial)
        hits += bool(result.low[0] <= 1.0 <= result.high[0])
    assert 0.90 <= hits / trials <= 0.985


def test_width_matches_the_standard_error() -> None:
    """For a mean difference the interval is about ±1.96 standard errors."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, 2000), rng.normal(0, 1, 2000)
    result = bootstrap_interval(x, y, mean_difference, resamples=1000, seed=1)
    expected = 2 * 1.96 * np.sqrt(x.var() / len(x) + y.var() / len(y))
    assert result.high[0] - result.low[0] == pytest.approx(expected, rel=0.1)


def test_seeded_vector_statistics_and_errors() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))

    def both(a: np.ndarray, b: np.ndarray) -> list[float]:
        return [float(a.mean() - b.mean()), float(a.std() - b.std())]

    one = bootstrap_interval(x, y, both, resamples=50, seed=5)
    two = bootstrap_interval(x, y, both, resamples=50, seed=5)
    other = bootstrap_interval(x, y, both, resamples=50, seed=6)
    assert one.values.shape == (50, 2) and np.array_equal(one.values, two.values)
    assert not np.array_equal(one.values, other.values)
    assert np.all(one.low <= one.high)
    np.testing.assert_allclose(one.low, np.percentile(one.values, 2.5, axis=0))
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_interval(x, y, both, resamples=1, seed=0)
