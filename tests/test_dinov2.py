"""ganeval.extractors.dinov2 and dinov2_network: the ViT against Meta's reference package (``dinov2``) with
seeded random weights, the layouts of the four hub backbones, the two resize modes against their published
definitions (dgm-eval's torchvision transform, EDM2's ``F.interpolate``), weight resolution (.pth and
.safetensors, bad files, torch hub's folder, the verified download from a local HTTP server) and the
extractor end to end.

The real ``dinov2_vitl14_pretrain.pth`` (1.2 GB) is never downloaded: a seeded random ViT-S/14 state dict in
Meta's layout (float16-representable values, saved as float16: 44 MB) stands in for it."""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from conftest import closed_port, require_peer, smooth_images
from ganeval.errors import BadInputError, GanevalError, WeightsError
from ganeval.extractors import dinov2 as D
from ganeval.extractors.base import Batch
from ganeval.extractors.dinov2_network import (
    CONFIGS,
    DINOv2ViT,
    ViTConfig,
    build_dinov2,
    check_layout,
    expected_shapes,
    infer_config,
)
from ganeval.paths import torch_hub_checkpoints

SEED = 2024
TOLERANCE = 1e-5


def _seeded_state(config: ViTConfig, seed: int = SEED) -> dict[str, torch.Tensor]:
    """Random weights in Meta's layout of ``config``, scaled so that activations stay of order 1: linear and
    convolution weights ~ N(0, 1/fan_in), LayerNorm scales 1 ± 0.1, LayerScale gammas in [0.5, 1.5], biases,
    tokens and the position table ~ N(0, 0.1²); rounded to float16 so that the float16 file holds them exactly."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in expected_shapes(config).items():
        if key.endswith("gamma"):
            value = 0.5 + torch.rand(shape, generator=generator)
        elif "norm" in key and key.endswith("weight"):
            value = 1 + 0.1 * torch.randn(shape, generator=generator)
        elif key.endswith("weight"):
            value = torch.randn(shape, generator=generator) / float(np.prod(shape[1:])) ** 0.5
        else:
            value = 0.1 * torch.randn(shape, generator=generator)
        state[key] = value.half().float()
    return state


@pytest.fixture(scope="module")
def vits_state() -> dict[str, torch.Tensor]:
    return _seeded_state(CONFIGS["vits14"])


@pytest.fixture(scope="module")
def vits_file(vits_state, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dinov2-weights") / "vits14-seeded.pth"
    torch.save({key: value.half() for key, value in vits_state.items()}, path)
    return path


def _reference_kwargs(arch: str) -> dict[str, object]:
    """The keyword arguments of DINOv2's hub backbones (``hub/backbones.py``: img_size 518, patch 14,
    init_values 1.0, block_chunks 0, no register tokens, interpolate_offset 0.1, no antialiasing; SwiGLU for
    ViT-g), those that the installed package accepts (older releases lack the last three, and behave as
    their defaults)."""
    vits = require_peer("dinov2.models.vision_transformer")
    accepted = inspect.signature(vits.DinoVisionTransformer).parameters
    kwargs: dict[str, object] = {
        "img_size": 518,
        "patch_size": 14,
        "init_values": 1.0,
        "ffn_layer": "swiglufused" if arch == "vit_giant2" else "mlp",
        "block_chunks": 0,
    }
    optional = {"num_register_tokens": 0, "interpolate_antialias": False, "interpolate_offset": 0.1}
    kwargs.update({key: value for key, value in optional.items() if key in accepted})
    return kwargs


def _reference(arch: str, state: dict[str, torch.Tensor] | None = None, **overrides: object) -> torch.nn.Module:
    """Meta's ``arch`` built on the meta device (no random initialisation), with ``state`` when given. The drop
    path rate is zero either way; ``drop_path_uniform`` only avoids a ``.item()`` that the meta device refuses."""
    vits = require_peer("dinov2.models.vision_transformer")
    kwargs = {**_reference_kwargs(arch), **overrides}
    with torch.device("meta"):
        model = getattr(vits, arch)(**kwargs, drop_path_uniform=True)
    if state is not None:
        model.load_state_dict(state, strict=True, assign=True)
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def reference_vits(vits_state) -> torch.nn.Module:
    return _reference("vit_small", vits_state)


def _reference_cls(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.forward_features(x)["x_norm_clstoken"]


# --- 1. the network against Meta's -------------------------------------------------------------------------


@pytest.mark.peers
@pytest.mark.parametrize("size", [224, 112])
def test_network_equals_reference_cls(vits_state, reference_vits, size) -> None:
    ours = build_dinov2(vits_state)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(size))
    expected = _reference_cls(reference_vits, x)
    with torch.inference_mode():
        got = ours(x)
    assert got.dtype == torch.float32 and got.shape == (1, 384)
    assert expected.abs().max() > 0.5  # activations of order 1: the comparison is not vacuous
    assert (got - expected).abs().max().item() <= TOLERANCE
    assert ours.position_table(size, size) is ours.position_table(size, size)  # cached per input size


TINY = ViTConfig("tiny", 128, 2, grid=4)
"""Two blocks, 128 wide, a 4×4 position table (a 56-px "native" size): the interpolation cases, fast."""


@pytest.mark.peers
@pytest.mark.parametrize("size", [(56, 56), (70, 42), (28, 112), (224, 224)])
def test_position_table_cases_equal_reference(size) -> None:
    """Native size (no interpolation), non-square inputs (the scale factors' order), upsampling."""
    vits = require_peer("dinov2.models.vision_transformer")
    state = _seeded_state(TINY, seed=5)
    kwargs = {**_reference_kwargs("vit_small"), "img_size": 56, "embed_dim": 128, "depth": 2, "num_heads": 2}
    reference = vits.DinoVisionTransformer(**kwargs)
    reference.load_state_dict(state, strict=True)
    ours = DINOv2ViT(TINY)
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(sum(size)))
    with torch.inference_mode():
        assert (ours.eval()(x) - _reference_cls(reference.eval(), x)).abs().max().item() <= TOLERANCE
    if size == (56, 56):
        assert torch.equal(ours.position_table(56, 56), ours.pos_embed)


