"""The extractor's fast path (channels-last, exact float32) against the plain NCHW network."""

from __future__ import annotations

import numpy as np
import torch

from conftest import smooth_images
from ganeval.device import exact_float32
from ganeval.inception import build_inception


def test_fast_path_equals_plain_network(extractor, trunk_state) -> None:
    images = smooth_images(4, 32, seed=31)
    ours, logits = extractor.forward(list(images))
    assert ours.shape == (4, 2048) and ours.dtype == np.float32 and logits is None
    plain = build_inception(trunk_state)
    with torch.inference_mode():
        x = extractor.preprocess(torch.from_numpy(images).permute(0, 3, 1, 2))
        expected = plain(x.contiguous()).pool3.numpy()
    difference = np.abs(ours - expected).max()
    assert difference <= 5e-5
    assert difference / np.abs(expected).max() <= 1e-5


def test_exact_float32_restores_the_callers_settings() -> None:
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        before = conv.fp32_precision
        with exact_float32():
            assert conv.fp32_precision == "ieee"
        assert conv.fp32_precision == before
    else:
        before = torch.backends.cudnn.allow_tf32
        with exact_float32():
            assert torch.backends.cudnn.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 == before
