"""The training-loop API: Evaluator.update/compute/score against the CLI on the same images saved as PNG,
the input conventions, the generator's mode and torch's RNG restored, seeded repeats, streaming FID,
errors on the first bad batch, and nothing written to disk while scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ganeval
from ganeval.batches import quantise
from ganeval.cli import cli
from ganeval.errors import BadInputError

torchvision_utils = pytest.importorskip("torchvision.utils")


class TinyGenerator(torch.nn.Module):
    """z (B, 16) → tanh images (B, 3, 32, 32), with BatchNorm so that train/eval mode matters."""

    z_dim = 16

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.project = torch.nn.Linear(16, 3 * 8 * 8)
        self.norm = torch.nn.BatchNorm2d(3)
        self.calls = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        x = self.norm(self.project(z).view(-1, 3, 8, 8))
        return torch.tanh(torch.nn.functional.interpolate(x, size=32, mode="bilinear", align_corners=False))


def fake_tensor(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=generator) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=32, mode="bicubic", align_corners=False).clamp(-1.2, 1.2)


def save_pngs(images: torch.Tensor, folder: Path, value_range: tuple[float, float] | None) -> Path:
    """Save each image as a user would: torchvision's save_image (normalize over value_range)."""
    folder.mkdir()
    for i, image in enumerate(images):
        if value_range is None:
            torchvision_utils.save_image(image.float() / 255, folder / f"{i:03d}.png")
        else:
            torchvision_utils.save_image(image, folder / f"{i:03d}.png", normalize=True, value_range=value_range)
    return folder


@pytest.mark.slow
def test_api_equals_cli_on_the_same_images_saved_as_png(image_dirs, full_weights_file, tmp_path) -> None:
    real, _ = image_dirs
    fake = fake_tensor(8, seed=1)  # values beyond [-1, 1] too: both paths clamp
    folder = save_pngs(fake, tmp_path / "fake", (-1, 1))
    metrics = ("fid", "kid", "is", "pr")
    ev = ganeval.Evaluator(
        real, metrics=metrics, weights=full_weights_file, batch_size=8, is_splits=2, device="cpu", progress=False
    )
    ev.update(fake[:5])
    ev.update(fake[5:])
    ours = ev.compute()
    out = CliRunner().invoke(
        cli,
        [
            "score",
            str(real),
            str(folder),
            "--metrics",
            ",".join(metrics),
            "--json",
            "-q",
            "--weights",
            str(full_weights_file),
            "--batch-size",
            "8",
            "--is-splits",
            "2",
        ],
        catch_exceptions=False,
    )
    assert out.exit_code == 0, out.output
    theirs = json.loads(out.stdout)
    assert set(ours) == {k for k in theirs if k not in ("n_real", "n_fake", "provenance", "warnings")}
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key], rel=1e-6, abs=1e-12), key
    assert ours["fid"] > 1.0
    doc = ours.to_dict()
    assert doc["n_real"] == theirs["n_real"] == 8 and doc["n_fake"] == theirs["n_fake"] == 8
    for key in ("extractor", "weights_sha256", "mode", "seed", "kid", "is", "pr"):
        assert doc["provenance"][key] == theirs["provenance"][key], key
    assert doc["provenance"]["fake"] == {"source": "update() batches", "kind": "stream", "n": 8}
    assert doc["provenance"]["input_range"] == [-1.0, 1.0]
    assert "fid=" in repr(ours) and ours["fid"] == doc["fid"]


def test_swd_from_batches_equals_swd_of_the_saved_folder(image_dirs, tmp_path) -> None:
    real, _ = image_dirs
    fake = fake_tensor(8, seed=11)
    folder = save_pngs(fake, tmp_path / "fake", (-1, 1))
    ev = ganeval.Evaluator(real, metrics=("swd",), batch_size=8, device="cpu", progress=False)
    ev.update(fake[:3])
    ev.update(fake[3:])
    ours = ev.compute()
    theirs = ganeval.swd(real, folder, batch_size=8, progress=False)
    assert ours["swd"] == pytest.approx(theirs["swd"], rel=1e-6) and ours["swd"] > 0
    assert ours["swd_levels"] == pytest.approx(theirs["swd_levels"], rel=1e-6)


