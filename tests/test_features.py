"""--features: FID, KID and precision/recall in another extractor's vector space (VGG16 fc2 here, seeded
random weights in torchvision's layout), against the pure functions on that space's rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ganeval
from ganeval.cli import cli
from ganeval.errors import BadInputError
from ganeval.metrics.kid import kernel_inception_distance
from ganeval.metrics.prdc import precision_recall_density_coverage


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory: pytest.TempPathFactory):
    from ganeval.vgg import VGG16Features

    generator = torch.Generator().manual_seed(11)
    # float16 halves the file (277 MB): every load and sha256 of it is I/O; the layout takes any float dtype
    state = {
        k: (torch.randn(v.shape, generator=generator) * 0.02).half() for k, v in VGG16Features().state_dict().items()
    }
    path = tmp_path_factory.mktemp("vgg") / "vgg-seeded.pth"
    torch.save(state, path)
    return path


def _fid_from_grams(x: np.ndarray, y: np.ndarray) -> float:
    """FID of rows x (n, D) and y (m, D) with n, m ≤ D, without a D×D eigendecomposition: the non-zero
    eigenvalues of Σx·Σy are those of the n×n matrix Xc·Ycᵀ·Yc·Xcᵀ / ((n−1)(m−1)) (Xc, Yc centred)."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    xc, yc = x - x.mean(0), y - y.mean(0)
    cross = xc @ yc.T
    values = np.linalg.eigvalsh(cross @ cross.T / ((len(x) - 1) * (len(y) - 1)))
    trace_sqrt = np.sqrt(np.clip(values, 0, None)).sum()
    traces = (xc**2).sum() / (len(x) - 1) + (yc**2).sum() / (len(y) - 1)
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + traces - 2 * trace_sqrt)


@pytest.mark.slow
def test_fid_kid_and_pr_in_the_vgg16_space(image_dirs, extractor, vgg_weights, fresh_home, decode_counter) -> None:
    """The API and the CLI in the VGG16 space, from one decode pass; each VGG16 load is ~2 s (a 553 MB
    file), so one test. (pr_features="vgg16" with FID on pool3: test_score.py.)"""
    from ganeval.vgg import VGGExtractor

    real, fake = image_dirs
    result = ganeval.score(
        real,
        fake,
        ["fid", "kid", "pr"],
        features="vgg16",
        vgg_weights=vgg_weights,
        kid_subset_size=4,
        extractor=extractor,
        progress=False,
    )
    assert len(decode_counter) == 16
    vgg = VGGExtractor(weights=vgg_weights, device="cpu")
    rows = [
        ganeval.compute_features(side, extractor, vgg=vgg, parts=["vgg16:fc2"], progress=False).parts["vgg16:fc2"].rows
        for side in (real, fake)
    ]
    assert len(decode_counter) == 16, "the VGG16 rows came from the cache"
    assert rows[0].shape == (8, 4096)
    assert result["fid"] == pytest.approx(_fid_from_grams(*rows), rel=1e-6)
    assert result["kid"] == pytest.approx(
        kernel_inception_distance(*rows, subsets=100, subset_size=4, seed=2020).mean, rel=1e-12
    )
    expected = precision_recall_density_coverage(*rows, seed=2020)
    assert (result["precision"], result["recall"]) == (expected.precision, expected.recall)
    assert result.provenance["features"] == "vgg16" and result.provenance["fid"]["part"] == "vgg16:fc2"
    assert result.provenance["pr_features"] == "vgg16"
    assert any("non-standard VGG16 weights" in w for w in result.warnings)
    cli_run = CliRunner().invoke(
        cli,
        [
            "kid",
            str(real),
            str(fake),
            "--json",
            "--features",
            "vgg16",
            "--kid-subset-size",
            "4",
            "--device",
            "cpu",
            "-q",
        ],
        env={"GANEVAL_VGG16_WEIGHTS": str(vgg_weights)},
    )
    assert json.loads(cli_run.stdout)["kid"] == pytest.approx(result["kid"], rel=1e-12)
    assert len(decode_counter) == 16
    # --pr-features vgg16 alone: the published P/R protocol next to FID on pool3 (the VGG16 rows cached)
    published = ganeval.score(
        real, fake, ["fid", "pr"], pr_features="vgg16", vgg_weights=vgg_weights, extractor=extractor, progress=False
    )
    assert (published["precision"], published["recall"], published["density"], published["coverage"]) == (
        expected.precision,
        expected.recall,
        expected.density,
        expected.coverage,
    )
    assert published["fid"] == ganeval.fid(real, fake, extractor=extractor, progress=False)["fid"]
    assert published.provenance["pr"]["pr_weights_standard"] is False and "features" not in published.provenance


def test_an_unknown_feature_space_is_a_clear_error(image_dirs) -> None:
    real, fake = image_dirs
    with pytest.raises(BadInputError, match="features 'pixels': no such feature space; choose from inception, vgg16"):
        ganeval.fid(real, fake, features="pixels")
