"""The compatibility modes against the peers themselves, on the same images and the same weights file (the
real trunk with a seeded classifier, placed where each peer looks for it in torch hub's cache; the
network is blocked, so nothing else can be loaded):

* ``pytorch-fid`` mode: pool3 and FID equal pytorch-fid's; its statistics files work both ways; clean-fid's
  ``legacy_pytorch`` agrees too.
* ``tf`` mode: FID equals torch-fidelity's, with torch-fidelity loading from the hub.
* ``clean`` mode: the resize equals clean-fid's resize function bit for bit, and pool3 and FID equal
  clean-fid's own pipeline (file reading, resize, normalisation, FID). clean-fid runs its ``clean`` mode on
  NVIDIA's TorchScript file, which cannot be had offline; its wrapper is given our network instead, which the
  tests above show equal to pytorch-fid's and torch-fidelity's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganeval
from conftest import require_peer, smooth_images, write_images
from ganeval.api import compute_features
from ganeval.extractors.inception import Extractor
from ganeval.preprocess import pil_bicubic_float

pytestmark = pytest.mark.peers

pytorch_fid_score = require_peer("pytorch_fid.fid_score")
pytorch_fid_inception = require_peer("pytorch_fid.inception")
torch_fidelity = require_peer("torch_fidelity")
cleanfid_fid = require_peer("cleanfid.fid")
cleanfid_resize = require_peer("cleanfid.resize")


@pytest.fixture(scope="module")
def peer_hub(full_weights_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """$TORCH_HOME for this module, holding the weights under the file names in the peers' download URLs."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    home = tmp_path_factory.mktemp("peer-torch-home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for url in (pytorch_fid_inception.FID_WEIGHTS_URL, URL_INCEPTION_V3):
        shutil.copyfile(full_weights_file, checkpoints / os.path.basename(url))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(home))
        yield checkpoints


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """real: 8 PNG 32×32; fake: 8 JPEG 40×48 (quality 90, non-square); large: 3 PNG 400×320 (downscaled)."""
    root = tmp_path_factory.mktemp("compat")
    fake = root / "fake"
    fake.mkdir()
    for i, image in enumerate(smooth_images(8, 48, seed=12, shift=50)[:, 4:44]):
        Image.fromarray(image).save(fake / f"{i:04d}.jpg", quality=90)
    large = smooth_images(3, 400, seed=13)[:, :, 40:360]
    return {
        "real": write_images(root / "real", smooth_images(8, 32, seed=11)),
        "fake": fake,
        "large": write_images(root / "large", large),
    }


def _ours(folder: Path, weights: Path, mode: str) -> np.ndarray:
    return compute_features(folder, Extractor(weights=weights, mode=mode, device="cpu"), progress=False).pool3


def _pytorch_fid_files(folder: Path) -> list[Path]:
    """The files pytorch-fid reads from a folder, in its order (its own listing rule)."""
    return sorted(f for ext in pytorch_fid_score.IMAGE_EXTENSIONS for f in folder.glob(f"*.{ext}"))


