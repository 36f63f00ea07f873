"""FID against slow, obvious computations from its definition."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from ganeval.parts import MomentAccumulator
from ganeval.metrics.fid import frechet_distance, psd_factor, trace_sqrt_product


def fid_sqrtm_reference(mu1, sigma1, mu2, sigma2) -> float:
    """pytorch-fid's formula: ‖μ₁−μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr sqrtm(Σ₁Σ₂), real part."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean).real)


def feature_like(n: int, dim: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Non-negative, skewed, correlated rows, like pool3 activations."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return np.abs(rng.standard_normal((n, dim)) @ mixing + shift) ** 1.5


def stats(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return rows.mean(axis=0), np.cov(rows, rowvar=False)


@pytest.mark.slow
def test_matches_sqrtm_on_2048d_statistics() -> None:
    mu1, s1 = stats(feature_like(2600, 2048, seed=0))
    mu2, s2 = stats(feature_like(2600, 2048, seed=1, shift=0.3))
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(fid_sqrtm_reference(mu1, s1, mu2, s2), rel=1e-6)
    assert frechet_distance(mu1, s1, mu2, s2, factor1=psd_factor(s1)) == pytest.approx(ours, rel=1e-12)


def test_rank_deficient_factor_keeps_only_the_non_zero_columns() -> None:
    """8 images in 2048 dims: Σ₁ has rank 7, its factor keeps 7 columns, and the r×r form gives the trace of
    the D×D form (V·sqrt(Λ) with every column, Fᵀ Σ₂ F of 2048×2048, computed here with numpy's eigh)."""
    mu1, s1 = stats(feature_like(8, 2048, seed=5))
    mu2, s2 = stats(feature_like(9, 2048, seed=6, shift=0.3))
    factor = psd_factor(s1)
    assert not factor.lower and factor.matrix.shape == (2048, 7)
    assert np.abs(factor.matrix @ factor.matrix.T - s1).max() <= 1e-12 * np.abs(s1).max()
    values, vectors = np.linalg.eigh(s1)
    whole = vectors * np.sqrt(np.where(values > 2048 * np.finfo(float).eps * values.max(), values, 0.0))
    middle = np.linalg.eigvalsh(whole.T @ s2 @ whole)
    expected = np.sqrt(np.where(middle > 2048 * np.finfo(float).eps * middle.max(), middle, 0.0)).sum()
    assert trace_sqrt_product(s1, s2) == pytest.approx(expected, rel=1e-12)
    assert trace_sqrt_product(s1, s2, factor1=factor) == pytest.approx(expected, rel=1e-12)
    assert trace_sqrt_product(np.zeros((2048, 2048)), s2) == 0.0


def test_diagonal_closed_form() -> None:
    """For diagonal Σ: FID = ‖μ₁−μ₂‖² + Σᵢ (√aᵢ − √bᵢ)²."""
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.1, 4, 50), rng.uniform(0.1, 4, 50)
    mu1, mu2 = rng.standard_normal(50), rng.standard_normal(50)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_trace_term_is_not_eigvalsh_of_the_product() -> None:
    """Σ₁Σ₂ is not symmetric; eigvalsh on it (a bug a peer shipped) gives another number. Ours equals
    the sum of square roots of its general eigenvalues."""
    rng = np.random.default_rng(4)
    s1 = np.cov(rng.standard_normal((100, 20)) ** 2, rowvar=False)
    s2 = np.cov(rng.standard_normal((100, 20)) * np.arange(1, 21), rowvar=False)
    general = np.sqrt(np.linalg.eigvals(s1 @ s2).real.clip(0)).sum()
    wrong = np.sqrt(np.linalg.eigvalsh(s1 @ s2).clip(0)).sum()
    assert trace_sqrt_product(s1, s2) == pytest.approx(general, rel=1e-9)
    assert abs(wrong - general) / general > 1e-3


def test_identity_symmetry_and_sign() -> None:
    mu1, s1 = stats(feature_like(300, 64, seed=5))
    mu2, s2 = stats(feature_like(300, 64, seed=6, shift=0.5))
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)
    forward, backward = frechet_distance(mu1, s1, mu2, s2), frechet_distance(mu2, s2, mu1, s1)
    assert forward > 0
    assert forward == pytest.approx(backward, rel=1e-10)
    assert forward == pytest.approx(fid_sqrtm_reference(mu1, s1, mu2, s2), rel=1e-8)


@pytest.mark.parametrize("n1,n2", [(40, 500), (500, 40), (30, 30)])
def test_singular_covariances_give_a_real_finite_number(n1: int, n2: int) -> None:
    """Fewer images than dimensions: rank-deficient Σ; never NaN or complex, and agrees with sqrtm."""
    mu1, s1 = stats(feature_like(n1, 128, seed=7))
    mu2, s2 = stats(feature_like(n2, 128, seed=8, shift=0.2))
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert isinstance(ours, float) and np.isfinite(ours) and ours > 0
    assert ours == pytest.approx(fid_sqrtm_reference(mu1, s1, mu2, s2), rel=1e-5)


def test_shape_and_value_errors() -> None:
    mu, sigma = np.zeros(4), np.eye(4)
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(mu, sigma, np.zeros(5), np.eye(5))
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(mu, np.eye(3), mu, sigma)
    bad = sigma.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="sigma2 contains NaN"):
        frechet_distance(mu, sigma, mu, bad)


def test_streaming_moments_equal_numpy_cov() -> None:
    rows = feature_like(257, 16, seed=9) + 1e5  # a large mean: the shifted sums must not lose digits
    acc = MomentAccumulator(16)
    for start, stop in ((0, 1), (1, 100), (100, 100), (100, 257)):
        acc.update(rows[start:stop])
    assert acc.n == 257
    np.testing.assert_allclose(acc.mean(), rows.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(acc.cov(), np.cov(rows, rowvar=False), rtol=1e-7, atol=1e-9)
    with pytest.raises(ValueError):
        MomentAccumulator(16).cov()
