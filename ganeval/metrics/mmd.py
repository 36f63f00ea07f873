"""Maximum mean discrepancy with a Gaussian (RBF) kernel, the biased whole-set estimator (a V-statistic).

MMD²_b(X, Y) = mean_{i,j} k(xᵢ, xⱼ) + mean_{i,j} k(yᵢ, yⱼ) − 2·mean_{i,j} k(xᵢ, yⱼ), k(a, b) = exp(−‖a−b‖²/(2σ²)),
the means over all pairs *including* i = j (each diagonal term is exp(0) = 1). This is the estimator of CMMD
(Jayasumana et al. 2024); KID's unbiased subset estimator with a polynomial kernel is ``metrics.kid``.

The kernel sums are accumulated tile by tile in float64 (a tile is at most ``TILE``×``TILE``), so memory stays
O(TILE²) for any set size, and the differences of means near 1 that make up a small MMD² keep their digits.
"""

from __future__ import annotations

import numpy as np

TILE = 2048
"""Rows of each set per tile of the kernel matrix (a tile holds TILE² float64 values, 32 MiB)."""


def rbf_kernel_sum(x: np.ndarray, y: np.ndarray, sigma: float, tile: int = TILE) -> float:
    """Σ_{i,j} exp(−‖xᵢ − yⱼ‖²/(2σ²)) for x (n, D), y (m, D), in float64, tile by tile. Squared distances
    come from ‖x‖² + ‖y‖² − 2·x·y and are clipped at 0 (round-off can make them slightly negative). When y equals x only the tiles on and
    above the diagonal are computed (the matrix is symmetric)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected (n, D) and (m, D) features; got {x.shape} and {y.shape}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive; got {sigma}")
    gamma = 1.0 / (2.0 * sigma * sigma)
    x_norms = np.einsum("ij,ij->i", x, x)
    y_norms = np.einsum("ij,ij->i", y, y)
    symmetric = x.shape == y.shape and np.array_equal(x, y)
    total = 0.0
    for i in range(0, len(x), tile):
        for j in range(i if symmetric else 0, len(y), tile):
            distances = x_norms[i : i + tile, None] + y_norms[None, j : j + tile]
            distances -= 2.0 * (x[i : i + tile] @ y[j : j + tile].T)
            np.maximum(distances, 0.0, out=distances)
            total += float(np.exp(-gamma * distances).sum()) * (2 if symmetric and j > i else 1)
    return total


def mmd2_rbf_biased(x: np.ndarray, y: np.ndarray, sigma: float, tile: int = TILE) -> float:
    """MMD²_b(X, Y) of the module docstring for x (n, D) and y (m, D), n, m ≥ 1; float64."""
    n, m = len(x), len(y)
    if n < 1 or m < 1:
        raise ValueError(f"MMD needs at least one row on each side; got {n} and {m}")
    k_xx = rbf_kernel_sum(x, x, sigma, tile) / (n * n)
    k_yy = rbf_kernel_sum(y, y, sigma, tile) / (m * m)
    k_xy = rbf_kernel_sum(x, y, sigma, tile) / (n * m)
    return k_xx + k_yy - 2.0 * k_xy
