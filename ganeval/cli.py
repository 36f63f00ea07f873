"""The ``ganeval`` command line. Results on stdout; progress, provenance and warnings on stderr.

Exit codes: 0 success; 2 bad input or usage (a one-line ``error:`` message); 1 an internal error (the
traceback only with ``--debug``).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__, defaults
from .metrics import registry
from .metrics.registry import Metric
from .errors import BadInputError, GanevalError
from .device import PRECISIONS
from .options import DEFAULT_BATCH_SIZE
from .preprocess import DEFAULT_MODE, MODES


def _fail(message: str, code: int) -> None:
    """``error: message`` as one line on stderr (a multi-line exception text joined), then exit ``code``."""
    message = " ".join(line.strip() for line in message.splitlines() if line.strip())
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn GanevalError into a one-line message and exit 2; other exceptions into exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, debug: bool = False, **kwargs: Any) -> Any:
        logging.basicConfig(format="warning: %(message)s", level=logging.WARNING, stream=sys.stderr, force=True)
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except GanevalError as exc:
            if debug:
                raise
            _fail(str(exc), 2)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - the last line of defence, re-raised with --debug
            if debug:
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)", 1)

    return click.option("--debug", is_flag=True, help="Show the full traceback on errors.")(wrapper)


def _extractor_options(func: Callable[..., Any], with_mode: bool = True) -> Callable[..., Any]:
    options = [
        click.option("--mode", type=click.Choice(list(MODES)), default=DEFAULT_MODE, show_default=True,
                     help="Resize/normalisation: tf (torch-fidelity, StyleGAN; the standard), pytorch-fid, or clean "
                          "(clean-fid). `ganeval compat` shows all three."),
        click.option("--weights", type=click.Path(dir_okay=False), default=None,
                     help="Inception state dict in pytorch-fid's layout (else $GANEVAL_INCEPTION_WEIGHTS, the "
                          "standard file, the packaged trunk, a download)."),
        click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, or auto."),
        click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the features cache."),
        click.option("--skip-bad", is_flag=True, help="Skip unreadable images (counted in the provenance)."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar or provenance line."),
        click.option("--precision", type=click.Choice(list(PRECISIONS)), default="fp32", show_default=True,
                     help="Arithmetic of the Inception forward. fp32 is the standard; tf32 (CUDA), bf16 and fp16 are "
                          "faster, move FID slightly (docs/precision.md) and are recorded in the provenance."),
    ]
    for option in reversed(options[0 if with_mode else 1:]):
        func = option(func)
    return func


def _warn(warnings: list[str]) -> None:
    for message in warnings:
        click.echo(f"warning: {message}", err=True)


DISTRIBUTED_COMMANDS = ("score", *(m.command for m in registry.all_metrics() if m.command), "modes", "stats")
"""The commands that split their images across processes under ``torchrun``."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ganeval")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Score generative image models: FID, KID, IS, precision/recall, SWD from one shared Inception-v3 pass."""
    from . import distributed

    if distributed.launched() and ctx.invoked_subcommand not in DISTRIBUTED_COMMANDS:
        _fail(f"`ganeval {ctx.invoked_subcommand}` runs as one process; under torchrun use one of "
              f"{', '.join(DISTRIBUTED_COMMANDS)}", 2)


def _join_process_group(device: str) -> bool:
    """Under torchrun: join the process group and silence every rank but 0 (it prints the one result and
    writes the files). Returns whether this process is the one that reports."""
    from . import distributed

    distributed.join_from_environment(device)
    click.get_current_context().call_on_close(distributed.leave)
    if distributed.is_root():
        return True
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        os.dup2(devnull, stream.fileno())
    return False


def _click_option(keyword: str, f: Any) -> Callable[..., Any]:
    """The click option of one metric option (its declared keyword, help, bounds and default)."""
    meta, flag = f.metadata, "--" + keyword.replace("_", "-")
    if isinstance(f.default, bool):
        return click.option(f"{flag}/--no-{flag[2:]}", default=f.default, show_default=True, help=meta.get("help"))
    if meta.get("choices"):
        kind: Any = click.Choice([str(c) for c in meta["choices"]])
        default: Any = str(f.default)
    else:
        kind, default = click.IntRange(min=meta.get("min")), f.default
    return click.option(flag, keyword, type=kind, default=default, show_default=f.default is not None,
                        help=meta.get("help"))


def _metric_options(func: Callable[..., Any], names: list[str] | None = None) -> Callable[..., Any]:
    """The options of the metrics ``names`` (all when None) as the registry declares them, with --seed,
    --bootstrap (when one of them has intervals) and --vgg-weights (when one may use VGG16)."""
    from .metrics import registry

    metrics = [registry.get(name) for name in names] if names else registry.all_metrics()
    options = [click.option("--seed", type=int, default=defaults.SEED, show_default=True,
                            help="Seed of every random choice (KID subsets, IS shuffle, P/R subsampling, SWD, bootstrap).")]
    options += [_click_option(keyword, f) for metric in metrics for keyword, f in metric.option_fields()]
    if any(metric.name == "pr" for metric in metrics):
        options.append(click.option("--vgg-weights", type=click.Path(dir_okay=False), default=None,
                                    help="VGG16 state dict (torchvision layout) for --pr-features vgg16."))
    if any(metric.statistic for metric in metrics):
        options.append(click.option("--bootstrap", type=click.IntRange(min=0), default=defaults.BOOTSTRAP,
                                    show_default=True, help="Resamples for 95%% intervals (0: none; else at least 2)."))
    for option in reversed(options):
        func = option(func)
    return func


def _typed(options: dict[str, Any]) -> dict[str, Any]:
    """Click's strings of choice options back to their declared types (``--dims 768`` → 768)."""
    from .metrics import registry

    for keyword, (metric, name) in registry.option_keywords().items():
        default = next(f.default for f in __import__("dataclasses").fields(metric.options) if f.name == name)
        if keyword in options and isinstance(default, int) and isinstance(options[keyword], str):
            options[keyword] = int(options[keyword])
    return options


