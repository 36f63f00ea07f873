"""The extractor's fast path (BatchNorm folded, channels-last, a few images per forward on the CPU) against the
plain NCHW network, with the float64 network as the arbiter; the explicit lower precisions."""

from __future__ import annotations

import numpy as np
import torch

from conftest import smooth_images
import pytest

from ganeval.device import CPU_FORWARD_CHUNK, exact_float32
from ganeval.errors import GanevalError
from ganeval.inception import build_inception, fold_batchnorm
from ganeval.extractors.inception import Extractor


def test_fast_path_equals_plain_network(extractor, trunk_state, full_extractor, full_weights_file) -> None:
    """float32 reassociation moves pool3 by ~1e-5 absolute at its scale (max ~4–7): the plain NCHW network is
    itself 4–9e-6 from the float64 one. So the bound is 1e-5 of the largest feature, against the plain path
    and against float64; logits (full weights) alike."""
    images = smooth_images(6, 32, seed=31)
    ours, logits = full_extractor.forward(list(images))
    assert ours.shape == (6, 2048) and ours.dtype == np.float32 and logits.shape == (6, 1008)
    trunk_only, no_logits = extractor.forward(list(images))
    assert no_logits is None and np.array_equal(trunk_only, ours)
    state = torch.load(full_weights_file, weights_only=True)
    plain = build_inception(state)
    plain64 = build_inception({key: value.double() for key, value in state.items()})
    with torch.inference_mode():
        x = extractor.preprocess(torch.from_numpy(images).permute(0, 3, 1, 2))
        expected = plain(x.contiguous())
        exact = plain64(x.double()).pool3.numpy()
    scale = np.abs(expected.pool3.numpy()).max()
    assert 1 < scale < 20
    assert np.abs(ours - expected.pool3.numpy()).max() <= 1e-5 * scale
    assert np.abs(ours - exact).max() <= 1e-5 * scale
    unbiased = expected.logits_unbiased.numpy()
    assert np.abs(logits - unbiased).max() <= 1e-5 * np.abs(unbiased).max()


def test_folded_network_is_the_same_function(trunk_state) -> None:
    """Folding BatchNorm leaves no BatchNorm and computes the same outputs on a random input."""
    folded = fold_batchnorm(build_inception(trunk_state))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 299, 299, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        expected = build_inception(trunk_state)(x).pool3
        assert torch.allclose(folded(x).pool3, expected, rtol=0, atol=1e-5 * float(expected.abs().max()))


def test_chunked_forward_is_bit_identical_to_one_image_at_a_time(extractor) -> None:
    """The CPU forward runs CPU_FORWARD_CHUNK images at a time; an image's features do not depend on which
    others share its batch (which is also what lets processes split a set exactly)."""
    images = list(smooth_images(CPU_FORWARD_CHUNK + 3, 32, seed=5))
    together, _ = extractor.forward(images)
    alone = np.concatenate([extractor.forward([image])[0] for image in images])
    assert np.array_equal(together, alone)


def test_lower_precisions_are_explicit_and_recorded(trunk_info) -> None:
    images = list(smooth_images(4, 32, seed=8))
    fp32 = Extractor(device="cpu")
    bf16 = Extractor(device="cpu", precision="bf16")
    assert fp32.provenance()["precision"] == "fp32" and bf16.provenance()["precision"] == "bf16"
    exact, _ = fp32.forward(images)
    low, _ = bf16.forward(images)
    assert low.dtype == np.float32
    difference = np.abs(low - exact).max()
    assert 1e-4 < difference < 0.05 * np.abs(exact).max()  # bf16 really ran, and stayed close
    with pytest.raises(GanevalError, match="tf32 is a CUDA"):
        Extractor(device="cpu", precision="tf32")
    with pytest.raises(GanevalError, match="unknown precision"):
        Extractor(device="cpu", precision="fp8")


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


def test_precision_keys_the_cache_apart_and_mixed_statistics_are_refused() -> None:
    from ganeval.engine import entry_key
    from ganeval.errors import IncompatibleStatsError
    from ganeval.stats import check_compatible

    fp32, bf16 = Extractor(device="cpu"), Extractor(device="cpu", precision="bf16")
    assert "precision" not in fp32.identity("pool3")  # entries made before precisions existed keep their key
    assert entry_key("c" * 64, "inception:pool3", fp32, {}) == entry_key(
        "c" * 64, "inception:pool3", Extractor(device="cpu", precision="fp32"), {}
    )
    assert entry_key("c" * 64, "inception:pool3", fp32, {}) != entry_key("c" * 64, "inception:pool3", bf16, {})
    assert entry_key("c" * 64, "inception:pool3", fp32, {}) != entry_key("c" * 64, "inception:spatial", fp32, {})
    made = {
        "extractor": "inception-v3-tf-2015-12-05",
        "weights_sha256": "ab" * 32,
        "has_classifier": False,
        "weights_standard": True,
        "mode": "tf",
    }
    assert check_compatible(made, {**made, "precision": "fp32"}, "a", "b") == []
    with pytest.raises(IncompatibleStatsError, match="precision fp32 vs bf16"):
        check_compatible(made, {**made, "precision": "bf16"}, "a", "b")
    assert "--force" in check_compatible(made, {**made, "precision": "bf16"}, "a", "b", force=True)[0]


def test_building_the_extractor_leaves_the_global_rng_alone(trunk_info) -> None:
    """A training loop builds its Evaluator mid-run; building the network (folding the BatchNorms) must not
    draw random numbers (it did: each folded nn.Conv2d was initialised on the CPU before its weights were
    replaced)."""
    torch.manual_seed(3)
    before = torch.random.get_rng_state()
    assert Extractor(device="cpu").model is not None
    assert torch.equal(torch.random.get_rng_state(), before)