@pytest.mark.parametrize("which", ["real", "fake", "large"])
@pytest.mark.slow
def test_pytorch_fid_mode_pool3_equals_pytorch_fids(which, folders, full_weights_file, peer_hub, no_network) -> None:
    files = _pytorch_fid_files(folders[which])
    model = pytorch_fid_inception.InceptionV3([pytorch_fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    theirs = pytorch_fid_score.get_activations(files, model, batch_size=50, dims=2048, device="cpu", num_workers=0)
    ours = _ours(folders[which], full_weights_file, "pytorch-fid")
    assert ours.shape == theirs.shape == (len(files), 2048)
    assert np.abs(ours - theirs).max() <= 1e-4
    # Not the tf numbers: the modes really differ on these images.
    assert np.abs(_ours(folders[which], full_weights_file, "tf") - theirs).max() > 1e-2


@pytest.mark.slow
def test_pytorch_fid_mode_fid_and_statistics_files_equal_pytorch_fids(
    folders, full_weights_file, peer_hub, no_network, tmp_path
) -> None:
    real, fake = str(folders["real"]), str(folders["fake"])
    theirs = pytorch_fid_score.calculate_fid_given_paths([real, fake], 50, "cpu", 2048, num_workers=0)
    ours = ganeval.fid(real, fake, mode="pytorch-fid", weights=full_weights_file, progress=False)
    assert ours["fid"] == pytest.approx(theirs, rel=1e-4) and theirs > 1.0
    assert ours.provenance["mode"] == "pytorch-fid"
    tf = ganeval.fid(real, fake, mode="tf", weights=full_weights_file, progress=False)["fid"]
    assert abs(tf - theirs) > 1e-3 * theirs

    # Our statistics file, read by pytorch-fid's own reader (its layout: mu and sigma; our extra keys are
    # ignored); the FIDs above already agree, so equal statistics are equal FIDs.
    ours_stats = ganeval.statistics(real, mode="pytorch-fid", weights=full_weights_file, progress=False)
    ours_npz = ganeval.save_statistics(ours_stats, tmp_path / "ours.npz")
    mu, sigma = pytorch_fid_score.compute_statistics_of_path(str(ours_npz), None, 50, 2048, "cpu", num_workers=0)
    assert np.array_equal(mu, ours_stats.mu) and np.array_equal(sigma, ours_stats.sigma)
    # pytorch-fid's --save-stats file, read by us: same FID, with a warning that it carries no provenance.
    theirs_npz = tmp_path / "theirs.npz"
    pytorch_fid_score.save_fid_stats([real, str(theirs_npz)], 50, "cpu", 2048, num_workers=0)
    from_theirs = ganeval.fid(theirs_npz, fake, mode="pytorch-fid", weights=full_weights_file, progress=False)
    assert from_theirs["fid"] == pytest.approx(theirs, rel=1e-4)
    assert any("carries no provenance" in w for w in from_theirs.warnings)


def test_clean_fid_legacy_pytorch_agrees_with_pytorch_fid_mode(
    folders, full_weights_file, peer_hub, no_network
) -> None:
    from cleanfid.features import build_feature_extractor

    model = build_feature_extractor("legacy_pytorch", device=torch.device("cpu"), use_dataparallel=False)
    theirs = cleanfid_fid.get_folder_features(
        str(folders["large"]),
        model,
        num_workers=0,
        batch_size=8,
        device=torch.device("cpu"),
        mode="legacy_pytorch",
        verbose=False,
    )
    assert np.abs(_ours(folders["large"], full_weights_file, "pytorch-fid") - theirs).max() <= 1e-4


@pytest.mark.slow
def test_tf_mode_fid_equals_torch_fidelity_loading_from_the_hub(
    folders, full_weights_file, peer_hub, no_network
) -> None:
    real, fake = str(folders["real"]), str(folders["fake"])
    theirs = torch_fidelity.calculate_metrics(
        input1=real, input2=fake, fid=True, cache=False, verbose=False, batch_size=8, cuda=False
    )["frechet_inception_distance"]
    ours = ganeval.fid(real, fake, mode="tf", weights=full_weights_file, progress=False)
    assert ours["fid"] == pytest.approx(theirs, rel=1e-4) and theirs > 1.0


def test_clean_resize_equals_clean_fids_bit_for_bit() -> None:
    resize = cleanfid_resize.build_resizer("clean")
    rng = np.random.default_rng(0)
    shapes = [(32, 32), (28, 28), (64, 48), (299, 299), (300, 298), (512, 512), (1, 1), (2, 700), (1024, 37)]
    for h, w in shapes:
        for image in (
            rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
            np.repeat(rng.integers(0, 256, (h, w, 1), dtype=np.uint8), 3, axis=2),
            np.full((h, w, 3), 255, np.uint8),
        ):
            theirs, ours = resize(image), pil_bicubic_float(image)
            assert ours.dtype == theirs.dtype == np.float32
            assert ours.shape == theirs.shape == (299, 299, 3)
            assert ours.tobytes() == theirs.tobytes(), (h, w)


def _clean_fid_model(weights: Path) -> torch.nn.Module:
    """clean-fid's own network wrapper (InceptionV3W: (x − 128) / 128, then the layers) around our network."""
    from cleanfid.inception_torchscript import InceptionV3W

    network = Extractor(weights=weights, device="cpu").model

    class Layers(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.network(x).pool3

    wrapper = InceptionV3W.__new__(InceptionV3W)
    torch.nn.Module.__init__(wrapper)
    wrapper.layers, wrapper.resize_inside = Layers(), False
    return wrapper.eval()


@pytest.mark.slow
def test_clean_mode_pool3_and_fid_equal_clean_fids_pipeline(folders, full_weights_file, no_network) -> None:
    model = _clean_fid_model(full_weights_file)
    feats = {}
    for which in ("real", "fake", "large"):
        with torch.inference_mode():
            feats[which] = cleanfid_fid.get_folder_features(
                str(folders[which]),
                model,
                num_workers=0,
                batch_size=8,
                device=torch.device("cpu"),
                mode="clean",
                verbose=False,
            )
        ours = _ours(folders[which], full_weights_file, "clean")
        assert ours.shape == feats[which].shape
        assert np.abs(ours - feats[which]).max() <= 1e-4
        assert np.abs(_ours(folders[which], full_weights_file, "tf") - feats[which]).max() > 1e-2
    theirs = cleanfid_fid.fid_from_feats(feats["real"], feats["fake"])
    ours = ganeval.fid(folders["real"], folders["fake"], mode="clean", weights=full_weights_file, progress=False)
    assert ours["fid"] == pytest.approx(theirs, rel=1e-4) and theirs > 1.0
    # The fakes are JPEG and the reals PNG: decoded the same way as clean-fid (PIL), and flagged.
    assert any("JPEG" in w and "Parmar" in w for w in ours.warnings)
