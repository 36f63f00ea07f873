"""Memorisation and mode-collapse diagnostics over feature arrays (rows of Inception pool3 features, (N, D)).

All distances are Euclidean, in feature units, in float64.

- Nearest neighbours: exact, ties broken by the lowest index; leave-one-out within one set on request.
- Authenticity (Alaa, van Breugel, Saveliev & van der Schaar, "How Faithful is your Synthetic Data?
  Sample-level Metrics for Evaluating and Auditing Generative Models", ICML 2022): a fake y_j whose nearest
  training point x_i* lies at d_j is unauthentic when d_j < r_i*, the leave-one-out nearest-neighbour
  distance of x_i* within the training set; authpct = 100 × the fraction of authentic fakes.
- Copy rate: the fraction of fakes closer to the training set than the 1st percentile of the training
  leave-one-out nearest-neighbour distances (and every exact copy, d_j = 0).
- Duplicate rate: the fraction of unordered fake pairs closer than the 1st percentile of real pair
  distances, beside the same fraction within a real subset of the same size.
- Support size (Arora, Risteski & Zhang, "Do GANs Learn the Distribution? Some Theory and Empirics", ICLR
  2018): birthday paradox. If batches of s fakes contain a near-duplicate pair with probability >= 1/2,
  the support is about s².
- Class coverage (in the spirit of Santurkar, Tsipras & Madry, "A Classification-Based Study of Covariate
  Shift in GAN Distributions", ICML 2018, with a k-nearest-neighbour vote on features as the classifier).

Numerics. Squared distances come from the expansion ‖a‖² + ‖b‖² − 2a·b, one block of rows × one block of
columns at a time (torch float64 matmul on ``device``, CPU by default), never as a full matrix, after both
sets are shifted by their common mean (``knn.Geometry``). The expansion is within a slack of τ·(‖a‖² + ‖b‖²)
(centred norms, ``knn.tolerance``) of the value from explicit differences, so every comparison the expansion
cannot decide (a neighbour candidate near the running k-th best, see ``knn.k_nearest_squared``; a pair near a
threshold) is decided again from the explicit difference ‖a − b‖, and all returned distances are explicit ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..device import resolve_device
from .knn import Geometry, PointSet, exact_squared, k_nearest_squared

_FINITE_ELEMENTS = 2**21  # elements per chunk of the finiteness check
_EDGE_CAP = 2**18  # support_size keeps at most this many close pairs, else checks each batch directly

__all__ = [
    "AuthenticityResult",
    "CoverageResult",
    "DuplicateResult",
    "SupportResult",
    "authenticity",
    "class_coverage",
    "duplicate_rate",
    "duplicates",
    "k_nearest",
    "nearest_neighbours",
    "pair_distance_percentile",
    "support_size",
]


def _features(name: str, x: object, min_rows: int = 1) -> np.ndarray:
    """``x`` as a finite (n, D) real array with n >= min_rows, without copying; ValueError otherwise."""
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-D (points, features) array with features, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {a.shape[0]}")
    step = max(1, _FINITE_ELEMENTS // a.shape[1])
    if any(not np.isfinite(a[s : s + step]).all() for s in range(0, a.shape[0], step)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _same_dim(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")


def _int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _number(name: str, value: object, high: float = math.inf) -> float:
    """``value`` as a float in [0, high] (finite); ValueError otherwise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.number))
        or not 0 <= value <= high
        or value == math.inf
    ):
        raise ValueError(f"{name} must be a finite number in [0, {high}], got {value!r}")
    return float(value)