def _score_options(func: Callable[..., Any], names: list[str] | None = None) -> Callable[..., Any]:
    """Options of a scoring command: those of its metrics (all when None) and the output's."""
    options = [
        click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
                     help="Append one row (header once) to this CSV, atomically."),
        click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of the table."),
        click.option("-v", "--verbose", is_flag=True, help="Print the full provenance."),
        click.option("--force", is_flag=True, help="Compare statistics made with different weights or modes anyway."),
    ]
    for option in reversed(options):
        func = option(func)
    return _metric_options(func, names)


def _score_and_print(real: str | None, fake: str, metrics: list[str] | None, *, device: str, no_cache: bool,
                     quiet: bool, csv_path: str | None, as_json: bool, verbose: bool, grid: str | None = None,
                     pairs: int = defaults.CLOSEST_PAIRS, **keywords: Any) -> None:
    from .api import score
    from .result import append_csv

    if grid and not grid.lower().endswith(".png"):
        raise click.BadParameter(f"{grid}: the grid is written as PNG; name it *.png", param_hint="--grid")
    reports = _join_process_group(device)
    result = score(real, fake, metrics, device=device, cache=not no_cache, progress=False if quiet else None,
                   **_typed(keywords))
    if not reports:
        return
    _warn(result.warnings)
    if csv_path:
        append_csv(csv_path, result)
    if grid:
        from .pairs import write_pairs_grid

        shown = write_pairs_grid(grid, result, real, fake, pairs)
        if not quiet:
            click.echo(f"wrote {grid}: the {len(shown)} closest fake/training pairs", err=True)
    if as_json:
        click.echo(result.to_json())
        return
    click.echo(result.text())
    if verbose:
        click.echo(json.dumps(result.provenance, indent=2, default=str), err=True)
    elif not quiet:
        click.echo(result.provenance_line(), err=True)


