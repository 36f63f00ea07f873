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

CSV_COLUMNS = ("fid", "fid_ci95", "kid", "kid_std", "kid_ci95", "is", "is_std", "precision", "recall", "density",
               "coverage", "swd", "swd_levels", "authpct", "copy_rate", "copy_threshold", "copies",
               "nn_distance_median", "duplicate_rate", "duplicate_rate_real", "duplicate_threshold", "support_estimate",
               "support_batch_size", "classes_covered", "classes_total", "class_kl", "class_histogram",
               "real_class_histogram", "class_fid", "n_real", "n_fake", "provenance", "warnings")
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
        rows += self._diagnostic_rows()
        if not rows:
            return ""
        name_width = max(len(name) for name, _, _ in rows)
        value_width = max(len(value) for _, value, _ in rows)
        lines = [f"{name:<{name_width}} {value:>{value_width}}{'  ' + spread if spread else ''}"
                 for name, value, spread in rows]
        return "\n".join(lines + self._class_table())

    def _diagnostic_rows(self) -> list[tuple[str, str, str]]:
        s, rows = self.scores, []
        if "authpct" in s:
            rows.append(("authpct:", f"{s['authpct']:.2f}", "% of fakes authentic (Alaa et al. 2022)"))
            rows.append(("copy rate:", f"{s['copy_rate']:.4f}",
                         f"{s['copies']} of {self.n_fake} fakes closer than {s['copy_threshold']:.4f}"))
            rows.append(("NN distance:", f"{s['nn_distance_median']:.4f}", "median, fake to nearest training image"))
        if "duplicate_rate" in s:
            rows.append(("duplicate rate:", f"{s['duplicate_rate']:.6f}",
                         f"real subset {s['duplicate_rate_real']:.6f}, pairs closer than {s['duplicate_threshold']:.4f}"))
            support = s.get("support_estimate")
            rows.append(("support size:", "n/a" if support is None else f"{support:,}",
                         "no batch size reached p = 1/2" if support is None else
                         f"batch size {s['support_batch_size']} gives a duplicate with p >= 1/2"))
        if "classes_covered" in s:
            rows.append(("classes covered:", f"{s['classes_covered']}/{s['classes_total']}",
                         f"KL(real || fake) {s['class_kl']:.4f} nats"))
        return rows

    def _class_table(self) -> list[str]:
        fake, real = self.scores.get("class_histogram"), self.scores.get("real_class_histogram")
        if not isinstance(fake, dict) or not isinstance(real, dict):
            return []
        fids = self.scores.get("class_fid") or {}
        width = max(len("class"), *(len(str(name)) for name in real))
        lines = [f"{'class':<{width}}  {'fakes':>7}  {'real':>7}  {'FID':>9}"]
        for name, share in real.items():
            fid = fids.get(name)
            lines.append(f"{name:<{width}}  {fake.get(name, 0.0):>7.3f}  {share:>7.3f}  "
                         f"{'-' if fid is None else f'{fid:.2f}':>9}")
        return lines

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
                      f"mode {p.get('mode')}", f"precision {p.get('precision', 'fp32')}"]
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
    header = ",".join(CSV_COLUMNS)
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
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    if not old:
        writer.writeheader()
    elif not old.endswith(b"\n"):
        buffer.write("\n")
    writer.writerow(result.csv_row())
    with atomic_write(path) as handle:
        handle.write(old + buffer.getvalue().encode("utf-8"))
    return path


def _upgraded(path: Path, old: bytes, first: str) -> bytes:
    """The rows of a CSV written by an older ganeval (its columns a subset of CSV_COLUMNS, in order) under
    today's header, new cells empty; any other header is refused."""
    columns = first.split(",")
    if not (set(columns) <= set(CSV_COLUMNS) and "provenance" in columns
            and columns == [c for c in CSV_COLUMNS if c in columns]):
        raise BadInputError(f"{path}: its header is not ganeval's score columns ({first[:80]}…); write to a new file")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv.DictReader(io.StringIO(old.decode("utf-8"))))
    return buffer.getvalue().encode("utf-8")
