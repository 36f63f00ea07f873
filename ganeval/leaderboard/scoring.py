"""Scoring every checkpoint of one or many runs into the leaderboard CSV, against one reference loaded once.

Each checkpoint's generator draws ``num_samples`` images from the Evaluator's seed and is scored in one
pass. The CSV is rewritten atomically after every checkpoint (re-read first, so rows another process
added meanwhile are kept), so an interruption loses at most the checkpoint in progress; a rerun skips
checkpoints already scored with the same setup.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..atomic import atomic_write
from ..errors import BadInputError, GanevalError
from ..metrics import registry
from ..evaluator import Evaluator
from ..images import png_bytes, tile
from ..pairs import closest_pairs, load_named, pairs_png
from ..result import Result
from ..train.trainer import load_generator
from .discovery import Checkpoint, build_foreign, discover, import_factory, latent_shape
from .store import (
    METRIC_COLUMNS,
    RANKABLE,
    check_sort_by,
    default_sort,
    has_row,
    rank,
    read_table,
    setup_id,
    update_table,
    upsert,
    write_table,
)

PAIRS = 8
"""Closest fake/reference pairs shown per checkpoint when ``authpct`` is scored."""


@dataclass
class LeaderboardRun:
    """What one invocation did. table: the whole CSV, ranked; current: this setup's rows, ranked."""

    out: Path
    setup: str
    table: pd.DataFrame
    scored: list[Checkpoint] = field(default_factory=list)
    already_scored: int = 0
    failed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    provenance: list[str] = field(default_factory=list)
    plot: Path | None = None
    report: Path | None = None

    @property
    def current(self) -> pd.DataFrame:
        return self.table[self.table["setup"] == self.setup]


