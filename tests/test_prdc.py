"""Precision, recall, density and coverage against a brute-force reference written from the definitions,
against the ``prdc`` package, and on the degenerate sets where implementations go wrong (duplicates,
collapsed sets, swapped arguments)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from conftest import require_peer

import ganeval.metrics.prdc as prdc_module
from ganeval.metrics.prdc import PRDCResult, nearest_neighbour_radii, precision_recall_density_coverage


def pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full (len(a), len(b)) matrix of ‖a_i − b_j‖ in float64, from explicit differences."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))


def brute_radii(x: np.ndarray, k: int) -> np.ndarray:
    """k-th nearest neighbour distance, self (distance 0) included in the sort, so column k."""
    return np.sort(pairwise(x, x), axis=1)[:, k]


def brute_prdc(real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5) -> dict[str, float]:
    """The four metrics straight from their definitions (inclusive <=), equal-sized sets."""
    cross = pairwise(real, fake)
    real_pr, real_dc, fake_pr = brute_radii(real, k_pr), brute_radii(real, k_dc), brute_radii(fake, k_pr)
    return {
        "precision": float((cross <= real_pr[:, None]).any(axis=0).mean()),
        "recall": float((cross <= fake_pr[None, :]).any(axis=1).mean()),
        "density": float((cross <= real_dc[:, None]).sum()) / (k_dc * fake.shape[0]),
        "coverage": float((cross.min(axis=1) <= real_dc).mean()),
    }


def as_dict(result: PRDCResult) -> dict[str, float]:
    return {name: getattr(result, name) for name in ("precision", "recall", "density", "coverage")}


def gaussian_sets(n_real: int, n_fake: int, dim: int, seed: int, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n_real, dim))
    fake = rng.standard_normal((n_fake, dim)) * 1.15 + 0.25
    return real.astype(dtype), fake.astype(dtype)


@pytest.mark.parametrize(
    ("n", "dim", "block_size", "dtype"),
    [
        (40, 3, None, np.float64),
        (97, 17, 7, np.float32),
        (130, 64, 32, np.float32),
        (64, 5, 64, np.float64),
        (75, 200, 16, np.float32),
    ],
)
def test_matches_brute_force(n: int, dim: int, block_size: int | None, dtype: type) -> None:
    real, fake = gaussian_sets(n, n, dim, seed=n + dim, dtype=dtype)
    result = precision_recall_density_coverage(real, fake, block_size=block_size)
    assert as_dict(result) == brute_prdc(real, fake)
    assert (result.n, result.k_pr, result.k_dc, result.subsampled, result.seed) == (n, 3, 5, None, 2020)


def test_other_k_match_brute_force() -> None:
    real, fake = gaussian_sets(90, 90, 6, seed=5, dtype=np.float64)
    result = precision_recall_density_coverage(real, fake, k_pr=1, k_dc=10, block_size=20)
    assert as_dict(result) == brute_prdc(real, fake, k_pr=1, k_dc=10)


@pytest.mark.parametrize("block_size", [None, 1, 9, 50])
def test_radii_match_sorted_distances(block_size: int | None) -> None:
    x = np.random.default_rng(8).standard_normal((50, 12)).astype(np.float32)
    radii = nearest_neighbour_radii(x, [1, 3, 5], block_size=block_size)
    assert sorted(radii) == [1, 3, 5]
    for k, value in radii.items():
        assert value.dtype == np.float64 and value.shape == (50,)
        np.testing.assert_allclose(value, brute_radii(x, k), rtol=1e-10, atol=0)


@pytest.mark.peers
def test_matches_prdc_package() -> None:
    """prdc uses strict < and one k for all four; on continuous data there are no ties, so its k = 3 run
    gives our precision/recall and its k = 5 run our density/coverage (float64 input: no float32 rounding
    of its distances)."""
    prdc = require_peer("prdc")  # imported here: a bare GPU machine runs this file's CUDA test without it
    real, fake = gaussian_sets(300, 300, 32, seed=11, dtype=np.float64)
    with contextlib.redirect_stdout(io.StringIO()):
        theirs_pr = prdc.compute_prdc(real, fake, nearest_k=3)
        theirs_dc = prdc.compute_prdc(real, fake, nearest_k=5)
    ours = precision_recall_density_coverage(real, fake, block_size=128)
    assert ours.precision == theirs_pr["precision"]
    assert ours.recall == theirs_pr["recall"]
    assert ours.density == pytest.approx(theirs_dc["density"], rel=1e-12)
    assert ours.coverage == theirs_dc["coverage"]
    assert 0.2 < ours.precision < 0.9 and 0.2 < ours.coverage < 0.95


def test_identical_sets() -> None:
    """Each real point is its own fake: everything is inside, and each ball holds exactly its centre and
    its k neighbours, so density = (k + 1) / k."""
    real, _ = gaussian_sets(120, 120, 96, seed=3)
    result = precision_recall_density_coverage(real, real.copy(), block_size=50)
    assert (result.precision, result.recall, result.coverage) == (1.0, 1.0, 1.0)
    assert result.density == pytest.approx(6 / 5, rel=1e-15)


def test_collapsed_fake_set_and_argument_order() -> None:
    """A generator that always outputs the same point, here the real mode: every fake is inside the real
    manifold (precision 1) but no real point is within the fakes' zero radius (recall 0), and only the
    few reals whose 5-NN ball contains that point are covered. Swapping the arguments swaps precision and
    recall (the bug a peer once shipped)."""
    real, _ = gaussian_sets(200, 0, 8, seed=4)
    collapsed = np.zeros((200, 8), dtype=np.float32)
    result = precision_recall_density_coverage(real, collapsed, block_size=64)
    assert as_dict(result) == brute_prdc(real, collapsed)
    assert (result.precision, result.recall) == (1.0, 0.0)
    assert result.coverage <= 0.1
    swapped = precision_recall_density_coverage(collapsed, real, block_size=64)
    assert (swapped.precision, swapped.recall) == (0.0, 1.0)
    assert as_dict(swapped) == brute_prdc(collapsed, real)


@pytest.mark.parametrize("dim", [16, 300])
def test_collapsed_onto_a_real_point_counts_ties_consistently(dim: int) -> None:
    """Fakes = one real image repeated: the repeats are bitwise equal to each other and to that real row,
    so every such distance must be exactly 0 (the expansion alone leaves ~1e-6 residues at D = 300).
    The fake radius is 0, so the one real row equal to the fakes is the only one in the fake manifold
    (recall 1/n); every fake lies inside the real manifold (precision 1); covered are that row and the
    reals that have it among their 5 nearest neighbours (coverage a few / n)."""
    real, _ = gaussian_sets(150, 0, dim, seed=dim)
    real = real * 10 + 3
    collapsed = np.repeat(real[17:18], 150, axis=0)
    result = precision_recall_density_coverage(real, collapsed, block_size=40)
    assert as_dict(result) == brute_prdc(real, collapsed)
    assert (result.precision, result.recall) == (1.0, 1 / 150)
    reverse_neighbours = int((pairwise(real, real[17:18])[:, 0] <= brute_radii(real, 5)).sum())
    assert result.coverage == reverse_neighbours / 150 <= 0.1
    assert np.all(nearest_neighbour_radii(collapsed, [3, 5], block_size=40)[5] == 0.0)


def test_duplicates_have_radius_exactly_zero() -> None:
    """Rows repeated k+1 or more times have k-th neighbour distance exactly 0, from any block layout."""
    base = np.random.default_rng(9).standard_normal((40, 300)).astype(np.float32) * 10 + 3
    x = np.concatenate([base, np.repeat(base[:5], 4, axis=0), base[5:8]])
    for block_size in (7, 16, 64):
        radii = nearest_neighbour_radii(x, [1, 3, 4], block_size=block_size)
        assert np.all(radii[4][:5] == 0.0)
        assert np.all(radii[1][5:8] == 0.0) and np.all(radii[1][-3:] == 0.0)
        assert np.all(radii[3][5:40] > 0.0)
        np.testing.assert_allclose(radii[3][5:40], brute_radii(x, 3)[5:40], rtol=1e-10)


def test_memorising_generator_ties_match_brute_force() -> None:
    """Half of the fakes are copies of real points: each copy lies exactly on the radius of the real
    points whose k-th neighbour it copies. The brute-force reference computes both from the same two
    rows, so it counts them inside; the blocked expansion must agree although it meets the two
    distances in different sweeps and blocks."""
    real, _ = gaussian_sets(120, 0, 96, seed=3)
    copies = real[np.random.default_rng(0).permutation(120)[:60]]
    fake = np.concatenate([copies, gaussian_sets(60, 60, 96, seed=9)[1]])
    for block_size in (None, 50, 17):
        assert as_dict(precision_recall_density_coverage(real, fake, block_size=block_size)) == brute_prdc(real, fake)


def test_ties_need_the_tolerance(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the tolerance set to 0 (no snapping, no exact re-decisions) the expansion's rounding splits
    the ties that the tests above count, so those tests do exercise that code."""
    real, _ = gaussian_sets(120, 0, 96, seed=3)
    monkeypatch.setattr(prdc_module, "_tolerance", lambda dim: 0.0)
    assert precision_recall_density_coverage(real, real.copy(), block_size=50).density != 6 / 5


