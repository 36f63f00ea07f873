"""Sliced Wasserstein distance (SWD) of Progressive GAN (Karras et al. 2018, ``metrics/sliced_wasserstein.py``).
The descriptors are sampled by the ``pixels`` extractor (``ganeval.extractors.swd_pixels``); this module holds
the distance between two sets of them and the metric's registry entry.

Protocol: every image (uint8 pixels as float32 in [0, 255], NCHW) becomes a Laplacian pyramid built with the
5×5 binomial kernel [1, 4, 6, 4, 1]ᵀ[1, 4, 6, 4, 1]/256 and mirror borders (reflect without repeating the
edge pixel), one level per resolution res, res/2, … that is at least 16 px, finest band first and the
low-pass residual last. From each level 128 random 7×7×3 neighbourhoods are taken per image, centres uniform
in [3, size − 3) (every neighbourhood fully inside), x along the width and y along the height drawn
independently. Per set and level the descriptors are normalised per colour channel by that set's own mean
and population standard deviation and flattened to 147-d. The distance between two such sets is the mean,
over 4 repeats × 128 random unit directions, of the mean absolute difference between the sorted
projections; it is reported ×1e3 per level and averaged over levels. The paper uses 16,384 images per set.

Where this differs from the original, on purpose:

- Seeded (the original draws from NumPy's global state): neighbourhood centres come from
  ``np.random.default_rng([seed, 1, image_index, level])``, so descriptors do not depend on batch size or on
  the order images arrive in; directions for level ``l`` come from ``default_rng([seed, 2, l])``.
- Normalisation statistics are accumulated in float64 (the original reduces in float32). A channel with zero
  spread (e.g. a set of constant images) is only centred, where the original would divide by zero.
- The sum of absolute differences is accumulated in float64; projections stay float32 as in the original.
- Sets of different sizes are allowed: the larger set's normalised descriptors are subsampled (seeded,
  without replacement) to the smaller count, per level.
- Non-square images are accepted; levels are counted from the shorter side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ganeval import defaults
from ganeval.errors import BadInputError

from ..parts import SWD as SWD_PART
from .registry import Context, Key, Metric, Need, Row, option, register

DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
PROTOCOL_IMAGES = defaults.SWD_IMAGES
DEFAULT_SEED = defaults.SEED

_TAG_DIRECTIONS = 2
_TAG_SUBSAMPLE = 3
_PROJECTION_BYTES = 512 * 2**20
_NORMALISE_ROWS = 8192


def _channel_stats(desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std (C,) float64 of (N, C, h, w) descriptors over N, h and w (two
    passes in float64 over row blocks); a zero std is replaced by 1."""
    if desc.ndim != 4 or desc.shape[0] == 0:
        raise ValueError(f"expected (N, C, h, w) descriptors with N > 0, got shape {desc.shape}")
    count = desc.shape[0] * desc.shape[2] * desc.shape[3]
    buffer = np.empty((min(_NORMALISE_ROWS, desc.shape[0]), *desc.shape[1:]), dtype=np.float64)
    total = np.zeros(desc.shape[1])
    for start in range(0, desc.shape[0], _NORMALISE_ROWS):
        block = desc[start : start + _NORMALISE_ROWS]
        total += block.sum(axis=(0, 2, 3), dtype=np.float64)
    mean = total / count
    squares = np.zeros(desc.shape[1])
    for start in range(0, desc.shape[0], _NORMALISE_ROWS):
        block = desc[start : start + _NORMALISE_ROWS]
        centred = buffer[: len(block)]
        np.subtract(block, mean[:, None, None], out=centred)
        np.square(centred, out=centred)
        squares += centred.sum(axis=(0, 2, 3))
    std = np.sqrt(squares / count)
    std[std == 0] = 1.0
    return mean, std


