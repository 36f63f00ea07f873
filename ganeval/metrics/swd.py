"""Sliced Wasserstein distance (SWD) of Progressive GAN (Karras et al. 2018, ``metrics/sliced_wasserstein.py``).

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
import torch.nn.functional as F
from PIL import Image

from ganeval import defaults
from ganeval.errors import BadInputError

from ..parts import SWD as SWD_PART
from .registry import Context, Key, Metric, Need, Row, option, register

NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16
PROTOCOL_IMAGES = defaults.SWD_IMAGES
DEFAULT_SEED = defaults.SEED

_TAG_CENTRES = 1
_TAG_DIRECTIONS = 2
_TAG_SUBSAMPLE = 3
_PROJECTION_BYTES = 512 * 2**20
_NORMALISE_ROWS = 8192

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0])
_KERNEL_5X5 = torch.from_numpy((np.outer(_BINOMIAL, _BINOMIAL) / 256.0).astype(np.float32))


def pyramid_levels(height: int, width: int) -> int:
    """Number of pyramid levels for an image of ``height``×``width`` pixels: how many of res, res/2, … are
    ≥ 16, res being the shorter side. Raises ValueError when the shorter side is under 16 px or a side is not
    divisible by 2**(levels − 1)."""
    side = min(height, width)
    if side < MIN_RESOLUTION:
        raise ValueError(
            f"SWD needs images of at least {MIN_RESOLUTION}x{MIN_RESOLUTION} pixels, got {height}x{width}"
        )
    levels, res = 0, side
    while res >= MIN_RESOLUTION:
        levels += 1
        res //= 2
    factor = 2 ** (levels - 1)
    if height % factor or width % factor:
        raise ValueError(f"SWD's {levels}-level pyramid needs both sides divisible by {factor}, got {height}x{width}")
    return levels


def _binomial_filter(images: torch.Tensor, gain: float, stride: int) -> torch.Tensor:
    """Depthwise 5×5 binomial filter × ``gain`` with mirror borders on (B, C, H, W), sampled every ``stride``."""
    channels = images.shape[1]
    weight = (_KERNEL_5X5.to(images.device) * gain).expand(channels, 1, 5, 5)
    padded = F.pad(images, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(padded, weight, stride=stride, groups=channels)


def _pyr_down(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, C, ⌈H/2⌉, ⌈W/2⌉): blur, then keep every second row and column from the first."""
    return _binomial_filter(images, 1.0, 2)


def _pyr_up(images: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) → (B, C, 2h, 2w): insert zeros after every sample, then blur with 4× the kernel."""
    batch, channels, height, width = images.shape
    spread = images.new_zeros((batch, channels, 2 * height, 2 * width))
    spread[:, :, ::2, ::2] = images
    return _binomial_filter(spread, 4.0, 1)


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of (B, C, H, W) float32 images (pixel units, e.g. [0, 255]): ``levels`` tensors, the
    finest band-pass first (B, C, H, W), then halving sizes, the low-pass residual last. Sides must be
    divisible by 2**(levels − 1). Upsampling the residual (zero insertion, 4× the kernel) and adding the
    bands back, coarsest first, reconstructs the input."""
    if images.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) images, got shape {tuple(images.shape)}")
    if levels < 1:
        raise ValueError(f"levels must be at least 1, got {levels}")
    factor = 2 ** (levels - 1)
    if images.shape[2] % factor or images.shape[3] % factor:
        raise ValueError(f"a {levels}-level pyramid needs sides divisible by {factor}, got {tuple(images.shape[2:])}")
    pyramid = [images.to(torch.float32)]
    for _ in range(1, levels):
        coarser = _pyr_down(pyramid[-1])
        pyramid[-1] = pyramid[-1] - _pyr_up(coarser)
        pyramid.append(coarser)
    return pyramid


def _neighbourhood_offsets() -> np.ndarray:
    """(7,) int64 offsets −3 … 3 around a neighbourhood centre."""
    half = NHOOD_SIZE // 2
    return np.arange(-half, half + 1, dtype=np.int64)