@pytest.mark.peers
def test_swiglu_network_equals_reference() -> None:
    """ViT-g's feed-forward layer (SwiGLU ``w12``/``w3``, hidden width rounded as DINOv2's fused SwiGLU), on a
    two-block, 128-wide model of the same family."""
    vits = require_peer("dinov2.models.vision_transformer")
    config = ViTConfig("tiny-swiglu", 128, 2, ffn="swiglu")
    state = _seeded_state(config, seed=7)
    kwargs = {**_reference_kwargs("vit_giant2"), "embed_dim": 128, "depth": 2, "num_heads": 2}
    reference = vits.DinoVisionTransformer(**kwargs)
    reference.load_state_dict(state, strict=True)
    ours = DINOv2ViT(config)
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        assert (ours.eval()(x) - _reference_cls(reference.eval(), x)).abs().max().item() <= TOLERANCE


def test_input_must_be_a_multiple_of_the_patch(vits_state) -> None:
    with pytest.raises(ValueError, match="multiple of the patch size 14"):
        build_dinov2(vits_state)(torch.zeros(1, 3, 225, 224))


# --- 2. the layouts ---------------------------------------------------------------------------------------


@pytest.mark.peers
@pytest.mark.parametrize(
    "arch, name", [("vit_small", "vits14"), ("vit_base", "vitb14"), ("vit_large", "vitl14"), ("vit_giant2", "vitg14")]
)
def test_layout_equals_reference_and_config_is_inferred(arch, name, tmp_path) -> None:
    reference = {key: tuple(value.shape) for key, value in _reference(arch).state_dict().items()}
    assert expected_shapes(CONFIGS[name]) == reference
    assert "mask_token" in reference and not any(key.startswith("blocks.0.0.") for key in reference)
    with torch.device("meta"):
        state = {key: torch.empty(shape) for key, shape in reference.items()}
    config = infer_config(tmp_path / "x.pth", state)
    assert config == CONFIGS[name]
    if name == "vitl14":
        assert (config.dim, config.depth, config.heads, config.patch, config.grid) == (1024, 24, 16, 14, 37)
    without_mask = {key: value for key, value in state.items() if key != "mask_token"}
    checked = check_layout(tmp_path / "x.pth", without_mask)
    assert checked["mask_token"].shape == (1, CONFIGS[name].dim) and not checked["mask_token"].any()


