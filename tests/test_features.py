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
from ganeval.metrics.fid import fid_of_rows
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
    assert result["fid"] == pytest.approx(fid_of_rows(*rows), rel=1e-9)
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
        ["fid", str(real), str(fake), "--json", "--features", "vgg16", "--device", "cpu", "-q"],
        env={"GANEVAL_VGG16_WEIGHTS": str(vgg_weights)},
    )
    assert json.loads(cli_run.stdout)["fid"] == pytest.approx(result["fid"], rel=1e-9)
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
    assert np.isfinite(0.0)
