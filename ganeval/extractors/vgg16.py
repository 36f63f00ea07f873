"""VGG16 fc2-after-ReLU (4096-d) as an extractor: the published precision/recall feature space
(Kynkäänniemi et al. 2019). The network, its preprocessing and its weights are in ``ganeval.vgg``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from ..vgg import FEATURE_DIM, PREPROCESS_ID, VGGExtractor
from .base import Batch, Params, VectorExtractor


class VGG16Extractor(VectorExtractor):
    """Part ``fc2`` (B, 4096) float32; the weights are located on first use."""

    name = "vgg16"
    default_vector: str | None = "fc2"

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        network: VGGExtractor | None = None,
    ) -> None:
        self._weights, self._device = weights, device
        self._network = network

    @property
    def network(self) -> VGGExtractor:
        if self._network is None:
            self._network = VGGExtractor(weights=self._weights, device=self._device)
        return self._network

    def part_dims(self) -> Mapping[str, int | None]:
        return {"fc2": FEATURE_DIM}

    def identity(self, part: str) -> dict[str, object]:
        return {"weights_sha256": self.network.weights.sha256, "preprocess": PREPROCESS_ID, "layer": "fc2_relu"}

    def provenance(self) -> dict[str, object]:
        return self.network.provenance()

    @property
    def warning(self) -> str | None:
        """The non-standard-weights warning, or None."""
        return self.network.weights.warning

    def run(self, batch: Batch, parts: Mapping[str, Params]) -> dict[str, Any]:
        images = batch.tensor if batch.tensor is not None else batch.arrays()
        return {"fc2": self.network.forward(images)}
