"""ganeval.vgg: the VGG16 fc2 network against torchvision's and torch-fidelity's, preprocessing, weight
resolution, bad files, custom weights and the verified download (against a local HTTP server).

The real ``vgg16-397923af.pth`` is not available offline: a seeded random state dict in torchvision's layout
stands in for it (saved once per module, about 553 MB in the session's temporary folder)."""

from __future__ import annotations

import hashlib
import os
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import closed_port, require_peer, smooth_images
from ganeval import vgg as V
from ganeval.errors import BadInputError, WeightsError

torchvision = pytest.importorskip("torchvision")

VGG16_PARAMETERS = 138_357_544
SEED = 4321


def _seeded_state() -> dict[str, torch.Tensor]:
    """Random weights in torchvision's layout, He-scaled so that activations stay of order 1 through the net."""
    generator = torch.Generator().manual_seed(SEED)
    with torch.device("meta"):
        shapes = {key: value.shape for key, value in torchvision.models.vgg16(weights=None).state_dict().items()}
    state = {}
    for key, shape in shapes.items():
        if key.endswith("weight"):
            fan_in = int(np.prod(shape[1:]))
            state[key] = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.05
    return state


@pytest.fixture(scope="module")
def seeded_state() -> dict[str, torch.Tensor]:
    return _seeded_state()


@pytest.fixture(scope="module")
def seeded_file(seeded_state, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vgg-weights") / "vgg16-seeded.pth"
    torch.save(seeded_state, path)
    return path


@pytest.fixture(scope="module")
def extractor(seeded_file) -> V.VGGExtractor:
    return V.VGGExtractor(weights=seeded_file, device="cpu", download=False)


@pytest.fixture(scope="module")
def pair(extractor) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-px images and their features from a uint8 tensor batch (computed once: a forward costs ~0.7 s here)."""
    images = smooth_images(2, 64, seed=3)
    return images, extractor.forward(_tensor(images))


@pytest.fixture(scope="module")
def torchvision_vgg(seeded_state) -> torch.nn.Module:
    """torchvision's own VGG16 module with the seeded weights (NCHW, eager)."""
    with torch.device("meta"):
        model = torchvision.models.vgg16(weights=None)
    model.load_state_dict(seeded_state, assign=True)
    return model.eval()


def _tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


# --- 1. architecture ----------------------------------------------------------------------------------


def test_architecture_is_torchvisions_vgg16() -> None:
    with torch.device("meta"):
        ours = V.VGG16Features()
        theirs = torchvision.models.vgg16(weights=None)
    assert repr(ours).replace("VGG16Features(", "VGG(", 1) == repr(theirs)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state) and len(ours_state) == 32
    assert all(ours_state[k].shape == theirs_state[k].shape for k in theirs_state)
    assert sum(p.numel() for p in ours.parameters()) == VGG16_PARAMETERS
    assert sum(p.numel() for p in theirs.parameters()) == VGG16_PARAMETERS
    assert sum(isinstance(m, torch.nn.Conv2d) for m in ours.modules()) == 13
    assert sum(isinstance(m, torch.nn.Linear) for m in ours.modules()) == 3
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in ours.modules())


def test_forward_equals_torchvision_manual_fc2_relu(pair, torchvision_vgg) -> None:
    images, ours = pair
    with torch.inference_mode():
        x = V.preprocess_vgg(_tensor(images))
        h = torch.flatten(torchvision_vgg.avgpool(torchvision_vgg.features(x)), 1)
        expected = torchvision_vgg.classifier[:5](h).numpy()
    assert ours.shape == (2, V.FEATURE_DIM) and ours.dtype == np.float32
    assert float(expected.max()) > 0.1 and float((expected > 0).mean()) > 0.05  # a real signal
    assert float(np.abs(expected[0] - expected[1]).max()) > 1e-2
    assert (ours >= 0).all()
    assert float(np.abs(ours - expected).max()) <= 1e-5 * max(1.0, float(np.abs(expected).max()))


