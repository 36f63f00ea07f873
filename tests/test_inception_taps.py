"""FIDInceptionV3.taps: sFID's spatial feature and the 64/192/768-d pools from one forward, against the peers
that define them (torch-fidelity's feature_layer_fid and a hook on its Mixed_6d.branch1x1; pytorch-fid's
InceptionV3 blocks), on the real trunk with the seeded classifier (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import require_peer, smooth_images
from ganeval.device import prepare_input, prepare_model
from ganeval.inception import PART_DIMS, SPATIAL_CHANNELS, FIDInceptionV3, build_inception, fold_batchnorm
from ganeval.preprocess import preprocess_tf

POOLS = {"pool_64": "64", "pool_192": "192", "pool_768": "768"}  # ours → torch-fidelity's feature name
TOP_LEVEL = (
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
)


def assert_relative_close(got: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5) -> None:
    """Same shape, and every element within ``rel`` of the largest |expected| (the features' scale)."""
    assert got.shape == expected.shape
    scale = float(expected.abs().max())
    assert scale > 0
    difference = float((got - expected).abs().max())
    assert difference <= rel * scale, (difference, scale)


@pytest.fixture(scope="module")
def full_state(full_weights_file: Path) -> dict[str, torch.Tensor]:
    return torch.load(full_weights_file, weights_only=True)


@pytest.fixture(scope="module")
def net(full_state) -> FIDInceptionV3:
    """The plain network (BatchNorm not folded, NCHW): the peers' arithmetic."""
    return build_inception(full_state)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Two uint8 images (2, 3, 32, 32), upsampled to 299 by the TF resize."""
    return torch.from_numpy(smooth_images(2, 32, seed=41)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def x(images) -> torch.Tensor:
    return preprocess_tf(images)


@pytest.fixture(scope="module")
def all_parts(net, x) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        return net.taps(x, PART_DIMS)


def test_part_shapes(all_parts, x) -> None:
    assert sorted(all_parts) == sorted(PART_DIMS)
    for name, dim in PART_DIMS.items():
        part = all_parts[name]
        assert part.shape == (len(x), dim) and part.dtype == torch.float32, name
    assert all_parts["spatial"].shape == (2, 2023) and PART_DIMS["spatial"] == 17 * 17 * SPATIAL_CHANNELS
    assert (all_parts["spatial"] >= 0).all() and (all_parts["spatial"] > 0).any()  # post-ReLU, not all zero


def test_one_forward_equals_separate_calls(net, x, all_parts) -> None:
    """Each part alone (which stops earlier) is bit-identical to the same part from the all-parts forward, and
    forward() (pool3 and logits_unbiased) too."""
    with torch.inference_mode():
        for name in ("pool_64", "pool_192", "spatial", "pool_768", "logits_unbiased"):
            alone = net.taps(x, [name])
            assert list(alone) == [name] and torch.equal(alone[name], all_parts[name]), name
        out = net(x)
    assert torch.equal(out.pool3, all_parts["pool3"]) and torch.equal(out.logits_unbiased, all_parts["logits_unbiased"])
    assert torch.equal(out.logits, all_parts["logits_unbiased"] + net.fc.bias)


def test_forward_stops_after_the_deepest_part(net, x) -> None:
    """Which blocks run for each request (counted by forward hooks, in the test only); the spatial part is
    Mixed_6d.branch1x1's output bit for bit."""
    calls: list[str] = []
    branch: list[torch.Tensor] = []
    handles = [getattr(net, name).register_forward_hook(lambda *_, name=name: calls.append(name)) for name in TOP_LEVEL]
    handles.append(net.Mixed_6d.branch1x1.register_forward_hook(lambda _m, _i, out: branch.append(out.clone())))
    last_block = {
        (): None,
        ("pool_64",): "Conv2d_2b_3x3",
        ("pool_192",): "Conv2d_4a_3x3",
        ("spatial",): "Mixed_6d",
        ("pool_64", "pool_768"): "Mixed_6e",
        ("pool3",): "Mixed_7c",
    }
    one = x[:1]
    try:
        with torch.inference_mode():
            for wanted, last in last_block.items():
                calls.clear()
                parts = net.taps(one, wanted)
                assert sorted(parts) == sorted(wanted)
                assert calls == list(TOP_LEVEL[: TOP_LEVEL.index(last) + 1] if last else []), wanted
                if wanted == ("spatial",):
                    expected = branch[-1][:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).reshape(1, -1)
                    assert branch[-1].shape == (1, 192, 17, 17) and torch.equal(parts["spatial"], expected)
    finally:
        for handle in handles:
            handle.remove()


def test_bad_requests_are_refused(trunk_state) -> None:
    trunk = build_inception(trunk_state)
    with pytest.raises(ValueError, match="unknown Inception part.*'pool_2048'"):
        trunk.taps(torch.zeros(1, 3, 299, 299), ["pool3", "pool_2048"])
    with pytest.raises(ValueError, match="logits_unbiased needs the 1008-way classifier"):
        trunk.taps(torch.zeros(1, 3, 299, 299), {"logits_unbiased"})


def test_folded_channels_last_parts_match_plain(full_state, x, all_parts) -> None:
    """The extractor's layout (BatchNorm folded, channels-last) moves every part by float32 reassociation only."""
    fast = prepare_model(fold_batchnorm(build_inception(full_state)), torch.device("cpu"))
    with torch.inference_mode():
        parts = fast.taps(prepare_input(x), PART_DIMS)
    for name, expected in all_parts.items():
        assert parts[name].dtype == torch.float32 and parts[name].is_contiguous(), name
        assert torch.allclose(parts[name], expected, rtol=0, atol=1e-4), (name, (parts[name] - expected).abs().max())


@pytest.mark.peers
def test_spatial_and_pools_match_torch_fidelity(full_weights_file, net, images, x, no_network) -> None:
    """torch-fidelity's feature_layer_fid '64', '192', '768' (its own TF-exact resize of the uint8 images), and
    sFID's spatial feature from a hook on its Mixed_6d.branch1x1 (channels [:7], NHWC order)."""
    require_peer("torch_fidelity")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    reference = FeatureExtractorInceptionV3(
        "inception-v3-compat", list(POOLS.values()), feature_extractor_weights_path=str(full_weights_file)
    )
    captured: list[torch.Tensor] = []
    handle = reference.Mixed_6d.branch1x1.register_forward_hook(lambda _m, _i, out: captured.append(out.clone()))
    try:
        with torch.inference_mode():
            theirs = dict(zip(POOLS.values(), reference(images)))
            ours = net.taps(x, {*POOLS, "spatial"})
    finally:
        handle.remove()
    assert len(captured) == 1 and captured[0].shape == (2, 192, 17, 17)
    spatial = captured[0][:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).reshape(2, -1)
    assert_relative_close(ours["spatial"], spatial)
    for name, feature in POOLS.items():
        assert_relative_close(ours[name], theirs[feature])


@pytest.mark.peers
def test_pools_match_pytorch_fid(full_state, net, monkeypatch, no_network) -> None:
    """pytorch-fid's InceptionV3 blocks 0, 1, 2 (its --dims 64, 192, 768), globally averaged as its
    get_activations does, with its own preprocessing of a [0, 1] 299×299 batch; its weight download is
    replaced by the same state dict."""
    require_peer("pytorch_fid")
    import pytorch_fid.inception as pfid

    monkeypatch.setattr(pfid, "load_state_dict_from_url", lambda *_, **__: dict(full_state))
    dims = (64, 192, 768)
    reference = pfid.InceptionV3([pfid.InceptionV3.BLOCK_INDEX_BY_DIM[d] for d in dims]).eval()
    unit = torch.from_numpy(smooth_images(2, 299, seed=43)).permute(0, 3, 1, 2).float() / 255
    with torch.inference_mode():
        blocks = reference(unit)
        ours = net.taps(2 * unit - 1, {f"pool_{d}" for d in dims})
    for dim, block in zip(dims, blocks):
        assert block.shape[1] == dim
        assert_relative_close(ours[f"pool_{dim}"], F.adaptive_avg_pool2d(block, (1, 1)).flatten(1))
