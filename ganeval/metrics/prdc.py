"""Precision, recall (Kynkäänniemi et al. 2019) and density, coverage (Naeem et al. 2020) from features.

r_k(x) is the distance from x to its k-th nearest neighbour in its own set, x itself excluded (the
(k+1)-th smallest distance with x's own zero included, so a duplicate of x is a neighbour at distance 0).
A point y lies inside a set's manifold when ‖y − x‖ <= r_k(x) for some x in that set (inclusive, as the
paper's code; the ``prdc`` package uses strict ``<``, which differs only on exact ties).

- precision = fraction of fake points inside the real manifold (k = k_pr, default 3),
- recall    = fraction of real points inside the fake manifold (k = k_pr),
- density   = (1 / (k·M)) Σ_j Σ_i 1[‖y_j − x_i‖ <= r_k(x_i)] (k = k_dc, default 5),
- coverage  = (1 / N) Σ_i 1[min_j ‖x_i − y_j‖ <= r_k(x_i)] (k = k_dc).

Exact k-nearest neighbours in float64, memory bounded. Squared distances come from the expansion
‖a‖² + ‖b‖² − 2a·b, one block of rows × one block of columns at a time, as a single GEMM of augmented
rows [a, ‖a‖², 1]·[−2b, 1, ‖b‖²]ᵀ; never as an N×N matrix. Both sets are first shifted by one common
vector (the mean of the points used). That leaves distances unchanged and keeps the norms, and so the
expansion's rounding residue, as small as the spread of the data allows. Blocks are upcast to float64
as they are loaded; the caller's arrays (float32 or float64) are never copied whole.

One sweep over real×real blocks gives the real radii for both k: it keeps the k+1 smallest per row
with their indices, and uses the symmetry of the block matrix so that each pair is computed once. One
sweep over fake×fake gives the fake radii, and one over real×fake blocks gives all four metrics.

Features of any finite magnitude: when the largest lies outside [2⁻¹⁰⁰, 2¹⁰⁰] both sets are scaled by one
power of two (exact) so that no squared distance overflows or underflows; duplicates (any number of
copies, whole sets of one point included) are neighbours at distance exactly 0, so every result is finite:
precision, recall, coverage in [0, 1] and density in [0, n/k_dc] (n/k_dc when every fake and every real
is the same point).

Ties are decided exactly. The expansion is accurate to about τ·(‖a‖² + ‖b‖²) (see ``_tolerance``) but
can round the same pair differently in different blocks. So (1) a block entry within that tolerance of
0 is exactly 0 (bitwise identical rows); (2) every radius is recomputed from the explicit difference of
its two rows; (3) a real–fake comparison whose expanded distance is within the tolerance of the radius
is decided again with the explicit difference. Explicit differences give the same value for the same
two rows in either order and in any sweep. Then a fake that copies a real point's k-th neighbour lies
exactly on that point's radius and counts as inside, and identical sets have density exactly (k+1)/k.

Everything runs in torch, on the CPU (multithreaded) or on a CUDA ``device``. Measured on 2 CPU cores
for a 4096×4096 block of 2048-d rows: float64 GEMM 0.64 s in numpy (OpenBLAS) vs 0.67 s in torch, but
selecting the 6 smallest per row takes 163 ms with ``np.partition`` vs 19 ms with ``torch.topk``. A
numpy-GEMM/torch-selection hybrid ran the whole N = 10,000 call in the same 11.1 s as pure torch, so
there is one code path for both devices.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..defaults import DC_K, PR_K, SEED
from ..device import resolve_device

_UNIT_ROUNDOFF = 2.0 ** -53
_TOLERANCE_FLOOR = 1e-12
_CHUNK_ROWS = 512
_EXACT_CHUNK_ELEMENTS = 2 ** 22
_MAX_BLOCK = 4096
_MIN_BLOCK = 512
_BLOCK_ELEMENTS = 2 ** 23


@dataclass(frozen=True)
class PRDCResult:
    """The four metrics and how they were made. precision, recall, coverage: fractions in [0, 1];
    density: in [0, n/k_dc], about 1 when the fakes are distributed like the reals, above 1 when they
    crowd into dense real regions.

    ``n``: points per set actually used; ``subsampled``: "real" or "fake" when that set was subsampled to
    the size of the other, else None; ``seed``: the seed of that subsampling."""

    precision: float
    recall: float
    density: float
    coverage: float
    n: int
    k_pr: int
    k_dc: int
    subsampled: str | None
    seed: int


def _tolerance(dim: int) -> float:
    """Relative accuracy τ of an expanded squared distance: |computed − exact| <= τ·(‖a‖² + ‖b‖²), where
    ``exact`` is the explicit-difference value of ``_exact_squared`` and the norms are of centred rows.

    Worst-case bounds with u = 2⁻⁵³, any summation order, FMA or not: the GEMM over D+2 terms errs by
    2(D+2)u·(‖a‖² + ‖b‖²), the precomputed norms by D·u·(...), centring by 4u·(...), and the explicit
    difference itself by 2D·u·(...) (its value is at most 2(‖a‖² + ‖b‖²)); together (5D+8)u·(...), so
    τ = 8(D+2)u, floored at 1e-12 (1.8e-12 at D = 2048). Consequences: bitwise identical rows always
    snap to exactly 0, so a set of k+1 copies has radius exactly 0 (a pair snapped without being
    identical is closer than the expansion can resolve and counts as a duplicate); and a comparison
    farther than τ·(...) from its radius is decided by the expansion exactly as the explicit
    difference would decide it, the others are decided by the explicit difference."""
    return max(_TOLERANCE_FLOOR, 8.0 * (dim + 2) * _UNIT_ROUNDOFF)


def _default_block(dim: int) -> int:
    """Rows per block: 4096 for D <= 2048 (a 128 MiB float64 distance block, 64 MiB per input block),
    fewer for wider features so that an input block stays near 64 MiB."""
    return int(min(_MAX_BLOCK, max(_MIN_BLOCK, _BLOCK_ELEMENTS // max(dim, 1))))


def _check_points(name: str, x: object) -> np.ndarray:
    """``x`` as an (n, D) array of real numbers, without copying; ValueError otherwise."""
    array = np.asarray(x)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (points, features), got shape {array.shape}")
    if array.shape[1] == 0:
        raise ValueError(f"{name} has no feature columns (shape {array.shape})")
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.floating)
                                       or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} must hold real numbers (float or int), got dtype {array.dtype}")
    return array


def _check_finite(name: str, array: np.ndarray, rows: int) -> float:
    """Raise ValueError when ``array`` holds NaN or ±inf; checked ``rows`` rows at a time. Returns the
    largest magnitude in it (0 for an empty array)."""
    peak = 0.0
    for start in range(0, array.shape[0], rows):
        block = array[start:start + rows]
        if not block.size:
            continue
        if np.issubdtype(array.dtype, np.floating):
            top = float(np.abs(block).max())
            if not np.isfinite(top):
                raise ValueError(f"{name} contains NaN or infinite values")
        else:
            top = max(abs(float(block.max())), abs(float(block.min())))
        peak = max(peak, top)
    return peak


_SAFE_MAGNITUDE = (2.0 ** -100, 2.0 ** 100)
"""Features whose largest magnitude lies outside this range are rescaled (see ``_rescaled``)."""


def _rescaled(peak: float, *arrays: np.ndarray) -> tuple[int, list[np.ndarray]]:
    """Squared distances of features near 1e±154 overflow or underflow float64 (every pair would be a
    duplicate, or at infinite distance). When the largest magnitude ``peak`` is outside ``_SAFE_MAGNITUDE``
    the arrays are multiplied by 2⁻ᵏ (k: the nearest exponent of ``peak``), exactly, in float64 copies;
    comparisons of distances are unchanged by a common scale, so the metrics are too. Returns (k, arrays)."""
    if peak == 0.0 or _SAFE_MAGNITUDE[0] <= peak <= _SAFE_MAGNITUDE[1]:
        return 0, list(arrays)
    exponent = int(np.round(np.log2(peak)))
    return exponent, [np.ldexp(np.asarray(a, dtype=np.float64), -exponent) for a in arrays]


def _check_k(name: str, k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


def _resolve(device: str | torch.device | None) -> torch.device:
    return torch.device("cpu") if device is None else resolve_device(device)


def _block_size(block_size: int | None, dim: int) -> int:
    if block_size is None:
        return _default_block(dim)
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer or None, got {block_size!r}")
    return int(block_size)


def _exact_squared(a: np.ndarray, a_index: np.ndarray, b: np.ndarray, b_index: np.ndarray) -> np.ndarray:
    """‖a[a_index] − b[b_index]‖² (P,) float64 from explicit differences, a few MiB of rows at a time.

    Deterministic and symmetric: the same two rows give the same value in either order and from any
    call, since (a − b)² = (b − a)² exactly and numpy sums each contiguous row the same way."""
    out = np.empty(len(a_index), dtype=np.float64)
    step = max(1, _EXACT_CHUNK_ELEMENTS // a.shape[1])
    for start in range(0, len(a_index), step):
        stop = start + step
        difference = a[a_index[start:stop]].astype(np.float64)
        difference -= b[b_index[start:stop]]
        np.square(difference, out=difference)
        out[start:stop] = difference.sum(axis=1)
    return out


def _exact_pairs(a: np.ndarray, a_offset: int, b: np.ndarray, b_offset: int, a_index: torch.Tensor,
                 b_index: torch.Tensor) -> torch.Tensor:
    """``_exact_squared`` for block-local indices (P,) on any device; result on that device."""
    squared = _exact_squared(a, a_index.cpu().numpy() + a_offset, b, b_index.cpu().numpy() + b_offset)
    return torch.from_numpy(squared).to(a_index.device)


class _Sweeper:
    """Preallocated float64 buffers on one device and the block operations that use them."""

    def __init__(self, dim: int, block: int, device: torch.device) -> None:
        self.dim, self.block, self.device = dim, block, device
        self.tolerance = _tolerance(dim)
        self.row_buffer = torch.empty((block, dim + 2), dtype=torch.float64, device=device)
        self.col_buffer = torch.empty((block, dim + 2), dtype=torch.float64, device=device)
        self.distances = torch.empty(block * block, dtype=torch.float64, device=device)
        self.masks = (torch.empty(block * block, dtype=torch.bool, device=device),
                      torch.empty(block * block, dtype=torch.bool, device=device))

    def load(self, out: torch.Tensor, points: np.ndarray, start: int, stop: int) -> None:
        """Upcast rows ``start:stop`` of ``points`` into ``out`` (stop − start, D) float64 (to a CUDA
        device float32 rows travel as float32 and are upcast there)."""
        if self.device.type == "cpu":
            np.copyto(out.numpy(), points[start:stop], casting="unsafe")
        else:
            native = np.float32 if points.dtype == np.float32 else np.float64
            out.copy_(torch.from_numpy(np.array(points[start:stop], dtype=native)))

    def centred(self, out: torch.Tensor, points: np.ndarray, start: int, stop: int,
                centre: torch.Tensor) -> torch.Tensor:
        """Rows ``start:stop`` of ``points`` minus ``centre``, written into ``out``[:, :D] and returned."""
        view = out[:, :self.dim]
        self.load(view, points, start, stop)
        return view.sub_(centre)

    def column_sum(self, points: np.ndarray) -> torch.Tensor:
        """Σ rows of ``points`` (D,) float64, one block of rows at a time."""
        total = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        for start in range(0, points.shape[0], self.block):
            stop = min(start + self.block, points.shape[0])
            rows = self.row_buffer[:stop - start, :self.dim]
            self.load(rows, points, start, stop)
            total += rows.sum(dim=0)
        return total

    def squared_norms(self, points: np.ndarray, centre: torch.Tensor) -> torch.Tensor:
        """‖row − centre‖² (N,) float64 from the same centred float64 rows that the GEMMs see."""
        sqnorms = torch.empty(points.shape[0], dtype=torch.float64, device=self.device)
        for start in range(0, points.shape[0], self.block):
            stop = min(start + self.block, points.shape[0])
            rows = self.centred(self.row_buffer[:stop - start], points, start, stop, centre)
            sqnorms[start:stop] = torch.einsum("ij,ij->i", rows, rows)
        return sqnorms

    def rows(self, points: np.ndarray, start: int, stop: int, centre: torch.Tensor,
             sqnorms: torch.Tensor) -> torch.Tensor:
        """Augmented left operand [a − c, ‖a − c‖², 1] (stop − start, D + 2)."""
        out = self.row_buffer[:stop - start]
        self.centred(out, points, start, stop, centre)
        out[:, self.dim] = sqnorms[start:stop]
        out[:, self.dim + 1] = 1.0
        return out

    def cols(self, points: np.ndarray, start: int, stop: int, centre: torch.Tensor,
             sqnorms: torch.Tensor) -> torch.Tensor:
        """Augmented right operand [−2(b − c), 1, ‖b − c‖²] (stop − start, D + 2); −2 scales exactly."""
        out = self.col_buffer[:stop - start]
        self.centred(out, points, start, stop, centre).mul_(-2.0)
        out[:, self.dim] = 1.0
        out[:, self.dim + 1] = sqnorms[start:stop]
        return out

    def squared_distances(self, rows: torch.Tensor, cols: torch.Tensor, row_sq: torch.Tensor,
                          col_sq: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(‖a − b‖² (rows, cols) float64 for the loaded blocks with duplicates' residues snapped to 0,
        the block's absolute accuracy τ·(max ‖a‖² + max ‖b‖²))."""
        out = self.distances[:rows.shape[0] * cols.shape[0]].view(rows.shape[0], cols.shape[0])
        torch.mm(rows, cols.t(), out=out)
        accuracy = self.tolerance * (float(row_sq.max()) + float(col_sq.max()))
        if float(out.min()) <= accuracy:
            for start in range(0, out.shape[0], _CHUNK_ROWS):
                part = out[start:start + _CHUNK_ROWS]
                threshold = (row_sq[start:start + _CHUNK_ROWS, None] + col_sq[None, :]) * self.tolerance
                part.masked_fill_(part <= threshold, 0.0)
        return out, accuracy

    def scratch(self, distances: torch.Tensor, which: int = 0) -> torch.Tensor:
        """Preallocated bool buffer ``which`` (0 or 1) viewed with the shape of ``distances``."""
        return self.masks[which][:distances.numel()].view(distances.shape)

    def inside(self, distances: torch.Tensor, radii: torch.Tensor, accuracy: float,
               exact: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """distances <= radii (exact squared radii, broadcast as a column (b, 1) or a row (1, c)), as a
        bool (b, c) view of a scratch buffer.

        Entries farther than ``accuracy`` from their radius are decided by the block; the others by
        ``exact(rows, cols)``, the explicit-difference squared distances of those pairs. Exact zeros
        (duplicates) lie inside any radius and are never re-decided."""
        decided = torch.le(distances, (radii - accuracy).clamp_min(0.0), out=self.scratch(distances, 0))
        undecided = torch.le(distances, radii + accuracy, out=self.scratch(distances, 1))
        if int(torch.count_nonzero(undecided)) == int(torch.count_nonzero(decided)):
            return decided
        undecided ^= decided
        expanded = radii.expand_as(distances)
        for start in range(0, distances.shape[0], _CHUNK_ROWS):
            row_index, col_index = torch.nonzero(undecided[start:start + _CHUNK_ROWS], as_tuple=True)
            if row_index.numel():
                row_index += start
                verdict = exact(row_index, col_index) <= expanded[row_index, col_index]
                decided[row_index, col_index] = verdict
        return decided


def _merge_rows(values: torch.Tensor, index: torch.Tensor, block: torch.Tensor,
                offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The K = ``values.shape[1]`` smallest per row among (``values``, ``index``) (b, K) and the
    entries of ``block`` (b, c), whose column j is neighbour ``offset + j``; values and indices."""
    keep = values.shape[1]
    best = torch.topk(block, min(keep, block.shape[1]), dim=1, largest=False, sorted=False)
    all_values = torch.cat((values, best.values), dim=1)
    all_index = torch.cat((index, best.indices + offset), dim=1)
    chosen = torch.topk(all_values, keep, dim=1, largest=False, sorted=False).indices
    return all_values.gather(1, chosen), all_index.gather(1, chosen)


def _merge_columns(values: torch.Tensor, index: torch.Tensor, block: torch.Tensor, offset: int,
                   mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The K = ``values.shape[1]`` smallest per column j among (``values[j]``, ``index[j]``) (c, K) and
    ``block[:, j]`` (b, c), whose row i is neighbour ``offset + i``. ``mask``: (b, c) bool scratch.

    ``topk`` along dim 0 is ~4× slower than along dim 1 (strided), so only the entries below the
    column's current K-th smallest are gathered and merged by sorting. Once the running values are
    finite that is a handful per column; when there are many (the first update, adversarial orderings)
    the plain ``topk`` does it. Both keep the same values."""
    keep, cols = values.shape[1], block.shape[1]
    torch.lt(block, values.amax(dim=1)[None, :], out=mask)
    if int(torch.count_nonzero(mask)) > 8 * keep * cols:
        best = torch.topk(block, min(keep, block.shape[0]), dim=0, largest=False, sorted=False)
        all_values = torch.cat((values, best.values.t()), dim=1)
        all_index = torch.cat((index, best.indices.t() + offset), dim=1)
        chosen = torch.topk(all_values, keep, dim=1, largest=False, sorted=False).indices
        return all_values.gather(1, chosen), all_index.gather(1, chosen)
    row_index, col_index = torch.nonzero(mask, as_tuple=True)
    columns = torch.cat((torch.arange(cols, device=block.device).repeat_interleave(keep), col_index))
    all_values = torch.cat((values.reshape(-1), block[row_index, col_index]))
    all_index = torch.cat((index.reshape(-1), row_index + offset))
    by_value = torch.argsort(all_values, stable=True)
    grouped = by_value[torch.argsort(columns[by_value], stable=True)]
    counts = torch.bincount(columns, minlength=cols)
    positions = grouped[(torch.cumsum(counts, dim=0) - counts)[:, None]
                        + torch.arange(keep, device=block.device)[None, :]]
    return all_values[positions], all_index[positions]


def _squared_radii(sweeper: _Sweeper, points: np.ndarray, centre: torch.Tensor, sqnorms: torch.Tensor,
                   ks: list[int], step: Callable[[], None] = lambda: None) -> dict[int, torch.Tensor]:
    """Exact r_k² (N,) float64 for every k in ``ks``.

    One sweep over the upper block triangle of points × points: the diagonal blocks first (so every row
    holds finite candidates early), then each off-diagonal block once, updating its rows and its
    columns. The k+1 nearest found for each row are then measured again by explicit differences."""
    n, block = points.shape[0], sweeper.block
    keep = max(ks) + 1
    starts = list(range(0, n, block))
    pairs = [(i0, i0) for i0 in starts] + [(i0, j0) for i0 in starts for j0 in starts if j0 > i0]
    values = torch.full((n, keep), torch.inf, dtype=torch.float64, device=sweeper.device)
    index = torch.zeros((n, keep), dtype=torch.int64, device=sweeper.device)
    loaded = None
    for i0, j0 in pairs:
        i1, j1 = min(i0 + block, n), min(j0 + block, n)
        if loaded != i0:
            rows, loaded = sweeper.rows(points, i0, i1, centre, sqnorms), i0
        cols = sweeper.cols(points, j0, j1, centre, sqnorms)
        distances, _ = sweeper.squared_distances(rows, cols, sqnorms[i0:i1], sqnorms[j0:j1])
        values[i0:i1], index[i0:i1] = _merge_rows(values[i0:i1], index[i0:i1], distances, j0)
        if j0 != i0:
            values[j0:j1], index[j0:j1] = _merge_columns(values[j0:j1], index[j0:j1], distances, i0,
                                                         sweeper.scratch(distances))
        step()
    neighbours = index.cpu().numpy()
    exact = _exact_squared(points, np.repeat(np.arange(n), keep), points, neighbours.reshape(-1))
    ordered = np.sort(exact.reshape(n, keep), axis=1)
    return {k: torch.from_numpy(np.ascontiguousarray(ordered[:, k])).to(sweeper.device) for k in ks}


def nearest_neighbour_radii(x: np.ndarray, ks: Iterable[int], *, block_size: int | None = None,
                            device: str | torch.device | None = None) -> dict[int, np.ndarray]:
    """Distance (float64, not squared) from each row of ``x`` (N, D) to its k-th nearest neighbour in x,
    itself excluded and duplicates counted at distance 0, for every k in ``ks`` (each 1 <= k < N).
    Returns {k: (N,) float64}. ``block_size``: rows per block (default by D); ``device``: torch device
    for the computation (default CPU)."""
    points = _check_points("x", x)
    ks = sorted({_check_k("k", k) for k in ks})
    if not ks:
        raise ValueError("ks must name at least one k")
    if points.shape[0] <= ks[-1]:
        raise ValueError(f"x has {points.shape[0]} points; k = {ks[-1]} needs at least {ks[-1] + 1}")
    block = min(_block_size(block_size, points.shape[1]), points.shape[0])
    sweeper = _Sweeper(points.shape[1], block, _resolve(device))
    exponent, (points,) = _rescaled(_check_finite("x", points, sweeper.block), points)
    centre = sweeper.column_sum(points) / points.shape[0]
    sqnorms = sweeper.squared_norms(points, centre)
    squared = _squared_radii(sweeper, points, centre, sqnorms, ks)
    return {k: np.ldexp(np.sqrt(value.cpu().numpy()), exponent) for k, value in squared.items()}


def _subsample(real: np.ndarray, fake: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The larger set reduced to the size of the smaller without replacement (sorted indices)."""
    n_real, n_fake = real.shape[0], fake.shape[0]
    if n_real == n_fake:
        return real, fake, None
    rng = np.random.default_rng(seed)
    if n_real > n_fake:
        return real[np.sort(rng.choice(n_real, size=n_fake, replace=False))], fake, "real"
    return real, fake[np.sort(rng.choice(n_fake, size=n_real, replace=False))], "fake"


def precision_recall_density_coverage(real: np.ndarray, fake: np.ndarray, *, k_pr: int = PR_K, k_dc: int = DC_K,
                                      seed: int = SEED, block_size: int | None = None,
                                      device: str | torch.device | None = None,
                                      progress: Callable[[int, int], None] | None = None) -> PRDCResult:
    """Precision and recall (k = ``k_pr``) and density and coverage (k = ``k_dc``) of ``fake`` (M, D)
    against ``real`` (N, D), any real dtype (float32 or float64 features), computed exactly in float64.

    When N != M the larger set is subsampled without replacement to the size of the smaller with
    ``np.random.default_rng(seed)`` (indices sorted). ``block_size``: rows per distance block (default
    4096 for D <= 2048); ``device``: torch device for the GEMMs and selections (default CPU);
    ``progress(done, total)`` is called after each block of distances. Raises ValueError for non-2-D or non-numeric inputs, different D, NaN/inf, or n <= max(k_pr, k_dc)."""
    real_points, fake_points = _check_points("real", real), _check_points("fake", fake)
    k_pr, k_dc = _check_k("k_pr", k_pr), _check_k("k_dc", k_dc)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if real_points.shape[1] != fake_points.shape[1]:
        raise ValueError(f"real and fake have different feature dimensions: {real_points.shape[1]} vs "
                         f"{fake_points.shape[1]}")
    needed = max(k_pr, k_dc) + 1
    n = min(real_points.shape[0], fake_points.shape[0])
    if n < needed:
        raise ValueError(f"too few points: real has {real_points.shape[0]}, fake {fake_points.shape[0]}; "
                         f"k_pr = {k_pr}, k_dc = {k_dc} need at least {needed} in each set")
    block = min(_block_size(block_size, real_points.shape[1]), n)
    sweeper = _Sweeper(real_points.shape[1], block, _resolve(device))
    peak = max(_check_finite("real", real_points, block), _check_finite("fake", fake_points, block))
    real_points, fake_points, subsampled = _subsample(real_points, fake_points, int(seed))
    _, (real_points, fake_points) = _rescaled(peak, real_points, fake_points)

    blocks = -(-n // block)
    total, done = blocks * (blocks + 1) + blocks * blocks, [0]

    def step() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    centre = (sweeper.column_sum(real_points) + sweeper.column_sum(fake_points)) / (2 * n)
    real_sq, fake_sq = sweeper.squared_norms(real_points, centre), sweeper.squared_norms(fake_points, centre)
    real_radii = _squared_radii(sweeper, real_points, centre, real_sq, [k_pr, k_dc], step)
    fake_radii = _squared_radii(sweeper, fake_points, centre, fake_sq, [k_pr], step)
    real_pr, real_dc, fake_pr = real_radii[k_pr], real_radii[k_dc], fake_radii[k_pr]

    device = sweeper.device
    fake_inside_real = torch.zeros(n, dtype=torch.bool, device=device)
    real_inside_fake = torch.zeros(n, dtype=torch.bool, device=device)
    real_covered = torch.zeros(n, dtype=torch.bool, device=device)
    balls = torch.zeros((), dtype=torch.int64, device=device)
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        rows = sweeper.rows(real_points, i0, i1, centre, real_sq)
        for j0 in range(0, n, block):
            j1 = min(j0 + block, n)
            cols = sweeper.cols(fake_points, j0, j1, centre, fake_sq)
            distances, accuracy = sweeper.squared_distances(rows, cols, real_sq[i0:i1], fake_sq[j0:j1])

            exact = functools.partial(_exact_pairs, real_points, i0, fake_points, j0)
            in_real_dc = sweeper.inside(distances, real_dc[i0:i1, None], accuracy, exact)
            balls += torch.count_nonzero(in_real_dc)
            real_covered[i0:i1] |= in_real_dc.any(dim=1)
            fake_inside_real[j0:j1] |= sweeper.inside(distances, real_pr[i0:i1, None], accuracy, exact).any(dim=0)
            real_inside_fake[i0:i1] |= sweeper.inside(distances, fake_pr[None, j0:j1], accuracy, exact).any(dim=1)
            step()

    return PRDCResult(
        precision=float(fake_inside_real.double().mean()),
        recall=float(real_inside_fake.double().mean()),
        density=int(balls) / (k_dc * n),
        coverage=float(real_covered.double().mean()),
        n=n, k_pr=k_pr, k_dc=k_dc, subsampled=subsampled, seed=int(seed),
    )
