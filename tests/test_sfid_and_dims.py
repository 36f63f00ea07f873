"""sFID and FID at 64/192/768 dims end to end: score, the CLI, statistics files, the cache and the Evaluator,
against an obvious numpy Fréchet distance of the same parts (the parts themselves are compared with
torch-fidelity and pytorch-fid in test_inception_taps.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from click.testing import CliRunner

import ganeval
from conftest import smooth_images
from ganeval.cli import cli
from ganeval.errors import BadInputError


def numpy_fd(x: np.ndarray, y: np.ndarray) -> float:
    """FID from the definition: ‖μx − μy‖² + Tr(Σx + Σy − 2 (Σx Σy)^½), scipy's sqrtm."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(sx @ sy).real
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(sx + sy - 2 * root))


def rows(source, extractor, part: str) -> np.ndarray:
    features = ganeval.compute_features(source, extractor, parts=[part], progress=False)
    return features.parts[part].rows


@pytest.mark.parametrize("dims", [64, 192, 768])
def test_fid_at_other_dims_is_the_frechet_distance_of_that_pool(image_dirs, extractor, dims: int) -> None:
    real, fake = image_dirs
    part = {64: "inception:pool_64", 192: "inception:pool_192", 768: "inception:pool_768"}[dims]
    x, y = rows(real, extractor, part), rows(fake, extractor, part)
    assert x.shape == (8, dims)
    result = ganeval.fid(real, fake, dims=dims, extractor=extractor, progress=False)
    assert result["fid"] == pytest.approx(numpy_fd(x, y), rel=1e-6)
    assert result.provenance["fid"] == {"dims": dims, "part": part}
    assert result["fid"] != pytest.approx(ganeval.fid(real, fake, extractor=extractor, progress=False)["fid"])


def test_sfid_is_the_frechet_distance_of_the_spatial_part(image_dirs, extractor) -> None:
    """The part itself is checked against torch-fidelity's hooked Mixed_6d.branch1x1 (test_inception_taps.py)
    and FID's maths against sqrtm (test_fid.py); here: sFID is that maths on that part, end to end."""
    from ganeval.metrics.fid import fid_of_rows

    real, fake = image_dirs
    x, y = rows(real, extractor, "inception:spatial"), rows(fake, extractor, "inception:spatial")
    assert x.shape == (8, 17 * 17 * 7)
    result = ganeval.score(real, fake, ["fid", "sfid"], extractor=extractor, progress=False)
    assert result["sfid"] == pytest.approx(fid_of_rows(x, y), rel=1e-12)
    assert list(result.scores) == ["fid", "sfid"]
    assert "sFID:" in result.text()


def test_statistics_files_record_their_dims_and_refuse_to_mix(image_dirs, extractor, tmp_path) -> None:
    real, fake = image_dirs
    stats768 = ganeval.statistics(real, dims=768, extractor=extractor, progress=False)
    assert stats768.mu.shape == (768,) and stats768.meta["part"] == "inception:pool_768"
    path = ganeval.save_statistics(stats768, tmp_path / "real768.npz")
    direct = ganeval.fid(real, fake, dims=768, extractor=extractor, progress=False)["fid"]
    assert ganeval.fid(path, fake, dims=768, extractor=extractor, progress=False)["fid"] == pytest.approx(
        direct, rel=1e-9
    )
    with pytest.raises(
        BadInputError, match=r"statistics of inception:pool_768 \(768-d\) and inception:pool3 was asked"
    ):
        ganeval.fid(path, fake, extractor=extractor, progress=False)
    pool3 = ganeval.save_statistics(ganeval.statistics(real, extractor=extractor, progress=False), tmp_path / "p.npz")
    with pytest.raises(BadInputError, match="inception:pool_192 was asked"):
        ganeval.fid(pool3, fake, dims=192, extractor=extractor, progress=False)


def test_cli_dims_and_sfid(image_dirs, extractor, tmp_path) -> None:
    real, fake = image_dirs
    runner = CliRunner()
    out = runner.invoke(cli, ["fid", str(real), str(fake), "--dims", "768", "--json", "-q", "--device", "cpu"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["provenance"]["fid"]["dims"] == 768
    assert doc["fid"] == pytest.approx(
        ganeval.fid(real, fake, dims=768, extractor=extractor, progress=False)["fid"], rel=1e-9
    )
    stats = runner.invoke(
        cli, ["stats", str(real), "-o", str(tmp_path / "r768.npz"), "--dims", "768", "-q", "--device", "cpu"]
    )
    assert stats.exit_code == 0 and "part inception:pool_768" in stats.output, stats.output
    from_file = runner.invoke(cli, ["fid", str(tmp_path / "r768.npz"), str(fake), "--dims", "768", "--json", "-q"])
    assert json.loads(from_file.stdout)["fid"] == pytest.approx(doc["fid"], rel=1e-9)
    mixed = runner.invoke(cli, ["fid", str(tmp_path / "r768.npz"), str(fake), "-q"])
    assert mixed.exit_code == 2 and "inception:pool3 was asked" in mixed.output
    sfid = runner.invoke(cli, ["sfid", str(real), str(fake), "--json", "-q", "--device", "cpu"])
    assert sfid.exit_code == 0, sfid.output and "sfid" in json.loads(sfid.stdout)
    refused = runner.invoke(cli, ["sfid", str(real), str(fake), "--dims", "768"])
    assert refused.exit_code == 2 and "No such option" in refused.output


def test_evaluator_dims_and_sfid_equal_score(image_dirs, extractor) -> None:
    real, fake = image_dirs
    ev = ganeval.Evaluator(real, ("fid", "sfid"), dims=192, batch_size=4, device="cpu", progress=False)
    images = torch.from_numpy(smooth_images(8, 32, seed=2, shift=60)).permute(0, 3, 1, 2).contiguous()
    ev.update(images[:5])
    ev.update(images[5:])
    streamed = ev.compute()
    assert not ev.keeps_features
    direct = ganeval.score(real, fake, ["fid", "sfid"], dims=192, extractor=extractor, progress=False)
    for key in ("fid", "sfid"):
        assert streamed[key] == pytest.approx(direct[key], rel=1e-6), key
    assert ev.setup()["dims"] == 192 and "dims" not in ganeval.Evaluator(real, ("fid",), device="cpu").setup()


def test_swd_keeps_the_same_images_in_score_and_evaluator(image_dirs, extractor) -> None:
    """One subset rule (seeded per-index priorities): above swd_images, score on a folder and an Evaluator fed
    the same images in other batch sizes use the same images, so they give the same SWD."""
    from ganeval.extractors.swd_pixels import chosen

    real, fake = image_dirs
    kept = chosen(2020, 8, 5)
    assert len(kept) == 5 and list(kept) != [0, 1, 2, 3, 4]
    direct = ganeval.swd(real, fake, swd_images=5, progress=False)
    assert direct.provenance["swd"]["images_fake"] == 5
    ev = ganeval.Evaluator(real, ("swd",), swd_images=5, batch_size=3, device="cpu", progress=False)
    images = torch.from_numpy(smooth_images(8, 32, seed=2, shift=60)).permute(0, 3, 1, 2).contiguous()
    for start in range(0, 8, 3):
        ev.update(images[start : start + 3])
    assert ev.compute()["swd"] == pytest.approx(direct["swd"], rel=1e-6)
