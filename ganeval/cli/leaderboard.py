"""The ``leaderboard`` group: ``leaderboard [score]`` ranks checkpoints into a CSV (keeping the CSV's setup
for options left at their defaults), ``leaderboard show`` prints one."""

from __future__ import annotations

import json
from typing import Any

import click
from click.core import ParameterSource

from ..errors import BadInputError
from ..metrics import registry
from .common import extractor_options, handle_errors, verbosity_options, warn
from .metric_options import metric_options

SKIP_BAD_DEPRECATION = "--skip-bad for failing checkpoints is deprecated; use --skip-failed"


class _DefaultCommandGroup(click.Group):
    """A group whose arguments go to its ``default`` subcommand when the first one names no subcommand,
    so ``ganeval leaderboard runs/ ...`` means ``ganeval leaderboard score runs/ ...``."""

    default = "score"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default, *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultCommandGroup)
def leaderboard() -> None:
    """Rank checkpoints into a CSV: `ganeval leaderboard [score] PATHS... --reference REF --out CSV`, or
    print one: `ganeval leaderboard show CSV`."""


def _inherit_setup(ctx: click.Context, out: str, options: dict[str, Any]) -> str | None:
    """Options left at their defaults take the values of the CSV's latest setup (checked as the command line
    would check them). Returns the line that says what was taken, or None."""
    from ..leaderboard.setup import describe, inherited
    from ..leaderboard.store import read_table

    params = {param.name: param for param in ctx.command.params if param.name}
    defaulted = {name for name in params if ctx.get_parameter_source(name) is ParameterSource.DEFAULT}
    taken = {}
    for name, raw in inherited(read_table(out), defaulted, out).items():
        try:  # the CSV may have been edited: its values get the checks the command line gets
            value = params[name].type.convert(raw, params[name], ctx)
        except click.BadParameter as exc:
            raise BadInputError(f"{out}: its latest row's {name} {raw!r} is not valid ({exc.message})") from None
        if value != options.get(name):
            options[name] = taken[name] = value
    return describe(taken, out) if taken else None


@leaderboard.command("score")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--reference",
    default=None,
    help="The real data: folder, .zip, .npz/.npy images, or a statistics .npz (FID only). Loaded once.",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The leaderboard CSV (grows on reruns).")