# --- 3. preprocessing ----------------------------------------------------------------------------------------

SIZES = [(37, 50), (300, 200), (224, 224), (61, 480)]


def _images(sizes: list[tuple[int, int]], seed: int = 5) -> list[np.ndarray]:
    """uint8 (H, W, 3) images of the given (H, W): smooth noise, cropped."""
    out = []
    for index, (height, width) in enumerate(sizes):
        side = max(height, width)
        out.append(np.ascontiguousarray(smooth_images(1, side, seed=seed + index)[0][:height, :width]))
    return out


@pytest.mark.parametrize("size", SIZES)
def test_pil_resize_equals_dgm_eval_transform(size) -> None:
    """dgm-eval's DINOv2 transform: Resize((224, 224), BICUBIC) of the PIL image, ToTensor, Normalize."""
    transforms = pytest.importorskip("torchvision.transforms")
    dgm_eval = transforms.Compose(
        [
            transforms.Resize((224, 224), interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.ToTensor(),
            transforms.Normalize(D.IMAGENET_MEAN, D.IMAGENET_STD),
        ]
    )
    (image,) = _images([size])
    expected = dgm_eval(Image.fromarray(image))[None]
    extractor = D.DINOv2Extractor(weights="unused.pth", device="cpu")
    from_list = extractor._network_input([image])
    from_tensor = extractor.preprocess(torch.from_numpy(image).permute(2, 0, 1)[None])
    assert from_list.shape == (1, 3, 224, 224)
    assert (from_list - expected).abs().max().item() <= 1e-6
    assert torch.equal(from_list, from_tensor)


@pytest.mark.parametrize("size", SIZES)
def test_torch_resize_equals_edm2(size) -> None:
    """EDM2's ``resize_mode='torch'``: bicubic antialiased F.interpolate of the float [0, 255] values, /255,
    ImageNet mean and std."""
    (image,) = _images([size])
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    resized = F.interpolate(x.to(torch.float32), size=(224, 224), mode="bicubic", antialias=True) / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, -1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, -1, 1, 1)
    expected = (resized - mean) / std
    extractor = D.DINOv2Extractor(weights="unused.pth", resize="torch", device="cpu")
    assert (extractor.preprocess(x) - expected).abs().max().item() <= 1e-6
    assert extractor.per_image({"cls": {}}) is None


