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
    state = {k: torch.randn(v.shape, generator=generator) * 0.02 for k, v in VGG16Features().state_dict().items()}
    path = tmp_path_factory.mktemp("vgg") / "vgg-seeded.pth"
    torch.save(state, path)
    return path


@pytest.mark.slow
def test_fid_kid_and_pr_in_the_vgg16_space_and_its_statistics(image_dirs, extractor, vgg_weights, tmp_path) -> None:
    """The API and the CLI in the VGG16 space; each VGG16 load is ~2 s (a 553 MB file), so one test."""
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
    vgg = VGGExtractor(weights=vgg_weights, device="cpu")
    rows = [
        ganeval.compute_features(side, extractor, vgg=vgg, parts=["vgg16:fc2"], progress=False).parts["vgg16:fc2"].rows
        for side in (real, fake)
    ]
    assert rows[0].shape == (8, 4096)
    assert result["fid"] == pytest.approx(fid_of_rows(*rows), rel=1e-9)
    assert result["kid"] == pytest.approx(
        kernel_inception_distance(*rows, subsets=100, subset_size=4, seed=2020).mean, rel=1e-12
    )
    expected = precision_recall_density_coverage(*rows, seed=2020)
    assert (result["precision"], result["recall"]) == (expected.precision, expected.recall)
    assert result.provenance["features"] == "vgg16" and result.provenance["fid"]["part"] == "vgg16:fc2"
    assert result.provenance["pr_features"] == "vgg16"
    inception = ganeval.fid(real, fake, extractor=extractor, progress=False)
    assert result["fid"] != pytest.approx(inception["fid"]) and "features" not in inception.provenance

    runner, env = CliRunner(), {"GANEVAL_VGG16_WEIGHTS": str(vgg_weights)}
    stats = runner.invoke(
        cli,
        ["stats", str(real), "-o", str(tmp_path / "v.npz"), "--features", "vgg16", "--device", "cpu", "-q"],
        env=env,
    )
    assert stats.exit_code == 0 and "part vgg16:fc2" in stats.output, stats.output
    from_file = runner.invoke(
        cli,
        ["fid", str(tmp_path / "v.npz"), str(fake), "--json", "--features", "vgg16", "--device", "cpu", "-q"],
        env=env,
    )
    assert json.loads(from_file.stdout)["fid"] == pytest.approx(result["fid"], rel=1e-9)
    refused = runner.invoke(cli, ["fid", str(tmp_path / "v.npz"), str(fake), "-q"])
    assert refused.exit_code == 2 and "vgg16:fc2" in refused.output


def test_an_unknown_feature_space_is_a_clear_error(image_dirs) -> None:
    real, fake = image_dirs
    with pytest.raises(BadInputError, match="features 'pixels': no such feature space; choose from inception, vgg16"):
        ganeval.fid(real, fake, features="pixels")
    assert np.isfinite(0.0)