@pytest.mark.parametrize("convention", ["0,1", "uint8", "nhwc-uint8-array", "grayscale"])
@pytest.mark.slow
def test_other_input_conventions_equal_their_pngs(convention, image_dirs, extractor, tmp_path) -> None:
    real, _ = image_dirs
    base = (fake_tensor(6, seed=2) + 1) / 2
    if convention == "0,1":
        batch, saved, input_range = base, save_pngs(base, tmp_path / "f", (0, 1)), "0,1"
    elif convention == "grayscale":
        gray = base[:, :1]
        batch, saved, input_range = gray, save_pngs(gray, tmp_path / "f", (0, 1)), (0, 1)
    else:
        as_uint8 = quantise(base, (0.0, 1.0))
        saved = save_pngs(as_uint8, tmp_path / "f", None)
        batch = as_uint8 if convention == "uint8" else as_uint8.permute(0, 2, 3, 1).numpy()
        input_range = "-1,1"  # ignored for uint8
    ev = ganeval.Evaluator(real, batch_size=8, device="cpu", progress=False, input_range=input_range)
    ev.update(batch)
    expected = ganeval.fid(real, saved, batch_size=8, progress=False)
    assert ev.compute()["fid"] == pytest.approx(expected["fid"], rel=1e-6)


def test_quantise_is_save_image() -> None:
    x = torch.linspace(-1.3, 1.3, 3 * 40 * 50).reshape(1, 3, 40, 50)
    ours = quantise(x, (-1.0, 1.0))[0]
    grid = torchvision_utils.make_grid(x, normalize=True, value_range=(-1, 1))
    theirs = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    assert torch.equal(ours, theirs)


@pytest.mark.slow
def test_score_restores_modes_and_rng_and_repeats_exactly(image_dirs, extractor) -> None:
    real, _ = image_dirs
    ev = ganeval.Evaluator(
        real, metrics=("fid", "kid"), num_samples=10, batch_size=4, seed=3, device="cpu", progress=False
    )
    generator = TinyGenerator()
    generator.train()
    generator.norm.eval()  # a mixed state must come back exactly
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = ev.score(generator)
    assert torch.equal(torch.get_rng_state(), state)
    assert generator.training is True and generator.project.training is True and generator.norm.training is False
    assert generator.calls == 3  # 4 + 4 + 2 images
    second = ev.score(generator)
    assert first.to_dict()["fid"] == second.to_dict()["fid"] and first["kid"] == second["kid"]
    assert first.n_fake == 10 and first.provenance["generator"]["latent_shape"] == [16]
    other_seed = ganeval.Evaluator(
        real, metrics=("fid",), num_samples=10, batch_size=4, seed=4, device="cpu", progress=False
    ).score(generator)
    assert other_seed["fid"] != first["fid"]

    # A callable generator drawing from torch's global RNG is seeded too, and the state restored.
    def sample(count: int) -> torch.Tensor:
        return torch.rand(count, 3, 32, 32) * 2 - 1

    a, b = ev.score(sample, num_samples=6), ev.score(sample, num_samples=6)
    assert a["fid"] == b["fid"] and torch.equal(torch.get_rng_state(), state)


@pytest.mark.slow
def test_streaming_fid_keeps_no_features_and_equals_stored_features(image_dirs, extractor) -> None:
    real, _ = image_dirs
    fake = fake_tensor(12, seed=5)
    streaming = ganeval.Evaluator(real, metrics=("fid",), batch_size=8, device="cpu", progress=False)
    stored = ganeval.Evaluator(real, metrics=("fid", "kid"), batch_size=8, device="cpu", progress=False)
    assert not streaming.keeps_features and stored.keeps_features
    for ev in (streaming, stored):
        for chunk in fake.split(5):
            ev.update(chunk)
    from ganeval.parts import POOL3

    assert streaming._accumulators[POOL3]._rows == [] and sum(len(p) for p in stored._accumulators[POOL3]._rows) == 12
    from_sums = streaming.compute()["fid"]
    rows = np.concatenate(stored._accumulators[POOL3]._rows).astype(np.float64)
    mu, sigma = stored._real.vector(POOL3).moments()
    from_rows = ganeval.frechet_distance(mu, sigma, rows.mean(0), np.cov(rows, rowvar=False))
    # 12 images: rank-deficient covariances, where round-off shows at ~1e-8 (docs/how-fid-is-computed.md).
    assert from_sums == pytest.approx(from_rows, rel=1e-7)
    assert stored.compute()["fid"] == from_sums  # the same running sums either way
    streaming.reset()
    with pytest.raises(BadInputError, match="0 fake image"):
        streaming.compute()


