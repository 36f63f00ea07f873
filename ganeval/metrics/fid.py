"""Fréchet Inception Distance (Heusel et al. 2017) from Gaussian statistics.

FID = ‖μ₁ − μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2·Tr((Σ₁Σ₂)^½).

Tr((Σ₁Σ₂)^½) is the sum of the square roots of the eigenvalues of Σ₁Σ₂. That product is not symmetric
(so ``eigvalsh`` on it is wrong), but for any factor F with F·Fᵀ = Σ₁ it is similar to the symmetric PSD
matrix Fᵀ Σ₂ F, which has the same eigenvalues. F is the Cholesky factor of Σ₁ when Σ₁ is positive
definite (LAPACK ``potrf``, then ``sygst`` forms Lᵀ Σ₂ L in n³ flops), otherwise V·Λ^½ from Σ₁'s
eigendecomposition (singular covariances, fewer than D+1 images). Eigenvalues only (``syevr``), round-off
negatives clipped to zero. Real and finite for every finite PSD input; agrees with the
``scipy.linalg.sqrtm`` formula to ~1e-12 relative on 2048-d statistics, several times faster (see
benchmarks/), and a caller holding a fixed reference can pass its factor once computed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.linalg import lapack


class PSDFactor(NamedTuple):
    """F (D, D) with F·Fᵀ = Σ; ``lower`` tells that F is the lower-triangular Cholesky factor."""

    matrix: np.ndarray
    lower: bool


def psd_factor(sigma: np.ndarray) -> PSDFactor:
    """A factor of a symmetric PSD Σ (D, D): its lower Cholesky factor when Σ is positive definite, else
    V·sqrt(clip(Λ, 0)) from its eigendecomposition. float64."""
    sigma = np.asarray(sigma, dtype=np.float64)
    factor, info = lapack.dpotrf(sigma, lower=1, clean=1)
    if info == 0:
        return PSDFactor(factor, True)
    values, vectors = np.linalg.eigh((sigma + sigma.T) / 2)
    return PSDFactor(vectors * np.sqrt(np.clip(values, 0.0, None)), False)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, factor1: PSDFactor | None = None) -> float:
    """Tr((Σ₁Σ₂)^½) for symmetric PSD Σ₁, Σ₂ (D, D). ``factor1``: a precomputed ``psd_factor(Σ₁)``."""
    factor = psd_factor(sigma1) if factor1 is None else factor1
    sigma2 = np.asarray(sigma2, dtype=np.float64)
    if factor.lower:
        middle, info = lapack.dsygst(sigma2, factor.matrix, itype=3, lower=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"LAPACK dsygst failed (info={info})")
    else:
        middle = factor.matrix.T @ sigma2 @ factor.matrix
    values, _, count, _, info = lapack.dsyevr(middle, compute_v=0, lower=1, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"LAPACK dsyevr failed (info={info})")
    return float(np.sqrt(np.clip(values[:count], 0.0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     factor1: PSDFactor | None = None) -> float:
    """FID between N(μ₁, Σ₁) and N(μ₂, Σ₂); μ: (D,), Σ: (D, D); computed in float64.
    ``factor1``: optional cached ``psd_factor(Σ₁)``. Never NaN or complex for finite PSD inputs;
    a tiny negative total from round-off is returned as 0."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    dim = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu1.shape != (dim,) or mu2.shape != (dim,) or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}")
    for name, value in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    diff = mu1 - mu2
    covariance_term = np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2, factor1)
    return max(float(diff @ diff + covariance_term), 0.0)
