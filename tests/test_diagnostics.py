"""Memorisation and mode-collapse diagnostics against slow references written from the definitions (full
distance matrices from explicit differences), on small seeded arrays, including near-ties, exact duplicates
and offsets where the expansion ‖a‖² + ‖b‖² − 2a·b alone misorders neighbours."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ganeval.metrics.diagnostics as diag
from ganeval.metrics.diagnostics import (
    authenticity,
    class_coverage,
    duplicate_rate,
    duplicates,
    k_nearest,
    nearest_neighbours,
    pair_distance_percentile,
    support_size,
)


def pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) matrix of ‖a_i − b_j‖ in float64, from explicit differences."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))


def brute_knn(q: np.ndarray, p: np.ndarray, k: int, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    d = pairwise(q, p)
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]  # stable: ties go to the lowest index
    return np.take_along_axis(d, order, axis=1), order


def brute_pairs(x: np.ndarray) -> np.ndarray:
    return pairwise(x, x)[np.triu_indices(len(x), 1)]


def check_knn(q: np.ndarray, p: np.ndarray, k: int, **kwargs: object) -> None:
    d, i = k_nearest(q, p, k, **kwargs)
    bd, bi = brute_knn(q, p, k, bool(kwargs.get("exclude_self", False)))
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=1e-12, atol=0)
    assert d.dtype == np.float64 and i.dtype == np.int64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block_size", [7, None])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_nearest_neighbours_brute_force(dtype: type, block_size: int | None, exclude_self: bool) -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(101, 16)).astype(dtype)
    queries = points if exclude_self else rng.normal(size=(60, 16)).astype(dtype)
    d, i = nearest_neighbours(queries, points, exclude_self=exclude_self, block_size=block_size)
    bd, bi = brute_knn(queries, points, 1, exclude_self)
    np.testing.assert_array_equal(i, bi[:, 0])
    np.testing.assert_allclose(d, bd[:, 0], rtol=1e-12, atol=0)
    check_knn(queries, points, 5, exclude_self=exclude_self, block_size=block_size)


def test_planted_duplicates_are_at_distance_zero_lowest_index_wins() -> None:
    rng = np.random.default_rng(2)
    points = rng.normal(size=(90, 8))
    points[[20, 55]] = points[4]
    d, i = nearest_neighbours(points, points, exclude_self=True, block_size=7)
    assert d[4] == 0 and i[4] == 20 and d[20] == 0 and i[20] == 4 and d[55] == 0 and i[55] == 4
    queries = points[[55, 3, 20]]
    d, i = nearest_neighbours(queries, points, block_size=7)
    assert d.tolist() == [0.0, 0.0, 0.0] and i.tolist() == [4, 3, 4]
    check_knn(points, points, 4, exclude_self=True, block_size=7)


def test_large_offsets_where_the_expansion_misorders() -> None:
    rng = np.random.default_rng(3)
    # Two far clusters: centring does not remove the 1e4 offset, so ‖a‖² ≈ 3e9 while neighbour gaps ≈ 1e-9.
    sign = np.where(rng.random(180) < 0.5, 1.0, -1.0)[:, None]
    cloud = 1e4 * sign + 1e-3 * rng.normal(size=(180, 32))
    points, queries = cloud[:120], cloud[120:]
    naive = (queries**2).sum(1)[:, None] + (points**2).sum(1)[None, :] - 2 * queries @ points.T
    assert (naive.argmin(axis=1) != brute_knn(queries, points, 1)[1][:, 0]).any()  # the premise
    check_knn(queries, points, 3, block_size=25)
    check_knn(points, points, 3, exclude_self=True, block_size=25)


def test_authenticity_brute_force_and_planted_copies() -> None:
    rng = np.random.default_rng(4)
    train = rng.normal(size=(120, 16))
    fake = rng.normal(size=(80, 16)) + 1.5
    planted, sources = [3, 17, 29, 44, 70], [5, 9, 60, 61, 100]
    fake[planted] = train[sources]
    result = authenticity(train, fake, block_size=7)
    cross, own = pairwise(fake, train), pairwise(train, train)
    np.fill_diagonal(own, np.inf)
    loo, nn = own.min(axis=1), cross.argmin(axis=1)
    dist = cross.min(axis=1)
    np.testing.assert_array_equal(result.nn_index, nn)
    np.testing.assert_allclose(result.nn_distance, dist, rtol=1e-12)
    assert result.authpct == pytest.approx(100 * np.mean(dist >= loo[nn]), abs=1e-12)
    assert result.authentic_fraction == pytest.approx(result.authpct / 100)
    assert result.copy_threshold == pytest.approx(np.percentile(loo, 1), rel=1e-12)
    assert result.copy_rate == pytest.approx(np.mean((dist < np.percentile(loo, 1)) | (dist == 0)))
    assert result.copies.tolist() == planted and result.nn_index[planted].tolist() == sources
    assert result.nn_distance_median == pytest.approx(np.median(dist), rel=1e-12)
    assert set(result.to_dict()) >= {"authpct", "copy_rate", "nn_distance_median"}


def test_duplicate_rate_and_pair_percentile_brute_force() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(150, 12))
    x[[10, 11]] = x[0]
    pairs = brute_pairs(x)
    for threshold in [0.0, np.percentile(pairs, 1), np.percentile(pairs, 30), 100.0]:
        expected = np.mean(pairs < threshold)
        assert duplicate_rate(x, threshold, block_size=7) == pytest.approx(expected, abs=1e-15)
    for q in [0.0, 1.0, 37.5, 100.0]:
        exact = pair_distance_percentile(x, q, seed=0)
        assert exact == pytest.approx(np.percentile(pairs, q), rel=1e-12, abs=0)
    sampled = pair_distance_percentile(x, 10.0, max_pairs=5000, seed=7)
    assert sampled == pair_distance_percentile(x, 10.0, max_pairs=5000, seed=7)
    assert sampled == pytest.approx(np.percentile(pairs, 10), rel=0.05)


def test_collapsed_fakes_have_many_duplicates() -> None:
    rng = np.random.default_rng(6)
    real = rng.normal(size=(200, 16))
    fake = real[0] + 1e-3 * rng.normal(size=(100, 16))
    result = duplicates(fake, real, seed=3, block_size=32)
    assert result.threshold == pytest.approx(np.percentile(brute_pairs(real), 1), rel=1e-12)
    assert result.duplicate_rate == 1.0 and result.duplicate_rate_real < 0.05
    assert result.n_fake == 100 and result.n_real_subset == 100
    healthy = duplicates(rng.normal(size=(100, 16)), real, seed=3)
    assert healthy.duplicate_rate < 0.05 and healthy.to_dict()["duplicate_rate_real"] == result.duplicate_rate_real


def birthday_probability(k: int, copies: int, s: int) -> float:
    """P(a batch of s distinct rows of K points × ``copies`` repeats holds two copies of one point)."""
    return 1.0 - math.comb(k, s) * copies**s / math.comb(k * copies, s)


def test_support_size_birthday_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    k, copies = 60, 10
    fake = np.repeat(rng.normal(size=(k, 8)), copies, axis=0)[rng.permutation(k * copies)]
    result = support_size(fake, 1e-9, seed=11)
    expected = math.sqrt(2 * math.log(2) * k)
    assert expected / 1.6 <= result.batch_size_at_half <= expected * 1.6
    assert result.support_estimate == result.batch_size_at_half**2
    assert result == support_size(fake, 1e-9, seed=11)
    one = support_size(fake, 1e-9, seed=12, draws=400, batch_sizes=[7])
    assert one.probabilities[7] == pytest.approx(birthday_probability(k, copies, 7), abs=0.1)
    few = support_size(fake, 1e-9, seed=11, draws=20)
    monkeypatch.setattr(diag, "_EDGE_CAP", 0)  # the direct per-batch check gives the same answers
    assert support_size(fake, 1e-9, seed=11, draws=20) == few
    distinct = support_size(rng.normal(size=(50, 8)), 1e-9, seed=1)
    assert distinct.support_estimate is None and distinct.fraction_at_largest == 0.0
    assert max(distinct.probabilities) == 50 and distinct.to_dict()["support_estimate"] is None


def brute_votes(real: np.ndarray, labels: np.ndarray, fake: np.ndarray, k: int) -> np.ndarray:
    d, i = brute_knn(fake, real, k)
    out = []
    for row_d, row_i in zip(d, i):
        tally: dict[int, list[float]] = {}
        for dist, index in zip(row_d, row_i):
            tally.setdefault(int(labels[index]), []).append(float(dist))
        out.append(min(tally, key=lambda c: (-len(tally[c]), sum(tally[c]), c)))
    return np.array(out)


def test_class_coverage() -> None:
    rng = np.random.default_rng(8)
    centres = 20.0 * rng.normal(size=(4, 16))
    labels = np.repeat(np.arange(4), 75)
    points = centres[labels] + rng.normal(size=(300, 16))
    train, held = np.arange(300) % 3 != 0, np.arange(300) % 3 == 0
    real, real_labels = points[train], labels[train]
    full = class_coverage(real, real_labels, points[held], block_size=7)
    assert full.classes_covered == 4 and full.classes_total == 4 and full.class_kl < 0.05
    np.testing.assert_array_equal(full.fake_labels, labels[held])
    one = class_coverage(real, real_labels, points[held & (labels == 2)])
    assert one.classes_covered == 1 and one.class_histogram[2] == 1.0 and one.class_kl > 1.0
    doc = one.to_dict()
    assert doc["class_histogram"]["2"] == 1.0 and doc["real_histogram"]["0"] == pytest.approx(0.25)
    # Random labels on random points: ties in the vote, broken by summed distance, then by label.
    noise_labels = rng.integers(0, 3, 80)
    real, fake = rng.normal(size=(80, 8)), rng.normal(size=(60, 8))
    for k in (1, 4, 6):
        got = class_coverage(real, noise_labels, fake, k=k, block_size=7, classes=[2, 0, 1])
        np.testing.assert_array_equal(got.fake_labels, brute_votes(real, noise_labels, fake, k))
        assert list(got.class_histogram) == [2, 0, 1]


def test_bad_inputs_raise_value_error() -> None:
    x = np.random.default_rng(9).normal(size=(20, 4))
    bad = x.copy()
    bad[3, 1] = np.nan
    calls = [
        lambda: nearest_neighbours(bad, x),
        lambda: nearest_neighbours(x[0], x),
        lambda: k_nearest(x, x, 21),
        lambda: k_nearest(x, x, 20, exclude_self=True),
        lambda: k_nearest(x, x, 0),
        lambda: nearest_neighbours(x, x[:, :3]),
        lambda: authenticity(x[:1], x),
        lambda: duplicate_rate(x, -1.0),
        lambda: duplicate_rate(x, np.inf),
        lambda: pair_distance_percentile(x, 101.0, seed=0),
        lambda: support_size(x, 0.1, seed=0, batch_sizes=[30]),
        lambda: support_size(x, 0.1, seed=0, draws=0),
        lambda: class_coverage(x, np.zeros(20), x, k=21),
        lambda: class_coverage(x, np.zeros(19), x),
        lambda: class_coverage(x, np.zeros(20), x, classes=[1]),
        lambda: duplicates(x, x[:, :2], seed=0),
        lambda: nearest_neighbours(x.astype(complex), x),
        lambda: nearest_neighbours(x, x, block_size=0),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            call()