class DescriptorSampler:
    """Collects the raw SWD descriptors of one image set, batch by batch; keeps descriptors, not images.

    ``size``: when given, every image is first resized to ``size``×``size`` with PIL (``Image.BOX`` when both
    sides shrink or stay, ``Image.BICUBIC`` when a side grows; uint8 in, uint8 out); images already that size
    are left alone. Without it, all images of the set must share the first image's resolution.
    """

    def __init__(self, seed: int = DEFAULT_SEED, size: int | None = None) -> None:
        if size is not None:
            pyramid_levels(size, size)
        self.seed = int(seed)
        self.size = size
        self._shape: tuple[int, int] | None = None
        self._first_name: str | None = None
        self._levels = 0
        self._index_chunks: list[np.ndarray] = []
        self._level_chunks: list[list[np.ndarray]] = []
        self._seen: set[int] = set()

    @property
    def resolution(self) -> tuple[int, int] | None:
        """(height, width) in pixels shared by the set (after resizing), or None before the first image."""
        return self._shape

    @property
    def level_resolutions(self) -> list[int]:
        """Shorter side in pixels of each pyramid level, finest first; empty before the first image."""
        if self._shape is None:
            return []
        side = min(self._shape)
        return [side >> level for level in range(self._levels)]

    @property
    def n_images(self) -> int:
        """Number of images sampled so far."""
        return len(self._seen)

    def _prepare(self, image: np.ndarray, name: str) -> np.ndarray:
        """Validate one (H, W, 3) uint8 image and apply the optional resize."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            shape = getattr(image, "shape", None)
            dtype = getattr(image, "dtype", type(image).__name__)
            raise BadInputError(f"{name}: SWD needs an RGB uint8 image (H, W, 3), got shape {shape} dtype {dtype}")
        if self.size is None or image.shape[:2] == (self.size, self.size):
            return image
        shrinking = image.shape[0] >= self.size and image.shape[1] >= self.size
        method = Image.BOX if shrinking else Image.BICUBIC
        return np.asarray(Image.fromarray(image).resize((self.size, self.size), method))

    def update(self, images: list[np.ndarray], names: list[str], indices: list[int]) -> None:
        """Sample descriptors from uint8 (H, W, 3) RGB ``images``; ``names`` appear in error messages,
        ``indices`` are the images' positions in their source (they seed the neighbourhood centres and order
        the result). Raises BadInputError for an unusable image; nothing is recorded from a failing call."""
        if not (len(images) == len(names) == len(indices)):
            raise ValueError(f"got {len(images)} images, {len(names)} names and {len(indices)} indices")
        if not images:
            return
        shape, first_name, levels = self._shape, self._first_name, self._levels
        batch_indices: set[int] = set()
        prepared = []
        for image, name, index in zip(images, names, indices):
            image = self._prepare(image, name)
            height, width = image.shape[:2]
            if shape is None:
                try:
                    levels = pyramid_levels(height, width)
                except ValueError as error:
                    raise BadInputError(f"{name}: {error}") from None
                shape, first_name = (height, width), name
            elif (height, width) != shape:
                raise BadInputError(
                    f"{name}: SWD needs one resolution per set: this image is {height}x{width}, {first_name} is "
                    f"{shape[0]}x{shape[1]}; pass --swd-size to resize"
                )
            index = int(index)
            if index < 0:
                raise ValueError(f"{name}: image index must be non-negative, got {index}")
            if index in self._seen or index in batch_indices:
                raise ValueError(f"{name}: image index {index} was already sampled")
            batch_indices.add(index)
            prepared.append(image)
        self._shape, self._first_name, self._levels = shape, first_name, levels
        if not self._level_chunks:
            self._level_chunks = [[] for _ in range(levels)]

        pixels = torch.from_numpy(np.stack(prepared)).permute(0, 3, 1, 2).to(torch.float32)
        pyramid = laplacian_pyramid(pixels, levels)
        del pixels
        index_array = np.asarray([int(index) for index in indices], dtype=np.int64)
        for level, band in enumerate(pyramid):
            self._level_chunks[level].append(self._sample(band, index_array, level))
        self._index_chunks.append(index_array)
        self._seen.update(batch_indices)

    def absorb(self, other: DescriptorSampler) -> None:
        """Take over the descriptors ``other`` (same seed and size) sampled from other images of the same
        set, such as another process's share; ``result()`` orders everything by image index."""
        if (other.seed, other.size) != (self.seed, self.size):
            raise ValueError(f"samplers differ: seed/size {(other.seed, other.size)} vs {(self.seed, self.size)}")
        if other._shape is None:
            return
        if self._shape is None:
            self._shape, self._first_name, self._levels = other._shape, other._first_name, other._levels
            self._level_chunks = [[] for _ in range(self._levels)]
        elif other._shape != self._shape:
            raise BadInputError(
                f"{other._first_name}: SWD needs one resolution per set: this image is {other._shape[0]}x"
                f"{other._shape[1]}, {self._first_name} is {self._shape[0]}x{self._shape[1]}; pass --swd-size to resize")
        if self._seen & other._seen:
            raise ValueError(f"image index {min(self._seen & other._seen)} was sampled by both")
        for level, chunks in enumerate(other._level_chunks):
            self._level_chunks[level].extend(chunks)
        self._index_chunks.extend(other._index_chunks)
        self._seen |= other._seen

    def _sample(self, band: torch.Tensor, indices: np.ndarray, level: int) -> np.ndarray:
        """(B, 3, h, w) band → (B·128, 3, 7, 7) float32 neighbourhoods, 128 consecutive rows per image."""
        batch, _, height, width = band.shape
        half = NHOOD_SIZE // 2
        xs = np.empty((batch, NHOODS_PER_IMAGE), dtype=np.int64)
        ys = np.empty((batch, NHOODS_PER_IMAGE), dtype=np.int64)
        for row, index in enumerate(indices):
            rng = np.random.default_rng([self.seed, _TAG_CENTRES, int(index), level])
            xs[row] = rng.integers(half, width - half, size=NHOODS_PER_IMAGE)
            ys[row] = rng.integers(half, height - half, size=NHOODS_PER_IMAGE)
        offsets = _neighbourhood_offsets()
        channels = band.shape[1]
        rows = ys[:, :, None, None, None] + offsets[:, None]
        cols = xs[:, :, None, None, None] + offsets
        planes = np.arange(batch)[:, None, None, None, None] * channels + np.arange(channels)[:, None, None]
        flat = (planes * height + rows) * width + cols
        pixels = band.contiguous().numpy().reshape(-1)
        return pixels[flat].reshape(-1, channels, NHOOD_SIZE, NHOOD_SIZE)

    def result(self) -> list[np.ndarray]:
        """Raw descriptors per pyramid level, finest first, each (n_images·128, 3, 7, 7) float32 in pixel
        units, rows grouped by image in increasing image index. The arrays are kept (not copied) for later
        calls; do not modify them in place."""
        if not self._index_chunks:
            raise ValueError("no images were sampled for SWD")
        indices = np.concatenate(self._index_chunks)
        order = np.argsort(indices, kind="stable")
        in_order = bool(np.all(order == np.arange(len(order))))
        for level, chunks in enumerate(self._level_chunks):
            merged = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
            if not in_order:
                blocks = merged.reshape(len(indices), NHOODS_PER_IMAGE, *merged.shape[1:])
                merged = blocks[order].reshape(merged.shape)
            self._level_chunks[level] = [merged]
        self._index_chunks = [indices[order]]
        return [chunks[0] for chunks in self._level_chunks]


