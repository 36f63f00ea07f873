"""Content-keyed cache of parts in ``$GANEVAL_HOME/features``, one entry per (source, part).

Key (``engine.entry_key``): sha256 of the format, the source's content key (a folder: each file's relative
path, size and bytes; an archive or array file: its bytes; an in-memory array: its bytes and shape), the
part's name, its extractor's identity (network, weights sha256, preprocessing mode, arithmetic) and the
part's parameters. Entries are ``.npz`` files (no pickles) written atomically; the zip format's CRC-32 of
every array is checked on reading, so a truncated or corrupted entry is detected, removed and recomputed.
Entries of the earlier format (``ganeval-features-v1`` and its siblings) are never looked up again: their
keys differ, so they are recomputed once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .parts import Features, VectorPart
from .paths import ganeval_home

FORMAT = "ganeval-part-v2"
log = logging.getLogger("ganeval")


def cache_dir() -> Path:
    return ganeval_home() / "features"


def load_entry(key: str) -> Features | None:
    """The cached entry for ``key`` as Features holding its one part (plus names and provenance), or None
    when absent. A damaged entry is logged, removed and treated as absent."""
    path = cache_dir() / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.keys() if name != "meta"}
            meta = json.loads(str(archive["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
        part = str(meta["part"])
        value: object
        if meta["kind"] == "vector":
            value = VectorPart(int(meta["n"]), rows=arrays.get("rows"), mu=arrays["mu"], sigma=arrays["sigma"])
        else:
            value = [arrays[f"level_{i}"] for i in range(int(meta["levels"]))]
        return Features([str(name) for name in arrays["names"]], meta["provenance"], {part: value})
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        log.warning(
            "cache entry %s is damaged (%s); recomputing",
            path,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def store_entry(key: str, part: str, features: Features) -> Path:
    """Write ``part`` of ``features`` under ``key`` atomically; returns the entry's path. A vector part is
    stored with its rows and moments, another as its list of arrays."""
    value = features.parts[part]
    arrays: dict[str, np.ndarray] = {"names": np.array(features.names, dtype=np.str_)}
    meta: dict[str, object] = {"format": FORMAT, "part": part, "provenance": features.provenance}
    if isinstance(value, VectorPart):
        mu, sigma = value.moments()
        arrays.update(mu=mu, sigma=sigma)
        if value.rows is not None:
            arrays["rows"] = value.rows
        meta.update(kind="vector", n=value.n)
    else:
        arrays.update({f"level_{i}": level for i, level in enumerate(value)})
        meta.update(kind="levels", levels=len(value))
    path = cache_dir() / f"{key}.npz"
    with atomic_write(path) as handle:
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True, default=str))
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as its bool option
    return path
