"""ganeval.extractors.clip: OpenAI CLIP image towers (CLIP-FID's ViT-B/32, CMMD's ViT-L/14@336) against
open_clip's towers and clean-fid's code, their preprocessing, the safe TorchScript reader and the weights.

OpenAI's real files (350 MB and 890 MB) are not available offline: small seeded random models in OpenAI's
layout (open_clip's ``CLIP`` with QuickGELU, width 128, patch 32 at 224 px and patch 56 at 336 px) stand in
for them, saved as TorchScript archives and plain state dicts; the real layouts are checked on the meta
device."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import pickle
import sys
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import closed_port, require_peer, smooth_images
from ganeval.errors import WeightsError
from ganeval.extractors import clip as C
from ganeval.extractors import weights as generic
from ganeval.extractors.base import Batch
from ganeval.extractors.clip_network import build_visual, infer_config, visual_keys
from ganeval.extractors.torchscript_archive import read_archive
from ganeval.paths import ganeval_weights_dir

SEED = 2024
SMALL = {"clip-vit-b-32": (32, 224), "clip-vit-l-14-336": (56, 336)}
"""Protocol → (patch, resolution) of its stand-in model."""
SIZES = [(37, 53), (300, 200), (224, 225), (227, 224), (641, 333), (224, 224), (90, 500)]
"""(height, width) of the non-square test images; 225 and 227 put CenterCrop's offset on a .5 (round half even)."""


def _open_clip():
    return require_peer("open_clip")


def _small_model(patch: int, resolution: int, seed: int = SEED, quick_gelu: bool = True) -> torch.nn.Module:
    """open_clip's CLIP in OpenAI's layout (width 128, 3 blocks, 2 heads, embed 64, a one-block text tower),
    with seeded random weights scaled to keep the activations of order 1."""
    open_clip = _open_clip()
    vision = open_clip.model.CLIPVisionCfg(layers=3, width=128, patch_size=patch, image_size=resolution)
    text = open_clip.model.CLIPTextCfg(context_length=8, vocab_size=50, width=64, heads=1, layers=1)
    model = open_clip.model.CLIP(64, vision, text, quick_gelu=quick_gelu)
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        noise = torch.randn(value.shape, generator=generator)
        if value.dim() == 1 and ("ln" in key and key.endswith("weight")):
            state[key] = 1 + 0.1 * noise
        elif value.dim() <= 1 or "positional_embedding" in key:
            state[key] = 0.1 * noise
        elif key.endswith("proj") or key.endswith("projection"):
            state[key] = noise / math.sqrt(value.shape[0])
        else:
            state[key] = noise / math.sqrt(value[0].numel())
    model.load_state_dict(state)
    return model.eval()


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    """Protocol → its small stand-in model (open_clip)."""
    return {name: _small_model(*shape) for name, shape in SMALL.items()}


