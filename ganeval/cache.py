"""Content-keyed cache of features and statistics in ``$GANEVAL_HOME/features``.

Key: sha256 of the source's content key (a folder: each file's relative path, size and bytes; an
archive or array file: its bytes; an in-memory array: its bytes and shape), the extractor, the weights'
sha256 and the preprocessing mode. Entries are ``.npz`` files (no pickles) written atomically; the zip
format's CRC-32 of every array is checked on reading, so a truncated or corrupted entry is detected,
removed and recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .features import Features
from .weights import ganeval_home

CACHE_FORMAT = "ganeval-features-v1"
log = logging.getLogger("ganeval")


def cache_dir() -> Path:
    return ganeval_home() / "features"


def features_key(content_sha256: str, extractor: dict[str, object], mode: str) -> str:
    """The cache key (hex) of one source's features under one extractor and mode."""
    parts = {"format": CACHE_FORMAT, "content": content_sha256, "extractor": extractor.get("extractor"),
             "weights_sha256": extractor.get("weights_sha256"), "has_classifier": extractor.get("has_classifier"),
             "mode": mode}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def load_features(key: str) -> Features | None:
    """The cached features for ``key``, or None when absent. A damaged entry is logged, removed and
    treated as absent."""
    path = cache_dir() / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.keys() if name != "meta"}
            meta = json.loads(str(archive["meta"]))
        if meta.get("format") != CACHE_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {CACHE_FORMAT!r}")
        return Features(
            pool3=arrays["pool3"],
            logits_unbiased=arrays.get("logits_unbiased"),
            mu=arrays["mu"],
            sigma=arrays["sigma"],
            names=[str(name) for name in arrays["names"]],
            provenance=meta["provenance"],
        )
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        log.warning("cache entry %s is damaged (%s); recomputing", path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def store_features(key: str, features: Features) -> Path:
    """Write ``features`` under ``key`` atomically; returns the entry's path."""
    arrays = {"pool3": features.pool3, "mu": features.mu, "sigma": features.sigma,
              "names": np.array(features.names, dtype=np.str_)}
    if features.logits_unbiased is not None:
        arrays["logits_unbiased"] = features.logits_unbiased
    meta = {"format": CACHE_FORMAT, "provenance": features.provenance}
    path = cache_dir() / f"{key}.npz"
    with atomic_write(path) as handle:
        np.savez(handle, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    return path