def test_bad_inputs_and_options() -> None:
    extractor = D.DINOv2Extractor(weights="unused.pth", device="cpu")
    with pytest.raises(BadInputError, match="uint8"):
        extractor.preprocess(torch.zeros(1, 3, 8, 8))
    with pytest.raises(BadInputError, match="uint8"):
        D.resize_pil(np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(GanevalError, match="unknown DINOv2 resize 'nearest'"):
        D.DINOv2Extractor(resize="nearest")
    with pytest.raises(GanevalError, match="unknown precision"):
        D.DINOv2Extractor(precision="int8")


# --- 4. weights ---------------------------------------------------------------------------------------------


@pytest.fixture
def no_dinov2_env(fresh_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(D.ENV_WEIGHTS, raising=False)
    return fresh_home


def test_pth_and_safetensors_both_load(vits_state, vits_file, tmp_path, no_dinov2_env) -> None:
    safetensors = tmp_path / "vits14-seeded.safetensors"
    save_file({key: value.half().contiguous() for key, value in vits_state.items()}, str(safetensors))
    for path in (vits_file, safetensors):
        info = D.locate_dinov2_weights(path, download=False)
        assert (info.path, info.source, info.standard) == (path, "--features-weights", False)
        assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert info.warning is not None and "non-standard DINOv2 weights" in info.warning
        loaded = D.load_dinov2_state_dict(path)
        assert sorted(loaded) == sorted(vits_state)
        assert all(torch.equal(loaded[key].float(), vits_state[key]) for key in vits_state)


def _one_line(caught: pytest.ExceptionInfo[WeightsError]) -> str:
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_wrong_layout_and_damaged_files_are_one_line_errors(vits_state, vits_file, tmp_path) -> None:
    cases = {
        "missing.pth": {key: value for key, value in vits_state.items() if key != "blocks.3.ls1.gamma"},
        "extra.pth": {**vits_state, "head.weight": torch.zeros(10, 384)},
        "registers.pth": {**vits_state, "register_tokens": torch.zeros(1, 4, 384)},
        "vgg.pth": {"features.0.weight": torch.zeros(64, 3, 3, 3)},
        "shape.pth": {**vits_state, "blocks.0.attn.qkv.weight": torch.zeros(384, 384)},
        "integer.pth": {**vits_state, "norm.weight": torch.zeros(384, dtype=torch.int64)},
    }
    for name, state in cases.items():
        path = tmp_path / name
        torch.save(state, path)
        with pytest.raises(WeightsError) as caught:
            D.load_dinov2_state_dict(path)
        assert _one_line(caught).startswith(f"{path}: "), name
    damaged = tmp_path / "damaged.pth"
    data = vits_file.read_bytes()
    damaged.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError) as caught:
        D.DINOv2Extractor(weights=damaged, device="cpu").part_dims()
    assert _one_line(caught).startswith(f"{damaged}: not a readable weights-only state dict")


def test_missing_file_names_the_url_the_env_var_and_the_folders(no_dinov2_env, tmp_path, monkeypatch) -> None:
    with pytest.raises(WeightsError) as caught:
        D.locate_dinov2_weights(download=False)
    message = _one_line(caught)
    assert message.startswith("no DINOv2 weights found")
    assert D.URL in message and D.ENV_WEIGHTS in message and "--features-weights" in message
    assert (
        str(no_dinov2_env / "weights" / D.FILENAME) in message and str(torch_hub_checkpoints() / D.FILENAME) in message
    )
    monkeypatch.setenv(D.ENV_WEIGHTS, str(tmp_path / "nope.pth"))
    with pytest.raises(WeightsError) as caught:
        D.DINOv2Extractor(device="cpu").identity("cls")
    assert _one_line(caught) == f"{tmp_path / 'nope.pth'}: DINOv2 weights file not found (from {D.ENV_WEIGHTS})"


def test_found_in_torch_hub_checkpoints_then_ganeval_home_first(no_dinov2_env, monkeypatch) -> None:
    monkeypatch.setattr(D, "SHA256", hashlib.sha256(b"standard").hexdigest())
    hub = torch_hub_checkpoints()
    assert str(hub).startswith(str(no_dinov2_env.parent))  # the test's own $TORCH_HOME
    hub.mkdir(parents=True)
    (hub / D.FILENAME).write_bytes(b"standard")
    extractor = D.DINOv2Extractor(device="cpu")
    info = extractor.weights
    assert (info.source, info.path, info.standard, info.extractor) == (
        "torch-hub",
        hub / D.FILENAME,
        True,
        D.EXTRACTOR_STANDARD,
    )
    assert info.description == f"Meta's DINOv2 ViT-L/14 backbone ({D.FILENAME})"
    assert extractor.extractor_id == "dinov2-vitl14" and extractor.warning is None
    assert extractor.part_dims() == {"cls": 1024} and extractor._model is None  # ViT-L/14 without reading the file
    home = no_dinov2_env / "weights" / D.FILENAME
    home.parent.mkdir(parents=True)
    home.write_bytes(b"standard")
    info = D.locate_dinov2_weights(download=False)
    assert (info.source, info.path, info.standard, info.warning) == ("ganeval-home", home, True, None)


@pytest.mark.parametrize("where", ["hub", "home"])
def test_standard_name_with_another_sha256_is_refused(where, no_dinov2_env) -> None:
    """A ``dinov2_vitl14_pretrain.pth`` in a searched folder must be Meta's file; given explicitly (no strict
    name, as for VGG16) the same file is custom weights."""
    folder = torch_hub_checkpoints() if where == "hub" else no_dinov2_env / "weights"
    folder.mkdir(parents=True)
    path = folder / D.FILENAME
    path.write_bytes(b"not Meta's file")
    with pytest.raises(WeightsError) as caught:
        D.locate_dinov2_weights(url=f"http://127.0.0.1:{closed_port()}/x", timeout=5)  # no download tried
    message = _one_line(caught)
    digest = hashlib.sha256(b"not Meta's file").hexdigest()
    assert message == (
        f"{path}: sha256 {digest[:16]}… is not the standard {D.SHA256[:16]}… (corrupted or partial download?); "
        "delete it, or pass it as --features-weights to use it as custom weights"
    )
    info = D.locate_dinov2_weights(path, download=False)
    assert (info.source, info.standard, info.sha256, info.extractor) == (
        "--features-weights",
        False,
        digest,
        "dinov2-custom-weights",
    )


PAYLOAD = np.random.default_rng(11).bytes((1 << 20) + 123)
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server(http_server):
    http_server.routes.update({"/dinov2.pth": PAYLOAD, "/wrong.pth": PAYLOAD[:-1] + b"x"})
    return http_server


def test_spec_verifies_the_pinned_sha256() -> None:
    spec = D.dinov2_spec()
    assert spec.sha256 == D.SHA256 and list(spec.standard_sha256) == [D.SHA256] and spec.url == D.URL
    assert not hasattr(spec, "unverified_download")
    assert D.SHA256[:16] in spec.how_to


def test_verified_download(server, no_dinov2_env, monkeypatch) -> None:
    monkeypatch.setattr(D, "SHA256", PAYLOAD_SHA256)
    info = D.locate_dinov2_weights(url=f"{server.base}/dinov2.pth", timeout=10)
    dest = no_dinov2_env / "weights" / D.FILENAME
    assert (info.source, info.path, info.sha256, info.standard) == ("download", dest, PAYLOAD_SHA256, True)
    assert (info.extractor, info.warning) == ("dinov2-vitl14", None)
    assert dest.read_bytes() == PAYLOAD and [p.name for p in dest.parent.iterdir()] == [D.FILENAME]
    before = len(server.requests)
    again = D.locate_dinov2_weights(url=f"http://127.0.0.1:{closed_port()}/x", timeout=5)
    assert (again.source, again.path, again.sha256, again.standard) == ("ganeval-home", dest, PAYLOAD_SHA256, True)
    assert len(server.requests) == before


@pytest.mark.parametrize("route, pinned", [("/dinov2.pth", False), ("/wrong.pth", True)])
def test_download_with_another_sha256_is_refused_and_leaves_nothing(
    server, no_dinov2_env, monkeypatch, route, pinned
) -> None:
    """Against the real pin (the payload is not Meta's file), and a damaged payload against its own pin."""
    if pinned:
        monkeypatch.setattr(D, "SHA256", PAYLOAD_SHA256)
    url = f"{server.base}{route}"
    with pytest.raises(WeightsError) as caught:
        D.locate_dinov2_weights(url=url, timeout=10)
    message = _one_line(caught)
    assert message.startswith(f"{url}: downloaded file has sha256 ")
    assert f"expected {D.SHA256[:16]}…; nothing was saved" in message and D.URL in message
    weights_dir = no_dinov2_env / "weights"
    assert not weights_dir.exists() or list(weights_dir.iterdir()) == []
    assert not (torch_hub_checkpoints() / D.FILENAME).exists()


def test_failed_download_leaves_nothing_and_says_how(no_dinov2_env) -> None:
    url = f"http://127.0.0.1:{closed_port()}/dinov2.pth"
    with pytest.raises(WeightsError) as caught:
        D.locate_dinov2_weights(url=url, timeout=5)
    message = _one_line(caught)
    assert url in message and D.URL in message and D.ENV_WEIGHTS in message
    assert not (no_dinov2_env / "weights" / D.FILENAME).exists()


# --- 5. the extractor end to end -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extractor(vits_file) -> D.DINOv2Extractor:
    return D.DINOv2Extractor(weights=vits_file, device="cpu", batch_size=4)


MIXED = [(40, 60), (224, 224), (97, 31), (300, 250)]


def test_identity_and_provenance_without_building_the_network(vits_file) -> None:
    extractor = D.DINOv2Extractor(weights=vits_file, device="cpu")
    identity = extractor.identity("cls")
    assert identity == {
        "extractor": "dinov2-vits14-custom",
        "weights_sha256": hashlib.sha256(vits_file.read_bytes()).hexdigest(),
        "architecture": "vits14",
        "resize": "pil",
    }
    provenance = extractor.provenance()
    assert provenance["extractor"] == "dinov2-vits14-custom" and provenance["protocol"] is None
    assert provenance["weights_standard"] is False and "weights_verified" not in provenance
    assert (provenance["feature_dim"], provenance["resize"], provenance["precision"]) == (384, "pil", "fp32")
    assert extractor.part_dims() == {"cls": 384} and extractor._model is None
    other = D.DINOv2Extractor(weights=vits_file, resize="torch", device="cpu", precision="bf16")
    assert other.identity("cls") == {**identity, "resize": "torch", "precision": "bf16"}
    assert other._model is None


def _normalised(x: torch.Tensor) -> torch.Tensor:
    """float [0, 255] (B, 3, H, W) → dgm-eval's and EDM2's network input, written out."""
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, -1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, -1, 1, 1)
    return (x / 255 - mean) / std