@pytest.mark.parametrize(("n_real", "n_fake", "side"), [(150, 100, "real"), (90, 130, "fake")])
def test_unequal_sizes_subsample_the_larger_set(n_real: int, n_fake: int, side: str) -> None:
    real, fake = gaussian_sets(n_real, n_fake, 10, seed=21)
    result = precision_recall_density_coverage(real, fake, seed=7, block_size=32)
    n = min(n_real, n_fake)
    assert (result.n, result.subsampled, result.seed) == (n, side, 7)
    keep = np.sort(np.random.default_rng(7).choice(max(n_real, n_fake), size=n, replace=False))
    expected = brute_prdc(real[keep], fake) if side == "real" else brute_prdc(real, fake[keep])
    assert as_dict(result) == expected
    assert precision_recall_density_coverage(real, fake, seed=7, block_size=32) == result
    other = precision_recall_density_coverage(real, fake, seed=8, block_size=32)
    assert other.seed == 8 and as_dict(other) != as_dict(result)


def test_input_layouts_and_dtypes_give_the_same_numbers() -> None:
    real, fake = gaussian_sets(80, 80, 24, seed=2, dtype=np.float64)
    expected = precision_recall_density_coverage(real, fake, block_size=30)
    frozen = np.asfortranarray(real)
    frozen.setflags(write=False)
    strided = np.repeat(fake, 2, axis=1)[:, ::2]
    assert precision_recall_density_coverage(frozen, strided, block_size=30) == expected
    assert precision_recall_density_coverage(real.tolist(), fake, block_size=30) == expected
    integers = np.round(real * 100).astype(np.int16), np.round(fake * 100).astype(np.int64)
    result = precision_recall_density_coverage(*integers, block_size=30)
    assert as_dict(result) == brute_prdc(*integers)