def _geometry(arrays: Sequence[np.ndarray], block_size: int | None, device: str | torch.device | None) -> Geometry:
    """Blocks of ``block_size`` rows (default 2048 down to 256 as D grows, at most the longest array's rows)
    centred on all ``arrays``."""
    dim = arrays[0].shape[1]
    block = min(2048, max(256, 2**22 // dim)) if block_size is None else _int("block_size", block_size)
    block = min(block, max(x.shape[0] for x in arrays))
    return Geometry(dim, block, torch.device("cpu") if device is None else resolve_device(device), arrays)


def k_nearest(
    queries: np.ndarray,
    points: np.ndarray,
    k: int,
    *,
    exclude_self: bool = False,
    block_size: int | None = None,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest ``points`` (N, D) of each query (M, D): distances (M, k) float64, ascending, and
    indices (M, k) int64, ties broken by the lowest index. ``exclude_self``: queries are the points
    themselves and query i may not match index i (an identical row elsewhere still matches, at 0)."""
    q, p = _features("queries", queries), _features("points", points)
    _same_dim(q, p)
    k = _int("k", k)
    if exclude_self and q.shape != p.shape:
        raise ValueError("exclude_self needs queries and points to be the same array")
    if k > p.shape[0] - bool(exclude_self):
        raise ValueError(f"k = {k} exceeds the {p.shape[0] - bool(exclude_self)} available neighbours")
    geo = _geometry((p,) if q is p else (q, p), block_size, device)
    query_set = geo.prepare(q)
    point_set = query_set if q is p else geo.prepare(p)
    squared, index = k_nearest_squared(geo, query_set, point_set, k, exclude_self=exclude_self)
    return np.sqrt(squared), index


def nearest_neighbours(
    queries: np.ndarray,
    points: np.ndarray,
    *,
    exclude_self: bool = False,
    block_size: int | None = None,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Distance (M,) float64 from each query to its exact nearest point and that point's index (M,) int64;
    see ``k_nearest``."""
    d, i = k_nearest(queries, points, 1, exclude_self=exclude_self, block_size=block_size, device=device)
    return d[:, 0], i[:, 0]


@dataclass(frozen=True)
class AuthenticityResult:
    """authpct in percent; nn_distance/nn_index (M,): each fake's nearest training point; copies: fake
    indices with d_j < copy_threshold or d_j == 0, by increasing distance; copy_rate = len(copies) / M."""

    authentic_fraction: float
    authpct: float
    nn_distance: np.ndarray
    nn_index: np.ndarray
    copy_threshold: float
    copy_rate: float
    copies: np.ndarray
    nn_distance_median: float

    def to_dict(self, *, arrays: bool = False) -> dict[str, object]:
        """JSON-able scalars and ``copies``; the per-fake arrays too when ``arrays``."""
        out: dict[str, object] = {
            key: getattr(self, key)
            for key in ("authpct", "authentic_fraction", "copy_rate", "copy_threshold", "nn_distance_median")
        }
        out["copies"] = self.copies.tolist()
        if arrays:
            out.update(nn_distance=self.nn_distance.tolist(), nn_index=self.nn_index.tolist())
        return out


def authenticity(
    train: np.ndarray, fake: np.ndarray, *, block_size: int | None = None, device: str | torch.device | None = None
) -> AuthenticityResult:
    """Authenticity and copy rate of ``fake`` (M, D) against ``train`` (N >= 2, D), see the module doc.
    A fake is a copy when d_j < the 1st percentile of the training leave-one-out NN distances (numpy's
    linear interpolation), or when d_j == 0: an exact copy counts even when that percentile is 0."""
    train, fake = _features("train", train, 2), _features("fake", fake)
    _same_dim(train, fake)
    loo, _ = nearest_neighbours(train, train, exclude_self=True, block_size=block_size, device=device)
    dist, index = nearest_neighbours(fake, train, block_size=block_size, device=device)
    authentic = float(np.mean(dist >= loo[index]))
    threshold = float(np.percentile(loo, 1))
    candidates = np.flatnonzero((dist < threshold) | (dist == 0))
    copies = candidates[np.argsort(dist[candidates], kind="stable")]
    return AuthenticityResult(
        authentic, 100.0 * authentic, dist, index, threshold, len(copies) / len(dist), copies, float(np.median(dist))
    )


def _close_pairs(
    x: PointSet, threshold: float, geo: Geometry, index: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per block pair, positions (j, k), j < k, of the rows of ``x`` (or of ``x[index]``) with
    ‖x_j − x_k‖ < threshold, exactly (explicit differences near the threshold)."""
    n = len(x) if index is None else len(index)
    lo, hi = threshold**2 * (1 - 1e-12), threshold**2 * (1 + 1e-12)
    select = (lambda s: s) if index is None else (lambda s: index[s])
    for r0 in range(0, n, geo.block):
        rows = select(slice(r0, min(r0 + geo.block, n)))
        a, a_sq = geo.rows(x, rows), geo.norms(x, rows)
        for c0 in range(r0, n, geo.block):
            cols = select(slice(c0, min(c0 + geo.block, n)))
            e = geo.squared(a, geo.cols(x, cols))
            slack = geo.slack(a_sq, geo.norms(x, cols))
            maybe = e < (hi + slack)[:, None]
            if c0 == r0:
                maybe = torch.triu(maybe, diagonal=1)
            ti, tj = torch.nonzero(maybe, as_tuple=True)
            sure = ((e[ti, tj] + slack[ti]) < lo).cpu().numpy()
            i, j = ti.cpu().numpy() + r0, tj.cpu().numpy() + c0
            check = np.flatnonzero(~sure)
            gi, gj = (i, j) if index is None else (index[i], index[j])
            sure[check] = np.sqrt(exact_squared(x.points, gi[check], x.points, gj[check])) < threshold
            yield i[sure], j[sure]


def _pair_fraction(x: PointSet, threshold: float, geo: Geometry, index: np.ndarray | None = None) -> float:
    n = len(x) if index is None else len(index)
    return sum(len(i) for i, _ in _close_pairs(x, threshold, geo, index)) / (n * (n - 1) / 2)


def duplicate_rate(
    features: np.ndarray, threshold: float, *, block_size: int | None = None, device: str | torch.device | None = None
) -> float:
    """Fraction of unordered pairs j < k of ``features`` (M >= 2, D) with ‖f_j − f_k‖ < threshold."""
    x = _features("features", features, 2)
    threshold = _number("threshold", threshold)
    geo = _geometry((x,), block_size, device)
    return _pair_fraction(geo.prepare(x), threshold, geo)


def pair_distance_percentile(features: np.ndarray, q: float = 1.0, *, max_pairs: int = 2_000_000, seed: int) -> float:
    """The q-th percentile (numpy's linear interpolation) of unordered pair distances of ``features``
    (N >= 2, D): exact over all N(N−1)/2 pairs when they are at most ``max_pairs``, else over ``max_pairs``
    pairs of distinct rows drawn uniformly, with replacement, by ``np.random.default_rng(seed)``. Cost:
    one explicit difference per pair, about 1 s per 200,000 pairs of 2048-d rows on 2 CPU cores."""
    x = _features("features", features, 2)
    q = _number("q", q, 100.0)
    max_pairs, seed, n = _int("max_pairs", max_pairs), _int("seed", seed, 0), x.shape[0]
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, n, max_pairs), rng.integers(0, n - 1, max_pairs)
        j += j >= i
    return float(np.percentile(np.sqrt(exact_squared(x, i, x, j)), q))


@dataclass(frozen=True)
class DuplicateResult:
    """Fractions of unordered pairs closer than ``threshold`` (the 1st percentile of real pair distances),
    among the fakes and within a random real subset of ``n_real_subset`` = min(M, N) rows."""

    duplicate_rate: float
    duplicate_rate_real: float
    threshold: float
    n_fake: int
    n_real_subset: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def duplicates(
    fake: np.ndarray,
    real: np.ndarray,
    *,
    seed: int,
    max_pairs: int = 2_000_000,
    block_size: int | None = None,
    device: str | torch.device | None = None,
) -> DuplicateResult:
    """Near-duplicate rates of ``fake`` (M >= 2, D) and of a seeded real subset, see ``DuplicateResult``."""
    fake, real = _features("fake", fake, 2), _features("real", real, 2)
    _same_dim(fake, real)
    threshold = pair_distance_percentile(real, 1.0, max_pairs=max_pairs, seed=seed)
    n_sub = min(fake.shape[0], real.shape[0])
    subset = np.sort(np.random.default_rng([seed, 1]).choice(real.shape[0], n_sub, replace=False))
    fake_geo, real_geo = _geometry((fake,), block_size, device), _geometry((real,), block_size, device)
    rate_fake = _pair_fraction(fake_geo.prepare(fake), threshold, fake_geo)
    rate_real = _pair_fraction(real_geo.prepare(real), threshold, real_geo, subset)
    return DuplicateResult(rate_fake, rate_real, threshold, fake.shape[0], n_sub)


@dataclass(frozen=True)
class SupportResult:
    """``probabilities``: batch size -> fraction of ``draws`` batches holding a pair closer than
    ``threshold``, for the sizes tried (ascending, up to the first reaching 1/2); ``support_estimate`` =
    batch_size_at_half², None when no size reaches 1/2; ``fraction_at_largest``: at the last size tried."""

    batch_size_at_half: int | None
    support_estimate: int | None
    probabilities: dict[int, float]
    fraction_at_largest: float
    threshold: float
    draws: int

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["probabilities"] = {str(s): p for s, p in self.probabilities.items()}
        return out


def support_size(
    features: np.ndarray,
    threshold: float,
    *,
    seed: int,
    draws: int = 100,
    batch_sizes: Sequence[int] | None = None,
    block_size: int | None = None,
    device: str | torch.device | None = None,
) -> SupportResult:
    """Birthday-paradox support estimate of ``features`` (M >= 2, D), see the module doc. For each batch
    size s (ascending; default a geometric grid, ratio 2^¼, from 2 to M) ``draws`` batches of s distinct
    rows are drawn with ``rng.choice(M, s, replace=False)``, rng = ``np.random.default_rng(seed)``."""
    x, threshold = _features("features", features, 2), _number("threshold", threshold)
    seed, draws, m = _int("seed", seed, 0), _int("draws", draws), x.shape[0]
    if batch_sizes is None:
        sizes = np.unique(np.round(np.geomspace(2, m, max(2, math.ceil(4 * math.log2(m / 2)) + 1))))
    else:
        sizes = np.unique([_int("batch size", s, 2) for s in batch_sizes])
        if len(sizes) == 0 or sizes[-1] > m:
            raise ValueError(f"batch_sizes must be a non-empty list of sizes from 2 to {m}")
    geo = _geometry((x,), block_size, device)
    prepared = geo.prepare(x)
    pairs: list[np.ndarray] = [np.zeros(0, np.int64), np.zeros(0, np.int64)]
    edges: list[np.ndarray] | None = pairs
    for i, j in _close_pairs(prepared, threshold, geo):
        pairs = [np.concatenate([pairs[0], i]), np.concatenate([pairs[1], j])]
        edges = pairs
        if len(pairs[0]) > _EDGE_CAP:
            edges = None
            break
    rng, member = np.random.default_rng(seed), np.zeros(m, dtype=bool)
    probabilities: dict[int, float] = {}
    for s in (int(s) for s in sizes):
        hits = 0
        for _ in range(draws if edges is None or len(edges[0]) else 0):
            batch = rng.choice(m, s, replace=False)
            if edges is None:
                hits += any(len(i) for i, _ in _close_pairs(prepared, threshold, geo, np.sort(batch)))
            else:
                member[batch] = True
                hits += bool((member[edges[0]] & member[edges[1]]).any())
                member[batch] = False
        probabilities[s] = hits / draws
        if probabilities[s] >= 0.5:
            return SupportResult(s, s * s, probabilities, probabilities[s], threshold, draws)
    return SupportResult(None, None, probabilities, probabilities[int(sizes[-1])], threshold, draws)


@dataclass(frozen=True)
class CoverageResult:
    """Fake labels by a k-NN vote among real features; fractions per class (keys: the class labels)."""

    classes_covered: int
    classes_total: int
    class_kl: float
    fake_labels: np.ndarray
    class_histogram: dict[object, float]
    real_histogram: dict[object, float]
    k: int

    def to_dict(self, *, arrays: bool = False) -> dict[str, object]:
        """JSON-able values; histogram keys as strings; ``fake_labels`` too when ``arrays``."""
        out: dict[str, object] = {
            "classes_covered": self.classes_covered,
            "classes_total": self.classes_total,
            "class_kl": self.class_kl,
            "k": self.k,
        }
        for key in ("class_histogram", "real_histogram"):
            out[key] = {str(label): p for label, p in getattr(self, key).items()}
        if arrays:
            out["fake_labels"] = self.fake_labels.tolist()
        return out


def class_coverage(
    real: np.ndarray,
    real_labels: np.ndarray,
    fake: np.ndarray,
    *,
    k: int = 5,
    classes: Sequence | None = None,
    block_size: int | None = None,
    device: str | torch.device | None = None,
) -> CoverageResult:
    """Each fake (M, D) takes the majority label among its k nearest ``real`` (N, D) rows (ties: the
    smaller summed distance, then the smaller label). ``classes`` (default: sorted unique real labels)
    must hold every real label. A class is covered when its fake fraction is > 0 and >= half its real
    fraction. class_kl = KL(real ‖ fake) in nats, Σ_c p_c·ln(p_c / q_c) over classes with p_c > 0, where
    q is the fake histogram plus 1e-6 per class, renormalised."""
    real, fake = _features("real", real), _features("fake", fake)
    _same_dim(real, fake)
    labels = np.asarray(real_labels)
    if labels.shape != (real.shape[0],):
        raise ValueError(f"real_labels must have shape ({real.shape[0]},), got {labels.shape}")
    k = _int("k", k)
    if k > real.shape[0]:
        raise ValueError(f"k = {k} exceeds the {real.shape[0]} real points")
    cls = np.unique(labels) if classes is None else np.asarray(list(classes))
    if cls.ndim != 1 or len(cls) == 0 or len(np.unique(cls)) != len(cls):
        raise ValueError("classes must be a non-empty list of distinct labels")
    if not np.isin(labels, cls).all():
        raise ValueError("real_labels holds labels that are not in classes")
    rank = np.argsort(cls, kind="stable")  # codes: positions in sorted order, so a smaller code = smaller label
    codes = np.searchsorted(cls[rank], labels)
    dist, index = k_nearest(fake, real, k, block_size=block_size, device=device)
    votes = codes[index]  # (M, k)
    same = votes[:, :, None] == votes[:, None, :]  # (M, k, k)
    count, summed = same.sum(axis=2), (same * dist[:, None, :]).sum(axis=2)
    winner = np.lexsort((votes, summed, -count), axis=-1)[:, 0]
    fake_codes = votes[np.arange(len(votes)), winner]
    fake_hist, real_hist = np.empty(len(cls)), np.empty(len(cls))
    fake_hist[rank] = np.bincount(fake_codes, minlength=len(cls)) / len(fake_codes)
    real_hist[rank] = np.bincount(codes, minlength=len(cls)) / len(codes)
    smooth = (fake_hist + 1e-6) / (fake_hist + 1e-6).sum()
    present = real_hist > 0
    kl = float(np.sum(real_hist[present] * np.log(real_hist[present] / smooth[present])))
    names = [c.item() if isinstance(c, np.generic) else c for c in cls]
    return CoverageResult(
        int(((fake_hist > 0) & (fake_hist >= 0.5 * real_hist)).sum()),
        len(cls),
        kl,
        cls[rank][fake_codes],
        dict(zip(names, fake_hist.tolist())),
        dict(zip(names, real_hist.tolist())),
        k,
    )
