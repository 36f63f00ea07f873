"""The DINOv2 and CLIP feature spaces end to end, as a user runs them: ``ganeval fid --features dinov2``,
``ganeval cmmd``, ``ganeval fid --features clip-vit-b-32``, statistics files in those spaces, ``ganeval
weights --features``, equal to oracle pipelines written out here (the reference network code — Meta's
``dinov2`` package, ``open_clip`` — on the protocol's preprocessing, then the metric's formula in numpy/scipy).

Small seeded random networks in the real key layouts stand in for the real weights (ViT-S/14 for DINOv2;
width-128 CLIP towers for ViT-B/32 at 224 px and ViT-L/14 at 336 px), passed with ``--features-weights``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from click.testing import CliRunner
from PIL import Image

import ganeval
from conftest import require_peer, smooth_images, write_images
from ganeval.cli import cli
from ganeval.extractors import build
from ganeval.extractors.dinov2_network import CONFIGS
from test_clip import SMALL, _small_model
from test_dinov2 import _reference, _seeded_state

pytestmark = pytest.mark.peers

IMAGENET = (np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]))
OPENAI = (np.array([0.48145466, 0.4578275, 0.40821073]), np.array([0.26862954, 0.26130258, 0.27577711]))


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """Two small image folders (non-square, so the crops matter) and their images."""
    root = tmp_path_factory.mktemp("feature-spaces")
    real = smooth_images(8, 64, seed=1)[:, :, :48]
    fake = smooth_images(6, 56, seed=2, shift=0.3)[:, :40]
    return write_images(root / "real", real), write_images(root / "fake", fake), real, fake


@pytest.fixture(scope="module")
def dinov2_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    state = _seeded_state(CONFIGS["vits14"])
    path = tmp_path_factory.mktemp("dinov2") / "vits14.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, torch.nn.Module]]:
    folder = tmp_path_factory.mktemp("clip")
    out = {}
    for name, shape in SMALL.items():
        model = _small_model(*shape)
        torch.save(model.state_dict(), folder / f"{name}.pth")
        out[name] = (folder / f"{name}.pth", model)
    return out


def _invoke(*args: str, cache: bool = False) -> dict:
    result = CliRunner().invoke(cli, [*args, "--json", "-q", "--device", "cpu", *([] if cache else ["--no-cache"])])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    """FID's formula with scipy's sqrtm, float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def _normalised(pixels: list[np.ndarray], stats: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
    x = np.stack(pixels).astype(np.float32) / 255.0
    x = (x - stats[0].astype(np.float32)) / stats[1].astype(np.float32)
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def test_the_table_lists_each_class_vector() -> None:
    for name in build.feature_spaces():
        cls = build._class(name)
        assert build.vector_part(name) == f"{name}:{cls.default_vector}"


@pytest.mark.slow
def test_fd_dinov2_equals_meta_network_on_dgm_eval_preprocessing(sets, dinov2_file) -> None:
    real_dir, fake_dir, real, fake = sets
    path, state = dinov2_file
    reference = _reference("vit_small", state)

    def features(images: np.ndarray) -> np.ndarray:
        # dgm-eval: PIL bicubic resize to (224, 224), ToTensor, ImageNet Normalize
        pixels = [np.asarray(Image.fromarray(img).resize((224, 224), Image.BICUBIC)) for img in images]
        with torch.inference_mode():
            return reference.forward_features(_normalised(pixels, IMAGENET))["x_norm_clstoken"].numpy()

    got = _invoke("fid", str(real_dir), str(fake_dir), "--features", "dinov2", "--features-weights", str(path))
    assert got["fid"] == pytest.approx(_frechet(features(real), features(fake)), rel=1e-4)
    assert got["provenance"]["features"] == "dinov2"
    network = got["provenance"]["networks"]["dinov2"]
    assert network["architecture"] == "vits14" and network["resize"] == "pil"
    assert network["weights_sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    assert any("non-standard DINOv2" in warning for warning in got["warnings"])


def test_cmmd_equals_open_clip_on_cmmd_preprocessing(sets, clip_files) -> None:
    real_dir, fake_dir, real, fake = sets
    path, model = clip_files["clip-vit-l-14-336"]

    def embeddings(images: np.ndarray) -> np.ndarray:
        pixels = []
        for img in images:  # google-research cmmd: the largest centred square, PIL bicubic to 336
            h, w = img.shape[:2]
            s = min(h, w)
            left, top = (w - s) // 2, (h - s) // 2
            square = Image.fromarray(img).crop((left, top, left + s, top + s))
            pixels.append(np.asarray(square.resize((336, 336), Image.BICUBIC)))
        with torch.inference_mode():
            out = model.encode_image(_normalised(pixels, OPENAI)).numpy().astype(np.float64)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    x, y = embeddings(real), embeddings(fake)

    def mean_kernel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * 10.0**2)).mean())

    expected = 1000 * (mean_kernel(x, x) + mean_kernel(y, y) - 2 * mean_kernel(x, y))
    got = _invoke("cmmd", str(real_dir), str(fake_dir), "--features-weights", str(path))
    assert got["cmmd"] == pytest.approx(expected, rel=1e-4)
    assert got["provenance"]["networks"]["clip-vit-l-14-336"]["protocol"] == "clip-vit-l-14-336"