def test_memory_stays_blocked() -> None:
    """3000 × 3000 float64 distances would take 69 MiB (prdc holds three such matrices); the blocked sweep
    must stay far below that (peak resident memory of this process, which includes torch's buffers). One
    small call first, so that one-off allocations (thread pools, lazily loaded libraries) are not counted."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pytest.skip("cannot reset the peak-RSS counter here")

    def resident_kib(field: str) -> int:
        with open("/proc/self/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith(field))

    real, fake = gaussian_sets(3000, 3000, 8, seed=1)
    precision_recall_density_coverage(real[:100], fake[:100], block_size=1000)
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    start = resident_kib("VmRSS:")
    precision_recall_density_coverage(real, fake, block_size=1000)
    assert (resident_kib("VmHWM:") - start) / 1024 < 30


@pytest.mark.parametrize(
    ("real", "fake", "kwargs", "message"),
    [
        (np.zeros(10), np.zeros((10, 2)), {}, "2-D"),
        (np.zeros((10, 2, 2)), np.zeros((10, 2)), {}, "2-D"),
        (np.zeros((10, 2)), np.zeros((10, 3)), {}, "different feature dimensions"),
        (np.zeros((10, 0)), np.zeros((10, 0)), {}, "no feature columns"),
        (np.full((10, 2), np.nan), np.zeros((10, 2)), {}, "real contains NaN"),
        (np.zeros((10, 2)), np.full((10, 2), np.inf), {}, "fake contains NaN or infinite"),
        (np.zeros((5, 2)), np.zeros((10, 2)), {}, "too few points"),
        (np.zeros((10, 2)), np.zeros((10, 2)), {"k_pr": 10}, "too few points"),
        (np.zeros((10, 2)), np.zeros((10, 2)), {"k_dc": 0}, "k_dc must be a positive integer"),
        (np.zeros((10, 2)), np.zeros((10, 2)), {"k_pr": 2.5}, "k_pr must be a positive integer"),
        (np.zeros((10, 2)), np.zeros((10, 2)), {"block_size": 0}, "block_size"),
        (np.zeros((10, 2), dtype=bool), np.zeros((10, 2)), {}, "real numbers"),
        (np.full((10, 2), "a"), np.zeros((10, 2)), {}, "real numbers"),
    ],
)
def test_invalid_inputs(real: np.ndarray, fake: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        precision_recall_density_coverage(real, fake, **kwargs)


def test_invalid_radii_requests() -> None:
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match="needs at least 5"):
        nearest_neighbour_radii(x, [4])
    with pytest.raises(ValueError, match="at least one k"):
        nearest_neighbour_radii(x, [])
    with pytest.raises(ValueError, match="NaN"):
        nearest_neighbour_radii(np.array([[0.0], [1.0], [np.nan]]), [1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.cuda
def test_cuda_matches_cpu() -> None:
    real, fake = gaussian_sets(500, 500, 64, seed=12)
    assert precision_recall_density_coverage(
        real, fake, device="cuda", block_size=128
    ) == precision_recall_density_coverage(real, fake, block_size=128)
    collapsed = np.repeat(real[3:4], 500, axis=0)
    assert as_dict(precision_recall_density_coverage(real, collapsed, device="cuda")) == brute_prdc(real, collapsed)


def test_progress_reports_every_block_up_to_the_total() -> None:
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    calls: list[tuple[int, int]] = []
    result = precision_recall_density_coverage(real, fake, block_size=16, progress=lambda d, t: calls.append((d, t)))
    blocks = 4  # ceil(50 / 16)
    total = blocks * (blocks + 1) + blocks * blocks
    assert calls == [(i, total) for i in range(1, total + 1)]
    assert result == precision_recall_density_coverage(real, fake, block_size=16)
