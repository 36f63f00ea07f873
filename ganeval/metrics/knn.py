"""Exact k nearest neighbours in float64, blocked and memory bounded (maths only: numpy and torch, no I/O).

Squared distances come from the expansion ‖a‖² + ‖b‖² − 2a·b as one GEMM per block pair of augmented rows
[a, ‖a‖², 1]·[−2b, 1, ‖b‖²]ᵀ in float64 on a torch ``device``, after every set is shifted by one common
centre (distances are unchanged; the norms, and so the rounding residue, stay as small as the spread of the
data allows). ``Geometry`` holds the preallocated blocks; the caller's arrays are never copied whole.

Neighbours are exact. An expanded entry e lies within a slack s of the explicit-difference value
(``tolerance``), so e − s is a lower and e + s an upper bound of it. Per query the search keeps the k best
found so far as explicit-difference squared distances (``exact_squared``) with their indices. A block entry
is a candidate only when its lower bound reaches both that k-th best value and the k-th smallest upper
bound in the block; every candidate is measured again exactly and merged, ties going to the lowest index.
So near-duplicates that the expansion cannot order, and exact ties, are decided by explicit differences,
and the result is the k smallest explicit-difference distances whatever the block layout.

Neighbours reach every query in ascending index order (column blocks in order; for a set against itself
the upper block triangle in row-major order, each block pair once, its rows and its columns both updated).
Then an entry can only displace the current k-th best when it is strictly closer, so once a query holds
k exact zeros (k copies of itself) no further copy is measured; within a block the candidates of one
query are measured ``_ROUND``·k at a time, lowest index first, for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

_UNIT_ROUNDOFF = 2.0**-53
_TOLERANCE_FLOOR = 1e-12
_ABSOLUTE_SLACK = 2.0**-1000
_EXACT_CHUNK_ELEMENTS = 2**18
_CHUNK_ROWS = 512
_ROUND = 2
_TIGHTEN = 8

Selection = slice | np.ndarray


def tolerance(dim: int) -> float:
    """Relative accuracy τ of an expanded squared distance: |expanded − explicit| <= τ·(‖a‖² + ‖b‖²), where
    ``explicit`` is ``exact_squared`` and the norms are of centred rows (dimensionless).

    Worst-case bounds with u = 2⁻⁵³, any summation order, FMA or not: the GEMM over D+2 terms errs by
    2(D+2)u·(‖a‖² + ‖b‖²), the precomputed norms by D·u·(...), centring by 4u·(...), and the explicit
    difference itself by 2D·u·(...); together (5D+8)u·(...), so τ = 8(D+2)u, floored at 1e-12 (1.8e-12 at
    D = 2048). The margin of (3D+8)u·(...) also covers the rounding of the bounds built from τ."""
    return max(_TOLERANCE_FLOOR, 8.0 * (dim + 2) * _UNIT_ROUNDOFF)


def exact_squared(a: np.ndarray, a_index: np.ndarray, b: np.ndarray, b_index: np.ndarray) -> np.ndarray:
    """‖a[a_index] − b[b_index]‖² (P,) float64 from explicit differences, about 2 MiB of rows at a time.

    Deterministic and symmetric: the same two rows give the same value in either order and from any call,
    since (a − b)² = (b − a)² exactly and numpy sums each contiguous row the same way."""
    out = np.empty(len(a_index), dtype=np.float64)
    step = max(1, _EXACT_CHUNK_ELEMENTS // max(a.shape[1], 1))
    for start in range(0, len(a_index), step):
        stop = start + step
        difference = a[a_index[start:stop]].astype(np.float64)
        difference -= b[b_index[start:stop]]
        np.square(difference, out=difference)
        out[start:stop] = difference.sum(axis=1)
    return out


@dataclass(frozen=True)
class PointSet:
    """A caller's (N, D) array and the squared norms (N,) float64 of its centred rows on the device."""

    points: np.ndarray
    sqnorms: torch.Tensor

    def __len__(self) -> int:
        return self.points.shape[0]


