"""The `tf` resize against an obvious per-pixel numpy version of TensorFlow 1's resize_bilinear."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganeval.preprocess import get_preprocessor, preprocess_tf, tf_resize_bilinear
from ganeval.errors import GanevalError


def tf1_resize_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TF1 resize_bilinear, align_corners=False, half_pixel_centers=False, one output pixel at a time.
    image: (H, W, C) float32."""
    in_h, in_w, _ = image.shape
    scale_y = np.float32(in_h) / np.float32(out_h)
    scale_x = np.float32(in_w) / np.float32(out_w)
    out = np.zeros((out_h, out_w, image.shape[2]), dtype=np.float32)
    for y in range(out_h):
        sy = np.float32(y) * scale_y
        y0 = int(np.floor(sy))
        y1 = min(y0 + 1, in_h - 1)
        ly = np.float32(sy - y0)
        for x in range(out_w):
            sx = np.float32(x) * scale_x
            x0 = int(np.floor(sx))
            x1 = min(x0 + 1, in_w - 1)
            lx = np.float32(sx - x0)
            top = image[y0, x0] + (image[y0, x1] - image[y0, x0]) * lx
            bottom = image[y1, x0] + (image[y1, x1] - image[y1, x0]) * lx
            out[y, x] = top + (bottom - top) * ly
    return out


@pytest.mark.parametrize("in_size,out_size", [((32, 32), (299, 299)), ((28, 20), (41, 57)),
                                               ((64, 48), (17, 23)), ((5, 7), (5, 7)), ((1, 3), (4, 2))])
def test_tf_resize_matches_reference(in_size, out_size) -> None:
    rng = np.random.default_rng(sum(in_size) * 100 + sum(out_size))
    image = rng.integers(0, 256, size=(*in_size, 3)).astype(np.float32)
    expected = tf1_resize_reference(image, *out_size)
    ours = tf_resize_bilinear(torch.from_numpy(image).permute(2, 0, 1)[None], out_size)[0].permute(1, 2, 0).numpy()
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= 1e-4


def test_tf_resize_is_not_torch_bilinear() -> None:
    image = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 3, 32, 32)).astype(np.float32))
    ours = tf_resize_bilinear(image)
    torch_bilinear = F.interpolate(image, size=(299, 299), mode="bilinear", align_corners=False)
    assert (ours - torch_bilinear).abs().max() > 1.0


def test_normalisation_is_x_minus_128_over_128() -> None:
    image = torch.arange(299 * 299 * 3, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(1, 3, 299, 299)
    out = preprocess_tf(image)
    assert out.dtype == torch.float32 and out.shape == (1, 3, 299, 299)
    assert torch.equal(out, (image.float() - 128) / 128)
    assert out.min() == -1.0 and out.max() == pytest.approx(127 / 128)


def test_unknown_mode_is_a_clear_error() -> None:
    assert get_preprocessor("tf") is preprocess_tf
    with pytest.raises(GanevalError, match="unknown preprocessing mode 'bogus'"):
        get_preprocessor("bogus")
