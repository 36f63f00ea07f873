"""Leaderboard rendering: metric curves as a PNG and one self-contained HTML report.

Pure rendering: a leaderboard DataFrame (and PNG bytes) in, files out. Both files are written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, SupportsFloat, SupportsInt, runtime_checkable

import pandas as pd

from ..atomic import atomic_write
from ..errors import BadInputError, GanevalError
from ..metrics import registry
from .store import HIGHER_IS_BETTER, RANKABLE

TABLE_METRICS = RANKABLE
LOWER_IS_BETTER = tuple(m for m in RANKABLE if m not in HIGHER_IS_BETTER)
PANEL_INCHES = (4.8, 3.6)
DPI = 100

_PLOT_HINT = '--plot needs matplotlib: pip install "ganeval[plot]" (or pip install matplotlib)'
_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; vertical-align: middle; }
td.text { text-align: left; font-family: monospace; }
tr:target { background: #fff3c4; }
img.grid { max-width: 256px; image-rendering: pixelated; }
img.curves { max-width: 100%; }
img.pairs { max-width: 480px; }
"""


def _label(key: str) -> str:
    """A key's label on a plot: its metric's title when the key is the metric's own value (FID, SWD)."""
    metric = next((m for m in registry.all_metrics() if m.name == key), None)
    return metric.title.replace("×1e3", "") if metric is not None else key


def _better(metric: str) -> str:
    return "lower" if metric in LOWER_IS_BETTER else "higher"


@runtime_checkable
class _Number(SupportsInt, SupportsFloat, Protocol):
    """A table cell that int() and float() both take: Python's and NumPy's numbers."""


def _number(value: object) -> _Number | str:
    """A cell that is not missing, for int() or float(); TypeError for one neither takes, as they would raise."""
    if isinstance(value, (_Number, str)):
        return value
    raise TypeError(f"not a number: {value!r}")


def format_value(metric: str, value: object) -> str:
    """A metric value as text, as its registry key declares (decimals, integer counts); NaN or missing gives
    ``""``."""
    if pd.isna(value):
        return ""
    return registry.format_value(metric, value)


def _integer(value: object) -> str:
    return "" if pd.isna(value) else str(int(_number(value)))


def _text(row: Mapping[str, object], key: str) -> str:
    value = row.get(key)
    return "" if pd.isna(value) else str(value)