@click.option(
    "--metrics", default="fid", show_default=True, help=f"Comma-separated subset of {','.join(registry.names())}."
)
@click.option(
    "--samples",
    type=click.IntRange(min=2),
    default=10_000,
    show_default=True,
    help="Images generated per checkpoint (latents from --seed).",
)
@click.option(
    "--sort-by",
    default=None,
    help="Rank by this column: fid (default when computed), kid, swd, copy_rate, "
    "duplicate_rate, class_kl (lower is better), is, precision, recall, "
    "density, coverage, authpct, classes_covered (higher is better).",
)
@click.option("--rescore", is_flag=True, help="Score checkpoints already in the CSV with this setup again.")
@click.option(
    "--skip-failed",
    is_flag=True,
    help="Report and skip checkpoints that cannot be loaded or scored instead of stopping.",
)
@click.option(
    "--generator",
    "generator_spec",
    default=None,
    metavar="MODULE:FUNCTION",
    help="Score checkpoint files not made by ganeval: a function taking `config` and/or `state_dict` that "
    "returns the nn.Module (MODULE may be path/to/file.py).",
)
@click.option(
    "--state-key",
    default=None,
    help="With --generator: the key of the generator's state dict inside the file (e.g. generator, or a.b for nested).",
)
@click.option(
    "--z-dim",
    type=click.IntRange(min=1),
    default=None,
    help="With --generator: latent size when the module has no z_dim attribute.",
)
@click.option(
    "--input-range",
    default="-1,1",
    show_default=True,
    help="With --generator: the range of the generator's output: -1,1 (tanh), 0,1 or 0,255.",
)
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="PNG of metric vs step, a line per run.")
@click.option("--plot-metrics", default=None, help="Comma-separated metrics to plot (default: those computed).")
@click.option(
    "--report",
    type=click.Path(dir_okay=False),
    default=None,
    help="One self-contained HTML page: the ranked table, curves and a sample grid per checkpoint.",
)
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="Rows printed at the end.")
@click.option("--force", is_flag=True, help="Use a statistics reference made with other weights or modes anyway.")
@extractor_options()
@verbosity_options()
@metric_options()
@handle_errors
def leaderboard_score(paths: tuple[str, ...], reference: str | None, out: str, **options: Any) -> None:
    """Score every checkpoint under PATHS (ganeval run folders, or files with --generator) into the CSV --out,
    ranked; only checkpoints not yet scored with the same setup are scored. --skip-bad skips unreadable
    reference images; --skip-failed skips checkpoints that cannot be scored."""
    from ..api import parse_metrics
    from ..evaluator import Evaluator
    from ..leaderboard.render import text_table
    from ..leaderboard.scoring import score_checkpoints

    quiet, verbose = options["quiet"], options["verbose"]
    inherited = _inherit_setup(click.get_current_context(), out, options)
    if inherited and not quiet:
        click.echo(inherited, err=True)
    if not options["generator_spec"]:
        for name in ("state_key", "z_dim"):
            if options[name] is not None:
                raise click.UsageError(f"--{name.replace('_', '-')} applies only with --generator")
        if options["input_range"].replace(" ", "") != "-1,1":
            raise click.UsageError("--input-range applies only with --generator (ganeval's generators output -1..1)")
    keywords = {
        name: options[name]
        for name in (
            "device",
            "batch_size",
            "seed",
            "mode",
            "weights",
            "skip_bad",
            "force",
            "vgg_weights",
            "features",
            "features_weights",
            "dinov2_resize",
            "bootstrap",
            "precision",
            *registry.option_keywords(),
        )
    }
    evaluator = Evaluator(
        reference,
        parse_metrics(options["metrics"]) or [],
        num_samples=options["samples"],
        input_range=options["input_range"],
        cache=not options["no_cache"],
        progress=False if quiet else None,
        **keywords,
    )
    plot_metrics = (
        [m.strip() for m in options["plot_metrics"].split(",") if m.strip()] if options["plot_metrics"] else None
    )
    run = score_checkpoints(
        paths,
        evaluator,
        out,
        generator=options["generator_spec"],
        state_key=options["state_key"],
        z_dim=options["z_dim"],
        sort_by=options["sort_by"],
        rescore=options["rescore"],
        skip_bad=options["skip_failed"] or options["skip_bad"],
        plot=options["plot"],
        plot_metrics=plot_metrics,
        report=options["report"],
        log=None if quiet else lambda line: click.echo(line, err=True),
    )
    click.echo(text_table(run.current, options["top"]))
    warn(run.warnings)
    if run.failed:
        if not options["skip_failed"]:
            warn([SKIP_BAD_DEPRECATION])
        warn([f"{len(run.failed)} checkpoint(s) could not be scored and were skipped:", *run.failed])
    if verbose:
        click.echo(json.dumps({"setup": run.setup, **evaluator.setup()}, indent=2, default=str), err=True)
    elif not quiet:
        for line in run.provenance:
            click.echo(line, err=True)
    if not quiet:
        written = [f"{out} ({len(run.scored)} new, {run.already_scored} already scored)"]
        written += [str(path) for path in (run.plot, run.report) if path]
        click.echo("wrote " + ", ".join(written), err=True)


@leaderboard.command("show")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--top", type=click.IntRange(min=1), default=None, help="At most this many rows per setup.")
@click.option("--setup", "setup_id", default=None, help="Only this setup (its id from the `setup` column).")
@click.option("--sort-by", default=None, help="Rank by this column instead of the CSV's own ranking.")
@handle_errors
def leaderboard_show(csv_file: str, top: int | None, setup_id: str | None, sort_by: str | None) -> None:
    """Print the ranked table of a leaderboard CSV, one block per scoring setup."""
    from ..leaderboard.render import text_table
    from ..leaderboard.store import rank, read_table

    table = read_table(csv_file)
    if sort_by:
        table = rank(table, sort_by)
    setups = list(dict.fromkeys(table["setup"].dropna()))
    if setup_id:
        if setup_id not in setups:
            raise click.BadParameter(
                f"no setup {setup_id!r} in {csv_file} (it has: {', '.join(setups) or 'none'})", param_hint="--setup"
            )
        setups = [setup_id]
    if not setups:
        click.echo(f"{csv_file}: no rows yet", err=True)
        return
    blocks = []
    for setup in setups:
        rows = table[table["setup"] == setup]
        first = rows.iloc[0]
        header = (
            f"setup {setup}: reference {first['reference']} ({first['n_reference']} images), {first['extractor']} "
            f"weights {str(first['weights_sha256'])[:12]}, mode {first['mode']}, {first['samples']} samples, "
            f"seed {first['seed']}, metrics {first['metrics']}; ranked by {first['rank_by']}"
        )
        blocks.append(header + "\n" + text_table(rows, top))
    click.echo("\n\n".join(blocks))


COMMANDS: list[click.Command] = [leaderboard]