@pytest.fixture(scope="module")
def weight_files(models, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Protocol → its stand-in's state dict saved with torch.save (text tower included)."""
    folder = tmp_path_factory.mktemp("clip-weights")
    files = {}
    for name, model in models.items():
        files[name] = folder / f"{name}-small.pth"
        torch.save(model.state_dict(), files[name])
    return files


@pytest.fixture(scope="module")
def jit_file(models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The B/32 stand-in in float16 (as OpenAI's files), scripted and saved as a TorchScript archive."""
    model = _small_model(*SMALL["clip-vit-b-32"]).half()
    path = tmp_path_factory.mktemp("clip-jit") / "small-jit.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(model).save(str(path))
    return path


@pytest.fixture
def clip_home(fresh_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $GANEVAL_HOME, a home folder of this test's own (so ~/.cache/clip is empty), no
    $GANEVAL_CLIP_WEIGHTS; returns the ~/.cache/clip folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(C.ENV_CLIP_WEIGHTS, raising=False)
    return tmp_path / "home" / ".cache" / "clip"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _as_standard(monkeypatch: pytest.MonkeyPatch, name: str, sha256: str) -> None:
    """Make ``sha256`` the standard file of protocol ``name`` for this test."""
    monkeypatch.setitem(C.PROTOCOLS, name, dataclasses.replace(C.PROTOCOLS[name], sha256=sha256))


def _one_line(caught: pytest.ExceptionInfo[WeightsError]) -> str:
    message = str(caught.value)
    assert "\n" not in message
    return message


def _images(seed: int = 7) -> list[np.ndarray]:
    """uint8 (H, W, 3) images of the non-square SIZES, image-like (smooth) with some noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i, (height, width) in enumerate(SIZES):
        base = Image.fromarray(smooth_images(1, 64, seed=seed + i)[0]).resize((width, height), Image.BICUBIC)
        noisy = np.asarray(base).astype(np.int16) + rng.integers(-20, 21, size=(height, width, 3))
        out.append(noisy.clip(0, 255).astype(np.uint8))
    return out


# --- 1. the tower against open_clip's ---------------------------------------------------------------------


@pytest.mark.peers
@pytest.mark.parametrize("name", list(SMALL))
def test_tower_equals_open_clip_encode_image(models, name) -> None:
    patch, resolution = SMALL[name]
    model = models[name]
    tower = build_visual(model.state_dict())
    assert tower.config == infer_config(model.state_dict())
    assert (tower.config.patch_size, tower.config.image_resolution, tower.config.heads) == (patch, resolution, 2)
    x = torch.randn(3, 3, resolution, resolution, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model.encode_image(x)
        got = tower(x)
        gelu = build_visual(model.state_dict(), quick_gelu=False)(x)
    assert got.shape == (3, 64) and got.dtype == torch.float32
    assert expected.abs().max() > 0.1
    assert (got - expected).abs().max() <= 1e-5
    assert (gelu - expected).abs().max() > 1e-3  # QuickGELU is what OpenAI's models use


# --- 2. the real layouts ------------------------------------------------------------------------------------


@pytest.mark.peers
@pytest.mark.parametrize(
    "model, expected",
    [("ViT-B-32", (768, 12, 32, 224, 512, 12)), ("ViT-L-14-336", (1024, 24, 14, 336, 768, 16))],
)
def test_real_layouts_are_inferred_like_openai(model, expected, tmp_path) -> None:
    open_clip = _open_clip()
    with torch.device("meta"):
        reference = open_clip.model.CLIP(**open_clip.get_model_config(model), quick_gelu=True).state_dict()
    reference.update({key: torch.empty((), device="meta") for key in ("input_resolution", "context_length")})
    config = infer_config(reference)
    assert (config.width, config.layers, config.patch_size, config.image_resolution) == expected[:4]
    assert (config.embed_dim, config.heads) == expected[4:]
    visual = {key: tuple(value.shape) for key, value in reference.items() if key.startswith("visual.")}
    assert visual_keys(config) == visual
    assert set(C.check_clip_layout(tmp_path / "x.pt", reference)) == set(visual)  # the text tower is dropped


def test_layout_errors_are_one_line_naming_the_file(models, tmp_path) -> None:
    state = models["clip-vit-b-32"].state_dict()
    path = tmp_path / "bad.pt"
    cases = {
        "no tensor visual.proj": {k: v for k, v in state.items() if k != "visual.proj"},
        "missing ['visual.transformer.resblocks.2.ln_1.bias']": {
            k: v for k, v in state.items() if k != "visual.transformer.resblocks.2.ln_1.bias"
        },
        "has shape (8,), expected (128,)": {**state, "visual.ln_post.bias": torch.zeros(8)},
        "expected floating point": {**state, "visual.ln_pre.bias": torch.zeros(128, dtype=torch.long)},
        "not 1 + grid²": {**state, "visual.positional_embedding": torch.zeros(40, 128)},
    }
    for expected, bad in cases.items():
        with pytest.raises(WeightsError) as caught:
            C.check_clip_layout(path, bad)
        message = _one_line(caught)
        assert message.startswith(f"{path}: ") and expected in message, message


# --- 3. the TorchScript reader -------------------------------------------------------------------------------


@pytest.mark.peers
def test_torchscript_archive_reads_the_state_dict_without_running_it(jit_file, models, tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        expected = torch.jit.load(str(jit_file)).state_dict()
    got = read_archive(jit_file)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype == (torch.float16 if value.is_floating_point() else value.dtype)
        assert torch.equal(got[key], value), key
    assert "visual.conv1.weight" in got and "token_embedding.weight" in got

    traced = tmp_path / "traced.pt"  # a traced archive (how OpenAI made theirs) holds the same tensors
    model = models["clip-vit-l-14-336"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = (torch.zeros(1, 3, 336, 336), torch.zeros(1, 8, dtype=torch.long))
        torch.jit.trace(model, inputs, check_trace=False).save(str(traced))
    state = read_archive(traced)
    for key, value in model.state_dict().items():
        assert torch.equal(state[key], value), key

    plain = tmp_path / "plain.pth"
    torch.save(model.state_dict(), plain)
    again = read_archive(plain)
    assert sorted(again) == sorted(model.state_dict())
    assert all(torch.equal(again[key], value) for key, value in model.state_dict().items())


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _archive(path: Path, payload: bytes, code: bool = True) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", payload)
        archive.writestr("evil/version", "3\n")
        if code:
            archive.writestr("evil/code/__torch__/m.py", "class M(Module):\n  __parameters__ = []\n")
    return path


def test_forbidden_global_is_refused_without_running_it(tmp_path, clip_home) -> None:
    marker = tmp_path / "ran"
    evil = _archive(tmp_path / "evil.pt", pickle.dumps({"visual.proj": _Evil(marker)}, protocol=2))
    with pytest.raises(WeightsError) as caught:
        read_archive(evil)
    message = _one_line(caught)
    assert message.startswith(f"{evil}: refused: the pickle asks for ") and "system" in message
    assert not marker.exists()
    with pytest.raises(WeightsError, match="refused"):  # the same through the weights machinery
        C.CLIPExtractor("clip-vit-b-32", weights=evil, device="cpu").network
    builtins = _archive(tmp_path / "eval.pt", b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R.")
    with pytest.raises(WeightsError, match=r"refused: the pickle asks for builtins\.eval"):
        read_archive(builtins)
    assert not marker.exists()


def test_damaged_or_foreign_archives_are_one_line_errors(jit_file, tmp_path) -> None:
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(jit_file.read_bytes()[: jit_file.stat().st_size // 2])
    not_zip = tmp_path / "text.pt"
    not_zip.write_text("hello")
    listed = _archive(tmp_path / "list.pt", pickle.dumps([1, 2], protocol=2), code=False)
    missing = tmp_path / "missing.pt"  # a tensor whose storage record is absent
    with zipfile.ZipFile(jit_file) as source, zipfile.ZipFile(missing, "w") as target:
        for item in source.namelist():
            if not item.endswith("/data/0"):
                target.writestr(item, source.read(item))
    for path, expected in [
        (truncated, "not a readable TorchScript or torch.save zip"),
        (not_zip, "not a readable TorchScript or torch.save zip"),
        (listed, "expected a TorchScript module or a state dict of tensors, got list"),
        (missing, "refused: storage 0 is not in the archive"),
    ]:
        with pytest.raises(WeightsError) as caught:
            read_archive(path)
        assert _one_line(caught).startswith(f"{path}: ") and expected in str(caught.value), str(caught.value)


# --- 4. preprocessing ------------------------------------------------------------------------------------------


def test_clean_fid_crop_equals_torchvision_resize_and_center_crop() -> None:
    transforms = pytest.importorskip("torchvision.transforms")
    pipeline = transforms.Compose(
        [transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(224)]
    )
    for image in _images():
        expected = np.asarray(pipeline(Image.fromarray(image).convert("RGB"))).clip(0, 255).astype(np.uint8)
        got = C.clean_fid_clip_crop(image, 224)
        assert got.shape == (224, 224, 3) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)


def _cmmd_reference(image: np.ndarray, size: int) -> np.ndarray:
    """google-research cmmd/io_util.py ``_center_crop_and_resize``, written out."""
    im = Image.fromarray(image)
    w, h = im.size
    side = min(w, h)
    top = (h - side) // 2
    left = (w - side) // 2
    im = im.crop((left, top, left + side, top + side))
    return np.asarray(im.resize((size, size), resample=Image.BICUBIC))


def test_cmmd_crop_equals_its_definition() -> None:
    for image in _images(seed=11):
        for size in (336, 224):
            got = C.cmmd_crop(image, size)
            assert got.shape == (size, size, 3) and got.dtype == np.uint8
            np.testing.assert_array_equal(got, _cmmd_reference(image, size))


def test_scalings_are_clean_fids_and_cmmds_arithmetic() -> None:
    u = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16).contiguous()
    mean = torch.tensor(C.OPENAI_MEAN).view(3, 1, 1)
    std = torch.tensor(C.OPENAI_STD).view(3, 1, 1)
    clean = ((u.float().div(255) * 255) / 255.0 - mean) / std
    assert torch.equal(C.clean_fid_scaling(u), clean)
    x = u.numpy().astype(np.float32) / 255.0
    cmmd = (x - np.float32(C.OPENAI_MEAN).reshape(3, 1, 1)) / np.float32(C.OPENAI_STD).reshape(3, 1, 1)
    np.testing.assert_array_equal(C.cmmd_scaling(u).numpy(), cmmd)


# --- 5. weights ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["ganeval-home", "openai-clip-cache", "explicit"])
def test_standard_named_file_with_wrong_sha_is_refused(where, clip_home, weight_files, tmp_path) -> None:
    folder = {"ganeval-home": ganeval_weights_dir(), "openai-clip-cache": clip_home, "explicit": tmp_path}[where]
    folder.mkdir(parents=True, exist_ok=True)
    bad = folder / "ViT-B-32.pt"
    bad.write_bytes(weight_files["clip-vit-b-32"].read_bytes())
    with pytest.raises(WeightsError) as caught:
        generic.locate(C.clip_spec("clip-vit-b-32"), bad if where == "explicit" else None, download=False)
    message = _one_line(caught)
    assert (
        message.startswith(f"{bad}: sha256 {_sha(bad)[:16]}…") and C.PROTOCOLS["clip-vit-b-32"].sha256[:16] in message
    )


def test_torchscript_file_is_converted_once_and_cached(clip_home, jit_file, monkeypatch) -> None:
    _as_standard(monkeypatch, "clip-vit-b-32", _sha(jit_file))
    clip_home.mkdir(parents=True)
    standard = clip_home / "ViT-B-32.pt"
    standard.write_bytes(jit_file.read_bytes())
    reads: list[Path] = []
    original = C.read_archive
    monkeypatch.setattr(C, "read_archive", lambda path: reads.append(path) or original(path))

    info = generic.locate(C.clip_spec("clip-vit-b-32"), download=False)
    cached = ganeval_weights_dir() / f"clip-vit-b-32-visual-{_sha(jit_file)[:12]}.safetensors"
    assert (info.source, info.path, info.state_path, info.standard) == ("openai-clip-cache", standard, cached, True)
    assert info.extractor == "clip-vit-b-32-openai" and info.warning is None and reads == [standard]
    with safe_open(str(cached), framework="pt") as handle:
        keys = set(handle.keys())
        assert handle.get_tensor("visual.proj").dtype == torch.float16
    assert keys == {key for key in read_archive(jit_file) if key.startswith("visual.")}

    again = generic.locate(C.clip_spec("clip-vit-b-32"), download=False)
    assert again.state_path == cached and reads == [standard]  # the .pt is not read again
    extractor = C.CLIPExtractor("clip-vit-b-32", device="cpu")
    assert extractor.part_dims() == {"embedding": 64} and reads == [standard]  # shapes from the header
    assert extractor.network.config.embed_dim == 64 and reads == [standard]
    explicit = generic.locate(C.clip_spec("clip-vit-b-32"), standard, download=False)  # explicit: same cache
    assert (explicit.source, explicit.state_path, explicit.standard) == ("--features-weights", cached, True)
    assert reads == [standard]


def test_missing_weights_name_the_url_and_the_variable(clip_home) -> None:
    for name, protocol in C.PROTOCOLS.items():
        with pytest.raises(WeightsError) as caught:
            generic.locate(C.clip_spec(name), download=False)
        message = _one_line(caught)
        assert message.startswith(f"no CLIP {protocol.model} weights found: download {protocol.url}")
        assert (
            str(clip_home / protocol.filename) in message and str(ganeval_weights_dir() / protocol.filename) in message
        )
        assert "--features-weights" in message and "GANEVAL_CLIP_WEIGHTS" in message
    assert C.PROTOCOLS["clip-vit-b-32"].url == (
        "https://openaipublic.azureedge.net/clip/models/"
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"
    )
    assert C.PROTOCOLS["clip-vit-l-14-336"].url == (
        "https://openaipublic.azureedge.net/clip/models/"
        "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt"
    )


def test_verified_download_is_converted(clip_home, jit_file, http_server, monkeypatch) -> None:
    payload = jit_file.read_bytes()
    _as_standard(monkeypatch, "clip-vit-b-32", hashlib.sha256(payload).hexdigest())
    http_server.routes.update({"/ViT-B-32.pt": payload, "/wrong.pt": payload[:-1] + b"x"})
    spec = C.clip_spec("clip-vit-b-32")
    with pytest.raises(WeightsError, match="sha256"):
        generic.locate(spec, url=f"{http_server.base}/wrong.pt", timeout=10)
    assert not (ganeval_weights_dir() / "ViT-B-32.pt").exists()
    info = generic.locate(spec, url=f"{http_server.base}/ViT-B-32.pt", timeout=10)
    dest = ganeval_weights_dir() / "ViT-B-32.pt"
    assert (info.source, info.path, info.standard) == ("download", dest, True)
    assert dest.read_bytes() == payload and info.state_path.suffix == ".safetensors"
    again = generic.locate(spec, url=f"http://127.0.0.1:{closed_port()}/x", timeout=5)
    assert (again.source, again.state_path) == ("ganeval-home", info.state_path)


def test_custom_files_load_in_every_form(clip_home, weight_files, models, tmp_path, monkeypatch) -> None:
    state = models["clip-vit-b-32"].state_dict()
    visual_only = tmp_path / "visual.safetensors"
    save_file({k: v.contiguous() for k, v in state.items() if k.startswith("visual.")}, str(visual_only))
    for path in (weight_files["clip-vit-b-32"], visual_only):
        extractor = C.CLIPExtractor("clip-vit-b-32", weights=path, device="cpu")
        assert not extractor.weights.standard and extractor.weights.extractor == "clip-vit-b-32-custom-weights"
        assert extractor.warning == (
            f"non-standard CLIP ViT-B/32 weights (sha256 {_sha(path)[:12]}…): CLIP-FID not comparable with "
            f"published numbers"
        )
        assert extractor.part_dims() == {"embedding": 64}
        assert set(generic.load_state_dict(extractor.weights)) == {k for k in state if k.startswith("visual.")}
    monkeypatch.setenv(C.ENV_CLIP_WEIGHTS, str(visual_only))
    assert C.CLIPExtractor("clip-vit-b-32", device="cpu").weights.source == C.ENV_CLIP_WEIGHTS
    _as_standard(monkeypatch, "clip-vit-b-32", _sha(visual_only))  # the other protocol's file is refused
    with pytest.raises(WeightsError, match=r"OpenAI's ViT-B/32 file \(clip-vit-b-32\); clip-vit-l-14-336 needs"):
        _ = C.CLIPExtractor("clip-vit-l-14-336", weights=visual_only, device="cpu").weights


# --- 6. end to end -------------------------------------------------------------------------------------------------


def _reference_input(name: str, image: np.ndarray, size: int) -> torch.Tensor:
    """The protocol's preprocessing written out: torchvision's Resize + CenterCrop and clean-fid's scaling,
    or CMMD's crop and scaling; float32 (1, 3, size, size)."""
    if name == "clip-vit-b-32":
        transforms = pytest.importorskip("torchvision.transforms")
        pipeline = transforms.Compose(
            [transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(size)]
        )
        crop = np.asarray(pipeline(Image.fromarray(image)))
        x = transforms.ToTensor()(np.array(crop)) * 255 / 255.0
        x = transforms.Normalize(C.OPENAI_MEAN, C.OPENAI_STD)(x)
        return x[None]
    crop = _cmmd_reference(image, size).astype(np.float32) / 255.0
    crop = (crop - np.float32(C.OPENAI_MEAN)) / np.float32(C.OPENAI_STD)
    return torch.from_numpy(crop).permute(2, 0, 1)[None]


@pytest.mark.peers
@pytest.mark.parametrize("name", list(SMALL))
def test_extractor_end_to_end_equals_the_reference_pipeline(name, models, weight_files, clip_home) -> None:
    images = _images(seed=3)
    resolution = SMALL[name][1]
    extractor = C.CLIPExtractor(name, weights=weight_files[name], device="cpu", batch_size=4)
    batch = Batch(indices=list(range(len(images))), names=[f"{i}.png" for i in range(len(images))], images=images)
    got = extractor.run(batch, {"embedding": {}})["embedding"]
    with torch.inference_mode():
        x = torch.cat([_reference_input(name, image, resolution) for image in images])
        expected = models[name].encode_image(x).numpy()
    assert got.shape == (len(images), 64) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()

    stage = extractor.per_image({"embedding": {}})
    assert stage is not None
    prepared = Batch(indices=batch.indices, names=batch.names, prepared={name: [stage(image) for image in images]})
    np.testing.assert_array_equal(extractor.run(prepared, {"embedding": {}})["embedding"], got)

    identity = extractor.identity("embedding")
    assert identity["protocol"] == name and identity["weights_sha256"] == _sha(weight_files[name])
    assert "precision" not in identity and f"@{resolution}" in str(identity["architecture"])
    provenance = extractor.provenance()
    prefix = ""
    assert provenance[prefix + "protocol"] == name and provenance[prefix + "weights_standard"] is False
    assert provenance[prefix + "precision"] == "fp32" and provenance[prefix + "input_resolution"] == resolution
    bf16 = C.CLIPExtractor(name, weights=weight_files[name], device="cpu", precision="bf16")
    assert bf16.identity("embedding")["precision"] == "bf16"


@pytest.mark.peers
def test_clip_fid_features_equal_clean_fids_code(models, weight_files, clip_home, tmp_path, monkeypatch) -> None:
    """clean-fid's own dataset and CLIP_fx code (its ``clip`` import stubbed to hand it the stand-in model)."""
    pytest.importorskip("cleanfid")
    model = models["clip-vit-b-32"]
    stub = types.ModuleType("clip")
    stub.load = lambda name, device="cuda": (model, None)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "clip", stub)
    monkeypatch.delitem(sys.modules, "cleanfid.clip_features", raising=False)
    from cleanfid.clip_features import CLIP_fx, img_preprocess_clip
    from cleanfid.utils import ResizeDataset

    images = _images(seed=5)
    files = []
    for i, image in enumerate(images):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(image).save(files[-1])
    dataset = ResizeDataset([str(f) for f in files], mode="clean")
    dataset.fn_resize = img_preprocess_clip
    batch = torch.stack([dataset[i] for i in range(len(files))])
    expected = CLIP_fx("ViT-B/32", device="cpu")(batch).numpy()
    extractor = C.CLIPExtractor("clip-vit-b-32", weights=weight_files["clip-vit-b-32"], device="cpu")
    got = extractor.run(Batch(indices=list(range(len(images))), names=[], images=images), {"embedding": {}})
    assert np.abs(got["embedding"] - expected).max() <= 1e-5 * np.abs(expected).max()
    for image in images:
        np.testing.assert_array_equal(C.clean_fid_clip_crop(image, 224), img_preprocess_clip(image))


def test_constructor_refuses_unknown_protocols_and_batch_sizes() -> None:
    with pytest.raises(ValueError, match="unknown CLIP protocol 'clip-rn50'"):
        C.CLIPExtractor("clip-rn50")
    with pytest.raises(ValueError, match="batch_size"):
        C.CLIPExtractor("clip-vit-b-32", batch_size=0)
    assert C.CLIPExtractor("clip-vit-b-32", device="cpu").default_vector == "embedding"


def test_extractor_does_not_look_for_weights_until_needed(clip_home, no_network) -> None:
    extractor = C.CLIPExtractor("clip-vit-l-14-336", device="cpu")  # no weights anywhere: no error yet
    assert extractor.name == "clip-vit-l-14-336"
    with pytest.raises(WeightsError) as caught:
        _ = extractor.weights  # nothing found: the download is tried (and blocked here)
    message = _one_line(caught)
    assert message.startswith(f"cannot download {C.PROTOCOLS['clip-vit-l-14-336'].url}")
    assert not (ganeval_weights_dir() / "ViT-L-14-336px.pt").exists()


def test_convert_standard_needs_a_conversion_and_a_sha() -> None:
    spec = C.clip_spec("clip-vit-b-32")
    assert spec.convert_standard and spec.read_file is C.read_weights_file
    with pytest.raises(ValueError, match="convert_standard needs a conversion"):
        dataclasses.replace(spec, convert=None)
