"""The scoring commands: ``score``, one command per registered metric (generated from the registry),
``memorization``, ``collapse`` (and its deprecated name ``modes``) and ``compat``."""

from __future__ import annotations

from typing import Any

import click

from .. import defaults
from ..metrics import registry
from ..metrics.registry import Metric
from ..preprocess import MODES
from .common import (
    Decorator,
    extractor_options,
    handle_errors,
    join_process_group,
    output_options,
    report_provenance,
    stack,
    verbosity_options,
    warn,
)
from .metric_options import metric_options


def _score_options(names: list[str] | None = None) -> Decorator:
    """Options of a scoring command: the extractor's, the output's, verbosity, --force and those of its
    metrics (all when None)."""
    return stack(
        extractor_options(),
        output_options(),
        verbosity_options(),
        click.option("--force", is_flag=True, help="Compare statistics made with different weights or modes anyway."),
        metric_options(names),
        handle_errors,
    )


def _score_and_print(
    real: str | None,
    fake: str,
    metrics: list[str] | None,
    *,
    device: str | None,
    no_cache: bool,
    quiet: bool,
    verbose: bool,
    csv_path: str | None,
    as_json: bool,
    grid: str | None = None,
    pairs: int = defaults.CLOSEST_PAIRS,
    **keywords: Any,
) -> None:
    from ..api import score
    from ..result import append_csv

    if grid and not grid.lower().endswith(".png"):
        raise click.BadParameter(f"{grid}: the grid is written as PNG; name it *.png", param_hint="--grid")
    reports = join_process_group(device)
    result = score(
        real, fake, metrics, device=device, cache=not no_cache, progress=False if quiet else None, **keywords
    )
    if not reports:
        return
    warn(result.warnings)
    if csv_path:
        append_csv(csv_path, result)
    if grid:
        from ..pairs import write_pairs_grid

        shown = write_pairs_grid(grid, result, real, fake, pairs)
        if not quiet:
            click.echo(f"wrote {grid}: the {len(shown)} closest fake/training pairs", err=True)
    if as_json:
        click.echo(result.to_json())
        return
    click.echo(result.text())
    report_provenance(result.provenance, result.provenance_line(), verbose=verbose, quiet=quiet)


@click.command()
@click.argument("real")
@click.argument("fake")
@click.option(
    "--metrics",
    default="all",
    show_default=True,
    help=f"Comma-separated subset of {','.join(registry.names())} (pr = precision, recall, density, "
    f"coverage; authpct and collapse: the memorisation and mode-collapse diagnostics, with REAL as the "
    f"training set). all = {','.join(registry.standard())}.",
)
@_score_options()
def score(real: str, fake: str, metrics: str, **options: Any) -> None:
    """Every metric between REAL and FAKE from one decode pass over each: FID, KID, IS (of FAKE),
    precision/recall/density/coverage and SWD, with their spreads and provenance."""
    from ..api import parse_metrics

    _score_and_print(real, fake, parse_metrics(metrics), **options)


def single_metric_command(metric: Metric) -> click.Command:
    """The command of one registered metric: its sets (REAL FAKE, or FAKE for a one-set metric) and only
    its own options."""

    def command(**options: Any) -> None:
        real = None if metric.one_set else options.pop("real")
        _score_and_print(real, options.pop("fake"), [metric.name], **options)

    command.__doc__ = metric.doc
    command.__name__ = str(metric.command)
    arguments = [click.argument("fake")] if metric.one_set else [click.argument("real"), click.argument("fake")]
    return click.command(name=metric.command)(stack(*arguments, _score_options([metric.name]))(command))


@click.command()
@click.argument("train")
@click.argument("fake")
@click.option(
    "--grid",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a PNG of the closest fake/training pairs (fake left, training image right, distance under).",
)
@click.option(
    "--pairs",
    type=click.IntRange(min=1),
    default=defaults.CLOSEST_PAIRS,
    show_default=True,
    help="How many pairs the grid shows.",
)
@_score_options(["authpct"])
def memorization(train: str, fake: str, grid: str | None, pairs: int, **options: Any) -> None:
    """How close FAKE comes to copying TRAIN, in Inception pool3 space: authpct (the percentage of fakes
    farther from their nearest training image than that image is from its own nearest neighbour), the copy
    rate (fakes closer than the 1st percentile of TRAIN's leave-one-out distances) and the median distance.
    TRAIN's features come from the cache when it was scored before."""
    _score_and_print(train, fake, ["authpct"], grid=grid, pairs=pairs, **options)


def _collapse_command(name: str, deprecated: bool = False) -> click.Command:
    """``collapse``, or the same command under its old name ``modes`` (deprecated for one release)."""

    def collapse(real: str, fake: str, no_classes: bool, **options: Any) -> None:
        """Mode collapse of FAKE: its near-duplicate rate next to an equal-size subset of REAL, and the
        birthday-paradox support size. When REAL has class subfolders (every image in one, 2+ of them) or is a
        labelled dataset by name (fashion-mnist, fashion-mnist:test, mnist, cifar10), also the class histogram
        of FAKE (k=5 nearest-neighbour vote), classes covered, KL(real || fake) and per-class FID."""
        _score_and_print(real, fake, ["collapse"], classes=not no_classes, **options)

    decorators = stack(
        click.argument("real"),
        click.argument("fake"),
        click.option("--no-classes", is_flag=True, help="Ignore REAL's class subfolders (no class coverage)."),
        _score_options(["authpct"]),
    )
    return click.command(name=name, deprecated=deprecated)(decorators(collapse))


@click.command()
@click.argument("real")
@click.argument("fake")
@click.option("--modes", default=",".join(MODES), show_default=True, help="Comma-separated preprocessing modes.")
@output_options(csv=False)
@extractor_options(with_mode=False)
@verbosity_options()
@handle_errors
def compat(
    real: str,
    fake: str,
    modes: str,
    as_json: bool,
    weights: str | None,
    device: str | None,
    batch_size: int,
    no_cache: bool,
    skip_bad: bool,
    quiet: bool,
    verbose: bool,
    precision: str,
) -> None:
    """FID between REAL and FAKE in every preprocessing mode side by side, with what makes each differ."""
    from ..compat import compare_modes

    asked = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = [m for m in asked if m not in MODES]
    if unknown:
        raise click.BadParameter(
            f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}", param_hint="--modes"
        )
    comparison = compare_modes(
        real,
        fake,
        modes=asked,
        weights=weights,
        device=device,
        batch_size=batch_size,
        cache=not no_cache,
        skip_bad=skip_bad,
        progress=False if quiet else None,
        precision=precision,
    )
    warn(comparison.warnings())
    if as_json:
        click.echo(comparison.to_json())
        return
    click.echo(comparison.text())
    report_provenance(comparison.provenance(), comparison.provenance_line(), verbose=verbose, quiet=quiet)


collapse = _collapse_command("collapse")
modes = _collapse_command("modes", deprecated=True)
metric_commands = [
    single_metric_command(metric)
    for metric in registry.all_metrics()
    if metric.command and metric.command not in ("memorization", "collapse")
]

COMMANDS: list[click.Command] = [score, *metric_commands, memorization, collapse, modes, compat]
DISTRIBUTED: tuple[str, ...] = tuple(str(command.name) for command in COMMANDS if command is not compat)
"""The scoring commands that split their images across processes under ``torchrun``."""
