"""The public functions: features and statistics of an image set, and FID between two sets.

Either side of ``fid`` may be a folder, a .zip, a .npy/.npz of uint8 images, a statistics .npz, or a
uint8 array/tensor. Features of image sources are cached by content (see ``cache``), so scoring new fakes
against the same real folder decodes the real images only once.
"""

from __future__ import annotations

import os

import torch

from .cache import features_key, load_features, store_features
from .errors import BadInputError
from .features import Features
from .metrics.fid import frechet_distance
from .pipeline import DEFAULT_BATCH_SIZE, Extractor
from .preprocess import DEFAULT_MODE
from .result import Result
from .sources import open_source
from .stats import Statistics, check_compatible, is_statistics_file, load_statistics
from .weights import nonstandard_warning

RECOMMENDED_MIN = 2048


def compute_features(source: object, extractor: Extractor, cache: bool = True, skip_bad: bool = False,
                     progress: bool | None = None) -> Features:
    """Features of an image source (path, array or tensor), from the cache when its content was seen
    before with the same extractor and mode. ``provenance['cached']`` tells which."""
    src = open_source(source)
    content = src.content_key()
    key = features_key(content, extractor.provenance(), extractor.mode) if cache else None
    features = load_features(key) if key else None
    if features is not None:
        if features.provenance.get("skipped") and not skip_bad:
            skipped = features.provenance["skipped"]
            more = f" (and {len(skipped) - 1} more unreadable files)" if len(skipped) > 1 else ""
            raise BadInputError(f"{skipped[0]}{more}; pass --skip-bad to skip unreadable files")
        features.provenance.update(source=src.label, cached=True)
        return features
    features = extractor.extract(src, skip_bad=skip_bad, progress=progress)
    features.provenance.update(content_sha256=content, cached=False)
    if key:
        store_features(key, features)
    return features


def _side(obj: object, get_extractor, cache: bool, skip_bad: bool, progress: bool | None) -> Statistics:
    if is_statistics_file(obj):
        stats = load_statistics(obj)  # type: ignore[arg-type]
        stats.meta = {**stats.meta, "source": str(obj), "kind": "statistics", "n": stats.n}
        return stats
    features = compute_features(obj, get_extractor(), cache=cache, skip_bad=skip_bad, progress=progress)
    return Statistics(features.mu, features.sigma, features.n, dict(features.provenance))


def statistics(source: object, *, mode: str = DEFAULT_MODE, weights: str | os.PathLike[str] | None = None,
               device: str | torch.device | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
               cache: bool = True, skip_bad: bool = False, progress: bool | None = None,
               extractor: Extractor | None = None) -> Statistics:
    """Reference statistics (μ (2048,), Σ (2048, 2048), n, provenance) of an image source."""
    extractor = extractor or Extractor(weights=weights, mode=mode, device=device, batch_size=batch_size)
    return _side(source, lambda: extractor, cache, skip_bad, progress)


def fid(real: object, fake: object, *, mode: str = DEFAULT_MODE, weights: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None, batch_size: int = DEFAULT_BATCH_SIZE, cache: bool = True,
        skip_bad: bool = False, force: bool = False, progress: bool | None = None,
        extractor: Extractor | None = None) -> Result:
    """FID between two image sets (or their statistics), with provenance and warnings.

    Statistics made with other weights or another preprocessing mode are refused (IncompatibleStatsError)
    unless ``force``. The extractor is built only when a side needs extracting."""
    built: list[Extractor] = [extractor] if extractor else []

    def get_extractor() -> Extractor:
        if not built:
            built.append(Extractor(weights=weights, mode=mode, device=device, batch_size=batch_size))
        return built[0]

    real_stats = _side(real, get_extractor, cache, skip_bad, progress)
    fake_stats = _side(fake, get_extractor, cache, skip_bad, progress)
    warnings = check_compatible(real_stats.meta, fake_stats.meta, f"real ({real_stats.meta.get('source')})",
                                f"fake ({fake_stats.meta.get('source')})", force)
    if real_stats.mu.shape != fake_stats.mu.shape:
        raise BadInputError(f"real ({real_stats.meta.get('source')}) has {real_stats.mu.shape[0]}-d statistics and fake "
                            f"({fake_stats.meta.get('source')}) {fake_stats.mu.shape[0]}-d; both must be pool3 (2048-d)")
    value = frechet_distance(real_stats.mu, real_stats.sigma, fake_stats.mu, fake_stats.sigma)

    described = real_stats.meta if real_stats.meta.get("extractor") else fake_stats.meta
    common = built[0].provenance() if built else {k: described.get(k) for k in (
        "extractor", "weights_sha256", "weights_source", "weights_standard", "mode", "ganeval_version")}
    if common.get("extractor") and not common.get("weights_standard"):
        warnings.insert(0, nonstandard_warning(common.get("weights_sha256")))
    for stats, label in ((real_stats, "real"), (fake_stats, "fake")):
        if stats.meta.get("ignored_files"):
            warnings.append(f"{label}: {stats.meta['ignored_files']} non-image or hidden files in "
                            f"{stats.meta.get('source')} were ignored")
        if stats.n is not None and stats.n <= RECOMMENDED_MIN:
            warnings.append(f"{label} has {stats.n} images (<= {RECOMMENDED_MIN}): its covariance is rank-deficient and "
                            f"FID is biased upwards; use 10,000+ images for numbers comparable with papers")
    side_keys = ("source", "kind", "n", "content_sha256", "cached", "skipped", "ignored_files", "mode", "weights_sha256")
    provenance = {**common,
                  "real": {k: real_stats.meta.get(k) for k in side_keys if k in real_stats.meta},
                  "fake": {k: fake_stats.meta.get(k) for k in side_keys if k in fake_stats.meta}}
    return Result({"fid": value}, real_stats.n, fake_stats.n, provenance, warnings)

