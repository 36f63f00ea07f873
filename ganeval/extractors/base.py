"""The extractor protocol: a named, versioned producer of parts from decoded images.

An extractor (Inception-v3, VGG16, the SWD pixel sampler, …) declares the parts it can produce in one
forward, its cache identity (everything that changes its arrays: network version, weights sha256,
preprocessing mode, arithmetic) and its provenance; the engine hands it batches of decoded uint8 images
and folds what it returns into one accumulator per part. It never knows which metric asked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from ..parts import Accumulator, VectorAccumulator

Params = Mapping[str, object]
"""A part's parameters (e.g. SWD's seed and image cap): they change its arrays, so they key its cache entry."""


@dataclass
class Batch:
    """Decoded images of one batch: their positions in the source (``indices``), names, uint8 (H, W, 3)
    arrays (``images``; sizes may differ) or one uint8 (B, 3, H, W) tensor (``tensor``, possibly on a GPU),
    and what each extractor's per-image stage made of them (``prepared[extractor]``, in the decode threads)."""

    indices: list[int]
    names: list[str]
    images: list[np.ndarray] | None = None
    tensor: torch.Tensor | None = None
    prepared: dict[str, list[Any]] = field(default_factory=dict)
    total: int | None = None
    """The number of images in the whole set when known (a source), None for a stream."""

    def __len__(self) -> int:
        return len(self.indices)

    def arrays(self) -> list[np.ndarray]:
        """The images as uint8 (H, W, 3) arrays."""
        if self.images is None:
            assert self.tensor is not None
            self.images = list(self.tensor.permute(0, 2, 3, 1).cpu().numpy())
        return self.images


class Extractor(Protocol):
    """What the engine needs of an extractor (see the module docstring)."""

    name: str
    """The prefix of its parts' names: ``inception`` for ``inception:pool3``."""
    default_vector: str | None
    """The vector part that stands for its feature space (``--features NAME``), or None."""

    def part_dims(self) -> Mapping[str, int | None]:
        """Each part it can produce (short name) → its vector dimension, None for a non-vector part."""
        ...

    def identity(self, part: str) -> dict[str, object]:
        """Everything that changes ``part``'s arrays (for its cache key and compatibility checks)."""
        ...

    def provenance(self) -> dict[str, object]:
        """What made the features: network, weights, preprocessing, device, versions."""
        ...

    def per_image(self, parts: Mapping[str, Params]) -> Callable[[np.ndarray], Any] | None:
        """A stage run on each decoded uint8 (H, W, 3) image in the decode threads, or None."""
        ...

    def run(self, batch: Batch, parts: Mapping[str, Params]) -> dict[str, Any]:
        """The batch's value of each part asked for (short name → rows (B, D) or the part's own type)."""
        ...

    def accumulator(self, part: str, params: Params, *, keep_rows: bool, moments: bool, deferred: bool) -> Accumulator:
        """An empty accumulator for ``part``."""
        ...


class VectorExtractor:
    """Shared behaviour of extractors whose parts are all vectors: no per-image stage unless overridden,
    a VectorAccumulator per part."""

    name = ""
    default_vector: str | None = None

    def part_dims(self) -> Mapping[str, int | None]:
        raise NotImplementedError

    def per_image(self, parts: Mapping[str, Params]) -> Callable[[np.ndarray], Any] | None:
        return None

    def accumulator(self, part: str, params: Params, *, keep_rows: bool, moments: bool, deferred: bool) -> Accumulator:
        dim = self.part_dims()[part]
        assert dim is not None
        return VectorAccumulator(dim, keep_rows=keep_rows, moments=moments, deferred=deferred)
