"""`ganeval compat` and the modes as a user meets them: every mode side by side, each equal to its own
single-mode run; modes never share cache entries or statistics; the per-image stage of `clean` runs in the
decode pass exactly as on an in-memory batch; the JPEG/PNG mismatch warning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ganeval
from conftest import smooth_images, write_images
from ganeval.cli import cli
from ganeval.errors import IncompatibleStatsError
from ganeval.extractors.inception import Extractor
from ganeval.preprocess import MODES
from ganeval.sources import ArraySource, jpeg_mismatch


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.slow
def test_compat_lists_every_mode_equal_to_its_own_run(image_dirs) -> None:
    real, fake = image_dirs
    single = {mode: ganeval.fid(real, fake, mode=mode, batch_size=8, progress=False)["fid"] for mode in MODES}
    assert len({round(value, 3) for value in single.values()}) == 3  # the modes give different numbers

    out = run("compat", str(real), str(fake), "--json", "--quiet")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert [row["mode"] for row in doc["modes"]] == ["tf", "pytorch-fid", "clean"]
    for row in doc["modes"]:
        assert row["fid"] == pytest.approx(single[row["mode"]], rel=1e-12)
        assert row["same_as"] and row["differs"]
    assert doc["modes"][0]["vs_tf"] is None
    assert doc["modes"][2]["vs_tf"] == pytest.approx(single["clean"] / single["tf"] - 1)
    assert doc["n_real"] == 8 and doc["provenance"]["extractor"] == "inception-v3-tf-2015-12-05"
    assert doc["provenance"]["real"]["cached"] is True  # every mode came from its cache entry above

    text = run("compat", str(real), str(fake), "--modes", "clean,tf")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["MODE", "FID", "VS", "TF", "SAME", "NUMBERS", "AS"]
    assert lines[1].split()[:2] == ["clean", f"{single['clean']:.4f}"] and "clean-fid" in lines[1]
    assert lines[2].split()[:2] == ["tf", f"{single['tf']:.4f}"] and "torch-fidelity" in lines[2]
    assert f"{single['clean'] / single['tf'] - 1:+.2%}" in lines[1]
    assert any(line.strip().startswith("clean") and "PIL bicubic" in line for line in lines[4:])
    assert "modes clean,tf" in text.stderr


def test_compat_refuses_statistics_files_and_unknown_modes(image_dirs, tmp_path) -> None:
    real, fake = image_dirs
    assert run("stats", str(real), "-o", str(tmp_path / "real.npz"), "-q").exit_code == 0
    out = run("compat", str(tmp_path / "real.npz"), str(fake))
    assert out.exit_code == 2 and "real.npz holds statistics made in one preprocessing mode" in out.stderr
    bad = run("compat", str(real), str(fake), "--modes", "tf,bogus")
    assert bad.exit_code == 2 and "unknown mode(s) bogus" in bad.output


@pytest.mark.slow
def test_modes_never_share_cache_entries_or_statistics(tmp_path, fresh_home) -> None:
    real = write_images(tmp_path / "real", smooth_images(4, 32, seed=31))
    fake = write_images(tmp_path / "fake", smooth_images(4, 32, seed=32, shift=40))
    options = {"batch_size": 4, "progress": False}
    tf = ganeval.fid(real, fake, **options)
    clean = ganeval.fid(real, fake, mode="clean", **options)
    assert clean.provenance["real"]["cached"] is False  # the tf entry was not reused
    again = ganeval.fid(real, fake, mode="clean", **options)
    assert again.provenance["real"]["cached"] is True and again["fid"] == clean["fid"] != tf["fid"]
    assert len(list((fresh_home / "features").glob("*.npz"))) == 4  # 2 sets × 2 modes

    clean_stats = ganeval.save_statistics(ganeval.statistics(real, mode="clean", progress=False), tmp_path / "c.npz")
    with pytest.raises(IncompatibleStatsError, match="preprocessing mode 'clean' vs 'tf'"):
        ganeval.fid(clean_stats, fake, **options)
    assert ganeval.fid(clean_stats, fake, mode="clean", **options)["fid"] == pytest.approx(clean["fid"], rel=1e-9)
    out = run("fid", str(clean_stats), str(fake), "--mode", "pytorch-fid", "-q")
    assert out.exit_code == 2 and "preprocessing mode 'clean' vs 'pytorch-fid'" in out.stderr


def test_clean_stage_in_the_decode_pass_equals_an_in_memory_batch(trunk_info) -> None:
    images = smooth_images(3, 40, seed=33)
    extractor = Extractor(mode="clean", device="cpu", batch_size=2)
    features = extractor.extract(ArraySource(images, "array"), progress=False)
    from_list, _ = extractor.forward(list(images))
    from_tensor, _ = extractor.forward(torch.from_numpy(images).permute(0, 3, 1, 2))
    assert np.abs(features.pool3 - from_list).max() <= 1e-5
    assert np.abs(from_tensor - from_list).max() <= 1e-5
    assert features.provenance["mode"] == "clean"


def test_jpeg_mismatch_warning() -> None:
    pngs, jpegs = ["a.png", "b.png"], ["a.jpg", "b.JPEG"]
    assert jpeg_mismatch(pngs, pngs) is None and jpeg_mismatch(jpegs, jpegs) is None
    assert jpeg_mismatch([], jpegs) is None  # a statistics file has no names
    message = jpeg_mismatch(pngs, jpegs + ["c.png"])
    assert message is not None and message.startswith("real has 0 of 2 images as JPEG and fake 2 of 3")