class Geometry:
    """Preallocated float64 blocks of at most ``block`` rows of dimension ``dim`` on one ``device``, one centre
    shared by every set, and the expanded squared distances between two blocks."""

    def __init__(self, dim: int, block: int, device: torch.device, arrays: Sequence[np.ndarray]) -> None:
        self.dim, self.block, self.device = dim, block, device
        self.tolerance = tolerance(dim)
        self.row_buffer = torch.empty((block, dim + 2), dtype=torch.float64, device=device)
        self.col_buffer = torch.empty((block, dim + 2), dtype=torch.float64, device=device)
        self.distances = torch.empty(block * block, dtype=torch.float64, device=device)
        self.masks = (
            torch.empty(block * block, dtype=torch.bool, device=device),
            torch.empty(block * block, dtype=torch.bool, device=device),
        )
        total = torch.zeros(dim, dtype=torch.float64, device=device)
        for points in arrays:
            total += self._column_sum(points)
        self.centre = total / max(1, sum(points.shape[0] for points in arrays))

    def _load(self, out: torch.Tensor, points: np.ndarray, selection: Selection) -> None:
        """Upcast rows ``selection`` of ``points`` into ``out`` (rows, D) float64 (to a CUDA device float32
        rows travel as float32 and are upcast there)."""
        if self.device.type == "cpu":
            np.copyto(out.numpy(), points[selection], casting="unsafe")
        else:
            native = np.float32 if points.dtype == np.float32 else np.float64
            out.copy_(torch.from_numpy(np.array(points[selection], dtype=native)))

    def _centred(self, out: torch.Tensor, points: np.ndarray, selection: Selection, rows: int) -> torch.Tensor:
        """Rows ``selection`` of ``points`` minus the centre, written into ``out[:rows, :D]`` and returned."""
        view = out[:rows, : self.dim]
        self._load(view, points, selection)
        return view.sub_(self.centre)

    def _column_sum(self, points: np.ndarray) -> torch.Tensor:
        total = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        for start in range(0, points.shape[0], self.block):
            stop = min(start + self.block, points.shape[0])
            rows = self.row_buffer[: stop - start, : self.dim]
            self._load(rows, points, slice(start, stop))
            total += rows.sum(dim=0)
        return total

    def prepare(self, points: np.ndarray) -> PointSet:
        """``points`` (N, D) with ‖row − centre‖² (N,) float64 from the same centred rows the GEMMs see."""
        sqnorms = torch.empty(points.shape[0], dtype=torch.float64, device=self.device)
        for start in range(0, points.shape[0], self.block):
            stop = min(start + self.block, points.shape[0])
            rows = self._centred(self.row_buffer, points, slice(start, stop), stop - start)
            sqnorms[start:stop] = torch.einsum("ij,ij->i", rows, rows)
        return PointSet(points, sqnorms)

    def norms(self, points: PointSet, selection: Selection) -> torch.Tensor:
        """Squared centred norms (rows,) of rows ``selection`` (a slice or an index array)."""
        if isinstance(selection, slice):
            return points.sqnorms[selection]
        return points.sqnorms[torch.from_numpy(np.asarray(selection, dtype=np.int64)).to(self.device)]

    def rows(self, points: PointSet, selection: Selection) -> torch.Tensor:
        """Augmented left operand [a − c, ‖a − c‖², 1] (rows, D + 2), a view of the row buffer."""
        count = len(range(points.points.shape[0])[selection]) if isinstance(selection, slice) else len(selection)
        out = self.row_buffer[:count]
        self._centred(out, points.points, selection, count)
        out[:, self.dim] = self.norms(points, selection)
        out[:, self.dim + 1] = 1.0
        return out

    def cols(self, points: PointSet, selection: Selection) -> torch.Tensor:
        """Augmented right operand [−2(b − c), 1, ‖b − c‖²] (cols, D + 2); −2 scales exactly."""
        count = len(range(points.points.shape[0])[selection]) if isinstance(selection, slice) else len(selection)
        out = self.col_buffer[:count]
        self._centred(out, points.points, selection, count).mul_(-2.0)
        out[:, self.dim] = 1.0
        out[:, self.dim + 1] = self.norms(points, selection)
        return out

    def squared(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Expanded ‖a − b‖² (rows, cols) float64, a view of the distance buffer (valid until the next call)."""
        out = self.distances[: rows.shape[0] * cols.shape[0]].view(rows.shape[0], cols.shape[0])
        return torch.mm(rows, cols.t(), out=out)

    def slack(self, sqnorms: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
        """Per row, a bound (rows,) on |expanded − explicit| for that row against any of ``others``:
        τ·(‖a‖² + max ‖b‖²), plus a tiny absolute term for subnormal rounding."""
        return sqnorms * self.tolerance + (float(others.max()) * self.tolerance + _ABSOLUTE_SLACK)

    def scratch(self, shape: torch.Size | tuple[int, int], which: int = 0) -> torch.Tensor:
        """Preallocated bool buffer ``which`` (0 or 1) viewed with ``shape`` (at most block × block)."""
        return self.masks[which][: shape[0] * shape[1]].view(shape[0], shape[1])


class _Best:
    """Per query the k nearest found so far: explicit squared distances (M, k) ascending, +inf where none
    yet, and their indices (M, k) int64 (``sentinel`` where none), ties by the lowest index."""

    def __init__(self, queries: int, k: int, sentinel: int) -> None:
        self.values = np.full((queries, k), np.inf)
        self.index = np.full((queries, k), sentinel, dtype=np.int64)

    def kth(self, start: int, stop: int) -> np.ndarray:
        return self.values[start:stop, -1]

    def merge(self, query: np.ndarray, neighbour: np.ndarray, squared: np.ndarray) -> None:
        """Merge candidates (P,) of queries ``query`` (ascending) at explicit squared distances ``squared``."""
        if not len(query):
            return
        k = self.values.shape[1]
        rows = np.unique(query)
        position = np.searchsorted(rows, query)
        all_rows = np.concatenate([np.repeat(np.arange(len(rows)), k), position])
        all_values = np.concatenate([self.values[rows].ravel(), squared])
        all_index = np.concatenate([self.index[rows].ravel(), neighbour])
        order = np.lexsort((all_index, all_values, all_rows))
        take = order[np.searchsorted(all_rows[order], np.arange(len(rows)))[:, None] + np.arange(k)]
        self.values[rows], self.index[rows] = all_values[take], all_index[take]


@dataclass
class _Search:
    """One k-NN search: the two sets, the running best and the geometry."""

    geometry: Geometry
    queries: PointSet
    points: PointSet
    best: _Best
    exclude_self: bool

    def resolve(self, query: np.ndarray, neighbour: np.ndarray, lower: np.ndarray) -> None:
        """Measure candidates exactly and merge them, ``_ROUND``·k per query at a time in the given order
        (ascending query, then ascending neighbour); after each round drop those whose lower bound exceeds
        the query's k-th best, or all when that is an exact 0 (k copies already found at lower indices)."""
        per_round = _ROUND * self.best.values.shape[1]
        while len(query):
            rank = np.arange(len(query)) - np.searchsorted(query, query)
            now = rank < per_round
            squared = exact_squared(self.queries.points, query[now], self.points.points, neighbour[now])
            self.best.merge(query[now], neighbour[now], squared)
            query, neighbour, lower = query[~now], neighbour[~now], lower[~now]
            kth = self.best.values[query, -1]
            keep = (kth > 0) & (lower <= kth)
            query, neighbour, lower = query[keep], neighbour[keep], lower[keep]

    def side(
        self, distances: torch.Tensor, slack: torch.Tensor, by_rows: bool, query_start: int, neighbour_start: int
    ) -> None:
        """Update the queries along one side of a block of expanded squared distances: its rows
        (``by_rows``: queries ``query_start + i``, neighbours ``neighbour_start + j``) or its columns
        (queries ``query_start + j``, neighbours ``neighbour_start + i``). ``slack``: per query (q,)."""
        geometry, k = self.geometry, self.best.values.shape[1]
        dim, count = (1, distances.shape[0]) if by_rows else (0, distances.shape[1])
        size = distances.shape[dim]
        kth = torch.from_numpy(self.best.kth(query_start, query_start + count)).to(geometry.device)
        limit = torch.where(kth > 0, kth, -torch.inf)

        def candidates(bound: torch.Tensor) -> torch.Tensor:
            threshold = (bound + slack)[:, None] if by_rows else (bound + slack)[None, :]
            return torch.le(distances, threshold, out=geometry.scratch(distances.shape))

        mask = candidates(limit)
        if int(torch.count_nonzero(mask)) > _TIGHTEN * k * count:
            if size >= k:
                block_kth = torch.topk(distances, k, dim=dim, largest=False, sorted=False).values.amax(dim=dim)
                mask = candidates(torch.minimum(limit, block_kth + slack))
        for start in range(0, count, _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, count)
            part = mask[start:stop] if by_rows else mask[:, start:stop].t()
            q, n = torch.nonzero(part, as_tuple=True)
            if not q.numel():
                continue
            q += start
            values = distances[q, n] if by_rows else distances[n, q]
            lower = (values - slack[q]).cpu().numpy()
            query, neighbour = q.cpu().numpy() + query_start, n.cpu().numpy() + neighbour_start
            if self.exclude_self:
                other = query != neighbour
                query, neighbour, lower = query[other], neighbour[other], lower[other]
            self.resolve(query, neighbour, lower)


def _block_pairs(queries: int, points: int, block: int, symmetric: bool) -> list[tuple[int, int]]:
    """Block starts (row, column) in row-major order; the upper triangle only when ``symmetric``."""
    rows, cols = range(0, queries, block), range(0, points, block)
    return [(i0, j0) for i0 in rows for j0 in cols if not symmetric or j0 >= i0]


def k_nearest_squared(
    geometry: Geometry,
    queries: PointSet,
    points: PointSet,
    k: int,
    *,
    exclude_self: bool = False,
    step: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest ``points`` (N, D) of each query (M, D): explicit squared distances (M, k) float64,
    ascending, and indices (M, k) int64, ties broken by the lowest index.

    ``exclude_self``: query i may not match point i (queries and points are the same rows; an identical
    row elsewhere still matches, at 0). When ``queries is points`` one sweep over the upper block triangle
    serves both sides of each block pair. ``step()`` is called once per block pair. Needs
    k <= N − exclude_self; the caller checks it."""
    symmetric, block = queries is points, geometry.block
    search = _Search(geometry, queries, points, _Best(len(queries), k, len(points)), exclude_self)
    loaded = None
    for i0, j0 in _block_pairs(len(queries), len(points), block, symmetric):
        i1, j1 = min(i0 + block, len(queries)), min(j0 + block, len(points))
        if loaded != i0:
            rows, loaded = geometry.rows(queries, slice(i0, i1)), i0
        distances = geometry.squared(rows, geometry.cols(points, slice(j0, j1)))
        query_sq, point_sq = queries.sqnorms[i0:i1], points.sqnorms[j0:j1]
        low, high = max(i0, j0), min(i1, j1)
        if exclude_self and low < high:
            own = torch.arange(low, high, device=geometry.device)
            distances[own - i0, own - j0] = torch.inf
        search.side(distances, geometry.slack(query_sq, point_sq), True, i0, j0)
        if symmetric and j0 != i0:
            search.side(distances, geometry.slack(point_sq, query_sq), False, j0, i0)
        if step is not None:
            step()
    return search.best.values, search.best.index