@cli.command()
@click.argument("real")
@click.argument("fake")
@click.option("--metrics", default="all", show_default=True,
              help=f"Comma-separated subset of {','.join(registry.names())} (pr = precision, recall, density, coverage; "
                   f"authpct and collapse: the memorisation and mode-collapse diagnostics, with REAL as the training "
                   f"set). all = {','.join(registry.standard())}.")
@_extractor_options
@_score_options
@_handle_errors
def score(real: str, fake: str, metrics: str, **options: Any) -> None:
    """Every metric between REAL and FAKE from one decode pass over each: FID, KID, IS (of FAKE),
    precision/recall/density/coverage and SWD, with their spreads and provenance."""
    from .api import parse_metrics

    _score_and_print(real, fake, parse_metrics(metrics), **options)


def _single_metric_command(metric: Metric) -> None:
    """The command of one registered metric: its sets (REAL FAKE, or FAKE for a one-set metric) and only
    its own options."""
    def command(**options: Any) -> None:
        real = None if metric.one_set else options.pop("real")
        _score_and_print(real, options.pop("fake"), [metric.name], **options)

    command.__doc__ = metric.doc
    command.__name__ = str(metric.command)
    wrapped = _handle_errors(command)
    wrapped = _score_options(wrapped, [metric.name])
    wrapped = _extractor_options(wrapped)
    wrapped = click.argument("fake")(wrapped)
    if not metric.one_set:
        wrapped = click.argument("real")(wrapped)
    cli.command(name=metric.command)(wrapped)


for _metric in registry.all_metrics():
    if _metric.command and _metric.command not in ("memorization", "collapse"):
        _single_metric_command(_metric)


@cli.command()
@click.argument("train")
@click.argument("fake")
@click.option("--grid", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG of the closest fake/training pairs (fake left, training image right, distance under).")
@click.option("--pairs", type=click.IntRange(min=1), default=defaults.CLOSEST_PAIRS, show_default=True,
              help="How many pairs the grid shows.")
@_extractor_options
@functools.partial(_score_options, names=["authpct"])
@_handle_errors
def memorization(train: str, fake: str, grid: str | None, pairs: int, **options: Any) -> None:
    """How close FAKE comes to copying TRAIN, in Inception pool3 space: authpct (the percentage of fakes
    farther from their nearest training image than that image is from its own nearest neighbour), the copy
    rate (fakes closer than the 1st percentile of TRAIN's leave-one-out distances) and the median distance.
    TRAIN's features come from the cache when it was scored before."""
    _score_and_print(train, fake, ["authpct"], grid=grid, pairs=pairs, **options)


@cli.command()
@click.argument("real")
@click.argument("fake")
@click.option("--no-classes", is_flag=True, help="Ignore REAL's class subfolders (no class coverage).")
@_extractor_options
@functools.partial(_score_options, names=["authpct"])
@_handle_errors
def collapse(real: str, fake: str, no_classes: bool, **options: Any) -> None:
    """Mode collapse of FAKE: its near-duplicate rate next to an equal-size subset of REAL, and the
    birthday-paradox support size. When REAL has class subfolders (every image in one, 2+ of them) or is a
    labelled dataset by name (fashion-mnist, fashion-mnist:test, mnist, cifar10), also the class histogram
    of FAKE (k=5 nearest-neighbour vote), classes covered, KL(real || fake) and per-class FID."""
    _score_and_print(real, fake, ["collapse"], classes=not no_classes, **options)


_modes = copy.copy(collapse)
_modes.deprecated = True
cli.add_command(_modes, "modes")  # the old name, for one release


@cli.command()
@click.argument("real")
@click.argument("fake")
@click.option("--modes", default=",".join(MODES), show_default=True, help="Comma-separated preprocessing modes.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of the table.")
@functools.partial(_extractor_options, with_mode=False)
@_handle_errors
def compat(real: str, fake: str, modes: str, as_json: bool, weights: str | None, device: str, batch_size: int,
           no_cache: bool, skip_bad: bool, quiet: bool, precision: str) -> None:
    """FID between REAL and FAKE in every preprocessing mode side by side, with what makes each differ."""
    from .compat import compare_modes

    unknown = [m for m in modes.split(",") if m.strip() and m.strip() not in MODES]
    if unknown:
        raise click.BadParameter(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}",
                                 param_hint="--modes")
    comparison = compare_modes(real, fake, modes=[m.strip() for m in modes.split(",") if m.strip()],
                               weights=weights, device=device, batch_size=batch_size, cache=not no_cache,
                               skip_bad=skip_bad, progress=False if quiet else None, precision=precision)
    _warn(comparison.warnings())
    if as_json:
        click.echo(comparison.to_json())
        return
    click.echo(comparison.text())
    if not quiet:
        click.echo(comparison.provenance_line(), err=True)


