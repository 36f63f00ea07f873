"""Leaderboard rendering: the curves PNG (size, content, errors) and the self-contained HTML report."""

from __future__ import annotations

import base64
import html
import io
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ganeval.errors import BadInputError, GanevalError
from ganeval.leaderboard import render

NAN = math.nan
EVIL_RUN = "<script>alert(1)</script>"


def _table() -> pd.DataFrame:
    """Two runs x three steps, ranked by fid; some metrics not computed for some rows."""
    rows = []
    for run_index, run in enumerate(["baseline", EVIL_RUN]):
        for step in (1000, 2000, 3000):
            sha = f"{run_index}{step:04d}".ljust(64, "a")
            fid = 60.0 - step / 100 - 7 * run_index
            rows.append(
                {
                    "rank": NAN,
                    "run": run,
                    "step": step,
                    "checkpoint": f"runs/{run}/ckpt_{step}.pt",
                    "checkpoint_sha256": sha,
                    "fid": fid,
                    "fid_ci95_low": fid - 1.5,
                    "fid_ci95_high": fid + 1.5,
                    "kid": 0.05 - step / 1e5 + 0.001 * run_index,
                    "kid_std": 0.0011,
                    "is": 2.0 + step / 2000 if run_index == 0 else NAN,
                    "is_std": 0.1 if run_index == 0 else NAN,
                    "precision": 0.5 + step / 10000 + 0.05 * run_index,
                    "recall": 0.3 + step / 20000,
                    "density": NAN,
                    "coverage": NAN,
                    "swd": NAN,
                    "samples": 5000,
                    "seed": 2020,
                    "metrics": "fid,kid,is,pr",
                    "rank_by": "fid",
                    "reference": "real/",
                    "reference_sha256": "b" * 64,
                    "extractor": "inception",
                    "weights_sha256": "c" * 64,
                    "mode": "tf",
                    "setup": "0123456789ab",
                    "ganeval_version": "0.1",
                    "wall_s": 12.345,
                    "scored_at": "2024-01-01T00:00:00+00:00",
                }
            )
    rows[2]["fid"] = NAN  # baseline at step 3000 was not scored for fid
    table = pd.DataFrame(rows).sort_values("fid", na_position="last").reset_index(drop=True)
    table["rank"] = [float(i + 1) if not math.isnan(f) else NAN for i, f in enumerate(table["fid"])]
    return table


def _png(colour: tuple[int, int, int], size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_plot_curves_two_metrics_size_and_content(tmp_path: Path) -> None:
    out = render.plot_curves(_table(), ["fid", "kid"], tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (960, 360)
    pixels = _pixels(out)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 2
    assert pixels.std() > 5.0


def test_plot_curves_depends_on_values(tmp_path: Path) -> None:
    table = _table()
    changed = table.copy()
    changed["fid"] = changed["fid"] * 3 + 10
    first = _pixels(render.plot_curves(table, ["fid", "kid"], tmp_path / "a.png"))
    second = _pixels(render.plot_curves(changed, ["fid", "kid"], tmp_path / "b.png"))
    assert first.shape == second.shape
    assert (first != second).any()


def test_plot_curves_one_metric(tmp_path: Path) -> None:
    with Image.open(render.plot_curves(_table(), ["precision"], tmp_path / "p.png")) as image:
        assert image.size == (480, 360)


def test_curves_png_matches_plot_file(tmp_path: Path) -> None:
    data = render.curves_png(_table(), ["recall"])
    assert data.startswith(b"\x89PNG")
    path = render.plot_curves(_table(), ["recall"], tmp_path / "r.png")
    assert _pixels(path).tolist() == np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).tolist()


@pytest.mark.parametrize("metrics, named", [(["fid", "bogus"], "bogus"), (["density"], "density"), ([], "none")])
def test_plot_curves_bad_metrics(tmp_path: Path, metrics: list[str], named: str) -> None:
    with pytest.raises(BadInputError, match=named) as info:
        render.plot_curves(_table(), metrics, tmp_path / "x.png")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "x.png").exists()


