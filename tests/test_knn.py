"""The shared exact k-nearest-neighbour search against a float64 numpy brute force written from the definition
(explicit differences, stable sort so that ties go to the lowest index), on the inputs where the expansion
‖a‖² + ‖b‖² − 2a·b alone goes wrong: far-apart clusters of near-duplicates, exact ties and copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ganeval.metrics.knn as knn
from ganeval.metrics.prdc import nearest_neighbour_radii


def brute(queries: np.ndarray, points: np.ndarray, k: int, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(M, k) squared distances and (M, k) indices from the full explicit-difference matrix."""
    q, p = np.asarray(queries, np.float64), np.asarray(points, np.float64)
    squared = ((q[:, None, :] - p[None, :, :]) ** 2).sum(axis=-1)
    if exclude_self:
        np.fill_diagonal(squared, np.inf)
    order = np.argsort(squared, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(squared, order, axis=1), order


def search(
    queries: np.ndarray, points: np.ndarray | None, k: int, block: int, exclude_self: bool = False, step=None
) -> tuple[np.ndarray, np.ndarray]:
    """``knn.k_nearest_squared``; ``points`` None: queries against themselves (the symmetric sweep)."""
    arrays = [queries] if points is None else [queries, points]
    geometry = knn.Geometry(queries.shape[1], block, torch.device("cpu"), arrays)
    query_set = geometry.prepare(queries)
    point_set = query_set if points is None else geometry.prepare(points)
    return knn.k_nearest_squared(geometry, query_set, point_set, k, exclude_self=exclude_self, step=step)


def assert_same(got: tuple[np.ndarray, np.ndarray], expected: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-12, atol=0)
    assert got[0].dtype == np.float64 and got[1].dtype == np.int64


def near_duplicate_clusters() -> np.ndarray:
    """40 × 4 rows, alternately near +1e4 and −1e4, 1e-4 apart within a cluster: centred norms ≈ 4e8, so the
    expansion's rounding (~1e-7) is far larger than the squared gaps (~1e-8) it has to order."""
    rng = np.random.default_rng(0)
    sign = np.where(np.arange(40) % 2 == 0, 1.0, -1.0)[:, None]
    return 1e4 * sign + 1e-4 * rng.normal(size=(40, 4))


@pytest.mark.parametrize("block", [40, 16, 7])
def test_near_duplicate_clusters_match_brute_force(block: int) -> None:
    x = near_duplicate_clusters()
    expanded = (x**2).sum(1)[:, None] + (x**2).sum(1)[None, :] - 2 * x @ x.T
    np.fill_diagonal(expanded, np.inf)
    assert (np.argsort(expanded, axis=1)[:, :3] != brute(x, x, 3, True)[1]).any()  # the premise
    assert_same(search(x, None, 3, block, exclude_self=True), brute(x, x, 3, True))
    assert_same(search(x[:25], x, 3, block), brute(x[:25], x, 3))


def test_prdc_radii_on_near_duplicate_clusters() -> None:
    """prdc's radii (k-th neighbour, self excluded) are the brute-force ones for every row, from any layout."""
    x = near_duplicate_clusters()
    expected = np.sqrt(brute(x, x, 5, True)[0])
    for block_size in (None, 16, 7):
        radii = nearest_neighbour_radii(x, [1, 3, 5], block_size=block_size)
        for k in (1, 3, 5):
            np.testing.assert_allclose(radii[k], expected[:, k - 1], rtol=1e-12, atol=0)


@pytest.mark.parametrize("block", [64, 9, 4])
def test_ties_go_to_the_lowest_index(block: int) -> None:
    """Integer grid points: many exact ties at equal distances, and repeated rows at distance 0."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, size=(64, 3)).astype(np.float32)
    for k in (1, 4, 7):
        assert_same(search(x, None, k, block, exclude_self=True), brute(x, x, k, True))
        assert_same(search(x, None, k, block), brute(x, x, k))
        assert_same(search(x[10:30], x, k, block), brute(x[10:30], x, k))


def test_k_above_one_with_exclude_self_counts_copies_at_zero() -> None:
    """Row 3 has two copies elsewhere: they are its two nearest at 0, itself excluded; lowest index first."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 6))
    x[[17, 41]] = x[3]
    values, index = search(x, None, 4, 8, exclude_self=True)
    assert values[3, :2].tolist() == [0.0, 0.0] and index[3, :2].tolist() == [17, 41]
    assert index[17, :2].tolist() == [3, 41] and index[41, :2].tolist() == [3, 17]
    assert (index != np.arange(50)[:, None]).all()
    assert_same((values, index), brute(x, x, 4, True))
    assert_same(search(x.copy(), x, 4, 8, exclude_self=True), brute(x, x, 4, True))


@pytest.mark.parametrize(("m", "n", "block"), [(37, 83, 10), (83, 37, 10), (5, 200, 64), (1, 9, 3)])
def test_queries_and_points_of_different_sizes(m: int, n: int, block: int) -> None:
    rng = np.random.default_rng(m + n)
    queries, points = rng.normal(size=(m, 12)).astype(np.float32), rng.normal(size=(n, 12))
    assert_same(search(queries, points, 4, block), brute(queries, points, 4))


def test_blocked_search_equals_the_unblocked_one() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=(90, 20)), rng.normal(size=(60, 20)) * 1e-3 + 5.0])
    x[100:104] = x[99]
    whole = search(x, None, 6, len(x), exclude_self=True)
    for block in (4, 7, 32, 149):
        got = search(x, None, 6, block, exclude_self=True)
        np.testing.assert_array_equal(got[0], whole[0])
        np.testing.assert_array_equal(got[1], whole[1])
    assert_same(whole, brute(x, x, 6, True))