@cli.command()
@click.argument("source", required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Where to write the statistics .npz.")
@click.option("--list", "list_known", is_flag=True, help="List the published reference statistics we know of.")
@click.option("--data", default=None,
              help="A training dataset by name instead of SOURCE: fashion-mnist, mnist, cifar10, shapes (as `train`).")
@click.option("--size", type=click.IntRange(min=1), default=None,
              help="With --data: image size (default 28 for fashion-mnist/mnist, else 32).")
@click.option("--limit", type=click.IntRange(min=2), default=None, help="With --data: use the first N images only.")
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="With --data: where it lives.")
@_extractor_options
@_handle_errors
def stats(source: str | None, output: str | None, list_known: bool, data: str | None, size: int | None,
          limit: int | None, data_root: str | None, mode: str, weights: str | None, device: str, batch_size: int,
          no_cache: bool, skip_bad: bool, quiet: bool, precision: str) -> None:
    """Precompute reference statistics of SOURCE (or of --data NAME) into an .npz (mu, sigma, n, provenance)."""
    if list_known:
        from .reference_stats import format_manifest, load_manifest

        click.echo(format_manifest(load_manifest()))
        return
    if bool(source) == bool(data) or not output:
        raise click.UsageError("give SOURCE or --data NAME, and -o OUTPUT (or --list)")
    if data:
        from .datasets import dataset_images

        source = dataset_images(data, size, limit=limit, root=data_root)  # type: ignore[assignment]
    from .api import statistics
    from .stats import save_statistics
    from .weights import nonstandard_warning

    reports = _join_process_group(device)
    result = statistics(source, mode=mode, weights=weights, device=device, batch_size=batch_size,
                        cache=not no_cache, skip_bad=skip_bad, progress=False if quiet else None, precision=precision)
    if not reports:
        return
    path = save_statistics(result, output)
    if result.meta.get("ignored_files"):
        _warn([f"{result.meta['ignored_files']} non-image or hidden files in {source} were ignored"])
    if result.meta.get("extractor") and not result.meta.get("weights_standard"):
        _warn([nonstandard_warning(result.meta.get("weights_sha256"))])
    skipped = len(result.meta.get("skipped") or [])
    click.echo(f"wrote {path}: {result.n} images{f', {skipped} skipped' if skipped else ''}, "
               f"mode {result.meta.get('mode')}, precision {result.meta.get('precision', 'fp32')}, weights sha256 {str(result.meta.get('weights_sha256'))[:12]}")