@pytest.mark.peers
def test_forward_matches_torch_fidelity_fc2_relu(extractor, seeded_file, monkeypatch) -> None:
    """The independent reference: torch-fidelity's VGG16 extractor (its precision/recall default) on the same file,
    for upsampling (32 px) and downsampling (non-square 250×300 px) in one mixed-size list."""
    require_peer("torch_fidelity")
    from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

    def no_network(self: socket.socket, address: object) -> None:
        raise OSError(f"network access is blocked in this test ({address})")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    for name in ("kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_", "constant_"):
        # torchvision's random initialisation (~4 s here), which load_state_dict then overwrites, is skipped
        monkeypatch.setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)
    reference = FeatureExtractorVGG16("vgg16", ["fc2_relu"], feature_extractor_weights_path=str(seeded_file))
    images = [smooth_images(1, 32, seed=5)[0], smooth_images(1, 300, seed=7)[0, :, :250]]
    ours = extractor.forward(images)
    assert ours.shape == (2, V.FEATURE_DIM)
    for image, row in zip(images, ours):
        with torch.inference_mode():
            (theirs,) = reference(_tensor(image[None]))
        assert float(np.abs(row - theirs[0].numpy()).max()) <= 1e-5 * max(1.0, float(theirs.abs().max()))


# --- 2. preprocessing ---------------------------------------------------------------------------------


