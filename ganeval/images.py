"""Pure pixel helpers on uint8 numpy images: fitting to a square, channel conversion, tiling and PNG encoding."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image


def fit_square(image: Image.Image, size: int) -> Image.Image:
    """Resize ``image`` so that its shorter side is ``size`` px (PIL bicubic; the longer side is rounded to
    the nearest pixel) and crop the centre size×size square (offsets rounded down)."""
    width, height = image.size
    if width <= height:
        new_size = (size, max(size, round(height * size / width)))
    else:
        new_size = (max(size, round(width * size / height)), size)
    if new_size != image.size:
        image = image.resize(new_size, Image.Resampling.BICUBIC)
    left, top = (new_size[0] - size) // 2, (new_size[1] - size) // 2
    if new_size != (size, size):
        image = image.crop((left, top, left + size, top + size))
    return image


def hwc(array: np.ndarray) -> np.ndarray:
    """A uint8 (H, W) image as (H, W, 1); an (H, W, C) one unchanged."""
    return array[..., None] if array.ndim == 2 else array


def conform(image: np.ndarray, size: int, channels: int) -> np.ndarray:
    """A uint8 image (H, W) (grayscale) or (H, W, 3) (RGB) as a new uint8 (size, size, channels) array:
    gray → RGB repeats the channel, RGB → gray is PIL's ``convert("L")``, and H, W other than ``size`` are
    fitted with :func:`fit_square`."""
    if image.shape[:2] == (size, size) and image.ndim == 2:
        gray = image[..., None]
        return np.repeat(gray, 3, axis=2) if channels == 3 else gray.copy()
    if image.shape[:2] == (size, size) and channels == 3:
        return image.copy()
    pil = Image.fromarray(image)
    if channels == 1:
        pil = pil.convert("L")
    out = hwc(np.asarray(fit_square(pil, size), dtype=np.uint8))
    return np.repeat(out, 3, axis=2) if out.shape[2] != channels else out.copy()


def png_bytes(array: np.ndarray) -> bytes:
    """A uint8 (H, W, C) image, C = 1 or 3, encoded as PNG (grayscale when C = 1)."""
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()


def tile(pixels: np.ndarray, columns: int | None = None) -> np.ndarray:
    """uint8 images (B, H, W, C) → one uint8 grid image (H', W', C), 2-px black gaps, ⌈√B⌉ columns by default."""
    count, height, width, channels = pixels.shape
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    grid = np.zeros((rows * (height + 2) + 2, columns * (width + 2) + 2, channels), dtype=np.uint8)
    for index, image in enumerate(pixels):
        r, c = divmod(index, columns)
        top, left = 2 + r * (height + 2), 2 + c * (width + 2)
        grid[top : top + height, left : left + width] = image
    return grid