@cli.command()
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Check this file instead.")
@click.option("--download", is_flag=True, help="Download the full file (with classifier) if nothing is found.")
@click.option("--json", "as_json", is_flag=True)
@_handle_errors
def weights(weights: str | None, download: bool, as_json: bool) -> None:
    """Where the Inception weights are, their sha256, and whether they are the standard ones."""
    from .weights import describe, locate_weights

    info = describe(locate_weights(weights, download=download))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    width = max(len(key) for key in info)
    for key, value in info.items():
        click.echo(f"{key:<{width}}  {value}")


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), help="The run folder to create.")
@click.option("--resume", "resume_run", type=click.Path(file_okay=False, exists=True),
              help="Continue this run folder from its last complete checkpoint (its settings; --steps may extend it).")
@click.option("--model", type=click.Choice(["dcgan", "wgan", "wgan-gp"]), default="dcgan", show_default=True)
@click.option("--loss", type=click.Choice(["ns", "minimax", "lsgan", "hinge", "wgan", "wgan-gp"]), default=None,
              help="Default: the model's (dcgan: ns, wgan: wgan, wgan-gp: wgan-gp).")
@click.option("--data", default="shapes", show_default=True,
              help="An image folder, or fashion-mnist, mnist, cifar10, shapes (procedural, offline).")
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="Where named datasets live.")
@click.option("--size", type=click.Choice(["28", "32", "64"]), default="32", show_default=True)
@click.option("--channels", type=click.Choice(["1", "3"]), default=None, help="Default: the dataset's.")
@click.option("--width", type=click.IntRange(min=1), default=64, show_default=True, help="Base channel width.")
@click.option("--z-dim", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Generator updates (default 2000; with --resume: the run's own, or extend it to this).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--lr-g", type=float, default=None, help="TTUR: generator learning rate (default: the loss's).")
@click.option("--lr-d", type=float, default=None, help="TTUR: discriminator learning rate (default: the loss's).")
@click.option("--n-critic", type=click.IntRange(min=1), default=None, help="D steps per G step (default: the loss's).")
@click.option("--spectral-norm", is_flag=True, help="Spectral normalisation on every D convolution.")
@click.option("--label-smoothing", type=click.FloatRange(0, 0.5), default=0.0, show_default=True,
              help="One-sided: real label 1 − s (ns/minimax).")
@click.option("--instance-noise", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Std of Gaussian noise added to D's inputs.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=500, show_default=True)
@click.option("--sample-every", type=click.IntRange(min=0), default=500, show_default=True)
@click.option("--eval-every", type=click.IntRange(min=0), default=0, show_default=True,
              help="FID/KID through ganeval.Evaluator every K steps (0: never).")
@click.option("--eval-samples", type=click.IntRange(min=2), default=5000, show_default=True)
@click.option("--eval-metrics", default="fid", show_default=True)
@click.option("--early-stop", type=click.IntRange(min=0), default=0, show_default=True,
              help="Stop when FID has not improved for this many evaluations (0: never).")
@click.option("--device", default="auto", show_default=True)
@_handle_errors
def train(out: str | None, resume_run: str | None, **options: Any) -> None:
    """Train a reference DCGAN/WGAN; checkpoints (safetensors + JSON) go to OUT/checkpoints."""
    from .api import parse_metrics
    from .train.trainer import TrainConfig, Trainer

    if bool(out) == bool(resume_run):
        raise click.UsageError("give --out RUN for a new run, or --resume RUN to continue one")
    options.update(size=int(options["size"]), channels=int(options["channels"]) if options["channels"] else None,
                   device=None if options["device"] == "auto" else options["device"],
                   eval_metrics=parse_metrics(options["eval_metrics"]))
    if not options["eval_metrics"]:
        raise click.BadParameter("name the metrics, e.g. fid,kid", param_hint="--eval-metrics")
    config = TrainConfig(out=str(out or resume_run), **options)
    run = Trainer(config, resume=bool(resume_run), log=lambda line: click.echo(line, err=True)).run()
    click.echo(f"run folder: {run}")


@cli.command()
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False))
@click.option("-n", "count", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(),
              help="A .png file for a grid, or a folder for one PNG per image.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the latents.")
