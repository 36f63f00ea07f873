"""The result of an evaluation: values, sample counts, provenance and warnings, and its renderings (an
aligned table, JSON, a CSV row appended atomically)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write
from .errors import BadInputError

CSV_COLUMNS = ("fid", "fid_ci95", "kid", "kid_std", "kid_ci95", "is", "is_std", "precision", "recall", "density",
               "coverage", "swd", "swd_levels", "n_real", "n_fake", "provenance", "warnings")
"""The ``--csv`` columns: the JSON keys, in a fixed order; a metric not computed leaves its cell empty."""

_LABELS = {"fid": "FID", "kid": "KID", "is": "IS", "precision": "precision", "recall": "recall",
           "density": "density", "coverage": "coverage", "swd": "SWD×1e3"}
_DECIMALS = {"kid": 6}


@dataclass
class Result(Mapping[str, Any]):
    """Metric values (``result["fid"]``; ``swd_levels`` and ``*_ci95`` are lists) with the counts and
    provenance that make them comparable."""

    scores: dict[str, Any]
    n_real: int | None
    n_fake: int | None
    provenance: dict[str, object]
    warnings: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> float:
        return self.scores[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.scores)

    def __len__(self) -> int:
        return len(self.scores)

    def to_dict(self) -> dict[str, object]:
        """The ``--json`` document: metric keys, ``n_real``, ``n_fake``, ``provenance``, ``warnings``."""
        return {**self.scores, "n_real": self.n_real, "n_fake": self.n_fake,
                "provenance": self.provenance, "warnings": self.warnings}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str)

    def text(self) -> str:
        """An aligned table, one line per metric: ``NAME: value`` then its spread (± std over subsets or
        splits, a 95% bootstrap interval) or, for SWD, the per-level values finest first."""
        rows = []
        for key, label in _LABELS.items():
            if key not in self.scores:
                continue
            decimals = _DECIMALS.get(key, 4)
            spread = []
            if f"{key}_std" in self.scores:
                spread.append(f"± {self.scores[f'{key}_std']:.{decimals}f}")
            if f"{key}_ci95" in self.scores:
                low, high = self.scores[f"{key}_ci95"]
                spread.append(f"95% CI [{low:.{decimals}f}, {high:.{decimals}f}]")
            if key == "swd" and "swd_levels" in self.scores:
                resolutions = list((self.provenance.get("swd") or {}).get("resolutions") or [])  # type: ignore[union-attr]
                levels = [f"{value:.{decimals}f}" + (f" @{resolutions[i]}px" if i < len(resolutions) else "")
                          for i, value in enumerate(self.scores["swd_levels"])]
                spread.append("levels " + ", ".join(levels))
            if key == "precision" and self.provenance.get("pr_features"):
                spread.append(f"({self.provenance['pr_features']} features)")
            rows.append((f"{label}:", f"{self.scores[key]:.{decimals}f}", ", ".join(spread)))
        if not rows:
            return ""
        name_width = max(len(name) for name, _, _ in rows)
        value_width = max(len(value) for _, value, _ in rows)
        return "\n".join(f"{name:<{name_width}} {value:>{value_width}}{'  ' + spread if spread else ''}"
                         for name, value, spread in rows)

    def csv_row(self) -> dict[str, str]:
        """The ``--csv`` row: every column of CSV_COLUMNS, lists and provenance as JSON, missing cells empty."""
        doc = self.to_dict()
        row = {}
        for column in CSV_COLUMNS:
            value = doc.get(column)
            row[column] = "" if value is None else (json.dumps(value, default=str) if isinstance(value, (list, dict))
                                                    else repr(value) if isinstance(value, float) else str(value))
        return row

    def provenance_line(self) -> str:
        """A one-line summary of where the numbers come from, for stderr."""
        p = self.provenance
        sides = []
        for side in ("real", "fake"):
            info = p.get(side, {})
            if isinstance(info, dict):
                how = "statistics file" if info.get("kind") == "statistics" else ("cached" if info.get("cached") else "extracted")
                skipped = f", {len(info['skipped'])} skipped" if info.get("skipped") else ""
                sides.append(f"{side}: {info.get('n')} images ({how}{skipped})")
        parts = [f"ganeval {p.get('ganeval_version')}"]
        if p.get("extractor"):
            parts += [str(p.get("extractor")), f"weights sha256 {str(p.get('weights_sha256'))[:12]} ({p.get('weights_source')})",
                      f"mode {p.get('mode')}"]
        if "seed" in p:
            parts.append(f"seed {p['seed']}")
        return " · ".join(parts + sides)

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in self.scores.items())
        return f"Result({values}, n_real={self.n_real}, n_fake={self.n_fake})"


def append_csv(path: str | os.PathLike[str], result: Result) -> Path:
    """Append ``result`` as one row to the CSV at ``path`` (header written once), atomically: the file is
    either the old one or the old one plus the new row. A file with other columns is refused."""
    path = Path(path)
    header = ",".join(CSV_COLUMNS)
    old = b""
    if path.exists():
        try:
            old = path.read_bytes()
        except OSError as exc:
            raise BadInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
        first = old.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        if old and first != header:
            raise BadInputError(f"{path}: its header is not ganeval's score columns ({first[:80]}…); "
                                f"write to a new file")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    if not old:
        writer.writeheader()
    elif not old.endswith(b"\n"):
        buffer.write("\n")
    writer.writerow(result.csv_row())
    with atomic_write(path) as handle:
        handle.write(old + buffer.getvalue().encode("utf-8"))
    return path