def test_plot_curves_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(GanevalError, match=r'pip install "ganeval\[plot\]"') as info:
        render.plot_curves(_table(), ["fid"], tmp_path / "x.png")
    assert "--plot needs matplotlib" in str(info.value)
    assert not isinstance(info.value, BadInputError)
    assert list(tmp_path.iterdir()) == []


def test_format_value() -> None:
    assert render.format_value("fid", 12.345678) == "12.3457"
    assert render.format_value("kid", 0.0123456789) == "0.012346"
    assert render.format_value("kid_std", 0.0011) == "0.001100"
    assert render.format_value("fid", NAN) == ""
    assert render.format_value("fid", None) == ""


def _report(tmp_path: Path, **kwargs: object) -> tuple[pd.DataFrame, dict[str, bytes], str]:
    table = _table()
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    grids = {sha: _png(colour) for sha, colour in zip(table["checkpoint_sha256"][::2], colours)}
    path = render.write_report(table, tmp_path / "report.html", grids=grids, **kwargs)
    assert path == tmp_path / "report.html"
    return table, grids, path.read_text(encoding="utf-8")


def test_report_contents(tmp_path: Path) -> None:
    curves = render.curves_png(_table(), ["fid", "kid"])
    provenance = ["reference: real/ (10000 images, sha256 bbbbbbbbbbbb)", "samples 5000 · seed 2020 <b>"]
    table, grids, text = _report(tmp_path, title="my <board>", provenance=provenance, curves=curves)

    assert "<title>my &lt;board&gt;</title>" in text
    for line in provenance:
        assert f"<li>{html.escape(line)}</li>" in text
    assert "<b>" not in text

    for checkpoint in table["checkpoint"]:
        assert html.escape(checkpoint) in text
    assert "<script>" not in text and "<script" not in text
    assert html.escape(EVIL_RUN) in text

    embedded = [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]
    assert curves in embedded
    for sha, data in grids.items():
        row = re.search(rf'<tr id="ckpt-{sha[:16]}">(.*?)</tr>', text, re.S)
        assert row is not None
        found = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', row.group(1))
        assert [base64.b64decode(f) for f in found] == [data]
    assert text.count("no grid") == len(table) - len(grids)
    assert len(embedded) == len(grids) + 1

    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', text, re.I)
    assert "<link" not in text and "@import" not in text


def test_report_rows_in_given_order_and_formatting(tmp_path: Path) -> None:
    table, _, text = _report(tmp_path)
    ids = re.findall(r'<tr id="([^"]+)">', text)
    assert ids == [f"ckpt-{sha[:16]}" for sha in table["checkpoint_sha256"]]
    assert len(set(ids)) == len(ids)

    best = table.iloc[0]
    assert best["fid"] == table["fid"].min()
    row = re.search(rf'<tr id="ckpt-{best["checkpoint_sha256"][:16]}">(.*?)</tr>', text, re.S).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert cells[0] == "1" and cells[2] == str(best["step"])
    assert f"{best['fid']:.4f} [{best['fid_ci95_low']:.4f}, {best['fid_ci95_high']:.4f}]" in cells
    assert f"{best['kid']:.6f} ± 0.001100" in cells
    assert best["checkpoint_sha256"][:12] in cells
    assert best["checkpoint_sha256"] not in cells

    header = re.search(r"<thead>(.*?)</thead>", text, re.S).group(1)
    for metric in ("fid", "kid", "is", "precision", "recall"):
        assert f"<th>{metric} " in header
    for absent in ("density", "coverage", "swd"):
        assert absent not in header


def test_report_empty_table(tmp_path: Path) -> None:
    text = render.write_report(_table().iloc[:0], tmp_path / "empty.html", grids={}).read_text(encoding="utf-8")
    assert "<table>" in text and "<tr id=" not in text


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render.plot_curves(_table(), ["fid"], out / "curves.png")
    render.write_report(_table(), out / "report.html", grids={})
    render.write_report(_table(), out / "report.html", grids={}, title="again")
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "report.html"]
    assert "again" in (out / "report.html").read_text(encoding="utf-8")
