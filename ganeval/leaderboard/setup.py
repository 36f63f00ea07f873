"""The setup a leaderboard CSV was last scored with, so that rerunning the short command keeps it: the
parameters a caller left at their defaults take the values of the CSV's latest row."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import pandas as pd

from ..errors import BadInputError
from ..metrics import registry

INHERITED: tuple[str, ...] = (
    "metrics",
    "samples",
    "seed",
    "mode",
    "input_range",
    *registry.option_keywords(),
    "bootstrap",
    "precision",
    "batch_size",
    "features",
    "dinov2_resize",
)
"""The parameters a rerun takes from the CSV when they were left at their defaults."""

_COLUMNS = ("metrics", "samples", "seed", "mode", "input_range")


def missing(value: object) -> bool:
    """Whether a cell holds nothing (None, NaN, NA)."""
    if isinstance(value, (list, tuple, dict)):
        return False
    return value is None or bool(pd.isna(value))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value  # numpy scalars from pandas


def latest_setup(table: pd.DataFrame, source: str = "the leaderboard") -> dict[str, Any]:
    """The setup of the table's most recently scored row: its setup columns and the entries of its
    ``options`` JSON cell, as plain values, without empty cells ({} for an empty table). ``source`` names
    the CSV in errors."""
    if table.empty:
        return {}
    latest = table.sort_values("scored_at", kind="stable").iloc[-1]
    saved: dict[str, Any] = {name: latest[name] for name in _COLUMNS}
    if not missing(latest["options"]):
        try:
            extra = json.loads(str(latest["options"]))
        except json.JSONDecodeError:
            extra = None
        if not isinstance(extra, dict):
            raise BadInputError(
                f"{source}: the options cell of its latest row is not a JSON object; fix or remove the row"
            )
        saved.update(extra)
    return {name: _plain(value) for name, value in saved.items() if not missing(value)}


def inherited(table: pd.DataFrame, defaulted: Collection[str], source: str = "the leaderboard") -> dict[str, Any]:
    """The values, as the CSV records them, that the parameters in ``defaulted`` (those the caller left at
    their defaults) take from the table's latest setup: only ``INHERITED`` ones the setup records."""
    saved = latest_setup(table, source)
    return {name: saved[name] for name in INHERITED if name in defaulted and name in saved}


def describe(taken: dict[str, Any], source: str) -> str:
    """The line that tells the user which values were taken from ``source``."""
    return f"using the setup of {source}'s latest rows for " + ", ".join(f"{k}={v}" for k, v in taken.items())
