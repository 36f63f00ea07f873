"""KID against a slow double-loop MMD² written from the paper's formula, closed-form cases, and torch-fidelity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_fidelity.metric_kid import kid_features_to_metric

from ganeval.metrics.kid import (
    DEFAULT_SEED,
    KID_SUBSET_SIZE,
    KID_SUBSETS,
    kernel_inception_distance,
    mmd2_unbiased,
    polynomial_kernel,
)


def slow_kernel(a: np.ndarray, b: np.ndarray, degree: int, gamma: float, coef0: float) -> float:
    return (gamma * sum(float(u) * float(v) for u, v in zip(a, b)) + coef0) ** degree


def slow_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> float:
    """Bińkowski et al. eq. (unbiased): 1/(m(m−1)) Σ_{i≠j} k(xᵢ,xⱼ) + 1/(m(m−1)) Σ_{i≠j} k(yᵢ,yⱼ)
    − 2/m² Σ_{i,j} k(xᵢ,yⱼ), with explicit loops over pairs."""
    m = len(x)
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    xx = yy = xy = 0.0
    for i in range(m):
        for j in range(m):
            if i != j:
                xx += slow_kernel(x[i], x[j], degree, gamma, coef0)
                yy += slow_kernel(y[i], y[j], degree, gamma, coef0)
            xy += slow_kernel(x[i], y[j], degree, gamma, coef0)
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2.0 * xy / (m * m)


def feature_like(n: int, dim: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Non-negative, skewed, correlated rows, like pool3 activations."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return np.abs(rng.standard_normal((n, dim)) @ mixing + shift) ** 1.5


def test_defaults_follow_the_protocol() -> None:
    assert (DEFAULT_SEED, KID_SUBSETS, KID_SUBSET_SIZE) == (2020, 100, 1000)


def test_polynomial_kernel_matches_loops() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((5, 4))
    for degree, gamma, coef0 in ((3, None, 1.0), (2, 0.7, 0.5), (1, 2.0, 0.0)):
        ours = polynomial_kernel(x, y, degree, gamma, coef0)
        g = 1.0 / 4 if gamma is None else gamma
        slow = np.array([[slow_kernel(a, b, degree, g, coef0) for b in y] for a in x])
        assert ours.dtype == np.float64 and ours.shape == (6, 5)
        np.testing.assert_allclose(ours, slow, rtol=1e-12)


def test_mmd2_matches_double_loop() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((9, 5)), rng.standard_normal((9, 5)) + 0.4
    ours = mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(x, y), polynomial_kernel(y, y))
    assert ours == pytest.approx(slow_mmd2(x, y), rel=1e-10)
    assert mmd2_unbiased(
        polynomial_kernel(x, x, 2, 0.3, 2.0), polynomial_kernel(x, y, 2, 0.3, 2.0), polynomial_kernel(y, y, 2, 0.3, 2.0)
    ) == pytest.approx(slow_mmd2(x, y, 2, 0.3, 2.0), rel=1e-10)


def test_kid_matches_slow_reference_with_the_documented_draws() -> None:
    """Subsets: RandomState(seed), per subset choice(N, s) for real then choice(M, s) for fake, no replacement."""
    real, fake = feature_like(30, 6, seed=2), feature_like(25, 6, seed=3, shift=0.5)
    result = kernel_inception_distance(real, fake, subsets=5, subset_size=8, seed=7)
    rng = np.random.RandomState(7)
    expected = []
    for _ in range(5):
        x = real[rng.choice(30, 8, replace=False)]
        y = fake[rng.choice(25, 8, replace=False)]
        expected.append(slow_mmd2(x, y))
    np.testing.assert_allclose(result.values, expected, rtol=1e-10)
    mean = sum(expected) / 5
    assert result.mean == pytest.approx(mean, rel=1e-10)
    assert result.std == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in expected) / 5), rel=1e-8)
    assert (result.subsets, result.subset_size, result.capped, result.seed) == (5, 8, False, 7)
    assert result.values.dtype == np.float64 and not result.values.flags.writeable


def test_identical_sets_closed_form() -> None:
    """X against itself with s = N: every subset pair is X and a permutation of X, so with K = k(X, X),
    S = ΣK, T = tr K: MMD²_u = 2(S − T)/(m(m−1)) − 2S/m² = −2(T − S/m)/(m(m−1)) (≤ 0, small), std 0."""
    real = feature_like(40, 32, seed=4)
    kernel = polynomial_kernel(real, real)
    m, total, trace = 40, kernel.sum(), np.trace(kernel)
    expected = -2.0 * (trace - total / m) / (m * (m - 1))
    result = kernel_inception_distance(real, real.copy(), subsets=3, subset_size=40)
    np.testing.assert_allclose(result.values, expected, rtol=1e-10)
    assert result.std == pytest.approx(0.0, abs=1e-12 * abs(expected))


def test_identical_and_same_distribution_sets_near_zero() -> None:
    """Subsets of a set against itself (5% expected overlap) and two independent halves of one sample give
    |KID| far below that of a shifted sample."""
    rows, shifted = feature_like(4000, 256, seed=4), feature_like(4000, 256, seed=4, shift=0.5)
    first, second = rows[:2000], rows[2000:]
    kwargs = dict(subsets=20, subset_size=100)
    far = kernel_inception_distance(first, shifted[2000:], **kwargs).mean
    assert far > 0.3
    assert abs(kernel_inception_distance(first, first.copy(), **kwargs).mean) < 0.05 * far
    assert abs(kernel_inception_distance(first, second, **kwargs).mean) < 0.05 * far


def test_subset_size_is_capped_to_the_smaller_set() -> None:
    real, fake = feature_like(20, 4, seed=5), feature_like(15, 4, seed=6, shift=0.2)
    capped = kernel_inception_distance(real, fake, subsets=3, subset_size=1000)
    assert capped.capped and capped.subset_size == 15
    exact = kernel_inception_distance(real, fake, subsets=3, subset_size=15)
    assert not exact.capped and exact.subset_size == 15
    np.testing.assert_array_equal(capped.values, exact.values)


def test_seed_reproducible_and_matters() -> None:
    real, fake = feature_like(60, 8, seed=7), feature_like(60, 8, seed=8, shift=0.2)
    a = kernel_inception_distance(real, fake, subsets=4, subset_size=20, seed=11)
    b = kernel_inception_distance(real, fake, subsets=4, subset_size=20, seed=11)
    c = kernel_inception_distance(real, fake, subsets=4, subset_size=20, seed=12)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.mean == b.mean and a.std == b.std
    assert not np.allclose(a.values, c.values)


def test_float32_input_is_computed_in_float64() -> None:
    real, fake = feature_like(40, 8, seed=9), feature_like(40, 8, seed=10, shift=0.1)
    r32, f32 = real.astype(np.float32), fake.astype(np.float32)
    ours = kernel_inception_distance(r32, f32, subsets=3, subset_size=10)
    wide = kernel_inception_distance(r32.astype(np.float64), f32.astype(np.float64), subsets=3, subset_size=10)
    np.testing.assert_array_equal(ours.values, wide.values)


@pytest.mark.parametrize(
    "real, fake, kwargs, message",
    [
        (np.zeros(5), np.zeros((5, 3)), {}, "2-D"),
        (np.zeros((5, 3)), np.zeros((5, 4)), {}, "dimensions differ"),
        (np.zeros((1, 3)), np.zeros((5, 3)), {}, "at least 2 rows"),
        (np.zeros((5, 3)), np.full((5, 3), np.nan), {}, "NaN or infinite"),
        (np.zeros((5, 3)), np.full((5, 3), np.inf), {}, "NaN or infinite"),
        (np.zeros((5, 3)), np.zeros((5, 3)), {"subsets": 0}, "subsets"),
        (np.zeros((5, 3)), np.zeros((5, 3)), {"subset_size": 1}, "subset_size"),
    ],
)
def test_invalid_input_raises(real: np.ndarray, fake: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kernel_inception_distance(real, fake, **kwargs)


def tf_kid(real: np.ndarray, fake: np.ndarray, dtype: torch.dtype, **kwargs: object) -> dict:
    return kid_features_to_metric(
        torch.from_numpy(real).to(dtype),
        torch.from_numpy(fake).to(dtype),
        kid_kernel="poly",
        kid_kernel_poly_degree=3,
        kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1,
        verbose=False,
        **kwargs,
    )


@pytest.mark.peers
def test_matches_torch_fidelity_on_float32_pool3_like_features() -> None:
    """torch-fidelity on float32 features (what its extractor yields) computes the kernels and sums in float32,
    about 7 significant digits of each kernel sum. MMD² is a difference of those sums, so its relative error
    grows as MMD² shrinks; the sets here come from clearly different distributions (pool3-like, non-negative,
    one shifted) so that MMD² is large against the float32 round-off and 1e-6 relative agreement is meaningful
    (with shift 0.3, MMD² ≈ 0.05, the float32 error is already 6e-7). The std over subsets is a difference of
    nearby values and keeps fewer float32 digits (7e-6 relative here), hence its looser bound."""
    real = feature_like(260, 2048, seed=11).astype(np.float32)
    fake = feature_like(240, 2048, seed=12, shift=1.0).astype(np.float32)
    ours = kernel_inception_distance(real, fake, subsets=6, subset_size=200, seed=2020)
    theirs = tf_kid(real, fake, torch.float32, kid_subsets=6, kid_subset_size=200, rng_seed=2020)
    assert ours.mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    assert ours.std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-4)


@pytest.mark.peers
def test_matches_torch_fidelity_in_float64_with_its_default_seed() -> None:
    """Given float64 tensors torch-fidelity computes in float64: agreement to round-off, which also shows that
    both draw the same subsets from the same seed."""
    real, fake = feature_like(90, 64, seed=13), feature_like(80, 64, seed=14, shift=0.05)
    ours = kernel_inception_distance(real, fake, subsets=10, subset_size=50)
    theirs = tf_kid(real, fake, torch.float64, kid_subsets=10, kid_subset_size=50)
    assert ours.mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-12)
    assert ours.std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-10)