@pytest.mark.slow
@pytest.mark.peers
def test_run_equals_reference_pipeline(extractor, reference_vits) -> None:
    """``pil``: the per-image stage (decode threads) then ``run``, against PIL resize → reference network."""
    images = _images(MIXED[:2], seed=31)
    stage = extractor.per_image({"cls": {}})
    assert stage is D.resize_pil
    batch = Batch(indices=[0, 1], names=["a.png", "b.png"], images=list(images))
    batch.prepared[extractor.name] = [stage(image) for image in images]
    got = extractor.run(batch, {"cls": {}})["cls"]
    resized = [np.asarray(Image.fromarray(image).resize((224, 224), Image.Resampling.BICUBIC)) for image in images]
    x = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float()
    expected = _reference_cls(reference_vits, _normalised(x)).numpy()
    assert got.dtype == np.float32 and got.shape == (2, 384)
    assert np.abs(got - expected).max() <= TOLERANCE
    # without the stage (a stream's batch), and a uint8 tensor batch: the same network input
    prepared = extractor._from_resized(batch.prepared[extractor.name])
    assert torch.equal(extractor._network_input(images), prepared)
    same = [np.ascontiguousarray(image[:30, :30]) for image in images]
    tensor = torch.from_numpy(np.stack(same)).permute(0, 3, 1, 2)
    assert torch.equal(extractor.preprocess(tensor), extractor._network_input(same))
    assert extractor.forward([]).shape == (0, 384)


