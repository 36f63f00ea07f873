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

from ..metrics.swd import NHOOD_SIZE, NHOODS_PER_IMAGE, DescriptorSampler
from .base import Batch, Params

PART = "swd"
SAMPLER_VERSION = "swd-descriptors-v1"


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
        keep = np.sort(np.argsort(priorities(self.seed, indices), kind="stable")[:self.max_images])
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
        seed, size, cap = int(params["seed"]), params.get("size"), int(params["max_images"])  # type: ignore[call-overload]
        sampler = DescriptorSampler(seed=seed, size=size)  # type: ignore[arg-type]
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

    def accumulator(self, part: str, params: Params, *, keep_rows: bool, moments: bool,
                    deferred: bool) -> DescriptorAccumulator:
        return DescriptorAccumulator(int(params["seed"]), params.get("size"), int(params["max_images"]))  # type: ignore[call-overload, arg-type]