def _channel_stats(desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std (C,) float64 of (N, C, h, w) descriptors over N, h and w (two
    passes in float64 over row blocks); a zero std is replaced by 1."""
    if desc.ndim != 4 or desc.shape[0] == 0:
        raise ValueError(f"expected (N, C, h, w) descriptors with N > 0, got shape {desc.shape}")
    count = desc.shape[0] * desc.shape[2] * desc.shape[3]
    buffer = np.empty((min(_NORMALISE_ROWS, desc.shape[0]), *desc.shape[1:]), dtype=np.float64)
    total = np.zeros(desc.shape[1])
    for start in range(0, desc.shape[0], _NORMALISE_ROWS):
        block = desc[start:start + _NORMALISE_ROWS]
        total += block.sum(axis=(0, 2, 3), dtype=np.float64)
    mean = total / count
    squares = np.zeros(desc.shape[1])
    for start in range(0, desc.shape[0], _NORMALISE_ROWS):
        block = desc[start:start + _NORMALISE_ROWS]
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


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, *, repeats: int = DIR_REPEATS,
                       directions: int = DIRS_PER_REPEAT, seed: int | Sequence[int] = DEFAULT_SEED,
                       device: torch.device | str | None = None) -> float:
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
            torch.matmul(weights[start:start + size], tensor_a.T, out=part_a)
            torch.matmul(weights[start:start + size], tensor_b.T, out=part_b)
            if _sorts_with_numpy(target):
                rows_a, rows_b = part_a.numpy(), part_b.numpy()
                sums[start:start + size] = list(pool.map(_sort_and_gap, rows_a, rows_b))
            else:
                gaps = torch.sort(part_a, dim=1).values.sub_(torch.sort(part_b, dim=1).values).abs_()
                sums[start:start + size] = gaps.sum(dim=1, dtype=torch.float64).cpu().numpy()
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


def sliced_wasserstein_distance(real_levels: list[np.ndarray], fake_levels: list[np.ndarray], *,
                                seed: int = DEFAULT_SEED, resolutions: list[int] | None = None,
                                device: torch.device | str | None = None,
                                progress: Callable[[int, int], None] | None = None) -> SWDResult:
    """SWD between raw descriptors per level ((N, 3, 7, 7) float32, finest first, e.g. from
    ``DescriptorSampler.result``). Each set is normalised per level by its own statistics; when the counts
    differ, the larger set's rows are subsampled (seeded by ``[seed, 3, level, 1 or 2]``, without replacement).
    Level ``l`` uses directions seeded by ``[seed, 2, l]``. ValueError when the level counts differ
    (different image resolutions) or a level is empty. ``progress(done, total)`` is called after each level."""
    if len(real_levels) != len(fake_levels):
        raise ValueError(f"real descriptors have {len(real_levels)} pyramid levels, fake have {len(fake_levels)}: "
                         "the sets have different resolutions")
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
    size: int | None = option(None, "Resize every image to this size for SWD (needed when the sets' resolutions "
                                    "differ).", min=16)
    images: int = option(PROTOCOL_IMAGES, "Images per set used for SWD; larger sets keep a seeded subset.", min=1)


def _needs(options: SWDOptions, side: str, seed: int) -> tuple[Need, ...]:
    return (Need(SWD_PART, params=(("seed", seed), ("size", options.size), ("max_images", options.images))),)


def _size(info: object) -> str:
    resolution = info.get("resolution") if isinstance(info, dict) else None
    return "×".join(str(v) for v in resolution) if isinstance(resolution, (list, tuple)) else str(resolution)


def _compute(context: Context) -> dict[str, object]:
    real, fake = context.reference, context.fake
    real_info, fake_info = dict(real.meta.get("swd") or {}), dict(fake.meta.get("swd") or {})  # type: ignore[call-overload]
    if real_info.get("resolution") != fake_info.get("resolution"):
        raise BadInputError(f"SWD compares images of one resolution: real ({real.meta.get('source')}) is "
                            f"{_size(real_info)} and fake ({fake.meta.get('source')}) {_size(fake_info)}; pass "
                            f"--swd-size to resize both")
    real_levels, fake_levels = real.parts[SWD_PART], fake.parts[SWD_PART]
    size = min(real_info["resolution"])
    resolutions = [size >> level for level in range(len(real_levels))]
    result = sliced_wasserstein_distance(real_levels, fake_levels, seed=context.seed, resolutions=resolutions,
                                         device=context.device, progress=context.progress)
    context.details["swd"] = {"seed": context.seed, "resolutions": list(result.resolutions),
                              "images_real": real_info.get("images"), "images_fake": fake_info.get("images"),
                              "size": real_info.get("size"), "descriptors_per_level": result.n_descriptors,
                              "subsampled": result.subsampled}
    for info, label in ((real_info, "real"), (fake_info, "fake")):
        images = int(info.get("images") or 0)
        if images < PROTOCOL_IMAGES:
            context.warnings.append(f"SWD: {label} has {images} images (< {PROTOCOL_IMAGES:,}, the Progressive GAN "
                                    f"protocol); values are noisier and not comparable with published tables")
    if context.options.images != PROTOCOL_IMAGES:
        context.warnings.append(f"SWD uses at most {context.options.images} images per set instead of the protocol's "
                                f"{PROTOCOL_IMAGES:,}")
    return {"swd": result.mean, "swd_levels": list(result.levels)}


def _text(scores: Mapping[str, Any], provenance: Mapping[str, Any], n_fake: int | None) -> list[Row]:
    if "swd" not in scores:
        return []
    resolutions = list((provenance.get("swd") or {}).get("resolutions") or [])
    levels = [f"{value:.4f}" + (f" @{resolutions[i]}px" if i < len(resolutions) else "")
              for i, value in enumerate(scores.get("swd_levels") or [])]
    return [("SWD×1e3:", f"{scores['swd']:.4f}", "levels " + ", ".join(levels) if levels else "")]


SWD = register(Metric(
    name="swd", title="SWD×1e3", order=50, standard=True, command="swd", options=SWDOptions,
    keys=(Key("swd", "lower", plot=True), Key("swd_levels", kind="list")), needs=_needs, compute=_compute, text=_text,
    doc="Progressive GAN's sliced Wasserstein distance between REAL and FAKE (×1e3; per pyramid level, finest "
        "first, and their mean)."))
