"""CMMD (Jayasumana et al., "Rethinking FID: Towards a Better Evaluation Metric for Image Generation", CVPR
2024), as google-research's ``cmmd/`` computes it.

Feature: OpenAI CLIP ViT-L/14@336's projected 768-d image embedding (part ``clip-vit-l-14-336:embedding``;
its preprocessing, centre crop to the largest square and PIL bicubic to 336², is the extractor's), each row
L2-normalised here. CMMD = 1000 · MMD²_b with the Gaussian kernel of σ = 10 over the whole sets, the means
including the diagonals (``mmd.mmd2_rbf_biased``). Two deliberate differences from the reference, neither
of which changes the estimator: every image counts (the reference's loader drops the last partial batch
of 32), and the kernel sums are float64 (the reference's are float32 on the accelerator).
"""

from __future__ import annotations

import numpy as np

from .mmd import mmd2_rbf_biased
from .registry import Key, Metric, Need, register

PART = "clip-vit-l-14-336:embedding"
SIGMA = 10.0
SCALE = 1000.0


def l2_normalised(rows: np.ndarray) -> np.ndarray:
    """Each row of (N, D) divided by its Euclidean norm, float64; a zero row is an error."""
    rows = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if not np.all(norms > 0):
        raise ValueError("an embedding is all zeros: it has no direction to normalise")
    return rows / norms


def cmmd(real: np.ndarray, fake: np.ndarray) -> float:
    """CMMD between real (N, D) and fake (M, D) CLIP embeddings (unnormalised; any real dtype)."""
    return SCALE * mmd2_rbf_biased(l2_normalised(real), l2_normalised(fake), SIGMA)


CMMD = register(
    Metric(
        name="cmmd",
        title="CMMD",
        order=25,
        command="cmmd",
        keys=(Key("cmmd", "lower", plot=True),),
        needs=lambda options, side, seed: (Need(PART),),
        compute=lambda context: {"cmmd": cmmd(context.reference.rows(PART), context.fake.rows(PART))},
        doc="CMMD between REAL and FAKE: the MMD (Gaussian kernel, σ = 10, ×1000) of CLIP ViT-L/14@336 embeddings, "
        "as google-research's cmmd computes it.",
    )
)