@click.option("--device", default="auto", show_default=True)
@_handle_errors
def sample(checkpoint: str, count: int, output: str, seed: int, device: str) -> None:
    """Images from a checkpoint folder (or a run folder: its latest checkpoint): a grid or N PNG files."""
    import torch

    from .train.trainer import load_generator, save_grid, save_pngs

    generator, meta = load_generator(checkpoint, None if device == "auto" else device)
    latents = torch.randn(count, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        images = torch.cat([generator(z.to(next(generator.parameters()).device)).cpu()
                            for z in latents.split(256)])
    if output.lower().endswith(".png"):
        save_grid(images, output)
        click.echo(f"wrote {output}: {count} images of step {meta.get('step')}, seed {seed}")
        return
    save_pngs(images, output)
    click.echo(f"wrote {count} PNGs to {output} (step {meta.get('step')}, seed {seed})")


class _DefaultCommandGroup(click.Group):
    """A group whose arguments go to its ``default`` subcommand when the first one names no subcommand,
    so ``ganeval leaderboard runs/ ...`` means ``ganeval leaderboard score runs/ ...``."""

    default = "score"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default, *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_DefaultCommandGroup)
def leaderboard() -> None:
    """Rank checkpoints into a CSV: `ganeval leaderboard [score] PATHS... --reference REF --out CSV`, or
    print one: `ganeval leaderboard show CSV`."""


_INHERITED = ("metrics", "samples", "seed", "mode", "input_range", *registry.option_keywords(), "bootstrap", "precision",
              "batch_size")


def _inherit_setup(ctx: click.Context, out: str, options: dict[str, Any]) -> str | None:
    """Options left at their defaults take the values of the CSV's latest setup, so that rerunning the short
    command scores only new checkpoints. Returns a description of what was taken, or None."""
    from .leaderboard.store import read_table

    table = read_table(out)
    if table.empty:
        return None
    latest = table.sort_values("scored_at", kind="stable").iloc[-1]
    saved = {"metrics": latest["metrics"], "samples": latest["samples"], "seed": latest["seed"],
             "mode": latest["mode"], "input_range": latest["input_range"]}
    if not _missing(latest["options"]):
        try:
            extra = json.loads(str(latest["options"]))
        except json.JSONDecodeError:
            extra = None
        if not isinstance(extra, dict):
            raise BadInputError(f"{out}: the options cell of its latest row is not a JSON object; fix or remove the row")
        saved.update(extra)
    params = {param.name: param for param in ctx.command.params}
    taken = {}
    for name in _INHERITED:
        if name in saved and not _missing(saved[name]) and \
                ctx.get_parameter_source(name) is click.core.ParameterSource.DEFAULT:
            raw = saved[name]
            raw = raw.item() if hasattr(raw, "item") else raw  # numpy scalars from pandas
            try:  # the CSV may have been edited: its values get the checks the command line gets
                value = params[name].type.convert(raw, params[name], ctx)
            except click.BadParameter as exc:
                raise BadInputError(f"{out}: its latest row's {name} {raw!r} is not valid ({exc.message})") from None
            if value != options.get(name):
                options[name] = taken[name] = value
    if not taken:
        return None
    return f"using the setup of {out}'s latest rows for " + ", ".join(f"{k}={v}" for k, v in taken.items())


def _missing(value: object) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


@leaderboard.command("score")
@click.argument("paths", nargs=-1, required=True)
@click.option("--reference", default=None,
              help="The real data: folder, .zip, .npz/.npy images, or a statistics .npz (FID only). Loaded once.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The leaderboard CSV (grows on reruns).")
@click.option("--metrics", default="fid", show_default=True, help=f"Comma-separated subset of {','.join(registry.names())}.")
@click.option("--samples", type=click.IntRange(min=2), default=10_000, show_default=True,
              help="Images generated per checkpoint (latents from --seed).")
