"""Numerical safety of the metrics (issue #9, part 4): FID of (near-)singular covariances, KID with the
smallest subsets, IS with logits that overflow a float32 softmax, precision/recall/density/coverage with
duplicate points, and features or statistics of extreme magnitude. Every value is checked against an
independent computation in the test (a 50-digit mpmath eigenvalue computation, closed forms,
``scipy.linalg.sqrtm``, explicit loops in float64, brute-force distance matrices); see the "Numerical safety"
section of docs/metrics.md for the documented behaviour."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg

from ganeval.metrics.fid import frechet_distance, psd_factor, trace_sqrt_product
from ganeval.metrics.inception_score import inception_score
from ganeval.metrics.kid import kernel_inception_distance
from ganeval.metrics.prdc import nearest_neighbour_radii, precision_recall_density_coverage

# --- FID ------------------------------------------------------------------------------------------------


def _exact_trace_sqrt(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((Σ₁Σ₂)^½) from the eigenvalues of Σ₁Σ₂ computed with 50 significant digits."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    product = mpmath.matrix(sigma1.tolist()) * mpmath.matrix(sigma2.tolist())
    values = mpmath.eig(product, left=False, right=False)
    return float(sum(mpmath.sqrt(max(mpmath.re(v), 0)) for v in values))


def _sqrtm_fid(mu1, sigma1, mu2, sigma2) -> float:
    """pytorch-fid's formula (scipy.linalg.sqrtm of the product), warnings about singular products silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean).real)


