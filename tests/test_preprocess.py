"""Each mode's resize against an obvious per-pixel numpy version of its definition: TensorFlow 1's
resize_bilinear (tf), torch's half-pixel bilinear (pytorch-fid) and PIL's antialiased bicubic (clean)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganeval.preprocess import (
    MODES,
    get_mode,
    pil_bicubic_float,
    preprocess_pytorch_fid,
    preprocess_tf,
    tf_resize_bilinear,
)
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


@pytest.mark.parametrize(
    "in_size,out_size",
    [((32, 32), (299, 299)), ((28, 20), (41, 57)), ((64, 48), (17, 23)), ((5, 7), (5, 7)), ((1, 3), (4, 2))],
)
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
    assert get_mode("tf").prepare_batch is preprocess_tf
    assert list(MODES) == ["tf", "pytorch-fid", "clean"]
    with pytest.raises(GanevalError, match="unknown preprocessing mode 'bogus'"):
        get_mode("bogus")


def half_pixel_bilinear_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres (torch/OpenCV align_corners=False): the output pixel centre
    (y + 0.5)·scale − 0.5 in source coordinates, clamped below at 0; one pixel at a time, float64."""
    in_h, in_w, _ = image.shape
    out = np.zeros((out_h, out_w, image.shape[2]))
    for y in range(out_h):
        sy = max((y + 0.5) * in_h / out_h - 0.5, 0.0)
        y0 = min(int(np.floor(sy)), in_h - 1)
        y1, ly = min(y0 + 1, in_h - 1), sy - y0
        for x in range(out_w):
            sx = max((x + 0.5) * in_w / out_w - 0.5, 0.0)
            x0 = min(int(np.floor(sx)), in_w - 1)
            x1, lx = min(x0 + 1, in_w - 1), sx - x0
            top = image[y0, x0] * (1 - lx) + image[y0, x1] * lx
            bottom = image[y1, x0] * (1 - lx) + image[y1, x1] * lx
            out[y, x] = top * (1 - ly) + bottom * ly
    return out


@pytest.mark.parametrize("size", [(32, 32), (28, 20), (299, 299), (350, 301)])
def test_pytorch_fid_mode_is_half_pixel_bilinear_on_0_1_then_2x_minus_1(size) -> None:
    image = np.random.default_rng(sum(size)).integers(0, 256, size=(*size, 3)).astype(np.uint8)
    expected = 2 * half_pixel_bilinear_reference(image / 255.0, 299, 299) - 1
    ours = preprocess_pytorch_fid(torch.from_numpy(image).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert ours.dtype == np.float32 and ours.shape == (299, 299, 3)
    assert np.abs(ours - expected).max() <= 1e-4  # float32 source coordinates in torch
    if size == (299, 299):
        assert np.abs(ours - (image / 127.5 - 1)).max() <= 1e-6  # 299 px in, nothing interpolated


def pil_bicubic_reference(channel: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """PIL's BICUBIC resize of one float channel (its ``ImagingResample``): a separable convolution with
    the cubic kernel a = −0.5, widened by the scale when shrinking (antialiasing), weights normalised to
    sum 1, horizontal pass first; float64 here."""

    def kernel(x: float) -> float:
        a, x = -0.5, abs(x)
        if x < 1:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        if x < 2:
            return (((x - 5) * x + 8) * x - 4) * a
        return 0.0

    def weights(in_size: int, out_size: int) -> np.ndarray:
        scale = in_size / out_size
        filter_scale = max(scale, 1.0)
        support = 2.0 * filter_scale
        matrix = np.zeros((out_size, in_size))
        for i in range(out_size):
            centre = (i + 0.5) * scale
            lo = max(int(centre - support + 0.5), 0)
            hi = min(int(centre + support + 0.5), in_size)
            row = np.array([kernel((j - centre + 0.5) / filter_scale) for j in range(lo, hi)])
            matrix[i, lo:hi] = row / row.sum()
        return matrix

    horizontal = channel.astype(np.float64) @ weights(channel.shape[1], out_w).T
    return weights(channel.shape[0], out_h) @ horizontal.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("size", [(32, 32), (28, 20), (400, 330), (299, 299)])
def test_clean_mode_is_pil_bicubic_per_channel_in_float_clipped(size) -> None:
    rng = np.random.default_rng(sum(size) + 1)
    image = rng.integers(0, 256, size=(*size, 3)).astype(np.uint8)
    ours = pil_bicubic_float(image)
    assert ours.dtype == np.float32 and ours.shape == (299, 299, 3)
    for c in range(3):
        expected = np.clip(pil_bicubic_reference(image[:, :, c].astype(np.float64), 299, 299), 0, 255)
        assert np.abs(ours[:, :, c] - expected).max() <= 1e-4
    assert ours.min() >= 0 and ours.max() <= 255
    # Bicubic overshoots on a random image: unclipped values would leave [0, 255], and they are not
    # rounded to integers (no uint8 quantisation between the resize and the network).
    if size != (299, 299):
        assert (ours == 0).any() and (ours == 255).any()
        assert not np.array_equal(ours, np.round(ours))
    else:
        assert np.array_equal(ours, image.astype(np.float32))


def test_clean_mode_normalises_x_minus_128_over_128() -> None:
    resized = torch.from_numpy(pil_bicubic_float(np.full((8, 8, 3), 200, np.uint8))).permute(2, 0, 1)[None]
    out = get_mode("clean").prepare_batch(resized)
    assert torch.allclose(out, torch.full_like(out, (200 - 128) / 128))