@pytest.mark.slow
@pytest.mark.peers
def test_torch_resize_run_equals_reference_pipeline(vits_file, reference_vits) -> None:
    """``torch`` (EDM2's default): images of two sizes in one batch, resized one by one on the device."""
    extractor = D.DINOv2Extractor(weights=vits_file, resize="torch", device="cpu")
    images = _images(MIXED[:2], seed=41)
    got = extractor.run(Batch(indices=[0, 1], names=["a", "b"], images=images), {"cls": {}})["cls"]
    expected = []
    for image in images:
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        expected.append(
            _reference_cls(
                reference_vits, _normalised(F.interpolate(x, size=(224, 224), mode="bicubic", antialias=True))
            )
        )
    assert np.abs(got - torch.cat(expected).numpy()).max() <= TOLERANCE


def test_engine_pass_runs_the_stage_in_the_decode_threads(vits_file) -> None:
    """One engine pass (decode threads → per-image stage → run): the rows equal ``forward``. A tiny network
    stands in for the ViT-S (the plumbing, not the network, is under test)."""
    from ganeval.engine import extract_parts
    from ganeval.sources import open_source

    extractor = D.DINOv2Extractor(weights=vits_file, device="cpu")
    tiny = DINOv2ViT(TINY)
    tiny.load_state_dict(_seeded_state(TINY, seed=3))
    extractor._model = tiny.eval()
    calls: list[tuple[int, int, int]] = []
    original = D.resize_pil

    def counting(image: np.ndarray) -> np.ndarray:
        calls.append(image.shape)
        return original(image)

    extractor.per_image = lambda parts: counting  # type: ignore[method-assign]
    images = smooth_images(5, 48, seed=9)
    features = extract_parts(
        open_source(images), {"dinov2:cls": {}}, {"dinov2": extractor}, batch_size=2, workers=2, progress=False
    )
    rows = features.vector("dinov2:cls")
    assert rows is not None and rows.rows is not None and rows.rows.shape == (5, 128)
    assert len(calls) == 5
    assert np.array_equal(rows.rows, extractor.forward(list(images)))
