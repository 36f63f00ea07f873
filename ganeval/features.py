"""Features of one image set, and the streaming float64 mean/covariance accumulator."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class MomentAccumulator:
    """Streaming mean and (N−1)-normalised covariance in float64.

    Sums are taken around a shift (the first batch's mean) so that large means do not cancel digits.
    Memory is O(D²) whatever the number of rows seen.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self._shift: np.ndarray | None = None
        self._sum = np.zeros(dim, dtype=np.float64)
        self._outer = np.zeros((dim, dim), dtype=np.float64)

    def update(self, rows: np.ndarray) -> None:
        """Add a batch of rows (B, D)."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ValueError(f"expected rows of shape (B, {self.dim}), got {rows.shape}")
        if len(rows) == 0:
            return
        if self._shift is None:
            self._shift = rows.mean(axis=0)
        centred = rows - self._shift
        self._sum += centred.sum(axis=0)
        self._outer += centred.T @ centred
        self.n += len(rows)

    def mean(self) -> np.ndarray:
        if self._shift is None:
            raise ValueError("no rows were added")
        return self._shift + self._sum / self.n

    def cov(self) -> np.ndarray:
        """Unbiased covariance (D, D), as ``np.cov(rows, rowvar=False)``; needs at least 2 rows."""
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 rows, got {self.n}")
        centred_mean = self._sum / self.n
        cov = (self._outer - self.n * np.outer(centred_mean, centred_mean)) / (self.n - 1)
        return (cov + cov.T) / 2


@dataclass
class Features:
    """What one pass over an image set yields; each part is None when it was not asked for.

    names: one per usable image, in source order. pool3: (N, 2048) float32. logits_unbiased: (N, 1008)
    float32, or None without a classifier. mu (2048,) and sigma (2048, 2048): float64 statistics of pool3.
    swd: raw SWD descriptors per pyramid level, finest first, each (n_swd·128, 3, 7, 7) float32.
    vgg: (N, 4096) float32 VGG16 fc2 features. provenance: source, content key, extractor, weights, mode,
    skipped files, and the parameters of each part.
    """

    names: list[str]
    provenance: dict[str, object] = field(default_factory=dict)
    pool3: np.ndarray | None = None
    logits_unbiased: np.ndarray | None = None
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    swd: list[np.ndarray] | None = None
    vgg: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.names)