def test_preprocess_shape_range_and_constants() -> None:
    images = torch.from_numpy(smooth_images(2, 40, seed=9)).permute(0, 3, 1, 2)
    x = V.preprocess_vgg(images)
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32
    mean = torch.tensor(V.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(V.IMAGENET_STD).view(1, 3, 1, 1)
    low, high = (0 - mean) / std, (1 - mean) / std
    assert bool((x >= low - 1e-6).all()) and bool((x <= high + 1e-6).all())  # bilinear never overshoots
    black = V.preprocess_vgg(torch.zeros(1, 3, 7, 9, dtype=torch.uint8))
    white = V.preprocess_vgg(torch.full((1, 3, 300, 5), 255, dtype=torch.uint8))
    assert torch.allclose(black, low.expand_as(black), atol=1e-6)
    assert torch.allclose(white, high.expand_as(white), atol=1e-6)


def test_preprocess_is_tf1_bilinear_without_crop() -> None:
    """224 px in → no resampling; 2× upsampling: TF1 takes src = dst/2 (even outputs copy input pixels exactly,
    the last output column repeats the edge); the whole image is kept (no crop)."""
    images = torch.from_numpy(smooth_images(1, 224, seed=10)).permute(0, 3, 1, 2)
    mean = torch.tensor([255 * m for m in V.IMAGENET_MEAN]).view(1, 3, 1, 1)
    std = torch.tensor([255 * s for s in V.IMAGENET_STD]).view(1, 3, 1, 1)
    assert torch.equal(V.preprocess_vgg(images), (images.float() - mean) / std)
    small = torch.from_numpy(smooth_images(1, 112, seed=11)).permute(0, 3, 1, 2)
    x = V.preprocess_vgg(small) * std + mean
    assert torch.allclose(x[..., ::2, ::2], small.float(), atol=1e-3)
    assert torch.allclose(x[..., 1:-1:2, ::2], (small[..., :-1, :].float() + small[..., 1:, :].float()) / 2, atol=1e-3)
    assert torch.allclose(x[..., -1, ::2], small[..., -1, :].float(), atol=1e-3)


def test_preprocess_rejects_bad_input() -> None:
    with pytest.raises(BadInputError, match="uint8"):
        V.preprocess_vgg(torch.zeros(1, 3, 8, 8))
    with pytest.raises(BadInputError, match=r"\(B, 3, H, W\)"):
        V.preprocess_vgg(torch.zeros(1, 4, 8, 8, dtype=torch.uint8))


def test_list_input_equals_tensor_input(extractor, pair) -> None:
    images, from_tensor = pair
    read_only = [image.copy() for image in images]  # e.g. rows of a memory-mapped .npy
    for image in read_only:
        image.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(extractor.forward(read_only), from_tensor)
    alone = extractor.forward([images[1]])  # batch size does not change the numbers beyond float reassociation
    assert float(np.abs(alone[0] - from_tensor[1]).max()) <= 1e-5 * max(1.0, float(np.abs(alone).max()))
    assert extractor.forward([]).shape == (0, V.FEATURE_DIM)
    with pytest.raises(BadInputError, match=r"\(H, W, 3\)"):
        extractor.forward([np.zeros((8, 8), dtype=np.uint8)])


# --- 3. weights: custom, standard, bad layouts ----------------------------------------------------------


def test_custom_weights_are_flagged(extractor, seeded_file) -> None:
    info = extractor.weights
    assert info.source == "--vgg-weights" and info.path == seeded_file
    assert info.standard is False and info.extractor == V.EXTRACTOR_CUSTOM == "vgg16-custom-weights"
    assert info.sha256 != V.VGG16_SHA256 and len(info.sha256) == 64
    assert info.warning is not None and info.sha256[:12] in info.warning and "not comparable" in info.warning
    provenance = extractor.provenance()
    assert all(key.startswith("pr_") for key in provenance)
    assert provenance["pr_extractor"] == "vgg16-custom-weights" and provenance["pr_weights_standard"] is False
    assert provenance["pr_weights_sha256"] == info.sha256 and provenance["pr_weights_source"] == "--vgg-weights"
    assert provenance["pr_feature_dim"] == 4096 and provenance["pr_preprocess"] == V.PREPROCESS_ID


def test_standard_hash_is_flagged_standard(fresh_home, tmp_path, monkeypatch) -> None:
    path = tmp_path / "stand-in.pth"
    path.write_bytes(b"stand-in for the standard file")
    monkeypatch.setattr(V, "VGG16_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    info = V.locate_vgg_weights(path, download=False)
    assert info.standard is True and info.extractor == "vgg16-torchvision-imagenet" and info.warning is None
    assert info.to_dict() == {
        "pr_extractor": "vgg16-torchvision-imagenet",
        "pr_weights_path": str(path),
        "pr_weights_sha256": V.VGG16_SHA256,
        "pr_weights_source": "--vgg-weights",
        "pr_weights_standard": True,
    }


def test_published_hash_constants() -> None:
    assert V.VGG16_SHA256.startswith(V.VGG16_FILENAME.split("-")[1].split(".")[0])  # torchvision's prefix rule
    assert len(V.VGG16_SHA256) == 64 and int(V.VGG16_SHA256, 16) >= 0
    assert V.VGG16_URL == "https://download.pytorch.org/models/vgg16-397923af.pth"


@pytest.mark.parametrize("case", ["missing-key", "wrong-shape", "extra-key", "integer", "not-a-state-dict", "garbage"])
def test_wrong_layout_is_a_clear_error_naming_the_file(case, tmp_path) -> None:
    path = tmp_path / f"{case}.pth"
    if case == "garbage":
        path.write_bytes(b"not a torch file at all")
    elif case == "not-a-state-dict":
        torch.save([torch.zeros(2)], path)
    else:
        with torch.device("meta"):
            state = dict(V.VGG16Features().state_dict())
        state = {k: torch.zeros((), dtype=torch.float16).expand(v.shape) for k, v in state.items()}  # tiny on disk
        if case == "missing-key":
            del state["classifier.3.weight"]
        elif case == "wrong-shape":
            state["features.28.weight"] = torch.zeros(512, 512, 1, 1, dtype=torch.float16)
        elif case == "extra-key":
            state["features.1.weight"] = torch.zeros(1)
        else:
            state["classifier.6.bias"] = torch.zeros(1000, dtype=torch.int64)
        torch.save(state, path)
    with pytest.raises(WeightsError) as caught:
        V.VGGExtractor(weights=path, device="cpu", download=False)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    expected = {
        "missing-key": "classifier.3.weight",
        "wrong-shape": "features.28.weight",
        "extra-key": "unexpected",
        "integer": "dtype",
        "not-a-state-dict": "state dict",
        "garbage": "not a readable",
    }[case]
    assert expected in message


def test_half_precision_state_builds_as_float32(seeded_state) -> None:
    model = V.build_vgg16({k: v.to(torch.float16) for k, v in seeded_state.items()})
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in model.parameters())
    assert torch.equal(model.classifier[3].weight, seeded_state["classifier.3.weight"].half().float())


# --- 4. resolution order ------------------------------------------------------------------------------


def _place(folder: Path, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / V.VGG16_FILENAME
    path.write_bytes(data)
    return path


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Bytes standing in for the standard file: VGG16_SHA256 patched to their hash."""
    data = b"stand-in for vgg16-397923af " + np.random.default_rng(5).bytes(2048)
    monkeypatch.setattr(V, "VGG16_SHA256", hashlib.sha256(data).hexdigest())
    return data


def test_resolution_order(fresh_home, stand_in, tmp_path, monkeypatch) -> None:
    hub = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    assert V.torch_hub_checkpoints() == hub
    hub_file = _place(hub, stand_in)
    home_file = _place(fresh_home / "weights", stand_in)
    env_file = tmp_path / "env.pth"
    env_file.write_bytes(b"env weights")
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"explicit weights")
    monkeypatch.setenv(V.ENV_VGG_WEIGHTS, str(env_file))

    info = V.locate_vgg_weights(explicit, download=False)
    assert (info.source, info.path, info.standard) == ("--vgg-weights", explicit, False)
    assert info.sha256 == hashlib.sha256(b"explicit weights").hexdigest()
    info = V.locate_vgg_weights(download=False)
    assert (info.source, info.path, info.standard) == (V.ENV_VGG_WEIGHTS, env_file, False)
    monkeypatch.delenv(V.ENV_VGG_WEIGHTS)
    info = V.locate_vgg_weights(download=False)
    assert (info.source, info.path, info.standard) == ("ganeval-home", home_file, True)
    home_file.unlink()
    info = V.locate_vgg_weights(download=False)
    assert (info.source, info.path, info.standard) == ("torch-hub", hub_file, True)
    assert info.sha256 == V.VGG16_SHA256


def test_missing_explicit_or_env_file_is_named(fresh_home, tmp_path, monkeypatch) -> None:
    with pytest.raises(WeightsError, match=r"nope\.pth.*--vgg-weights"):
        V.locate_vgg_weights(tmp_path / "nope.pth", download=False)
    monkeypatch.setenv(V.ENV_VGG_WEIGHTS, str(tmp_path / "env-nope.pth"))
    with pytest.raises(WeightsError, match=r"env-nope\.pth.*GANEVAL_VGG16_WEIGHTS"):
        V.locate_vgg_weights(download=False)


@pytest.mark.parametrize("where", ["home", "hub"])
def test_corrupted_standard_location_is_refused(where, fresh_home, stand_in) -> None:
    folder = fresh_home / "weights" if where == "home" else V.torch_hub_checkpoints()
    path = _place(folder, stand_in[:-1])
    with pytest.raises(WeightsError) as caught:
        V.locate_vgg_weights(download=False)
    assert str(path) in str(caught.value) and "sha256" in str(caught.value)


def test_missing_without_download_says_how_to_get_it(fresh_home) -> None:
    with pytest.raises(WeightsError) as caught:
        V.locate_vgg_weights(download=False)
    message = str(caught.value)
    assert "\n" not in message and V.VGG16_URL in message
    assert str(fresh_home / "weights" / V.VGG16_FILENAME) in message
    assert str(V.torch_hub_checkpoints() / V.VGG16_FILENAME) in message
    assert "--vgg-weights" in message and V.ENV_VGG_WEIGHTS in message
    assert not (fresh_home / "weights").exists()


# --- 5. download --------------------------------------------------------------------------------------

PAYLOAD = np.random.default_rng(21).bytes(2 * (1 << 20) + 77)
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(scope="module")
def server(http_server):
    http_server.routes.update({"/vgg16.pth": PAYLOAD, "/wrong.pth": PAYLOAD[:-1] + b"x"})
    return http_server


def test_download_with_correct_hash(server, fresh_home, monkeypatch) -> None:
    monkeypatch.setattr(V, "VGG16_SHA256", PAYLOAD_SHA256)
    info = V.locate_vgg_weights(download=True, url=f"{server.base}/vgg16.pth", timeout=10)
    dest = fresh_home / "weights" / V.VGG16_FILENAME
    assert (info.source, info.path, info.sha256, info.standard) == ("download", dest, PAYLOAD_SHA256, True)
    assert dest.read_bytes() == PAYLOAD and [p.name for p in dest.parent.iterdir()] == [dest.name]
    again = V.locate_vgg_weights(download=True, url=f"http://127.0.0.1:{closed_port()}/x", timeout=5)
    assert again.source == "ganeval-home" and again.path == dest


def test_download_with_wrong_bytes_leaves_nothing(server, fresh_home, monkeypatch) -> None:
    monkeypatch.setattr(V, "VGG16_SHA256", PAYLOAD_SHA256)
    with pytest.raises(WeightsError) as caught:
        V.locate_vgg_weights(download=True, url=f"{server.base}/wrong.pth", timeout=10)
    message = str(caught.value)
    assert "sha256" in message and "\n" not in message and V.VGG16_URL in message
    weights_dir = fresh_home / "weights"
    assert not (weights_dir / V.VGG16_FILENAME).exists()
    assert not weights_dir.exists() or list(weights_dir.iterdir()) == []


def test_download_failure_says_how_to_get_the_vgg_file(fresh_home) -> None:
    url = f"http://127.0.0.1:{closed_port()}/vgg16.pth"
    with pytest.raises(WeightsError) as caught:
        V.locate_vgg_weights(download=True, url=url, timeout=5)
    message = str(caught.value)
    assert "\n" not in message and url in message and V.VGG16_URL in message
    assert "pt_inception" not in message  # the Inception instructions are replaced by the VGG16 ones
    assert not (fresh_home / "weights" / V.VGG16_FILENAME).exists()


def test_no_download_when_disabled(server, fresh_home) -> None:
    before = len(server.requests)
    with pytest.raises(WeightsError, match="no VGG16 weights found"):
        V.VGGExtractor(device="cpu", download=False)
    assert len(server.requests) == before
