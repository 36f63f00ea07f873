"""Image batches from a training loop → validated uint8 (B, 3, H, W) tensors, quantised exactly as saving
them as PNG with ``torchvision.utils.save_image(x, normalize=True, value_range=input_range)`` would:
clamp to the range, map it to [0, 1], ×255, +0.5, clamp to [0, 255], truncate to uint8. So an image
scored from memory and the same image saved to disk and scored from the folder give the same number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import BadInputError

INPUT_RANGES = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0), "0,255": (0.0, 255.0)}
"""Named float ranges for ``input_range``; a (low, high) pair works too. uint8 input needs none."""

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def parse_range(input_range: str | tuple[float, float]) -> tuple[float, float]:
    """``"-1,1"`` (DCGAN's tanh), ``"0,1"``, ``"0,255"`` or a (low, high) pair → (low, high)."""
    if isinstance(input_range, str):
        key = input_range.replace(" ", "").strip("[]()")
        if key not in INPUT_RANGES:
            raise BadInputError(
                f"input_range {input_range!r}: use one of {', '.join(INPUT_RANGES)} or a (low, high) pair"
            )
        return INPUT_RANGES[key]
    try:
        low, high = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise BadInputError(f"input_range {input_range!r}: expected a (low, high) pair of numbers") from None
    if not high > low:
        raise BadInputError(f"input_range {input_range!r}: high must be greater than low")
    return low, high


@dataclass
class BatchChecker:
    """Checks every batch against what the first one established (channels, size) and converts it.

    ``label`` names the producer in messages ("generator", "update()")."""

    input_range: tuple[float, float]
    label: str = "update()"
    shape: tuple[int, int, int] | None = None
    batches: int = 0
    warning: str | None = None  # from the first float batch: its values suggest another input_range

    def __call__(self, batch: object, expected_count: int | None = None) -> torch.Tensor:
        """uint8 (B, 3, H, W) on the batch's device, from a float or uint8 tensor/array, NCHW (or NHWC
        for arrays). Raises BadInputError naming the batch and what was expected."""
        self.batches += 1
        where = f"{self.label} batch {self.batches}"
        if isinstance(batch, np.ndarray):
            if batch.ndim == 4 and batch.shape[1] not in (1, 3) and batch.shape[-1] in (1, 3):
                batch = batch.transpose(0, 3, 1, 2)
            batch = torch.from_numpy(np.ascontiguousarray(batch))
        if not isinstance(batch, torch.Tensor):
            raise BadInputError(f"{where}: expected a tensor of images (B, C, H, W), got {type(batch).__name__}")
        if batch.ndim != 4 or batch.shape[1] not in (1, 3):
            raise BadInputError(
                f"{where}: expected images of shape (B, C, H, W) with C = 1 or 3, got {tuple(batch.shape)}"
            )
        if expected_count is not None and batch.shape[0] != expected_count:
            raise BadInputError(f"{where}: asked for {expected_count} images, got {batch.shape[0]}")
        if batch.dtype != torch.uint8 and batch.dtype not in _FLOATS:
            raise BadInputError(
                f"{where}: expected float images in {list(self.input_range)} or uint8, got dtype {batch.dtype}"
            )
        shape = (int(batch.shape[1]), int(batch.shape[2]), int(batch.shape[3]))
        if self.shape is None:
            self.shape = shape
        elif shape != self.shape:
            raise BadInputError(f"{where}: images of shape (C, H, W) = {shape}, but the first batch had {self.shape}")
        if batch.dtype != torch.uint8:
            finite = torch.isfinite(batch)
            if not bool(finite.all()):
                bad = int((~finite).flatten(1).any(1).nonzero()[0])
                raise BadInputError(f"{where}: image {bad} contains NaN or infinite values")
            if self.batches == 1:
                self.warning = range_warning(batch, self.input_range)
            batch = quantise(batch, self.input_range)
        return batch.repeat(1, 3, 1, 1) if batch.shape[1] == 1 else batch


def quantise(batch: torch.Tensor, input_range: tuple[float, float]) -> torch.Tensor:
    """Float images in ``input_range`` → uint8, as ``torchvision.utils.save_image(normalize=True,
    value_range=input_range)`` writes them: the same operations in the same order, in the batch's dtype."""
    low, high = input_range
    x = batch.detach().clamp(low, high).sub(low).div(max(high - low, 1e-5))
    return x.mul(255).add(0.5).clamp(0, 255).to(torch.uint8)


def range_warning(batch: torch.Tensor, input_range: tuple[float, float]) -> str | None:
    """A hint when a float batch's values suggest another convention than ``input_range``: no negative
    value under (−1, 1) (probably [0, 1]), or values well below 0 under (0, 1) (probably [−1, 1])."""
    low = float(batch.min())
    if input_range == (-1.0, 1.0) and low >= 0.0:
        return (
            "the first batch has no negative values although input_range is (-1, 1): if the generator "
            "outputs [0, 1], pass input_range='0,1' (else the images are scored as washed out)"
        )
    if input_range == (0.0, 1.0) and low < -0.25:
        return (
            "the first batch has values down to %.2f although input_range is (0, 1): if the generator ends in "
            "tanh, pass input_range='-1,1' (values below 0 are clamped to black)" % low
        )
    return None