@click.option("--sort-by", default=None, help="Rank by this column: fid (default when computed), kid, swd, copy_rate, "
                                                "duplicate_rate, class_kl (lower is better), is, precision, recall, "
                                                "density, coverage, authpct, classes_covered (higher is better).")
@click.option("--rescore", is_flag=True, help="Score checkpoints already in the CSV with this setup again.")
@click.option("--generator", "generator_spec", default=None, metavar="MODULE:FUNCTION",
              help="Score checkpoint files not made by ganeval: a function taking `config` and/or `state_dict` that "
                   "returns the nn.Module (MODULE may be path/to/file.py).")
@click.option("--state-key", default=None, help="With --generator: the key of the generator's state dict inside "
                                                  "the file (e.g. generator, or a.b for nested).")
@click.option("--z-dim", type=click.IntRange(min=1), default=None,
              help="With --generator: latent size when the module has no z_dim attribute.")
@click.option("--input-range", default="-1,1", show_default=True,
              help="With --generator: the range of the generator's output: -1,1 (tanh), 0,1 or 0,255.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="PNG of metric vs step, a line per run.")
@click.option("--plot-metrics", default=None, help="Comma-separated metrics to plot (default: those computed).")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="One self-contained HTML page: the ranked table, curves and a sample grid per checkpoint.")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="Rows printed at the end.")
@click.option("--force", is_flag=True, help="Use a statistics reference made with other weights or modes anyway.")
@_extractor_options
@_metric_options
@_handle_errors
def leaderboard_score(paths: tuple[str, ...], reference: str | None, out: str, **options: Any) -> None:
    """Score every checkpoint under PATHS (ganeval run folders, or files with --generator) into the CSV --out,
    ranked; only checkpoints not yet scored with the same setup are scored."""
    from .api import parse_metrics
    from .evaluator import Evaluator
    from .leaderboard.render import text_table
    from .leaderboard.scoring import score_checkpoints

    inherited = _inherit_setup(click.get_current_context(), out, options)
    if inherited and not options["quiet"]:
        click.echo(inherited, err=True)
    if not options["generator_spec"]:
        for name in ("state_key", "z_dim"):
            if options[name] is not None:
                raise click.UsageError(f"--{name.replace('_', '-')} applies only with --generator")
        if options["input_range"].replace(" ", "") != "-1,1":
            raise click.UsageError("--input-range applies only with --generator (ganeval's generators output -1..1)")
    metrics = parse_metrics(options["metrics"]) or []
    quiet = options["quiet"]
    keywords = {name: options[name] for name in ("device", "batch_size", "seed", "mode", "weights", "skip_bad",
                                                 "force", "vgg_weights", "bootstrap", "precision",
                                                 *registry.option_keywords())}
    evaluator = Evaluator(reference, metrics, num_samples=options["samples"], input_range=options["input_range"],
                          cache=not options["no_cache"], progress=False if quiet else None, **_typed(keywords))
    plot_metrics = [m.strip() for m in options["plot_metrics"].split(",") if m.strip()] if options["plot_metrics"] else None
    run = score_checkpoints(paths, evaluator, out, generator=options["generator_spec"], state_key=options["state_key"],
                            z_dim=options["z_dim"], sort_by=options["sort_by"], rescore=options["rescore"],
                            skip_bad=options["skip_bad"], plot=options["plot"], plot_metrics=plot_metrics,
                            report=options["report"], log=None if quiet else lambda line: click.echo(line, err=True))
    click.echo(text_table(run.current, options["top"]))
    _warn(run.warnings)
    if run.failed:
        _warn([f"{len(run.failed)} checkpoint(s) could not be scored and were skipped:", *run.failed])
    if not quiet:
        for line in run.provenance:
            click.echo(line, err=True)
        written = [f"{out} ({len(run.scored)} new, {run.already_scored} already scored)"]
        written += [str(path) for path in (run.plot, run.report) if path]
        click.echo("wrote " + ", ".join(written), err=True)


