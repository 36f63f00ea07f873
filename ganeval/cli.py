"""The ``ganeval`` command line. Results on stdout; progress, provenance and warnings on stderr.

Exit codes: 0 success; 2 bad input or usage (a one-line ``error:`` message); 1 an internal error (the
traceback only with ``--debug``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .errors import GanevalError
from .pipeline import DEFAULT_BATCH_SIZE
from .preprocess import DEFAULT_MODE, MODES


def _fail(message: str, code: int) -> None:
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


def _extractor_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--mode", type=click.Choice(sorted(MODES)), default=DEFAULT_MODE, show_default=True,
                     help="Resize/normalisation mode."),
        click.option("--weights", type=click.Path(dir_okay=False), default=None,
                     help="Inception state dict in pytorch-fid's layout (else $GANEVAL_INCEPTION_WEIGHTS, the "
                          "standard file, the packaged trunk, a download)."),
        click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, or auto."),
        click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the features cache."),
        click.option("--skip-bad", is_flag=True, help="Skip unreadable images (counted in the provenance)."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar or provenance line."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _warn(warnings: list[str]) -> None:
    for message in warnings:
        click.echo(f"warning: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ganeval")
def cli() -> None:
    """Score generative image models: exact standard FID from one shared Inception-v3 pass."""


@cli.command()
@click.argument("real")
@click.argument("fake")
@_extractor_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of text.")
@click.option("-v", "--verbose", is_flag=True, help="Print the full provenance.")
@click.option("--force", is_flag=True, help="Compare statistics made with different weights or modes anyway.")
@_handle_errors
def fid(real: str, fake: str, mode: str, weights: str | None, device: str, batch_size: int, no_cache: bool,
        skip_bad: bool, quiet: bool, as_json: bool, verbose: bool, force: bool) -> None:
    """FID between REAL and FAKE: folders, .zip archives, .npy/.npz image arrays or statistics files."""
    from .api import fid as compute_fid

    result = compute_fid(real, fake, mode=mode, weights=weights, device=device, batch_size=batch_size,
                         cache=not no_cache, skip_bad=skip_bad, force=force, progress=False if quiet else None)
    _warn(result.warnings)
    if as_json:
        click.echo(result.to_json())
        return
    click.echo(result.text())
    if verbose:
        click.echo(json.dumps(result.provenance, indent=2, default=str), err=True)
    elif not quiet:
        click.echo(result.provenance_line(), err=True)


@cli.command()
@click.argument("source", required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Where to write the statistics .npz.")
@click.option("--list", "list_known", is_flag=True, help="List the published reference statistics we know of.")
@_extractor_options
@_handle_errors
def stats(source: str | None, output: str | None, list_known: bool, mode: str, weights: str | None, device: str,
          batch_size: int, no_cache: bool, skip_bad: bool, quiet: bool) -> None:
    """Precompute reference statistics of SOURCE into an .npz (mu, sigma, n, provenance)."""
    if list_known:
        from .reference_stats import format_manifest, load_manifest

        click.echo(format_manifest(load_manifest()))
        return
    if not source or not output:
        raise click.UsageError("give SOURCE and -o OUTPUT (or --list)")
    from .api import statistics
    from .stats import save_statistics
    from .weights import nonstandard_warning

    result = statistics(source, mode=mode, weights=weights, device=device, batch_size=batch_size,
                        cache=not no_cache, skip_bad=skip_bad, progress=False if quiet else None)
    path = save_statistics(result, output)
    if result.meta.get("extractor") and not result.meta.get("weights_standard"):
        _warn([nonstandard_warning(result.meta.get("weights_sha256"))])
    skipped = len(result.meta.get("skipped") or [])
    click.echo(f"wrote {path}: {result.n} images{f', {skipped} skipped' if skipped else ''}, "
               f"mode {result.meta.get('mode')}, weights sha256 {str(result.meta.get('weights_sha256'))[:12]}")


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


def main() -> None:
    cli(prog_name="ganeval")
