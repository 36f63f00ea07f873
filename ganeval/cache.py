"""Content-keyed cache of features in ``$GANEVAL_HOME/features``, one entry per part: the Inception part
(pool3, logits, μ, Σ), the SWD descriptors and the VGG16 features.

Key: sha256 of the part's format, the source's content key (a folder: each file's relative path, size and bytes; an
archive or array file: its bytes; an in-memory array: its bytes and shape) and everything that changes the
part (Inception: extractor, weights sha256, mode; SWD: seed, size, image subset; VGG: weights sha256). Entries are ``.npz`` files (no pickles) written atomically; the zip
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
from .paths import ganeval_home

PART_FORMATS = {"inception": "ganeval-features-v1", "swd": "ganeval-swd-v1", "vgg": "ganeval-vgg-v1"}
log = logging.getLogger("ganeval")


def cache_dir() -> Path:
    return ganeval_home() / "features"


def part_key(part: str, content_sha256: str, params: dict[str, object]) -> str:
    """The cache key (hex) of one part (``inception``, ``swd`` or ``vgg``) of one source's features:
    its content key and every parameter that changes the arrays."""
    return hashlib.sha256(json.dumps({"format": PART_FORMATS[part], "content": content_sha256, **params},
                                     sort_keys=True, default=str).encode()).hexdigest()


def features_key(content_sha256: str, extractor: dict[str, object], mode: str) -> str:
    """The cache key of the Inception part under one extractor, preprocessing mode and (when not the
    standard fp32) arithmetic precision."""
    precision = extractor.get("precision", "fp32")
    return part_key("inception", content_sha256, {
        "extractor": extractor.get("extractor"), "weights_sha256": extractor.get("weights_sha256"),
        "has_classifier": extractor.get("has_classifier"), "mode": mode,
        **({"precision": precision} if precision != "fp32" else {})})


def load_part(part: str, key: str) -> Features | None:
    """The cached ``part`` for ``key`` as Features holding only that part (plus names and provenance), or
    None when absent. A damaged entry is logged, removed and treated as absent."""
    path = cache_dir() / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.keys() if name != "meta"}
            meta = json.loads(str(archive["meta"]))
        if meta.get("format") != PART_FORMATS[part]:
            raise ValueError(f"format {meta.get('format')!r}, expected {PART_FORMATS[part]!r}")
        features = Features(names=[str(name) for name in arrays["names"]], provenance=meta["provenance"])
        if part == "inception":
            features.pool3, features.mu, features.sigma = arrays["pool3"], arrays["mu"], arrays["sigma"]
            features.logits_unbiased = arrays.get("logits_unbiased")
        elif part == "swd":
            features.swd = [arrays[f"level_{i}"] for i in range(int(meta["levels"]))]
        else:
            features.vgg = arrays["vgg"]
        return features
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        log.warning("cache entry %s is damaged (%s); recomputing", path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def store_part(part: str, key: str, features: Features) -> Path:
    """Write ``part`` of ``features`` under ``key`` atomically; returns the entry's path."""
    arrays: dict[str, np.ndarray] = {"names": np.array(features.names, dtype=np.str_)}
    meta: dict[str, object] = {"format": PART_FORMATS[part], "provenance": features.provenance}
    if part == "inception":
        arrays.update(pool3=features.pool3, mu=features.mu, sigma=features.sigma)
        if features.logits_unbiased is not None:
            arrays["logits_unbiased"] = features.logits_unbiased
    elif part == "swd":
        assert features.swd is not None
        arrays.update({f"level_{i}": level for i, level in enumerate(features.swd)})
        meta["levels"] = len(features.swd)
    else:
        arrays["vgg"] = features.vgg
    path = cache_dir() / f"{key}.npz"
    with atomic_write(path) as handle:
        np.savez(handle, meta=np.array(json.dumps(meta, sort_keys=True, default=str)), **arrays)
    return path