def curves_png(table: pd.DataFrame, metrics: Sequence[str]) -> bytes:
    """PNG bytes: one panel per metric (side by side, in the order given) with one line per ``run``
    against ``step``. The image is ``480 * len(metrics)`` x ``360`` pixels."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise GanevalError(_PLOT_HINT) from None
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in TABLE_METRICS]
    if not metrics or unknown:
        named = ", ".join(unknown) or "(none given)"
        raise BadInputError(f"cannot plot metric(s) {named}; known: {', '.join(TABLE_METRICS)}")
    steps = pd.to_numeric(table["step"], errors="coerce") if "step" in table else pd.Series(math.nan, index=table.index)
    values = {m: pd.to_numeric(table[m], errors="coerce") if m in table else steps * math.nan for m in metrics}
    empty = [m for m in metrics if not (values[m].notna() & steps.notna()).any()]
    if empty:
        raise BadInputError(f"nothing to plot for metric(s) {', '.join(empty)}: no row has both a step and a value")

    fig = Figure(figsize=(PANEL_INCHES[0] * len(metrics), PANEL_INCHES[1]), dpi=DPI)
    FigureCanvasAgg(fig)
    runs = table["run"].astype(str) if "run" in table else pd.Series("", index=table.index)
    colours = {run: f"C{i % 10}" for i, run in enumerate(runs.unique())}
    for ax, metric in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
        points = pd.DataFrame({"run": runs, "step": steps, "value": values[metric]}).dropna()
        for run, group in points.groupby("run", sort=False):
            group = group.sort_values("step", kind="stable")
            ax.plot(group["step"], group["value"], marker="o", color=colours[run], label=str(run).replace("$", r"\$"))
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{_label(metric)} ({_better(metric)} is better)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def plot_curves(table: pd.DataFrame, metrics: Sequence[str], path: str | os.PathLike[str]) -> Path:
    """Write :func:`curves_png` to ``path`` atomically and return the path."""
    data = curves_png(table, metrics)
    with atomic_write(path) as handle:
        handle.write(data)
    return Path(path)


def _png_src(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _metric_cell(row: Mapping[str, object], metric: str) -> str:
    text = format_value(metric, row.get(metric))
    if not text:
        return ""
    low, high = (format_value(metric, row.get(f"{metric}_ci95_{end}")) for end in ("low", "high"))
    if low and high:
        return f"{text} [{low}, {high}]"
    spread = format_value(metric, row.get(f"{metric}_std"))
    return f"{text} ± {spread}" if spread else text


def _td(text: str, css: str = "") -> str:
    return f'<td class="{css}">{html.escape(text)}</td>' if css else f"<td>{html.escape(text)}</td>"


def _row_id(sha: str, index: int, seen: set[str]) -> str:
    base = "ckpt-" + "".join(c for c in sha if c.isalnum())[:16] if sha else f"row-{index}"
    ident, n = base, 1
    while ident in seen:
        n += 1
        ident = f"{base}-{n}"
    seen.add(ident)
    return ident


def write_report(
    table: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    grids: Mapping[str, bytes],
    title: str = "ganeval leaderboard",
    provenance: Sequence[str] = (),
    curves: bytes | None = None,
    pairs: Mapping[str, bytes] | None = None,
) -> Path:
    """Write one self-contained HTML page (inline style, images as base64 data URIs) atomically.

    ``grids`` maps a checkpoint sha256 to PNG bytes of its sample grid, ``pairs`` (when given) to PNG bytes
    of its closest fake/reference pairs; ``curves`` is :func:`curves_png` output. Rows keep the table's
    order; each row's ``id`` is derived from its checkpoint sha256.
    """
    esc = html.escape
    metrics = [m for m in TABLE_METRICS if m in table and pd.to_numeric(table[m], errors="coerce").notna().any()]
    heads = ["rank", "run", "step"]
    heads += [f"{m} {'↓' if m in LOWER_IS_BETTER else '↑'}" for m in metrics]
    heads += ["samples", "wall_s", "checkpoint", "sha256", "sample grid"] + (["closest pairs"] if pairs else [])
    rows: list[str] = []
    seen: set[str] = set()
    for index, row in enumerate(table.to_dict("records")):
        sha, run, wall = _text(row, "checkpoint_sha256"), _text(row, "run"), row.get("wall_s")
        grid = grids.get(sha) if sha else None
        cells = [_td(_integer(row.get("rank"))), _td(run, "text"), _td(_integer(row.get("step")))]
        cells += [_td(_metric_cell(row, m)) for m in metrics]
        cells += [_td(_integer(row.get("samples"))), _td("" if pd.isna(wall) else f"{float(wall):.1f}")]
        cells += [_td(_text(row, "checkpoint"), "text"), f'<td class="text" title="{esc(sha)}">{esc(sha[:12])}</td>']
        grid_img = f'<img class="grid" src="{_png_src(grid)}" alt="samples of {esc(run)}">' if grid else "no grid"
        cells.append(f"<td>{grid_img}</td>")
        if pairs:
            shot = pairs.get(sha)
            cells.append(
                f'<td><img class="pairs" src="{_png_src(shot)}" alt="closest pairs of {esc(run)}"></td>'
                if shot
                else "<td>no pairs</td>"
            )
        rows.append(f'<tr id="{esc(_row_id(sha, index, seen))}">{"".join(cells)}</tr>')
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if provenance:
        parts.append('<ul class="provenance">' + "".join(f"<li>{esc(line)}</li>" for line in provenance) + "</ul>")
    if curves is not None:
        parts.append(f'<p><img class="curves" src="{_png_src(curves)}" alt="metric curves"></p>')
    parts.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in heads) + "</tr></thead>")
    parts += ["<tbody>", *rows, "</tbody></table>", "</body></html>", ""]
    with atomic_write(path) as handle:
        handle.write("\n".join(parts).encode("utf-8"))
    return Path(path)


def text_table(table: pd.DataFrame, top: int | None = None) -> str:
    """The ranked rows as an aligned text table: rank, run, step, every metric with a value (with its
    spread), samples and checkpoint; at most ``top`` rows."""
    metrics = [m for m in TABLE_METRICS if m in table and pd.to_numeric(table[m], errors="coerce").notna().any()]
    records = table.to_dict("records")[:top]
    heads = ["rank", "run", "step", *metrics, "samples", "checkpoint"]
    lines = [
        [
            _integer(r.get("rank")),
            _text(r, "run"),
            _integer(r.get("step")),
            *(_metric_cell(r, m) for m in metrics),
            _integer(r.get("samples")),
            _text(r, "checkpoint"),
        ]
        for r in records
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(heads)]
    left = {1, len(heads) - 1}

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([fmt(heads), *(fmt(line) for line in lines)])