@leaderboard.command("show")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--top", type=click.IntRange(min=1), default=None, help="At most this many rows per setup.")
@click.option("--setup", "setup_id", default=None, help="Only this setup (its id from the `setup` column).")
@click.option("--sort-by", default=None, help="Rank by this column instead of the CSV's own ranking.")
@_handle_errors
def leaderboard_show(csv_file: str, top: int | None, setup_id: str | None, sort_by: str | None) -> None:
    """Print the ranked table of a leaderboard CSV, one block per scoring setup."""
    from .leaderboard.render import text_table
    from .leaderboard.store import rank, read_table

    table = read_table(csv_file)
    if sort_by:
        table = rank(table, sort_by)
    setups = list(dict.fromkeys(table["setup"].dropna()))
    if setup_id:
        if setup_id not in setups:
            raise click.BadParameter(f"no setup {setup_id!r} in {csv_file} (it has: {', '.join(setups) or 'none'})",
                                     param_hint="--setup")
        setups = [setup_id]
    if not setups:
        click.echo(f"{csv_file}: no rows yet", err=True)
        return
    blocks = []
    for setup in setups:
        rows = table[table["setup"] == setup]
        first = rows.iloc[0]
        header = (f"setup {setup}: reference {first['reference']} ({first['n_reference']} images), {first['extractor']} "
                  f"weights {str(first['weights_sha256'])[:12]}, mode {first['mode']}, {first['samples']} samples, "
                  f"seed {first['seed']}, metrics {first['metrics']}; ranked by {first['rank_by']}")
        blocks.append(header + "\n" + text_table(rows, top))
    click.echo("\n\n".join(blocks))


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), default="ganeval-demo", show_default=True,
              help="Where everything goes (a rerun continues there).")
@click.option("--data", default="fashion-mnist", show_default=True,
              help="fashion-mnist (falls back to shapes when not installed), mnist, cifar10 or shapes.")
@click.option("--steps", type=click.IntRange(min=1), default=600, show_default=True,
              help="DCGAN generator updates; WGAN-GP gets a quarter (5 critic steps each).")
@click.option("--checkpoints", type=click.IntRange(min=1), default=3, show_default=True, help="Per run.")
@click.option("--samples", type=click.IntRange(min=2), default=250, show_default=True,
              help="Images generated per checkpoint (papers use 10,000–50,000; this is a demo).")
@click.option("--reference-images", type=click.IntRange(min=2), default=1000, show_default=True)
@click.option("--width", type=click.IntRange(min=1), default=32, show_default=True, help="Base channel width.")
@click.option("--device", default="auto", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@_handle_errors
def demo(out: str, data: str, steps: int, checkpoints: int, samples: int, reference_images: int, width: int,
         device: str, quiet: bool) -> None:
    """A first run end to end (a few minutes on a CPU): train a small DCGAN and WGAN-GP, build the reference
    statistics with the real Inception network, score every checkpoint into a leaderboard with curves and
    an HTML report."""
    from .demo import DemoSettings, run_demo
    from .leaderboard.render import text_table

    settings = DemoSettings(out=out, data=data, steps=steps, checkpoints=checkpoints, samples=samples,
                            reference_images=reference_images, width=width,
                            device=None if device == "auto" else device, progress=False if quiet else None)
    run = run_demo(settings, log=lambda line: click.echo(line, err=True))
    click.echo(text_table(run.current))
    _warn(run.warnings)
    click.echo(f"\nleaderboard: {run.out}\ncurves:      {run.plot}\nreport:      {run.report}\n"
               f"runs:        {Path(out) / 'runs'} (samples/ has a grid per checkpoint)\n"
               f"reference:   {Path(out) / 'reference'} and {Path(out) / 'reference_stats.npz'}")


def main() -> None:
    cli(prog_name="ganeval")
