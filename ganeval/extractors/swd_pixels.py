"""Progressive GAN's SWD descriptors as an extractor: part ``pixels:swd``, raw 7×7×3 neighbourhoods from
every level of each image's Laplacian pyramid (the sampler is ``DescriptorSampler``).

Parameters (they key the cache): ``seed``, ``size`` (resize every image to size×size first, or None) and
``max_images``. Which images are used when a set has more than ``max_images``: each image index gets a
seeded 64-bit priority, and the ``max_images`` images of lowest priority are kept. The rule needs neither
the set's size nor the order images arrive in, so ``score`` on a folder, ``Evaluator.score`` and
``Evaluator.update`` streams (on one process or many) use the same images for the same indices.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import BadInputError
from ..defaults import SEED as DEFAULT_SEED
from .base import Batch, Params

PART = "swd"
SAMPLER_VERSION = "swd-descriptors-v1"
NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
MIN_RESOLUTION = 16
_TAG_CENTRES = 1
_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0])
_KERNEL_5X5 = torch.from_numpy((np.outer(_BINOMIAL, _BINOMIAL) / 256.0).astype(np.float32))


def pyramid_levels(height: int, width: int) -> int:
    """Number of pyramid levels for an image of ``height``×``width`` pixels: how many of res, res/2, … are
    ≥ 16, res being the shorter side. Raises ValueError when the shorter side is under 16 px or a side is not
    divisible by 2**(levels − 1)."""
    side = min(height, width)
    if side < MIN_RESOLUTION:
        raise ValueError(f"SWD needs images of at least {MIN_RESOLUTION}x{MIN_RESOLUTION} pixels, got {height}x{width}")
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
        method = Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC
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
                f"{other._shape[1]}, {self._first_name} is {self._shape[0]}x{self._shape[1]}; pass --swd-size to resize"
            )
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


def priorities(seed: int, indices: np.ndarray) -> np.ndarray:
    """A seeded pseudo-random uint64 per image index (SplitMix64 of seed·φ + index): the subset rule's key."""
    with np.errstate(over="ignore"):
        x = np.asarray(indices, dtype=np.uint64) + np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def chosen(seed: int, total: int, max_images: int) -> np.ndarray:
    """The sorted indices the rule keeps out of ``total`` images (all of them up to ``max_images``)."""
    if total <= max_images:
        return np.arange(total)
    order = np.argsort(priorities(seed, np.arange(total)), kind="stable")
    return np.sort(order[:max_images])


def swd_params(params: Params) -> tuple[int, int | None, int]:
    """(seed, size or None, max_images) from the part's parameters."""
    seed, size, cap = params["seed"], params.get("size"), params["max_images"]
    if not isinstance(seed, int) or not isinstance(cap, int) or not (size is None or isinstance(size, int)):
        raise ValueError(f"SWD parameters must be integers, got {dict(params)}")
    return seed, size, cap


@functools.lru_cache(maxsize=8)
def _threshold(seed: int, total: int, cap: int) -> np.uint64:
    """The largest priority the rule keeps out of ``total`` images."""
    return np.sort(priorities(seed, np.arange(total)))[cap - 1]


class DescriptorAccumulator:
    """The descriptors of the (at most ``max_images``) kept images of one set, pruned as batches come."""

    def __init__(self, seed: int, size: int | None, max_images: int) -> None:
        self.seed, self.size, self.max_images = seed, size, max_images
        self.sampler = DescriptorSampler(seed=seed, size=size)

    def add(self, indices: list[int], value: DescriptorSampler) -> None:
        self.sampler.absorb(value)
        self._prune()

    def merge(self, other: DescriptorAccumulator) -> None:
        self.sampler.absorb(other.sampler)
        self._prune()

    def _prune(self) -> None:
        if self.sampler.n_images <= self.max_images:
            return
        self.sampler.result()  # one chunk per level, rows in index order
        indices = self.sampler._index_chunks[0]
        keep = np.sort(np.argsort(priorities(self.seed, indices), kind="stable")[: self.max_images])
        rows = (keep[:, None] * NHOODS_PER_IMAGE + np.arange(NHOODS_PER_IMAGE)).reshape(-1)
        self.sampler._level_chunks = [[chunks[0][rows]] for chunks in self.sampler._level_chunks]
        self.sampler._index_chunks = [indices[keep]]
        self.sampler._seen = {int(i) for i in indices[keep]}

    def finish(self) -> list[np.ndarray]:
        return self.sampler.result()

    def info(self) -> dict[str, object]:
        """What the provenance says of the sampled set: seed, size, resolution, images used."""
        resolution = list(self.sampler.resolution) if self.sampler.resolution else None
        return {"seed": self.seed, "size": self.size, "resolution": resolution, "images": self.sampler.n_images}


class SWDPixelExtractor:
    """No network: samples descriptors from the decoded pixels."""

    name = "pixels"
    default_vector: str | None = None

    def part_dims(self) -> Mapping[str, int | None]:
        return {PART: None}

    def identity(self, part: str) -> dict[str, object]:
        return {"sampler": SAMPLER_VERSION, "nhood": NHOOD_SIZE, "per_image": NHOODS_PER_IMAGE}

    def provenance(self) -> dict[str, object]:
        return {}

    def per_image(self, parts: Mapping[str, Params]) -> Callable[[np.ndarray], Any] | None:
        return None

    def run(self, batch: Batch, parts: Mapping[str, Params]) -> dict[str, Any]:
        params = parts[PART]
        seed, size, cap = swd_params(params)
        sampler = DescriptorSampler(seed=seed, size=size)
        keep = self._kept(batch, seed, cap)
        if keep:
            images = batch.arrays()
            sampler.update([images[i] for i in keep], [batch.names[i] for i in keep], [batch.indices[i] for i in keep])
        return {PART: sampler}

    @staticmethod
    def _kept(batch: Batch, seed: int, cap: int) -> list[int]:
        """Positions in the batch worth sampling: all, or when the set's size is known, only the chosen."""
        if batch.total is None or batch.total <= cap:
            return list(range(len(batch)))
        threshold = _threshold(seed, batch.total, cap)
        values = priorities(seed, np.asarray(batch.indices))
        return [i for i in range(len(batch)) if values[i] <= threshold]

    def accumulator(
        self, part: str, params: Params, *, keep_rows: bool, moments: bool, deferred: bool
    ) -> DescriptorAccumulator:
        return DescriptorAccumulator(*swd_params(params))
