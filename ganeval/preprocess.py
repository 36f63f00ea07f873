"""Preprocessing modes: uint8 images → float (N, 3, 299, 299) ready for the network.

``tf`` (the default and the standard): float in [0, 255], TensorFlow 1 ``resize_bilinear`` to 299×299
(align_corners=False, half_pixel_centers=False), then (x − 128) / 128.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch

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


MODES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"tf": preprocess_tf}


def get_preprocessor(mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The preprocessing function of a mode name."""
    try:
        return MODES[mode]
    except KeyError:
        raise GanevalError(f"unknown preprocessing mode {mode!r}; available: {', '.join(sorted(MODES))}") from None
