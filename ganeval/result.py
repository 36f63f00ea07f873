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

import numpy as np

from .atomic import atomic_write, locked
from .errors import BadInputError
from .metrics import registry


def csv_columns() -> tuple[str, ...]:
    """The ``--csv`` columns: every metric's result keys in registry order, then counts, provenance and
    warnings; a metric not computed leaves its cell empty."""
    return (*registry.result_keys(), "n_real", "n_fake", "provenance", "warnings")


@dataclass
class Result(Mapping[str, Any]):
    """Metric values (``result["fid"]``; ``swd_levels`` and ``*_ci95`` are lists) with the counts and
    provenance that make them comparable."""

    scores: dict[str, Any]
    n_real: int | None
    n_fake: int | None
    provenance: dict[str, object]
    warnings: list[str] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    """Per-image results, not in the JSON: ``nn_distance``/``nn_index`` (M,) each fake's nearest real image
    (an index into ``real_names``), ``fake_names``, ``real_names``, ``fake_labels`` (the kNN class)."""

    def __getitem__(self, key: str) -> Any:
        return self.scores[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.scores)

    def __len__(self) -> int:
        return len(self.scores)

    def to_dict(self) -> dict[str, object]:
        """The ``--json`` document: metric keys, ``n_real``, ``n_fake``, ``provenance``, ``warnings``."""
        return {
            **self.scores,
            "n_real": self.n_real,
            "n_fake": self.n_fake,
            "provenance": self.provenance,
            "warnings": self.warnings,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str)

    def text(self) -> str:
        """An aligned table, one line per value: ``NAME: value`` then its spread (± std over subsets or
        splits, a 95% bootstrap interval) or what the metric adds (SWD's per-level values, finest first)."""
        rows = [
            row for metric in registry.all_metrics() for row in metric.rows(self.scores, self.provenance, self.n_fake)
        ]
        if not rows:
            return ""
        name_width = max(len(name) for name, _, _ in rows)
        value_width = max(len(value) for _, value, _ in rows)
        lines = [
            f"{name:<{name_width}} {value:>{value_width}}{'  ' + spread if spread else ''}"
            for name, value, spread in rows
        ]
        extra = [line for metric in registry.all_metrics() if metric.lines for line in metric.lines(self.scores)]
        return "\n".join(lines + extra)

    def csv_row(self) -> dict[str, str]:
        """The ``--csv`` row: every column of ``csv_columns()``, lists and provenance as JSON, missing cells empty."""
        doc = self.to_dict()
        row = {}
        for column in csv_columns():
            value = doc.get(column)
            row[column] = (
                ""
                if value is None
                else (
                    json.dumps(value, default=str)
                    if isinstance(value, (list, dict))
                    else repr(value)
                    if isinstance(value, float)
                    else str(value)
                )
            )
        return row

    def provenance_line(self) -> str:
        """A one-line summary of where the numbers come from, for stderr."""
        p = self.provenance
        sides = []
        for side in ("real", "fake"):
            info = p.get(side, {})
            if isinstance(info, dict):
                how = (
                    "statistics file"
                    if info.get("kind") == "statistics"
                    else ("cached" if info.get("cached") else "extracted")
                )
                skipped = f", {len(info['skipped'])} skipped" if info.get("skipped") else ""
                sides.append(f"{side}: {info.get('n')} images ({how}{skipped})")
        parts = [f"ganeval {p.get('ganeval_version')}"]
        if p.get("extractor"):
            parts += [
                str(p.get("extractor")),
                f"weights sha256 {str(p.get('weights_sha256'))[:12]} ({p.get('weights_source')})",
                f"mode {p.get('mode')}" if p.get("mode") else f"resize {p.get('resize')}",
                f"precision {p.get('precision', 'fp32')}",
            ]
        if p.get("world_size", 1) != 1:
            parts.append(f"{p['world_size']} processes")
        if "seed" in p:
            parts.append(f"seed {p['seed']}")
        return " · ".join(parts + sides)

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in self.scores.items())
        return f"Result({values}, n_real={self.n_real}, n_fake={self.n_fake})"


def append_csv(path: str | os.PathLike[str], result: Result) -> Path:
    """Append ``result`` as one row to the CSV at ``path`` (header written once), atomically: the file is
    either the old one or the old one plus the new row. A file with other columns is refused.

    Processes appending to the same CSV at once are serialised by an exclusive lock (``locked``: the hidden
    sibling ``.NAME.lock``) held from reading the old rows to renaming the new file, so no row is lost."""
    path = Path(path)
    with locked(path):
        return _append_csv_locked(path, result)


def _append_csv_locked(path: Path, result: Result) -> Path:
    columns = csv_columns()
    header = ",".join(columns)
    old = b""
    if path.exists():
        try:
            old = path.read_bytes()
        except OSError as exc:
            raise BadInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
        first = old.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        if old and first != header:
            old = _upgraded(path, old, first)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    if not old:
        writer.writeheader()
    elif not old.endswith(b"\n"):
        buffer.write("\n")
    writer.writerow(result.csv_row())
    with atomic_write(path) as handle:
        handle.write(old + buffer.getvalue().encode("utf-8"))
    return path


def _upgraded(path: Path, old: bytes, first: str) -> bytes:
    """The rows of a CSV written by an older ganeval (its columns a subset of today's, in order) under
    today's header, new cells empty; any other header is refused."""
    columns, today = first.split(","), csv_columns()
    if not (set(columns) <= set(today) and "provenance" in columns and columns == [c for c in today if c in columns]):
        raise BadInputError(f"{path}: its header is not ganeval's score columns ({first[:80]}…); write to a new file")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=today, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv.DictReader(io.StringIO(old.decode("utf-8"))))
    return buffer.getvalue().encode("utf-8")
