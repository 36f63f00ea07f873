"""The training commands: ``train`` (a reference DCGAN/WGAN), ``sample`` (images from a checkpoint) and
``demo`` (train, build a reference and score a leaderboard end to end)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import defaults
from ..options import DEFAULT_BATCH_SIZE
from .common import device_option, handle_errors, quiet_option, warn


@click.command()
@click.option("--out", type=click.Path(file_okay=False), help="The run folder to create.")
@click.option(
    "--resume",
    "resume_run",
    type=click.Path(file_okay=False, exists=True),
    help="Continue this run folder from its last complete checkpoint (its settings; --steps may extend it).",
)
@click.option("--model", type=click.Choice(["dcgan", "wgan", "wgan-gp"]), default="dcgan", show_default=True)
@click.option(
    "--loss",
    type=click.Choice(["ns", "minimax", "lsgan", "hinge", "wgan", "wgan-gp"]),
    default=None,
    help="Default: the model's (dcgan: ns, wgan: wgan, wgan-gp: wgan-gp).",
)
@click.option(
    "--data",
    default="shapes",
    show_default=True,
    help="An image folder, or fashion-mnist, mnist, cifar10, shapes (procedural, offline).",
)
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="Where named datasets live.")
@click.option("--size", type=click.Choice(["28", "32", "64"]), default="32", show_default=True)
@click.option("--channels", type=click.Choice(["1", "3"]), default=None, help="Default: the dataset's.")
@click.option("--width", type=click.IntRange(min=1), default=64, show_default=True, help="Base channel width.")
@click.option("--z-dim", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Generator updates (default 2000; with --resume: the run's own, or extend it to this).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--lr-g", type=float, default=None, help="TTUR: generator learning rate (default: the loss's).")
@click.option("--lr-d", type=float, default=None, help="TTUR: discriminator learning rate (default: the loss's).")
@click.option("--n-critic", type=click.IntRange(min=1), default=None, help="D steps per G step (default: the loss's).")
@click.option("--spectral-norm", is_flag=True, help="Spectral normalisation on every D convolution.")
@click.option(
    "--label-smoothing",
    type=click.FloatRange(0, 0.5),
    default=0.0,
    show_default=True,
    help="One-sided: real label 1 − s (ns/minimax).",
)
@click.option(
    "--instance-noise",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Std of Gaussian noise added to D's inputs.",
)
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=500, show_default=True)
@click.option("--sample-every", type=click.IntRange(min=0), default=500, show_default=True)
@click.option(
    "--eval-every",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="FID/KID through ganeval.Evaluator every K steps (0: never).",
)
@click.option("--eval-samples", type=click.IntRange(min=2), default=5000, show_default=True)
@click.option("--eval-metrics", default="fid", show_default=True)
@click.option(
    "--early-stop",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Stop when FID has not improved for this many evaluations (0: never).",
)
@device_option()
@handle_errors
def train(out: str | None, resume_run: str | None, **options: Any) -> None:
    """Train a reference DCGAN/WGAN; checkpoints (safetensors + JSON) go to OUT/checkpoints."""
    from ..api import parse_metrics
    from ..train.trainer import TrainConfig, Trainer

    if bool(out) == bool(resume_run):
        raise click.UsageError("give --out RUN for a new run, or --resume RUN to continue one")
    options.update(
        size=int(options["size"]),
        channels=int(options["channels"]) if options["channels"] else None,
        eval_metrics=parse_metrics(options["eval_metrics"]),
    )
    if not options["eval_metrics"]:
        raise click.BadParameter("name the metrics, e.g. fid,kid", param_hint="--eval-metrics")
    config = TrainConfig(out=str(out or resume_run), **options)
    run = Trainer(config, resume=bool(resume_run), log=lambda line: click.echo(line, err=True)).run()
    click.echo(f"run folder: {run}")


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False))
@click.option("-n", "count", type=click.IntRange(min=1), default=64, show_default=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),
    help="A .png file for a grid, or a folder for one PNG per image.",
)
@click.option(
    "--seed",
    type=int,
    default=defaults.SEED,
    show_default=True,
    help="Seed of the latents: with the same --batch-size, the images an Evaluator or leaderboard with "
    "this seed scored (image i of both is the same).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Images per generator call; the latents of a batch come from (seed, its first image's index).",
)
@device_option()
@handle_errors
def sample(checkpoint: str, count: int, output: str, seed: int, batch_size: int, device: str | None) -> None:
    """Images from a checkpoint folder (or a run folder: its latest checkpoint): a grid or N PNG files."""
    import torch

    from ..generation import generate_batches
    from ..train.trainer import load_generator, save_grid, save_pngs

    generator, meta = load_generator(checkpoint, device)
    starts = list(range(0, count, batch_size))
    images = torch.cat(
        [
            batch.cpu()
            for _, batch, _, _, _ in generate_batches(generator, starts, count, batch_size=batch_size, seed=seed)
        ]
    )
    if output.lower().endswith(".png"):
        save_grid(images, output)
        click.echo(f"wrote {output}: {count} images of step {meta.get('step')}, seed {seed}")
        return
    save_pngs(images, output)
    click.echo(f"wrote {count} PNGs to {output} (step {meta.get('step')}, seed {seed})")


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="ganeval-demo",
    show_default=True,
    help="Where everything goes (a rerun continues there).",
)
@click.option(
    "--data",
    default="fashion-mnist",
    show_default=True,
    help="fashion-mnist (falls back to shapes when not installed), mnist, cifar10 or shapes.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=600,
    show_default=True,
    help="DCGAN generator updates; WGAN-GP gets a quarter (5 critic steps each).",
)
@click.option("--checkpoints", type=click.IntRange(min=1), default=3, show_default=True, help="Per run.")
@click.option(
    "--samples",
    type=click.IntRange(min=2),
    default=250,
    show_default=True,
    help="Images generated per checkpoint (papers use 10,000–50,000; this is a demo).",
)
@click.option("--reference-images", type=click.IntRange(min=2), default=1000, show_default=True)
@click.option("--width", type=click.IntRange(min=1), default=32, show_default=True, help="Base channel width.")
@device_option()
@quiet_option("No progress bars.")
@handle_errors
def demo(
    out: str,
    data: str,
    steps: int,
    checkpoints: int,
    samples: int,
    reference_images: int,
    width: int,
    device: str | None,
    quiet: bool,
) -> None:
    """A first run end to end (a few minutes on a CPU): train a small DCGAN and WGAN-GP, build the reference
    statistics with the real Inception network, score every checkpoint into a leaderboard with curves and
    an HTML report."""
    from ..demo import DemoSettings, run_demo
    from ..leaderboard.render import text_table

    settings = DemoSettings(
        out=out,
        data=data,
        steps=steps,
        checkpoints=checkpoints,
        samples=samples,
        reference_images=reference_images,
        width=width,
        device=device,
        progress=False if quiet else None,
    )
    run = run_demo(settings, log=lambda line: click.echo(line, err=True))
    click.echo(text_table(run.current))
    warn(run.warnings)
    click.echo(
        f"\nleaderboard: {run.out}\ncurves:      {run.plot}\nreport:      {run.report}\n"
        f"runs:        {Path(out) / 'runs'} (samples/ has a grid per checkpoint)\n"
        f"reference:   {Path(out) / 'reference'} and {Path(out) / 'reference_stats.npz'}"
    )


COMMANDS: list[click.Command] = [train, sample, demo]
