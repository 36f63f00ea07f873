"""The FID Inception-v3 as an extractor: pool3, the classifier's unbiased logits, sFID's spatial
feature and the 64/192/768-d pools of pytorch-fid's ``--dims``, any of them from one forward.

Weights, preprocessing modes and arithmetic precision live here; the network is ``ganeval.inception``.
It runs with BatchNorm folded into the convolutions, channels-last, a few images per forward on the CPU
(``device.forward_chunk``): pool3 equals the plain NCHW network's to float32 reassociation
(tests/test_inception.py). Numerics (the arithmetic, ``precision=`` / ``--precision``) other than "fp32"
(``device.NUMERICS``) are faster and not the
standard: it is in the provenance and keys the cache apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..device import check_numerics, forward_chunk, numerics_context, prepare_input, prepare_model, resolve_device
from ..device import describe as describe_device
from ..device import to_device
from ..device import usable_cpus
from ..inception import FIDInceptionV3, build_inception, fold_batchnorm
from ..preprocess import DEFAULT_MODE, get_mode
from ..errors import GanevalError
from ..weights import HOW_TO_GET_FULL, WeightsInfo, load_state_dict, locate_weights
from .base import Batch, Params, VectorExtractor

DEFAULT_BATCH_SIZE = 50
PART_DIMS: dict[str, int | None] = {
    "pool3": 2048,
    "logits": 1008,
    "spatial": 2023,
    "pool_64": 64,
    "pool_192": 192,
    "pool_768": 768,
}
"""The parts: pool3 (FID, KID, PR…); logits = pool3·fcᵀ without the bias (the Inception Score; needs the
classifier); spatial = the first 7 channels of ``Mixed_6d.branch1x1`` after ReLU, 17×17×7 in NHWC order
(sFID, TF's ``mixed_6/conv``); pool_64/192/768 = global average pools after MaxPool_1, MaxPool_2 and
Mixed_6e (pytorch-fid's ``--dims``)."""
_TAPS = {"logits": "logits_unbiased"}
DIMS_PART = {2048: "pool3", 768: "pool_768", 192: "pool_192", 64: "pool_64"}
"""FID's ``dims`` → the part it is computed on."""


class InceptionExtractor(VectorExtractor):
    """The shared Inception-v3: weights, preprocessing mode, device and arithmetic precision in one object.

    ``forward(uint8 images)`` gives (pool3, logits) of a batch in memory; ``extract(source)`` makes one pass
    over a source (through the engine). The weights are located on first use (an SWD-only pass needs none).
    """

    name = "inception"
    default_vector: str | None = "pool3"

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        mode: str = DEFAULT_MODE,
        device: str | torch.device | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int | None = None,
        precision: str = "fp32",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.mode = mode
        self.mode_spec = get_mode(mode)
        self.device = resolve_device(device)
        self.numerics = check_numerics(precision, self.device)
        self.batch_size = batch_size
        self.workers = workers if workers is not None else min(4, usable_cpus())
        self._weights_arg = weights
        self._weights: WeightsInfo | None = None
        self._model: FIDInceptionV3 | None = None

    @property
    def weights(self) -> WeightsInfo:
        """The located and verified weights (found on first use)."""
        if self._weights is None:
            self._weights = locate_weights(self._weights_arg)
        return self._weights

    @property
    def model(self) -> FIDInceptionV3:
        """The network, built on first use (a run whose features are all cached never loads it)."""
        if self._model is None:
            model = prepare_model(fold_batchnorm(build_inception(load_state_dict(self.weights))), self.device)
            assert isinstance(model, FIDInceptionV3)
            self._model = model
        return self._model

    def part_dims(self) -> Mapping[str, int | None]:
        return PART_DIMS

    def unavailable(self, part: str) -> str | None:
        """Why ``part`` cannot be produced with these weights, or None."""
        if part == "logits" and not self.weights.has_classifier:
            return (
                f"the Inception Score needs the Inception classifier, which the weights in use lack: {HOW_TO_GET_FULL}"
            )
        return None

    def identity(self, part: str) -> dict[str, object]:
        info = self.weights.to_dict()
        return {
            "extractor": info.get("extractor"),
            "weights_sha256": info.get("weights_sha256"),
            "has_classifier": info.get("has_classifier"),
            "mode": self.mode,
            **({"precision": self.numerics} if self.numerics != "fp32" else {}),
        }

    def provenance(self) -> dict[str, object]:
        """What made the features: extractor, weights, mode, device, versions."""
        return {
            **self.weights.to_dict(),
            "mode": self.mode,
            "precision": self.numerics,
            "device": describe_device(self.device),
            "batch_size": self.batch_size,
            "ganeval_version": __version__,
            "torch_version": torch.__version__,
        }

    def per_image(self, parts: Mapping[str, Params]) -> Callable[[np.ndarray], Any] | None:
        return self.mode_spec.prepare_image

    def run(self, batch: Batch, parts: Mapping[str, Params]) -> dict[str, Any]:
        if self.name in batch.prepared:
            x = self._prepared_input(batch.prepared[self.name])
        elif batch.tensor is not None:
            x = self.preprocess(batch.tensor)
        else:
            x = self._network_input(batch.arrays())
        return self._run(x, set(parts))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """The network input, float32 (B, 3, 299, 299) on the device, for uint8 images (B, 3, H, W)."""
        if self.mode_spec.prepare_image is None:
            return self.mode_spec.prepare_batch(to_device(images, self.device))
        return self._network_input(list(images.permute(0, 2, 3, 1).cpu().numpy()))

    def _prepared_input(self, prepared: list[np.ndarray]) -> torch.Tensor:
        """The network input from images through the mode's per-image stage, (H, W, 3) each, equal sizes."""
        batch = torch.from_numpy(np.stack(prepared)).permute(0, 3, 1, 2)
        return self.mode_spec.prepare_batch(to_device(batch, self.device))

    def _network_input(self, images: list[np.ndarray]) -> torch.Tensor:
        """The network input from uint8 (H, W, 3) images of possibly different sizes."""
        prepare = self.mode_spec.prepare_image
        if prepare is not None:
            return self._prepared_input([prepare(img) for img in images])
        if len({img.shape for img in images}) == 1:
            return self.preprocess(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2))
        return torch.cat([self.preprocess(torch.from_numpy(img).permute(2, 0, 1)[None]) for img in images])

    @torch.inference_mode()
    def forward(self, images: torch.Tensor | list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """pool3 (B, 2048) and unbiased logits (B, 1008) or None, float32, for uint8 images: a tensor
        (B, 3, H, W) or a list of (H, W, 3) arrays of possibly different sizes."""
        x = self.preprocess(images) if isinstance(images, torch.Tensor) else self._network_input(images)
        wanted = {"pool3", "logits"} if self.weights.has_classifier else {"pool3"}
        out = self._run(x, wanted)
        return out["pool3"], out.get("logits")

    @torch.inference_mode()
    def _run(self, x: torch.Tensor, wanted: set[str]) -> dict[str, np.ndarray]:
        """The ``wanted`` parts of a prepared input (B, 3, 299, 299), float32 numpy on the CPU."""
        if "logits" in wanted and not self.weights.has_classifier:
            raise GanevalError(f"the Inception Score needs the Inception classifier: {HOW_TO_GET_FULL}")
        chunk = forward_chunk(self.device) or len(x)
        taps = {_TAPS.get(part, part) for part in wanted}
        outputs: dict[str, list[torch.Tensor]] = {part: [] for part in wanted}
        with numerics_context(self.numerics, self.device):
            for start in range(0, len(x), chunk):
                got = self.model.taps(prepare_input(x[start : start + chunk]), taps)
                for part in wanted:
                    outputs[part].append(got[_TAPS.get(part, part)].float())
        return {part: torch.cat(values).cpu().numpy() for part, values in outputs.items()}

    def extract(self, source: object, skip_bad: bool = False, progress: bool | None = None) -> Any:
        """pool3 (and the logits with a classifier) of a source in one pass, uncached (``Features``)."""
        from ..engine import extract_parts
        from ..parts import LOGITS, POOL3
        from ..sources import open_source

        wanted = [POOL3, LOGITS] if self.weights.has_classifier else [POOL3]
        return extract_parts(
            open_source(source),
            {part: {} for part in wanted},
            {self.name: self},
            batch_size=self.batch_size,
            workers=self.workers,
            skip_bad=skip_bad,
            progress=progress,
        )


Extractor = InceptionExtractor
"""The name this class had before extractors were pluggable."""