def _apply_stats(desc: np.ndarray, mean: np.ndarray, std: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """(N, C, h, w) → (M, C·h·w) float32 of (desc − mean) / std for ``rows`` (all rows when None), computed in
    float64 and rounded once."""
    count = desc.shape[0] if rows is None else len(rows)
    out = np.empty((count, int(np.prod(desc.shape[1:]))), dtype=np.float32)
    target = out.reshape(count, *desc.shape[1:])
    shift = mean[:, None, None]
    scale = std[:, None, None]
    buffer = np.empty((min(_NORMALISE_ROWS, max(count, 1)), *desc.shape[1:]), dtype=np.float64)
    for start in range(0, count, _NORMALISE_ROWS):
        stop = min(start + _NORMALISE_ROWS, count)
        block = buffer[: stop - start]
        np.subtract(desc[start:stop] if rows is None else desc[rows[start:stop]], shift, out=block)
        np.divide(block, scale, out=target[start:stop], casting="same_kind")
    return out


def normalise_descriptors(desc: np.ndarray) -> np.ndarray:
    """(N, 3, 7, 7) raw descriptors → (N, 147) float32, each colour channel centred and divided by the set's
    own population std over all rows and 7×7 positions (statistics in float64)."""
    return _apply_stats(desc, *_channel_stats(desc))


def _direction_matrix(dim: int, repeats: int, directions: int, seed: int | Sequence[int]) -> np.ndarray:
    """(dim, repeats·directions) float32 unit columns: per repeat ``rng.standard_normal((dim, directions))``
    from ``np.random.default_rng(seed)``, each column divided by its norm in float64, then cast."""
    rng = np.random.default_rng(seed)
    blocks = []
    for _ in range(repeats):
        block = rng.standard_normal((dim, directions))
        block /= np.sqrt(np.sum(np.square(block), axis=0, keepdims=True))
        blocks.append(block.astype(np.float32))
    return np.concatenate(blocks, axis=1)


def _sort_and_gap(proj_a: np.ndarray, proj_b: np.ndarray) -> float:
    """Sort two (N,) float32 projections in place; Σ |a₍ᵢ₎ − b₍ᵢ₎| accumulated in float64
    (``proj_a`` is overwritten with the gaps)."""
    proj_a.sort()
    proj_b.sort()
    np.subtract(proj_a, proj_b, out=proj_a)
    np.abs(proj_a, out=proj_a)
    return float(proj_a.sum(dtype=np.float64))


def _sorts_with_numpy(device: torch.device) -> bool:
    """Whether projections on ``device`` are sorted by NumPy threads (CPU) rather than ``torch.sort``."""
    return device.type == "cpu"


def sliced_wasserstein(
    a: np.ndarray,
    b: np.ndarray,
    *,
    repeats: int = DIR_REPEATS,
    directions: int = DIRS_PER_REPEAT,
    seed: int | Sequence[int] = DEFAULT_SEED,
    device: torch.device | str | None = None,
) -> float:
    """Sliced Wasserstein distance between normalised descriptor sets ``a``, ``b`` (N, D) of equal N, in
    descriptor units (not ×1e3). Per repeat, ``directions`` standard-normal D-d directions from
    ``np.random.default_rng(seed)`` (drawn as a (D, directions) block), normalised to unit length in float64
    and cast to float32; per direction both float32 projections are sorted and their mean absolute
    difference taken (summed in float64); the result averages directions, then repeats.

    Directions go in chunks whose projections of both sets take about 512 MB (32 directions at
    N = 2,097,152). On the CPU the projections are sorted with NumPy's in-place SIMD sort, one direction
    per thread (``torch.get_num_threads()`` threads; several times faster here than ``torch.sort``);
    with ``device`` (e.g. "cuda") the sets are copied there and sorted with ``torch.sort``."""
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] == 0:
        raise ValueError(f"expected two (N, D) arrays of equal shape with N > 0, got {a.shape} and {b.shape}")
    if repeats < 1 or directions < 1:
        raise ValueError(f"repeats and directions must be positive, got {repeats} and {directions}")
    count, dim = a.shape
    dirs = _direction_matrix(dim, repeats, directions, seed)
    total = dirs.shape[1]
    target = torch.device("cpu") if device is None else torch.device(device)
    tensor_a = torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=target)
    tensor_b = torch.as_tensor(np.ascontiguousarray(b, dtype=np.float32), device=target)
    weights = torch.as_tensor(np.ascontiguousarray(dirs.T), device=target)
    chunk = int(min(total, max(1, _PROJECTION_BYTES // (2 * 4 * count))))
    proj_a = torch.empty((chunk, count), dtype=torch.float32, device=target)
    proj_b = torch.empty((chunk, count), dtype=torch.float32, device=target)
    sums = np.empty(total, dtype=np.float64)
    with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
        for start in range(0, total, chunk):
            size = min(chunk, total - start)
            part_a, part_b = proj_a[:size], proj_b[:size]
            torch.matmul(weights[start : start + size], tensor_a.T, out=part_a)
            torch.matmul(weights[start : start + size], tensor_b.T, out=part_b)
            if _sorts_with_numpy(target):
                rows_a, rows_b = part_a.numpy(), part_b.numpy()
                sums[start : start + size] = list(pool.map(_sort_and_gap, rows_a, rows_b))
            else:
                gaps = torch.sort(part_a, dim=1).values.sub_(torch.sort(part_b, dim=1).values).abs_()
                sums[start : start + size] = gaps.sum(dim=1, dtype=torch.float64).cpu().numpy()
    per_repeat = sums.reshape(repeats, directions).sum(axis=1) / (directions * count)
    return float(per_repeat.mean())


@dataclass(frozen=True)
class SWDResult:
    """SWD ×1e3 per pyramid level (finest first) and their mean; ``resolutions``: each level's size in px
    (empty when unknown); ``n_descriptors``: descriptors per set per level compared; ``subsampled``: "real"
    or "fake" when that set's descriptors were subsampled to the other's count, else None."""

    levels: list[float]
    mean: float
    resolutions: list[int]
    n_descriptors: int
    subsampled: str | None
    seed: int


def _prepare_set(desc: np.ndarray, count: int, seed: int, level: int, tag: int) -> np.ndarray:
    """Normalise (N, 3, 7, 7) ``desc`` by its own statistics, keeping ``count`` seeded rows when N > count."""
    mean, std = _channel_stats(desc)
    rows = None
    if desc.shape[0] > count:
        rng = np.random.default_rng([seed, _TAG_SUBSAMPLE, level, tag])
        rows = np.sort(rng.choice(desc.shape[0], size=count, replace=False))
    return _apply_stats(desc, mean, std, rows)


def sliced_wasserstein_distance(
    real_levels: list[np.ndarray],
    fake_levels: list[np.ndarray],
    *,
    seed: int = DEFAULT_SEED,
    resolutions: list[int] | None = None,
    device: torch.device | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SWDResult:
    """SWD between raw descriptors per level ((N, 3, 7, 7) float32, finest first, e.g. from
    ``DescriptorSampler.result``). Each set is normalised per level by its own statistics; when the counts
    differ, the larger set's rows are subsampled (seeded by ``[seed, 3, level, 1 or 2]``, without replacement).
    Level ``l`` uses directions seeded by ``[seed, 2, l]``. ValueError when the level counts differ
    (different image resolutions) or a level is empty. ``progress(done, total)`` is called after each level."""
    if len(real_levels) != len(fake_levels):
        raise ValueError(
            f"real descriptors have {len(real_levels)} pyramid levels, fake have {len(fake_levels)}: "
            "the sets have different resolutions"
        )
    if not real_levels:
        raise ValueError("no pyramid levels to compare")
    if resolutions is not None and len(resolutions) != len(real_levels):
        raise ValueError(f"{len(resolutions)} resolutions given for {len(real_levels)} levels")
    distances: list[float] = []
    counts: list[int] = []
    subsampled: str | None = None
    for level, (real, fake) in enumerate(zip(real_levels, fake_levels)):
        count = min(real.shape[0], fake.shape[0])
        if count == 0:
            raise ValueError(f"level {level} has no descriptors")
        if subsampled is None and real.shape[0] != fake.shape[0]:
            subsampled = "real" if real.shape[0] > count else "fake"
        a = _prepare_set(real, count, seed, level, 1)
        b = _prepare_set(fake, count, seed, level, 2)
        distances.append(sliced_wasserstein(a, b, seed=[seed, _TAG_DIRECTIONS, level], device=device) * 1e3)
        counts.append(count)
        del a, b
        if progress is not None:
            progress(level + 1, len(real_levels))
    return SWDResult(
        levels=distances,
        mean=float(np.mean(distances)),
        resolutions=list(resolutions) if resolutions is not None else [],
        n_descriptors=min(counts),
        subsampled=subsampled,
        seed=int(seed),
    )


@dataclass(frozen=True)
class SWDOptions:
    size: int | None = option(
        None, "Resize every image to this size for SWD (needed when the sets' resolutions differ).", min=16
    )
    images: int = option(PROTOCOL_IMAGES, "Images per set used for SWD; larger sets keep a seeded subset.", min=1)


def _needs(options: SWDOptions, side: str, seed: int) -> tuple[Need, ...]:
    return (Need(SWD_PART, params=(("seed", seed), ("size", options.size), ("max_images", options.images))),)


def _info(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _size(info: object) -> str:
    resolution = info.get("resolution") if isinstance(info, dict) else None
    return "×".join(str(v) for v in resolution) if isinstance(resolution, (list, tuple)) else str(resolution)


def _compute(context: Context) -> dict[str, object]:
    real, fake = context.reference, context.fake
    real_info, fake_info = _info(real.meta.get("swd")), _info(fake.meta.get("swd"))
    if real_info.get("resolution") != fake_info.get("resolution"):
        raise BadInputError(
            f"SWD compares images of one resolution: real ({real.meta.get('source')}) is "
            f"{_size(real_info)} and fake ({fake.meta.get('source')}) {_size(fake_info)}; pass "
            f"--swd-size to resize both"
        )
    real_levels, fake_levels = real.parts[SWD_PART], fake.parts[SWD_PART]
    size = min(real_info["resolution"])
    resolutions = [size >> level for level in range(len(real_levels))]
    result = sliced_wasserstein_distance(
        real_levels,
        fake_levels,
        seed=context.seed,
        resolutions=resolutions,
        device=context.device,
        progress=context.progress,
    )
    context.details["swd"] = {
        "seed": context.seed,
        "resolutions": list(result.resolutions),
        "images_real": real_info.get("images"),
        "images_fake": fake_info.get("images"),
        "size": real_info.get("size"),
        "descriptors_per_level": result.n_descriptors,
        "subsampled": result.subsampled,
    }
    for info, label in ((real_info, "real"), (fake_info, "fake")):
        images = int(info.get("images") or 0)
        if images < PROTOCOL_IMAGES:
            context.warnings.append(
                f"SWD: {label} has {images} images (< {PROTOCOL_IMAGES:,}, the Progressive GAN "
                f"protocol); values are noisier and not comparable with published tables"
            )
    if context.options.images != PROTOCOL_IMAGES:
        context.warnings.append(
            f"SWD uses at most {context.options.images} images per set instead of the protocol's {PROTOCOL_IMAGES:,}"
        )
    return {"swd": result.mean, "swd_levels": list(result.levels)}


def _text(scores: Mapping[str, Any], provenance: Mapping[str, Any], n_fake: int | None) -> list[Row]:
    if "swd" not in scores:
        return []
    resolutions = list((provenance.get("swd") or {}).get("resolutions") or [])
    levels = [
        f"{value:.4f}" + (f" @{resolutions[i]}px" if i < len(resolutions) else "")
        for i, value in enumerate(scores.get("swd_levels") or [])
    ]
    return [("SWD×1e3:", f"{scores['swd']:.4f}", "levels " + ", ".join(levels) if levels else "")]


SWD = register(
    Metric(
        name="swd",
        title="SWD×1e3",
        order=50,
        progress_unit="levels",
        standard=True,
        command="swd",
        options=SWDOptions,
        keys=(Key("swd", "lower", plot=True), Key("swd_levels", kind="list")),
        needs=_needs,
        compute=_compute,
        text=_text,
        doc="Progressive GAN's sliced Wasserstein distance between REAL and FAKE (×1e3; per pyramid level, finest "
        "first, and their mean).",
    )
)
