"""The leaderboard CSV: one row per (checkpoint, scoring setup), ranked within each setup, written atomically.

A *setup* is everything that changes the numbers apart from the checkpoint: the reference's content, the
extractor and its weights, the preprocessing mode, the metrics and their options, the sample count, seed
and input range. Its id (12 hex digits of a sha256) is a column; rows of different setups never compete.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_write, locked
from ..errors import BadInputError
from ..metrics import registry

METRIC_COLUMNS = tuple(registry.leaderboard_columns())
RANKABLE = tuple(registry.rankable())
HIGHER_IS_BETTER = tuple(key for key in RANKABLE if registry.higher_is_better(key))
COLUMNS = (
    "rank",
    "rank_by",
    "run",
    "step",
    "checkpoint",
    "checkpoint_sha256",
    *METRIC_COLUMNS,
    "samples",
    "seed",
    "metrics",
    "input_range",
    "options",
    "reference",
    "reference_sha256",
    "n_reference",
    "extractor",
    "weights_sha256",
    "mode",
    "setup",
    "ganeval_version",
    "generate_s",
    "extract_s",
    "metrics_s",
    "wall_s",
    "scored_at",
    "warnings",
)
"""The CSV's columns in order; a metric not computed leaves its cell empty."""

_INTEGERS = ("rank", "step", "samples", "seed", "n_reference")
_TEXT = (
    "rank_by",
    "run",
    "checkpoint",
    "checkpoint_sha256",
    "metrics",
    "input_range",
    "options",
    "reference",
    "reference_sha256",
    "extractor",
    "weights_sha256",
    "mode",
    "setup",
    "ganeval_version",
    "scored_at",
    "warnings",
)
_KEY = ("checkpoint_sha256", "setup")


def setup_id(setup: Mapping[str, object]) -> str:
    """12 hex digits identifying a scoring setup (a JSON-able mapping)."""
    return hashlib.sha256(json.dumps(setup, sort_keys=True, default=str).encode()).hexdigest()[:12]


def empty_table() -> pd.DataFrame:
    return _typed(pd.DataFrame({column: [] for column in COLUMNS}))


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    for column in COLUMNS:
        if column not in table:
            table[column] = np.nan
    table = table[list(COLUMNS) + [c for c in table.columns if c not in COLUMNS]].copy()
    for column in _INTEGERS:
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("Int64")
    for column in _TEXT:
        table[column] = table[column].astype("string")
    for column in (*METRIC_COLUMNS, "generate_s", "extract_s", "metrics_s", "wall_s"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("float64")
    return table


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The leaderboard at ``path`` (an empty one when the file does not exist). A file that is not a
    ganeval leaderboard is refused with BadInputError rather than mixed into."""
    path = Path(path)
    if not path.exists():
        return empty_table()
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        return empty_table()
    except UnicodeDecodeError:
        raise BadInputError(f"{path}: not a ganeval leaderboard (not UTF-8 text); write to a new file") from None
    except (OSError, pd.errors.ParserError) as exc:
        raise BadInputError(f"{path}: cannot read the leaderboard ({str(exc).splitlines()[0][:200]})") from None
    missing = [c for c in ("run", "step", "checkpoint", *_KEY) if c not in table.columns]
    if missing:
        raise BadInputError(f"{path}: not a ganeval leaderboard (no column {', '.join(missing)}); write to a new file")
    return _typed(table)


def write_table(path: str | os.PathLike[str], table: pd.DataFrame) -> Path:
    """Write the table atomically: the file is the previous complete version or this one, never a torn one.
    Holds the CSV's lock (``locked``) while writing, so it never interleaves with an ``update_table``."""
    with locked(path):
        return _write_unlocked(path, table)


def update_table(path: str | os.PathLike[str], change: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """Read the table at ``path``, apply ``change`` and write the result, all under the CSV's exclusive lock,
    so that processes adding rows to one leaderboard at once never lose each other's rows (a plain
    ``write_table(path, upsert(read_table(path), row))`` can: both read, both write, the last one wins).
    Returns the table written."""
    with locked(path):
        table = change(read_table(path))
        _write_unlocked(path, table)
    return table


def _write_unlocked(path: str | os.PathLike[str], table: pd.DataFrame) -> Path:
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, float_format="%.10g")
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue().encode("utf-8"))
    return Path(path)


def has_row(table: pd.DataFrame, checkpoint_sha256: str, setup: str) -> bool:
    return bool(((table["checkpoint_sha256"] == checkpoint_sha256) & (table["setup"] == setup)).any())


def upsert(table: pd.DataFrame, row: Mapping[str, object]) -> pd.DataFrame:
    """The table with ``row`` added, replacing the row of the same checkpoint and setup."""
    keep = ~((table["checkpoint_sha256"] == row["checkpoint_sha256"]) & (table["setup"] == row["setup"]))
    added = _typed(pd.DataFrame([dict(row)]))
    return _typed(pd.concat([table[keep.fillna(True)], added], ignore_index=True) if keep.any() else added)


def rank(table: pd.DataFrame, sort_by: str | None = None) -> pd.DataFrame:
    """Rank within each setup by ``sort_by`` (in its key's direction: lower first for FID, higher first for IS,
    recall, density, coverage; ties share the best rank; rows without a value go last, unranked). A setup
    without values for ``sort_by`` is ranked by its first metric that has some. Setups appear in the order
    they were first scored."""
    if sort_by is not None:
        check_sort_by(sort_by)
    if table.empty:
        return table
    groups = []
    first_scored = table.groupby("setup", dropna=False)["scored_at"].min().sort_values(kind="stable")
    for setup in first_scored.index:
        group = table[table["setup"] == setup] if not pd.isna(setup) else table[table["setup"].isna()]
        by = (
            sort_by
            if sort_by and group[sort_by].notna().any()
            else next((m for m in RANKABLE if group[m].notna().any()), None)
        )
        group = group.copy()
        if by is None:
            group["rank"], group["rank_by"] = pd.NA, pd.NA
        else:
            ascending = by not in HIGHER_IS_BETTER
            group["rank"] = group[by].rank(method="min", ascending=ascending).astype("Int64")
            group["rank_by"] = by
        groups.append(group.sort_values(["rank", "run", "step"], na_position="last", kind="stable"))
    return _typed(pd.concat(groups, ignore_index=True))


def check_sort_by(sort_by: str) -> str:
    if sort_by not in RANKABLE:
        raise BadInputError(f"--sort-by {sort_by!r}: choose from {', '.join(RANKABLE)}")
    return sort_by


def default_sort(metrics: list[str]) -> str:
    """The column a leaderboard of ``metrics`` is ranked by when --sort-by is not given: FID when computed,
    else the first metric's headline column (``registry.headline``)."""
    return registry.headline(metrics)