@pytest.mark.parametrize("rank1, rank2, dim", [(3, 4, 8), (2, 8, 8), (8, 3, 8), (5, 5, 12), (1, 1, 6), (12, 12, 12)])
def test_fid_of_exactly_rank_deficient_covariances_matches_50_digits(rank1: int, rank2: int, dim: int) -> None:
    """Σ = A·Aᵀ with small integer A (D × r) is exactly of rank r in float64. FID agrees with a 50-digit
    computation to 1e-13 relative (sqrtm and an unthresholded eigenvalue sum are off by ~1e-8 there, the
    square root of round-off), and with sqrtm itself to its own accuracy, 1e-6, where sqrtm is finite."""
    rng = np.random.default_rng(rank1 * 100 + rank2 * 10 + dim)
    a = rng.integers(-3, 4, (dim, rank1)).astype(np.float64)
    b = rng.integers(-3, 4, (dim, rank2)).astype(np.float64)
    sigma1, sigma2 = a @ a.T, b @ b.T
    mu1, mu2 = rng.integers(-2, 3, dim).astype(np.float64), rng.integers(-2, 3, dim).astype(np.float64)
    exact = float(
        ((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * _exact_trace_sqrt(sigma1, sigma2)
    )
    ours = frechet_distance(mu1, sigma1, mu2, sigma2)
    assert math.isfinite(ours)
    assert ours == pytest.approx(exact, rel=1e-13, abs=1e-12 * np.trace(sigma1 + sigma2))
    assert frechet_distance(mu1, sigma1, mu2, sigma2, factor1=psd_factor(sigma1)) == ours
    reference = _sqrtm_fid(mu1, sigma1, mu2, sigma2)
    if math.isfinite(reference):  # sqrtm gives NaN on some singular products (rank 1 here): nothing to compare
        assert ours == pytest.approx(reference, rel=1e-6)


@pytest.mark.parametrize("n1, n2", [(2, 2), (3, 40), (40, 3), (10, 10), (33, 33)])
def test_fid_of_sample_covariances_with_fewer_images_than_dimensions(n1: int, n2: int) -> None:
    """np.cov of N < D + 1 float rows: singular up to round-off. Finite, >= 0, and equal to the sqrtm
    formula to 1e-6 relative (sqrtm's accuracy on singular products)."""
    rng = np.random.default_rng(n1 + n2)
    x, y = rng.standard_normal((n1, 32)), rng.standard_normal((n2, 32)) * 1.5 + 0.3
    mu1, mu2 = x.mean(0), y.mean(0)
    sigma1, sigma2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    ours = frechet_distance(mu1, sigma1, mu2, sigma2)
    assert math.isfinite(ours) and ours >= 0
    assert ours == pytest.approx(_sqrtm_fid(mu1, sigma1, mu2, sigma2), rel=1e-6)


@pytest.mark.parametrize(
    "a, b",
    [
        ([1.0, 1e-12, 1e-6, 2.0, 5.0], [0.0, 3.0, 1e-3, 0.0, 4.0]),  # Σ₁ positive definite (Cholesky), Σ₂ singular
        ([0.0, 0.0, 1.0, 4.0, 9.0], [1.0, 2.0, 0.0, 0.0, 16.0]),  # both singular (eigendecomposition)
        ([1e-300, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1e-300]),
        ([1.0, 1e-6, 2.0, 5.0, 0.0], [0.0, 1e-9, 0.0, 4.0, 1.0]),  # a product (1e-15) below the round-off floor
    ],
)
def test_fid_of_commuting_near_singular_covariances_closed_form(a: list[float], b: list[float]) -> None:
    """Σ₁ = Q·diag(a)·Qᵀ, Σ₂ = Q·diag(b)·Qᵀ (Q a random rotation): Tr((Σ₁Σ₂)^½) = Σ √(aᵢbᵢ), to 1e-10
    relative, except that eigenvalue products under the documented floor D·ε·max (which round-off in
    forming Σ₁ and Σ₂ already hides) may count as 0."""
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((5, 5)))
    sigma1, sigma2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    sigma1, sigma2 = (sigma1 + sigma1.T) / 2, (sigma2 + sigma2.T) / 2
    products = [x * y for x, y in zip(a, b)]
    closed = sum(math.sqrt(p) for p in products)
    floor = len(a) * np.finfo(np.float64).eps * max(products)
    tolerance = 1e-10 * closed + sum(math.sqrt(p) for p in products if p <= floor)
    assert trace_sqrt_product(sigma1, sigma2) == pytest.approx(closed, rel=0, abs=tolerance)
    expected = sum(a) + sum(b) - 2 * closed
    assert frechet_distance(np.zeros(5), sigma1, np.zeros(5), sigma2) == pytest.approx(
        expected, rel=0, abs=2 * tolerance + 1e-12 * (sum(a) + sum(b))
    )


@pytest.mark.parametrize("scale", [2.0**-700, 1e-300, 1e-160, 1e160, 1e300, 2.0**700])
def test_fid_of_statistics_of_extreme_magnitude(scale: float) -> None:
    """FID(√s·μ, s·Σ) = s·FID(μ, Σ): exact up to round-off at magnitudes whose products under- or overflow
    float64 (before: 25% off at 1e-200, LinAlgError at 1e200). A precomputed factor gives the same."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 8)), rng.standard_normal((7, 8))
    mu1, mu2 = x.mean(0) * 1e-80, y.mean(0) * 1e-80  # the means stay representable after scaling
    sigma1, sigma2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    reference = frechet_distance(mu1, sigma1, mu2, sigma2)
    scaled = frechet_distance(mu1 * math.sqrt(scale), sigma1 * scale, mu2 * math.sqrt(scale), sigma2 * scale)
    assert scaled / scale == pytest.approx(reference, rel=1e-12)
    factor = psd_factor(sigma1 * scale)
    assert trace_sqrt_product(None, sigma2 * scale, factor1=factor) / scale == pytest.approx(
        trace_sqrt_product(sigma1, sigma2), rel=1e-12
    )


def test_fid_beyond_float64_and_without_dimensions_raise() -> None:
    eye = np.eye(3)
    with pytest.raises(ValueError, match="float64 range"):
        frechet_distance(np.full(3, 1e200), eye, np.zeros(3), eye)
    with pytest.raises(ValueError, match="float64 range"):
        frechet_distance(np.zeros(3), eye * 1e308, np.zeros(3), eye * 1e308)
    with pytest.raises(ValueError, match="no dimensions"):
        frechet_distance(np.zeros(0), np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0)))


# --- KID ------------------------------------------------------------------------------------------------


def _kid_loops(real: np.ndarray, fake: np.ndarray, subsets: int, size: int, seed: int) -> list[float]:
    """MMD²_u with k(x, y) = (x·y/D + 1)³ by explicit loops over pairs, the documented subset draws."""
    rng = np.random.RandomState(seed)
    dim, values = real.shape[1], []
    for _ in range(subsets):
        x = real[rng.choice(len(real), size, replace=False)].astype(np.float64)
        y = fake[rng.choice(len(fake), size, replace=False)].astype(np.float64)
        k = lambda u, v: (float(np.dot(u, v)) / dim + 1.0) ** 3  # noqa: E731
        xx = math.fsum(k(x[i], x[j]) for i in range(size) for j in range(size) if i != j)
        yy = math.fsum(k(y[i], y[j]) for i in range(size) for j in range(size) if i != j)
        xy = math.fsum(k(x[i], y[j]) for i in range(size) for j in range(size))
        values.append((xx + yy) / (size * (size - 1)) - 2 * xy / size**2)
    return values


@pytest.mark.parametrize("n_real, n_fake, subset_size", [(2, 2, 2), (2, 9, 1000), (5, 3, 2), (30, 30, 2)])
def test_kid_with_subsets_of_two(n_real: int, n_fake: int, subset_size: int) -> None:
    """The smallest subsets the unbiased MMD² allows (2 rows; also by capping to a 2-row set) match explicit
    loops to 1e-12 and are finite."""
    rng = np.random.default_rng(n_real * n_fake)
    real = rng.standard_normal((n_real, 16)).astype(np.float32)
    fake = (rng.standard_normal((n_fake, 16)) + 0.5).astype(np.float32)
    result = kernel_inception_distance(real, fake, subsets=7, subset_size=subset_size, seed=3)
    expected = _kid_loops(real, fake, 7, min(subset_size, n_real, n_fake), 3)
    np.testing.assert_allclose(result.values, expected, rtol=1e-12, atol=1e-14)
    assert result.subset_size == 2 and result.capped == (subset_size > 2)
    assert np.isfinite(result.mean) and np.isfinite(result.std)


def test_kid_of_duplicate_rows_is_zero_and_too_small_subsets_raise() -> None:
    same = np.ones((4, 8))
    assert kernel_inception_distance(same, same, subsets=5, subset_size=2).mean == 0.0
    with pytest.raises(ValueError, match="subset_size must be an integer >= 2"):
        kernel_inception_distance(same, same, subset_size=1)
    with pytest.raises(ValueError, match="at least 2 rows"):
        kernel_inception_distance(same[:1], same)


def test_kid_of_extreme_features_is_finite_or_refused() -> None:
    """Tiny features: kernel values 1 up to round-off, KID about 0, finite. Features whose cubed kernel
    overflows float64: ValueError, not NaN."""
    rng = np.random.default_rng(2)
    tiny = kernel_inception_distance(
        rng.standard_normal((6, 4)) * 1e-200, rng.standard_normal((6, 4)) * 1e-200, subsets=3, subset_size=3
    )
    assert np.isfinite(tiny.values).all() and abs(tiny.mean) < 1e-12
    with pytest.raises(ValueError, match="float64 range"):
        kernel_inception_distance(
            rng.standard_normal((6, 4)) * 1e120, rng.standard_normal((6, 4)), subsets=2, subset_size=3
        )


# --- Inception Score --------------------------------------------------------------------------------------


def _is_reference(logits: np.ndarray, splits: int, seed: int) -> list[float]:
    """Per-split IS by an exact float64 log-sum-exp per row and per class, element by element with math."""
    order = np.random.RandomState(seed).permutation(len(logits))
    values = []
    for i in range(splits):
        rows = [
            [float(v) for v in logits[j]] for j in order[i * len(logits) // splits : (i + 1) * len(logits) // splits]
        ]
        log_p = []
        for row in rows:
            top = max(row)
            lse = top + math.log(math.fsum(math.exp(v - top) for v in row))
            log_p.append([v - lse for v in row])
        kls = []
        for c_row in log_p:
            total = []
            for c, lp in enumerate(c_row):
                if lp == -math.inf or math.exp(lp) == 0.0:
                    continue
                column = [r[c] for r in log_p]
                top = max(column)
                log_q = top + math.log(math.fsum(math.exp(v - top) for v in column)) - math.log(len(rows))
                total.append(math.exp(lp) * (lp - log_q))
            kls.append(math.fsum(total))
        values.append(math.exp(math.fsum(kls) / len(kls)))
    return values


@pytest.mark.parametrize(
    "magnitude, dtype", [(1e4, np.float32), (3e38, np.float32), (1e300, np.float64), (1e308, np.float64)]
)
def test_inception_score_of_logits_that_overflow_a_softmax(magnitude: float, dtype: type) -> None:
    """Logits of ±1e4 overflow exp in float32 (and ±3e38 in float64, ±1e308 overflow even their
    differences): the score is finite and equals the exact log-sum-exp computation to 1e-12."""
    rng = np.random.default_rng(int(math.log10(magnitude)))
    logits = (rng.uniform(-1, 1, (24, 6)) * magnitude).astype(dtype)
    logits[::5] = rng.uniform(-1, 1, (5, 6)).astype(dtype)  # some rows of ordinary logits, for a non-trivial p(y)
    result = inception_score(logits, splits=3, seed=5)
    assert np.isfinite(result.values).all() and np.all(result.values >= 1.0 - 1e-12)
    np.testing.assert_allclose(result.values, _is_reference(logits, 3, 5), rtol=1e-12)


def test_inception_score_with_one_image_per_split_is_one() -> None:
    logits = np.random.default_rng(4).standard_normal((5, 7)).astype(np.float32) * 1e4
    np.testing.assert_allclose(inception_score(logits, splits=5).values, 1.0, rtol=0, atol=1e-12)


# --- precision, recall, density, coverage ------------------------------------------------------------------


def _prdc_brute(real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5) -> tuple[float, ...]:
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    squared = lambda a, b: ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)  # noqa: E731
    rr, ff, rf = squared(real, real), squared(fake, fake), squared(real, fake)
    real_pr, real_dc = np.sort(rr, 1)[:, k_pr], np.sort(rr, 1)[:, k_dc]
    fake_pr = np.sort(ff, 1)[:, k_pr]
    return (
        float((rf <= real_pr[:, None]).any(0).mean()),
        float((rf <= fake_pr[None, :]).any(1).mean()),
        float((rf <= real_dc[:, None]).sum() / (k_dc * len(fake))),
        float((rf.min(1) <= real_dc).mean()),
    )


def _prdc(real: np.ndarray, fake: np.ndarray) -> tuple[float, ...]:
    r = precision_recall_density_coverage(real, fake)
    return r.precision, r.recall, r.density, r.coverage


def _duplicates(case: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    point = rng.standard_normal(16)
    if case == "one point, both sets":
        return np.tile(point, (10, 1)), np.tile(point, (10, 1))
    if case == "one point each, apart":
        return np.tile(point, (10, 1)), np.tile(point + 1, (10, 1))
    if case == "real one point, fakes spread":
        return np.tile(point, (10, 1)), rng.standard_normal((10, 16))
    if case == "groups of 4 and 6":
        return np.repeat(rng.standard_normal((3, 16)), 4, 0), np.repeat(rng.standard_normal((2, 16)), 6, 0)
    if case == "fakes copy reals":
        real = np.repeat(rng.standard_normal((4, 16)), 3, 0)
        return real, real[rng.permutation(12)]
    if case == "float32, large, pairs":
        real = np.repeat((rng.standard_normal((6, 64)) * 1e3).astype(np.float32), 2, 0)
        return real, np.concatenate([real[:4], (rng.standard_normal((8, 64)) * 1e3).astype(np.float32)])
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "one point, both sets",
        "one point each, apart",
        "real one point, fakes spread",
        "groups of 4 and 6",
        "fakes copy reals",
        "float32, large, pairs",
    ],
)
def test_prdc_with_duplicate_points_matches_brute_force(case: str) -> None:
    """Duplicates are neighbours at distance exactly 0 (radius 0 when a point has >= k copies): every value
    equals the brute-force definition, is finite, and lies in its documented range."""
    real, fake = _duplicates(case)
    ours = _prdc(real, fake)
    assert ours == _prdc_brute(real, fake)
    precision, recall, density, coverage = ours
    assert 0 <= precision <= 1 and 0 <= recall <= 1 and 0 <= coverage <= 1 and 0 <= density <= len(fake) / 5
    if case == "one point, both sets":
        assert ours == (1.0, 1.0, len(fake) / 5, 1.0)  # density = n / k_dc: every fake in every real ball
    if case == "one point each, apart":
        assert ours == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("scale", [2.0**-600, 1e-200, 1e-160, 1e160, 1e200, 2.0**600])
def test_prdc_of_features_of_extreme_magnitude(scale: float) -> None:
    """Scaling both sets leaves every comparison of distances unchanged, so the metrics too (before: every
    pair a duplicate at 1e-200, overflow at 1e160); radii scale with the features."""
    rng = np.random.default_rng(8)
    real, fake = rng.standard_normal((14, 5)), rng.standard_normal((14, 5)) + 0.2
    assert _prdc(real * scale, fake * scale) == _prdc_brute(real, fake)
    radii = nearest_neighbour_radii(real * scale, [1, 3])
    unscaled = nearest_neighbour_radii(real, [1, 3])
    for k in (1, 3):
        np.testing.assert_allclose(radii[k] / scale, unscaled[k], rtol=1e-14)