@pytest.mark.parametrize(
    "batch,message",
    [
        (
            torch.zeros(2, 3, 32),
            r"update\(\) batch 1: expected images of shape \(B, C, H, W\) with C = 1 or 3, got \(2, 3, 32\)",
        ),
        (torch.zeros(2, 4, 32, 32), r"C = 1 or 3, got \(2, 4, 32, 32\)"),
        (
            torch.zeros(2, 3, 32, 32, dtype=torch.int64),
            r"expected float images in \[-1.0, 1.0\] or uint8, got dtype torch.int64",
        ),
        (
            torch.zeros(2, 3, 32, 32).index_put_((torch.tensor([1]),), torch.tensor(float("nan"))),
            r"image 1 contains NaN",
        ),
        ([[0.0]], r"expected a tensor of images \(B, C, H, W\), got list"),
    ],
)
def test_bad_batches_fail_on_the_first_batch(batch, message, image_dirs, extractor) -> None:
    real, _ = image_dirs
    ev = ganeval.Evaluator(real, metrics=("fid",), batch_size=8, device="cpu", progress=False)
    with pytest.raises(BadInputError, match=message):
        ev.update(batch)


def test_generator_errors_name_what_was_expected(image_dirs, extractor) -> None:
    real, _ = image_dirs
    ev = ganeval.Evaluator(real, metrics=("fid",), num_samples=8, batch_size=4, device="cpu", progress=False)
    calls = []

    def wrong_count(count: int) -> torch.Tensor:
        calls.append(count)
        return torch.zeros(count + 1, 3, 32, 32)

    with pytest.raises(BadInputError, match="generator batch 1: asked for 4 images, got 5"):
        ev.score(wrong_count)
    assert calls == [4]

    def growing(count: int) -> torch.Tensor:
        calls.append(count)
        return torch.zeros(count, 3, 32 + len(calls), 32)

    with pytest.raises(
        BadInputError,
        match=r"generator batch 2: images of shape \(C, H, W\) = \(3, 35, 32\), but the "
        r"first batch had \(3, 34, 32\)",
    ):
        ev.score(growing)
    module = torch.nn.Linear(4, 4)
    with pytest.raises(BadInputError, match="Linear has no z_dim attribute: pass z_dim="):
        ev.score(module)


@pytest.mark.slow
def test_range_hint_and_reference_rules(image_dirs, extractor, tmp_path) -> None:
    real, _ = image_dirs
    ev = ganeval.Evaluator(real, metrics=("fid",), batch_size=8, device="cpu", progress=False)
    ev.update(((fake_tensor(4, seed=6) + 1) / 2).clamp(0, 1))  # [0, 1] images under the default (-1, 1)
    assert any("pass input_range='0,1'" in w for w in ev.compute().warnings)

    stats = ganeval.save_statistics(ganeval.statistics(real, progress=False), tmp_path / "real.npz")
    with pytest.raises(BadInputError, match="real.npz holds only statistics"):
        ganeval.Evaluator(stats, metrics=("fid", "kid"), device="cpu")
    from_stats = ganeval.Evaluator(stats, metrics=("fid",), batch_size=8, device="cpu", progress=False)
    from_folder = ganeval.Evaluator(real, metrics=("fid",), batch_size=8, device="cpu", progress=False)
    fake = fake_tensor(6, seed=8)
    from_stats.update(fake)
    from_folder.update(fake)
    assert from_stats.compute()["fid"] == pytest.approx(from_folder.compute()["fid"], rel=1e-9)
    with pytest.raises(BadInputError, match="unknown metric"):
        ganeval.Evaluator(real, metrics=("fid", "bogus"))


@pytest.mark.slow
def test_score_writes_nothing_to_disk(image_dirs, extractor, ganeval_home) -> None:
    real, _ = image_dirs
    ev = ganeval.Evaluator(real, metrics=("fid", "kid"), num_samples=6, batch_size=4, device="cpu", progress=False)
    before = {p: p.stat().st_mtime_ns for p in Path(ganeval_home).rglob("*")}
    ev.score(TinyGenerator())
    ev.update(fake_tensor(3, seed=9))
    ev.compute()
    assert {p: p.stat().st_mtime_ns for p in Path(ganeval_home).rglob("*")} == before