def score_checkpoints(
    paths: Sequence[str | os.PathLike[str]],
    evaluator: Evaluator,
    out: str | os.PathLike[str],
    *,
    generator: str | None = None,
    state_key: str | None = None,
    z_dim: int | None = None,
    sort_by: str | None = None,
    rescore: bool = False,
    skip_bad: bool = False,
    plot: str | os.PathLike[str] | None = None,
    plot_metrics: Sequence[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    grid_images: int = 16,
    log: Callable[[str], None] | None = None,
) -> LeaderboardRun:
    """Score the checkpoints under ``paths`` (ganeval run folders; with ``generator`` = "MODULE:FUNCTION",
    state-dict files) with ``evaluator`` into the CSV ``out``; then draw ``plot`` (PNG, metric vs step per
    run) and ``report`` (one self-contained HTML page with a sample grid per checkpoint) when given.
    ``skip_bad``: a checkpoint that cannot be loaded or scored is reported and skipped instead of stopping."""
    say = log or (lambda line: None)
    sort_by = check_sort_by(sort_by or default_sort(evaluator.metrics))
    if plot and not importlib.util.find_spec("matplotlib"):
        raise GanevalError('--plot needs matplotlib: pip install "ganeval[plot]" (or pip install matplotlib)')
    factory = import_factory(generator) if generator else None
    checkpoints = discover(paths, foreign=factory is not None)
    setup = evaluator.setup()
    run = LeaderboardRun(Path(out), setup_id(setup), rank(read_table(out), sort_by))
    run.provenance = _provenance_lines(setup, run.setup)
    device = evaluator.extractor.device
    grids: dict[str, bytes] = {}
    pending = [c for c in checkpoints if rescore or not has_row(run.table, c.sha256(), run.setup)]
    run.already_scored = len(checkpoints) - len(pending)
    if run.already_scored:
        say(
            f"{run.already_scored} of {len(checkpoints)} checkpoint(s) already scored with setup {run.setup}: "
            f"skipped (--rescore to score them again)"
        )
    for index, checkpoint in enumerate(pending, 1):
        began = time.perf_counter()
        try:
            module, latent = _load(checkpoint, factory, generator, state_key, z_dim, device)
            result = evaluator.score(module, z_dim=latent)
            if "authpct" in evaluator.metrics:
                _store_pairs(out, checkpoint.sha256(), run.setup, _pairs(module, latent, result, evaluator))
            if report:
                grids[checkpoint.sha256()] = _grid(module, latent, grid_images, evaluator)
        except GanevalError as exc:
            if not skip_bad:
                raise
            run.failed.append(f"{checkpoint.path}: {exc}")
            say(f"[{index}/{len(pending)}] skipped {checkpoint.path}: {exc}")
            continue
        row = _row(checkpoint, result, setup, run.setup, time.perf_counter() - began)
        run.table = update_table(out, lambda table: rank(upsert(table, row), sort_by))
        run.scored.append(checkpoint)
        run.warnings += [w for w in result.warnings if w not in run.warnings]
        say(f"[{index}/{len(pending)}] {checkpoint.run} step {checkpoint.step}: {_summary(result)}")
    if not run.scored:
        on_disk = read_table(out)
        run.table = rank(on_disk, sort_by)
        if not run.table.equals(on_disk) and not on_disk.empty:
            write_table(out, run.table)
    if plot:
        from .render import plot_curves

        run.plot = plot_curves(run.current, _plotted(run.current, plot_metrics), plot)
    if report:
        if not importlib.util.find_spec("matplotlib"):
            say("the report has no curves: matplotlib is not installed (pip install matplotlib)")
        run.report = _report(
            run, checkpoints, grids, factory, generator, state_key, z_dim, evaluator, plot_metrics, grid_images, report
        )
    return run


def _load(
    checkpoint: Checkpoint,
    factory: Callable[..., torch.nn.Module] | None,
    spec: str | None,
    state_key: str | None,
    z_dim: int | None,
    device: torch.device,
) -> tuple[torch.nn.Module, int | tuple[int, ...] | None]:
    if factory is None:
        return load_generator(checkpoint.path, device)[0], None
    module = build_foreign(checkpoint, factory, str(spec), state_key, device)
    return module, latent_shape(module, checkpoint, z_dim)


def _row(
    checkpoint: Checkpoint, result: Result, setup: dict[str, object], setup_hash: str, wall: float
) -> dict[str, object]:
    scores, provenance = result.scores, result.provenance
    row: dict[str, object] = {
        "run": checkpoint.run,
        "step": checkpoint.step,
        "checkpoint": str(checkpoint.path),
        "checkpoint_sha256": checkpoint.sha256(),
    }
    for column in METRIC_COLUMNS:
        if column in scores:
            row[column] = scores[column]
        elif column.endswith("_low") and isinstance(scores.get(column[:-4]), list):
            row[column], row[f"{column[:-4]}_high"] = scores[column[:-4]]
    reference, timing = _mapping(setup.get("reference")), _mapping(provenance.get("timing_s"))
    low, high = (float(end) for end in _sequence(setup["input_range"]))
    row.update(
        samples=result.n_fake,
        seed=setup["seed"],
        metrics=",".join(map(str, _sequence(setup["metrics"]))),
        input_range=f"{low:g},{high:g}",
        options=json.dumps({k: v for k, v in setup.items() if k in _option_keys()}),
        reference=reference.get("source"),
        reference_sha256=reference.get("sha256"),
        n_reference=result.n_real,
        extractor=setup.get("extractor"),
        weights_sha256=setup.get("weights_sha256"),
        mode=setup.get("mode"),
        setup=setup_hash,
        ganeval_version=__version__,
        generate_s=timing.get("generate"),
        extract_s=timing.get("extract"),
        metrics_s=timing.get("metrics"),
        wall_s=round(wall, 3),
        scored_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        warnings=" | ".join(result.warnings),
    )
    return row


def _summary(result: Result) -> str:
    values = [
        f"{k} {registry.format_value(k, v)}" for k, v in result.scores.items() if k in RANKABLE and isinstance(v, float)
    ]
    spent = ", ".join(f"{k} {v:.1f} s" for k, v in _mapping(result.provenance.get("timing_s")).items())
    return ", ".join(values) + (f" ({spent})" if spent else "")


def _mapping(value: object) -> dict[str, Any]:
    """A setup or provenance entry that is a dict (an absent one is empty)."""
    return dict(value) if isinstance(value, dict) else {}


def _sequence(value: object) -> list[Any]:
    """A setup entry that is a list or tuple."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a list, got {value!r}")
    return list(value)


def _provenance_lines(setup: dict[str, object], setup_hash: str) -> list[str]:
    reference = _mapping(setup.get("reference"))
    lines = []
    if reference:
        lines.append(
            f"reference: {reference.get('source')} ({reference.get('n')} images, "
            f"sha256 {str(reference.get('sha256'))[:12]})"
        )
    lines.append(
        f"extractor: {setup.get('extractor')}, weights sha256 {str(setup.get('weights_sha256'))[:12]}, "
        f"mode {setup.get('mode')}"
    )
    lines.append(
        f"samples {setup.get('num_samples')} per checkpoint · seed {setup.get('seed')} · metrics "
        f"{','.join(map(str, _sequence(setup.get('metrics') or [])))} · setup {setup_hash}"
    )
    return lines


def _plotted(current: pd.DataFrame, asked: Sequence[str] | None) -> list[str]:
    if asked:
        return list(asked)
    return [m for m in registry.plotted() if current[m].notna().any()]


def _grid(module: torch.nn.Module, latent: int | tuple[int, ...] | None, count: int, evaluator: Evaluator) -> bytes:
    """A PNG grid of the first ``count`` images of the checkpoint in the Evaluator's latent scheme: the scored
    images themselves when ``count`` is at most the sample count (drawn again by ``Evaluator.images``)."""
    total = max(count, evaluator.num_samples)
    shown = evaluator.images(module, range(count), z_dim=latent, num_samples=total)
    return png_bytes(tile(np.stack([shown[index] for index in sorted(shown)])))


def pairs_path(out: str | os.PathLike[str], checkpoint_sha256: str, setup: str) -> Path:
    """Where the closest-pairs PNG of one checkpoint under one setup is kept: ``<out>.pairs/`` beside the CSV.
    Both ids come from a CSV a user may have edited: anything but hex digits is refused (BadInputError),
    so no cell can point outside that folder."""
    if not (_HEX.fullmatch(str(checkpoint_sha256)) and _HEX.fullmatch(str(setup))):
        raise BadInputError(
            f"{out}: checkpoint_sha256 {str(checkpoint_sha256)[:20]!r} / setup {str(setup)[:20]!r} are not hex ids"
        )
    out = Path(out)
    return out.with_name(out.name + ".pairs") / f"{checkpoint_sha256[:16]}-{setup}.png"


_HEX = re.compile(r"[0-9a-f]{12,64}")


def _pairs(
    module: torch.nn.Module, latent: int | tuple[int, ...] | None, result: Result, evaluator: Evaluator
) -> bytes:
    """A PNG of the fakes closest to the reference beside their nearest reference images; the fakes are drawn
    again from the scored latents, the reference images read by the names their features were cached with."""
    pairs = closest_pairs(result, PAIRS)
    fakes = evaluator.images(module, [p.fake_index for p in pairs], z_dim=latent)
    trains = load_named(evaluator.reference, [p.train_name for p in pairs])
    return pairs_png(pairs, [fakes[p.fake_index] for p in pairs], trains)


def _store_pairs(out: str | os.PathLike[str], checkpoint_sha256: str, setup: str, png: bytes) -> None:
    path = pairs_path(out, checkpoint_sha256, setup)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(png)


def _report(
    run: LeaderboardRun,
    checkpoints: list[Checkpoint],
    grids: dict[str, bytes],
    factory: Callable[..., torch.nn.Module] | None,
    spec: str | None,
    state_key: str | None,
    z_dim: int | None,
    evaluator: Evaluator,
    plot_metrics: Sequence[str] | None,
    grid_images: int,
    path: str | os.PathLike[str],
) -> Path:
    from .render import curves_png, write_report

    shown = set(run.current["checkpoint_sha256"].dropna())
    for checkpoint in checkpoints:
        sha = checkpoint.sha256()
        if sha in shown and sha not in grids:
            module, latent = _load(checkpoint, factory, spec, state_key, z_dim, evaluator.extractor.device)
            grids[sha] = _grid(module, latent, grid_images, evaluator)
    metrics = _plotted(run.current, plot_metrics)
    curves = curves_png(run.current, metrics) if metrics and importlib.util.find_spec("matplotlib") else None
    pairs = {
        sha: file.read_bytes()
        for sha in shown
        if _HEX.fullmatch(str(sha)) and (file := pairs_path(run.out, sha, run.setup)).is_file()
    }
    return write_report(run.current, path, grids=grids, provenance=run.provenance, curves=curves, pairs=pairs)


def _option_keys() -> set[str]:
    """The keys of a setup that are options (kept as JSON in the ``options`` column so a rerun can reuse
    them): every metric option's keyword, ``bootstrap``, ``precision``, ``batch_size``, ``features`` and
    ``dinov2_resize``."""
    return {*registry.option_keywords(), "bootstrap", "precision", "batch_size", "features", "dinov2_resize"}
