"""Metrics: pure functions over arrays (features, statistics); no I/O, no devices."""

from .fid import PSDFactor, frechet_distance, psd_factor, trace_sqrt_product

__all__ = ["PSDFactor", "frechet_distance", "psd_factor", "trace_sqrt_product"]
