"""CMMD's maths (ganeval.metrics.mmd, ganeval.metrics.cmmd) against its definition written out here, and against
``clip-mmd``'s formula (google-research's cmmd, as packaged on PyPI) on the same embeddings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import require_peer
from ganeval.metrics import registry
from ganeval.metrics.cmmd import PART, cmmd, l2_normalised
from ganeval.metrics.mmd import mmd2_rbf_biased, rbf_kernel_sum


def _cmmd_by_definition(x: np.ndarray, y: np.ndarray) -> float:
    """1000 · (mean k(xᵢ,xⱼ) + mean k(yᵢ,yⱼ) − 2 mean k(xᵢ,yⱼ)), k = exp(−‖a−b‖²/200), every pair (diagonals
    included), on L2-normalised rows: one kernel value at a time."""

    def normalised(rows: np.ndarray) -> list[list[float]]:
        return [[v / math.sqrt(sum(w * w for w in row)) for v in row] for row in rows.tolist()]

    def mean_kernel(a: list[list[float]], b: list[list[float]]) -> float:
        total = 0.0
        for u in a:
            for v in b:
                total += math.exp(-sum((p - q) ** 2 for p, q in zip(u, v)) / (2 * 10.0**2))
        return total / (len(a) * len(b))

    a, b = normalised(x), normalised(y)
    return 1000.0 * (mean_kernel(a, a) + mean_kernel(b, b) - 2.0 * mean_kernel(a, b))


def _embeddings(n: int, dim: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, dim)) + shift).astype(np.float32)


def test_cmmd_is_its_definition() -> None:
    x, y = _embeddings(9, 6, 0), _embeddings(7, 6, 1, shift=0.4)
    assert cmmd(x, y) == pytest.approx(_cmmd_by_definition(x, y), rel=1e-10)


def test_cmmd_of_a_set_with_itself_is_zero_and_grows_with_the_shift() -> None:
    x = _embeddings(40, 16, 2)
    assert abs(cmmd(x, x)) < 1e-10
    values = [cmmd(x, _embeddings(40, 16, 3, shift=shift)) for shift in (0.0, 0.5, 2.0)]
    assert 0 < values[0] < values[1] < values[2]


@pytest.mark.parametrize("tile", [1, 3, 7, 64])
def test_tiles_give_the_whole_matrix_sums(tile: int) -> None:
    x, y = _embeddings(10, 5, 4), _embeddings(13, 5, 5)
    for a, b in ((x, x), (x, y), (y, x)):
        whole = float(np.exp(-((a[:, None, :].astype(np.float64) - b[None].astype(np.float64)) ** 2).sum(-1) / 8).sum())
        assert rbf_kernel_sum(a, b, sigma=2.0, tile=tile) == pytest.approx(whole, rel=1e-12)
    assert mmd2_rbf_biased(x, y, 2.0, tile=tile) == pytest.approx(mmd2_rbf_biased(x, y, 2.0), rel=1e-10, abs=1e-15)


@pytest.mark.peers
def test_cmmd_equals_clip_mmd_formula() -> None:
    calculation = require_peer("clip_mmd.calculation")
    x, y = _embeddings(50, 32, 6), _embeddings(30, 32, 7, shift=0.3)
    reference = calculation.mmd(torch.from_numpy(l2_normalised(x)), torch.from_numpy(l2_normalised(y)))
    assert cmmd(x, y) == pytest.approx(float(reference), rel=1e-9)


def test_bad_embeddings_are_refused() -> None:
    with pytest.raises(ValueError, match="all zeros"):
        cmmd(np.zeros((3, 4)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="expected"):
        mmd2_rbf_biased(np.ones((3, 4)), np.ones((3, 5)), 10.0)
    with pytest.raises(ValueError, match="at least one row"):
        mmd2_rbf_biased(np.ones((0, 4)), np.ones((3, 4)), 10.0)


def test_cmmd_is_registered_on_clip_l14_336_embeddings() -> None:
    metric = registry.get("cmmd")
    assert metric.command == "cmmd"
    assert [need.part for need in metric.needs(metric.options(), "fake", 0)] == [PART]
    assert registry.higher_is_better("cmmd") is False
    assert registry.canonical("fd") == "fid" and registry.canonical("kd") == "kid"
