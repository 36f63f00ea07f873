"""Parts: the named arrays a pass yields (``inception:pool3``, ``vgg16:fc2``, ``pixels:swd``…), how they
are accumulated batch by batch, and ``Features``, one image set's parts with its names and provenance.

A *vector part* is one row per image, (N, D) float32, kept whole and/or as float64 streaming moments
(μ, Σ) for the Fréchet distance. Another part (SWD's descriptors) brings its own accumulator.
Accumulators fold batches in source order, also when batches arrive out of order or from other
processes, so the arrays and statistics equal one process's that saw every batch in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

POOL3 = "inception:pool3"
LOGITS = "inception:logits"
VGG_FC2 = "vgg16:fc2"
SWD = "pixels:swd"
FEATURES = "features:vector"
"""A symbolic part: the vector part of the run's feature space (``--features``; Inception's pool3 by default),
resolved by ``engine.planning.resolve_part``. ``NAME:vector`` is extractor NAME's own vector part."""


def split(part: str) -> tuple[str, str]:
    """``"inception:pool3"`` → ("inception", "pool3")."""
    extractor, _, name = part.partition(":")
    if not extractor or not name:
        raise ValueError(f"a part is named EXTRACTOR:PART, got {part!r}")
    return extractor, name


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
        """μ (D,) float64."""
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
class VectorPart:
    """One vector part of a set: rows (N, D) float32 when kept, μ (D,) and Σ (D, D) float64 when asked
    for, and the row count (a statistics file has moments only)."""

    n: int
    rows: np.ndarray | None = None
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None

    @property
    def dim(self) -> int:
        source = self.rows if self.rows is not None else self.mu
        return int(source.shape[-1]) if source is not None else 0

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(μ, Σ), computed from the rows when not kept."""
        if self.mu is None or self.sigma is None:
            if self.rows is None:
                raise ValueError("a part with neither rows nor moments")
            acc = MomentAccumulator(self.rows.shape[1])
            acc.update(self.rows)
            self.mu, self.sigma = acc.mean(), acc.cov()
        return self.mu, self.sigma


class Accumulator(Protocol):
    """Collects one part of one set batch by batch (``add``), takes over another process's share
    (``merge``) and returns the part (``finish``)."""

    def add(self, indices: list[int], value: Any) -> None: ...

    def merge(self, other: Any) -> None: ...

    def finish(self) -> Any: ...


class VectorAccumulator:
    """Rows of a vector part: kept when ``keep_rows``, folded into float64 moments when ``moments``.
    With ``deferred`` (a process group, or batches that may arrive out of order) every batch is kept and
    folded at ``finish`` in order of its first image index, so the moments are those of the set in order."""

    def __init__(self, dim: int, *, keep_rows: bool = True, moments: bool = True, deferred: bool = False) -> None:
        self.dim = dim
        self.keep_rows, self.moments, self.deferred = keep_rows, moments, deferred
        self._batches: list[tuple[int, np.ndarray]] = []
        self._acc = MomentAccumulator(dim)
        self._rows: list[np.ndarray] = []
        self.n = 0

    def add(self, indices: list[int], value: np.ndarray) -> None:
        """Rows (B, D) of the images ``indices`` (B,)."""
        rows = np.asarray(value, dtype=np.float32)
        if self.deferred:
            self._batches.append((int(indices[0]) if indices else 0, rows))
        else:
            self._fold(rows)
        self.n += len(rows)

    def _fold(self, rows: np.ndarray) -> None:
        if self.moments:
            self._acc.update(rows)
        if self.keep_rows:
            self._rows.append(rows)

    def merge(self, other: VectorAccumulator) -> None:
        """Take over another process's batches (both deferred)."""
        self._batches.extend(other._batches)
        self.n += other.n

    def finish(self) -> VectorPart:
        """The part: rows (when kept) and moments (when asked for and at least 2 rows)."""
        if self.deferred:
            for _, rows in sorted(self._batches, key=lambda batch: batch[0]):
                self._fold(rows)
            self._batches = []
            self.deferred = False
        part = VectorPart(n=self.n)
        if self.keep_rows:
            part.rows = np.concatenate(self._rows) if self._rows else np.zeros((0, self.dim), np.float32)
            self._rows = [part.rows]
        if self.moments and self._acc.n >= 2:
            part.mu, part.sigma = self._acc.mean(), self._acc.cov()
        return part


@dataclass
class Features:
    """What one pass over an image set yields: its usable images' names (source order), the parts asked
    for (``parts["inception:pool3"]`` a VectorPart; ``parts["pixels:swd"]`` SWD descriptors per pyramid
    level, finest first, each (n·128, 3, 7, 7) float32), and provenance (source, content key, extractors,
    weights, mode, skipped files, the parameters of each part)."""

    names: list[str]
    provenance: dict[str, object] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.names)

    def vector(self, part: str) -> VectorPart | None:
        value = self.parts.get(part)
        return value if isinstance(value, VectorPart) else None

    def _rows(self, part: str) -> np.ndarray | None:
        vector = self.vector(part)
        return vector.rows if vector is not None else None

    @property
    def pool3(self) -> np.ndarray | None:
        """(N, 2048) float32 Inception pool3 rows, or None."""
        return self._rows(POOL3)

    @property
    def logits_unbiased(self) -> np.ndarray | None:
        """(N, 1008) float32 Inception logits without the bias, or None."""
        return self._rows(LOGITS)

    @property
    def vgg(self) -> np.ndarray | None:
        """(N, 4096) float32 VGG16 fc2 rows, or None."""
        return self._rows(VGG_FC2)

    @property
    def swd(self) -> list[np.ndarray] | None:
        value = self.parts.get(SWD)
        return value if isinstance(value, list) else None

    @property
    def mu(self) -> np.ndarray | None:
        """μ (2048,) float64 of pool3, or None."""
        vector = self.vector(POOL3)
        return vector.moments()[0] if vector is not None else None

    @property
    def sigma(self) -> np.ndarray | None:
        """Σ (2048, 2048) float64 of pool3, or None."""
        vector = self.vector(POOL3)
        return vector.moments()[1] if vector is not None else None
