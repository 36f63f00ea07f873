"""Preprocessing modes: uint8 images → float32 (N, 3, 299, 299) network input, as each reference tool makes it.

Every mode feeds the same network (the FID Inception-v3); only the resize and the normalisation differ:

``tf`` (the default and the standard; torch-fidelity, StyleGAN's metrics, TTUR's TensorFlow code): float in
[0, 255], TensorFlow 1 ``resize_bilinear`` to 299×299 (align_corners=False, half_pixel_centers=False), then
(x − 128) / 128.

``pytorch-fid``: uint8 / 255 → [0, 1] (torchvision's ``ToTensor``), ``F.interpolate(size=(299, 299),
mode="bilinear", align_corners=False)`` (half-pixel centres), then 2x − 1.

``clean`` (clean-fid's default, Parmar et al. CVPR 2022): each channel resized on its own as a float image
with PIL's antialiased bicubic filter to 299×299, clipped to [0, 255], no resize inside the network, then
(x − 128) / 128.

A mode has two stages: ``prepare_image`` (CPU work per image, run in the decode threads; ``None`` when the
mode has none) and ``prepare_batch`` (batched tensor work on the network's device).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import GanevalError
from .inception import INPUT_SIZE

DEFAULT_MODE = "tf"


@lru_cache(maxsize=64)
def _tf_axis(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower index, upper index and lerp weight per output position, computed in float32 as TF1 does:
    scale = in/out, src = dst·scale, lower = floor(src), upper = min(ceil(src), in−1), lerp = src − lower."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.arange(out_size, dtype=np.float32) * scale
    lower = np.floor(src)
    upper = np.minimum(np.ceil(src), in_size - 1)
    lerp = (src - lower).astype(np.float32)
    return lower.astype(np.int64), upper.astype(np.int64), lerp


def tf_resize_bilinear(x: torch.Tensor, size: tuple[int, int] = (INPUT_SIZE, INPUT_SIZE)) -> torch.Tensor:
    """TensorFlow 1 ``resize_bilinear`` (align_corners=False, no half-pixel centres) of a float batch
    (N, C, H, W) to (N, C, *size). Blends along the width first, then the height, in the input's dtype,
    with TF's operation order: top + (bottom − top)·lerp."""
    out_h, out_w = size
    in_h, in_w = x.shape[-2:]
    if (in_h, in_w) == (out_h, out_w):
        return x
    lo, hi, lerp = (torch.from_numpy(a).to(x.device) for a in _tf_axis(in_w, out_w))
    left, right = x.index_select(-1, lo), x.index_select(-1, hi)
    x = left + (right - left) * lerp.to(x.dtype)
    lo, hi, lerp = (torch.from_numpy(a).to(x.device) for a in _tf_axis(in_h, out_h))
    top, bottom = x.index_select(-2, lo), x.index_select(-2, hi)
    return top + (bottom - top) * lerp.to(x.dtype).unsqueeze(-1)


def preprocess_tf(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) → float32 (N, 3, 299, 299): TF1 bilinear resize on [0, 255], then (x − 128) / 128."""
    x = tf_resize_bilinear(images.to(torch.float32))
    return (x - 128.0) / 128.0


def preprocess_pytorch_fid(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) → float32 (N, 3, 299, 299) as pytorch-fid: /255, torch bilinear resize
    (align_corners=False, also applied at 299 px, where it is the identity), then 2x − 1."""
    x = images.to(torch.float32).div(255)
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


def pil_bicubic_float(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """clean-fid's resize: uint8 (H, W, 3) → float32 (size, size, 3) in [0, 255]. Each channel becomes a
    32-bit float PIL image, is resized with PIL's bicubic filter (antialiased when shrinking), and is clipped
    to [0, 255]; nothing is quantised."""
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[:, :, c], dtype=np.float32)).resize(
                (size, size), resample=Image.Resampling.BICUBIC
            )
        ).clip(0, 255)
        for c in range(image.shape[2])
    ]
    return np.stack(channels, axis=2).astype(np.float32, copy=False)


def normalise_clean(resized: torch.Tensor) -> torch.Tensor:
    """float [0, 255] (N, 3, 299, 299), already resized → (x − 128) / 128, as clean-fid's network wrapper."""
    return (resized.to(torch.float32) - 128) / 128


@dataclass(frozen=True)
class Mode:
    """One way of preparing the network input, and the tools whose numbers it reproduces."""

    name: str
    prepare_batch: Callable[[torch.Tensor], torch.Tensor]
    prepare_image: Callable[[np.ndarray], np.ndarray] | None
    same_as: str
    differs: str


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode(
            "tf",
            preprocess_tf,
            None,
            same_as="torch-fidelity, StyleGAN2-ADA/StyleGAN3 metrics, TTUR (TensorFlow), clean-fid legacy_tensorflow",
            differs="the reference: TF1 bilinear resize of [0, 255] without half-pixel centres (not antialiased), "
            "then (x-128)/128",
        ),
        Mode(
            "pytorch-fid",
            preprocess_pytorch_fid,
            None,
            same_as="pytorch-fid, clean-fid legacy_pytorch",
            differs="torch bilinear resize with half-pixel centres (samples shifted by half a source pixel vs tf), "
            "on [0, 1], then 2x-1",
        ),
        Mode(
            "clean",
            normalise_clean,
            pil_bicubic_float,
            same_as="clean-fid mode='clean'",
            differs="PIL bicubic resize per channel in float (antialiased, no aliasing when shrinking), "
            "clipped to [0, 255], then (x-128)/128",
        ),
    )
}


def get_mode(name: str) -> Mode:
    """The preprocessing mode called ``name``."""
    try:
        return MODES[name]
    except KeyError:
        raise GanevalError(f"unknown preprocessing mode {name!r}; available: {', '.join(MODES)}") from None