def test_clip_fid_equals_open_clip_on_clean_fid_preprocessing(sets, clip_files) -> None:
    transforms = require_peer("torchvision.transforms")
    real_dir, fake_dir, real, fake = sets
    path, model = clip_files["clip-vit-b-32"]
    crop = transforms.Compose(
        [transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(224)]
    )

    def features(images: np.ndarray) -> np.ndarray:
        pixels = [np.asarray(crop(Image.fromarray(img))) for img in images]
        with torch.inference_mode():
            return model.encode_image(_normalised(pixels, OPENAI)).numpy()

    got = _invoke("fid", str(real_dir), str(fake_dir), "--features", "clip-vit-b-32", "--features-weights", str(path))
    assert got["fid"] == pytest.approx(_frechet(features(real), features(fake)), rel=1e-4)


@pytest.mark.slow
def test_statistics_in_the_dinov2_space(sets, dinov2_file, tmp_path) -> None:
    """stats → fid from the file equals fid from the images, in the CLI and in the Evaluator; a file made
    with other weights, or used in Inception's space, is refused."""
    real_dir, fake_dir, _, fake = sets
    path, state = dinov2_file
    runner = CliRunner()
    weights = ["--features", "dinov2", "--features-weights", str(path), "--device", "cpu", "-q"]
    made = runner.invoke(cli, ["stats", str(real_dir), "-o", str(tmp_path / "real.npz"), *weights])
    assert made.exit_code == 0, made.output
    space = ["--features", "dinov2", "--features-weights", str(path)]
    direct = _invoke("fid", str(real_dir), str(fake_dir), *space, cache=True)
    from_file = _invoke("fid", str(tmp_path / "real.npz"), str(fake_dir), *space, cache=True)
    assert from_file["fid"] == pytest.approx(direct["fid"], rel=1e-9)

    evaluator = ganeval.Evaluator(
        tmp_path / "real.npz", metrics=("fid",), features="dinov2", features_weights=path, device="cpu", progress=False
    )
    evaluator.update(torch.from_numpy(fake).permute(0, 3, 1, 2))
    assert evaluator.compute()["fid"] == pytest.approx(direct["fid"], rel=1e-6)

    other = tmp_path / "other.pth"
    torch.save({key: value * 1.01 for key, value in state.items()}, other)
    refused = runner.invoke(
        cli,
        ["fid", str(tmp_path / "real.npz"), str(fake_dir), "--features", "dinov2", "--features-weights", str(other)],
    )
    assert refused.exit_code != 0 and "weights_sha256" in refused.output and "Traceback" not in refused.output
    inception = runner.invoke(cli, ["fid", str(tmp_path / "real.npz"), str(fake_dir)])
    assert inception.exit_code != 0 and "dinov2:cls" in inception.output


def test_features_weights_without_a_network_is_one_line(sets, dinov2_file) -> None:
    real_dir, fake_dir, _, _ = sets
    result = CliRunner().invoke(cli, ["fid", str(real_dir), str(fake_dir), "--features-weights", str(dinov2_file[0])])
    assert result.exit_code != 0
    assert "--features-weights is for the network of --features" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_weights_command_describes_each_network(dinov2_file, clip_files) -> None:
    runner = CliRunner()
    for features, path in (("dinov2", dinov2_file[0]), ("clip-vit-b-32", clip_files["clip-vit-b-32"][0])):
        result = runner.invoke(cli, ["weights", "--features", features, "--weights", str(path), "--json"])
        assert result.exit_code == 0, result.output
        info = json.loads(result.stdout)
        assert info["weights_sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
        assert info["weights_standard"] is False