@pytest.mark.parametrize("order", ["shuffled", "sorted", "rounded"])
def test_column_side_keeps_the_k_smallest(order: str) -> None:
    """The symmetric sweep updates each block's columns as well as its rows; the column side must find what
    the row side finds on the same rows: with few candidates per block (shuffled), with many so that the
    block's own k-th smallest bound is needed (sorted along a line, each point's neighbours in the next
    block), and with exact ties (rounded)."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(120, 5))
    if order == "sorted":
        x = x[np.argsort(-x[:, 0])] * np.array([100.0, 1, 1, 1, 1])
    if order == "rounded":
        x = np.round(x * 2) / 2
    for k in (2, 6):
        symmetric = search(x, None, k, 40, exclude_self=True)
        rectangular = search(x, x.copy(), k, 40, exclude_self=True)
        np.testing.assert_array_equal(symmetric[1], rectangular[1])
        np.testing.assert_array_equal(symmetric[0], rectangular[0])
        assert_same(symmetric, brute(x, x, k, True))


def test_copies_beyond_k_are_not_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    """A collapsed set (every row the same): once a query holds k exact zeros no later copy can displace
    them, so explicit differences stay near 2k per query per block instead of one per pair."""
    x = np.repeat(np.random.default_rng(5).normal(size=(1, 16)), 400, axis=0)
    measured = [0]
    exact = knn.exact_squared

    def counting(*args: np.ndarray) -> np.ndarray:
        measured[0] += len(args[1])
        return exact(*args)

    monkeypatch.setattr(knn, "exact_squared", counting)
    values, index = search(x, None, 3, 100, exclude_self=True)
    assert (values == 0).all()
    assert_same((values, index), brute(x, x, 3, True))
    assert measured[0] <= 400 * 2 * 3 * 4 < 400 * 399 / 4


def test_step_is_called_once_per_block_pair() -> None:
    x = np.random.default_rng(6).normal(size=(50, 4))
    calls = [0]

    def step() -> None:
        calls[0] += 1

    search(x, None, 3, 16, exclude_self=True, step=step)
    assert calls[0] == 4 * 5 // 2
    search(x[:20], x, 3, 16, step=step)
    assert calls[0] == 10 + 2 * 4


def test_slack_bounds_the_expansion_error() -> None:
    """On the clusters, every expanded entry is within the geometry's slack of the explicit value."""
    x = near_duplicate_clusters()
    geometry = knn.Geometry(4, 40, torch.device("cpu"), [x])
    points = geometry.prepare(x)
    expanded = geometry.squared(geometry.rows(points, slice(0, 40)), geometry.cols(points, slice(0, 40)))
    slack = geometry.slack(points.sqnorms, points.sqnorms).numpy()[:, None]
    explicit = brute(x, x, 40)[0]
    order = brute(x, x, 40)[1]
    errors = np.abs(np.take_along_axis(expanded.numpy(), order, axis=1) - explicit)
    assert (errors <= slack).all() and errors.max() > 1e-9
