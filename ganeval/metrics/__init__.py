"""Metrics: pure functions over arrays (features, statistics, SWD descriptors), seeds passed in; no I/O.
The heavy ones (precision/recall, SWD) take an optional torch ``device`` for their matrix work."""

from .bootstrap import BootstrapResult, bootstrap_interval
from .fid import PSDFactor, frechet_distance, psd_factor, trace_sqrt_product
from .inception_score import ISResult, inception_score
from .kid import KIDResult, kernel_inception_distance
from .prdc import PRDCResult, precision_recall_density_coverage
from .swd import SWDResult, sliced_wasserstein_distance

__all__ = [
    "BootstrapResult",
    "ISResult",
    "KIDResult",
    "PRDCResult",
    "PSDFactor",
    "SWDResult",
    "bootstrap_interval",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "precision_recall_density_coverage",
    "psd_factor",
    "sliced_wasserstein_distance",
    "trace_sqrt_product",
]
