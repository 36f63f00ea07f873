"""The TensorFlow path against the independent reference: torch-fidelity's own feature extractor and FID,
loading the same full-layout weights file (real trunk + seeded classifier), with its network blocked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import require_peer, smooth_images

pytestmark = pytest.mark.peers

torch_fidelity = require_peer("torch_fidelity")


def _fidelity_extractor(weights_path):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    return FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased", "logits"], feature_extractor_weights_path=str(weights_path)
    )


def test_pool3_and_logits_match_torch_fidelity(full_extractor, full_weights_file, no_network) -> None:
    # Mixed sizes: upsampling (32, 50 px), identity (299 px) and downsampling (320×400 px).
    batches = [smooth_images(3, 32, seed=5), smooth_images(2, 50, seed=6), smooth_images(1, 299, seed=7)]
    wide = np.concatenate([smooth_images(1, 400, seed=8)[:, :320]])
    batches.append(wide)
    reference = _fidelity_extractor(full_weights_file)
    for images in batches:
        ours_pool3, ours_logits = full_extractor.forward(list(images))
        with torch.inference_mode():
            ref_pool3, ref_unbiased, _ = reference(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
        assert np.abs(ours_pool3 - ref_pool3.numpy()).max() <= 1e-4
        assert np.abs(ours_logits - ref_unbiased.numpy()).max() <= 1e-4
    # The full logits (with bias) come out of the same forward.
    x = full_extractor.preprocess(torch.from_numpy(batches[0]).permute(0, 3, 1, 2))
    with torch.inference_mode():
        out = full_extractor.model(x)
    bias = full_extractor.model.fc.bias
    assert torch.allclose(out.logits, out.logits_unbiased + bias)


@pytest.mark.slow
def test_fid_matches_torch_fidelity(image_dirs, full_weights_file, no_network) -> None:
    import ganeval

    real, fake = image_dirs
    ours = ganeval.fid(real, fake, weights=full_weights_file, cache=False, batch_size=8, progress=False)
    theirs = torch_fidelity.calculate_metrics(
        input1=str(real),
        input2=str(fake),
        fid=True,
        cache=False,
        verbose=False,
        batch_size=8,
        cuda=False,
        feature_extractor_weights_path=str(full_weights_file),
    )["frechet_inception_distance"]
    assert ours["fid"] == pytest.approx(theirs, rel=1e-4)
    assert ours["fid"] > 1.0  # the two sets differ, so this comparison is not 0 == 0
    # The seeded classifier makes the file non-standard, and the result says so.
    assert ours.provenance["weights_standard"] is False
    assert any("non-standard Inception weights" in w and "not comparable" in w for w in ours.warnings)
