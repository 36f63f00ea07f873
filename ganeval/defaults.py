"""The one table of defaults that the CLI flags and the API keyword arguments both read, so they cannot drift.

Values follow the published protocols (torch-fidelity for KID and IS; Kynkäänniemi et al. and Naeem et al.
for precision/recall and density/coverage; Progressive GAN for SWD).
"""

from __future__ import annotations

SEED = 2020
"""One seed for every random choice (KID subsets, IS shuffle, P/R subsampling, SWD sampling, bootstrap)."""

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
IS_SPLITS = 10
PR_K = 3
DC_K = 5
PR_FEATURES = ("inception", "vgg16")
SWD_IMAGES = 16384
"""Images per set used for SWD (Progressive GAN's protocol): larger sets are subsampled with the seed."""

BOOTSTRAP = 0
FID_RECOMMENDED_MIN = 2048
COVERAGE_K = 5
CLASS_FID_MIN = 100
"""Per-class FID is reported for classes with at least this many real and fake images."""
SUPPORT_DRAWS = 100
CLOSEST_PAIRS = 16
