"""What every command shares: one-line errors and exit codes, warnings, the device type, the option groups
(extractor, output, verbosity) and joining a torchrun process group.

Exit codes: 0 success; 2 bad input or usage (a one-line ``error:`` message); 1 an internal error (the
traceback only with ``--debug``); 130 interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

import click

from ..device import NUMERICS
from ..errors import GanevalError
from ..options import DEFAULT_BATCH_SIZE
from ..preprocess import DEFAULT_MODE, MODES

Decorator = Callable[[Any], Any]


def fail(message: str, code: int) -> NoReturn:
    """``error: message`` as one line on stderr (a multi-line text joined), then exit ``code``."""
    message = " ".join(line.strip() for line in message.splitlines() if line.strip())
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def one_line_click_errors() -> Iterator[None]:
    """Click's own errors (bad option values, unknown options, missing arguments) as one ``error:`` line
    with the command's help hint, with click's exit code (2 for usage)."""
    try:
        yield
    except click.ClickException as exc:
        context = getattr(exc, "ctx", None)
        hint = f" (see '{context.command_path} -h')" if isinstance(exc, click.UsageError) and context else ""
        fail(exc.format_message().rstrip(".") + hint, exc.exit_code)


class Group(click.Group):
    """A click group whose usage errors, in its own arguments or any subcommand's, are one-line."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        with one_line_click_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_click_errors():
            return super().invoke(ctx)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--debug``; turn GanevalError into a one-line message and exit 2, other exceptions into exit 1."""

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
            fail(str(exc), 2)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - the last line of defence, re-raised with --debug
            if debug:
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)", 1)

    return click.option("--debug", is_flag=True, help="Show the full traceback on errors.")(wrapper)


def warn(messages: Sequence[str]) -> None:
    """Each message as a ``warning:`` line on stderr."""
    for message in messages:
        click.echo(f"warning: {message}", err=True)


def stack(*options: Decorator) -> Decorator:
    """One decorator applying ``options`` in order, the first outermost (as if written one above the other)."""

    def apply(func: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


class Device(click.ParamType):
    """A torch device name; ``auto`` (the default) becomes None: CUDA when available, else the CPU."""

    name = "device"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str | None:
        if value is None:
            return None
        text = str(value).strip()
        if not text:
            self.fail("give a device: cpu, cuda, cuda:1 or auto", param, ctx)
        return None if text.lower() == "auto" else text


def device_option() -> Decorator:
    """``--device``: cpu, cuda, cuda:1, or auto (passed on as None)."""
    return click.option(
        "--device",
        type=Device(),
        default="auto",
        show_default=True,
        help="cpu, cuda, cuda:1, or auto (CUDA when available).",
    )


def quiet_option(help: str = "No progress bar or provenance line.") -> Decorator:
    return click.option("-q", "--quiet", is_flag=True, help=help)


def verbosity_options() -> Decorator:
    """``-v/--verbose`` (the full provenance as JSON on stderr) and ``-q/--quiet``."""
    return stack(
        click.option("-v", "--verbose", is_flag=True, help="Print the full provenance as JSON on stderr."),
        quiet_option(),
    )


def extractor_options(with_mode: bool = True) -> Decorator:
    """How images become features: mode, weights, device, batch size, cache, bad images, precision."""
    options = [
        click.option(
            "--mode",
            type=click.Choice(list(MODES)),
            default=DEFAULT_MODE,
            show_default=True,
            help="Resize/normalisation: tf (torch-fidelity, StyleGAN; the standard), pytorch-fid, or clean "
            "(clean-fid). `ganeval compat` shows all three.",
        ),
        click.option(
            "--weights",
            type=click.Path(dir_okay=False),
            default=None,
            help="Inception state dict in pytorch-fid's layout (else $GANEVAL_INCEPTION_WEIGHTS, the "
            "standard file, the packaged trunk, a download).",
        ),
        device_option(),
        click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the features cache."),
        click.option("--skip-bad", is_flag=True, help="Skip unreadable images (counted in the provenance)."),
        click.option(
            "--precision",
            type=click.Choice(list(NUMERICS)),
            default="fp32",
            show_default=True,
            help="Arithmetic of the Inception forward. fp32 is the standard; tf32 (CUDA), bf16 and fp16 are "
            "faster, move FID slightly (docs/precision.md) and are recorded in the provenance.",
        ),
    ]
    return stack(*options[0 if with_mode else 1 :])


def output_options(csv: bool = True) -> Decorator:
    """``--json`` (a JSON document on stdout instead of the table) and, with ``csv``, ``--csv FILE``."""
    options = [click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of the table.")]
    if csv:
        options.insert(
            0,
            click.option(
                "--csv",
                "csv_path",
                type=click.Path(dir_okay=False),
                default=None,
                help="Append one row (header once) to this CSV, atomically.",
            ),
        )
    return stack(*options)


def report_provenance(provenance: Mapping[str, Any], line: str | None, *, verbose: bool, quiet: bool) -> None:
    """On stderr: the full provenance as JSON with ``verbose``, else its one-line summary (when there is
    one) unless ``quiet``."""
    if verbose:
        click.echo(json.dumps(provenance, indent=2, default=str), err=True)
    elif line and not quiet:
        click.echo(line, err=True)


def join_process_group(device: str | None) -> bool:
    """Under torchrun: join the process group and silence every rank but 0 (it prints the one result and
    writes the files). Returns whether this process is the one that reports."""
    from .. import distributed

    distributed.join_from_environment(device)
    click.get_current_context().call_on_close(distributed.leave)
    if distributed.is_root():
        return True
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        os.dup2(devnull, stream.fileno())
    return False
