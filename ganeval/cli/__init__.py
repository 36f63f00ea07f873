"""The ``ganeval`` command line. Results on stdout; progress, provenance and warnings on stderr; errors as
one ``error:`` line (exit codes in ``common``).

The commands live by family: ``scoring`` (score, one command per metric, memorization, collapse, compat),
``reference`` (stats, weights), ``training`` (train, sample, demo) and ``leaderboard``.
"""

from __future__ import annotations

import click

from .. import __version__
from . import leaderboard, reference, scoring, training
from .common import Group, fail

DISTRIBUTED_COMMANDS: tuple[str, ...] = (*scoring.DISTRIBUTED, *reference.DISTRIBUTED)
"""The commands that split their images across processes under ``torchrun``."""


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ganeval")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Score generative image models: FID, KID, IS, precision/recall, SWD from one shared Inception-v3 pass."""
    from .. import distributed

    if distributed.launched() and ctx.invoked_subcommand not in DISTRIBUTED_COMMANDS:
        fail(
            f"`ganeval {ctx.invoked_subcommand}` runs as one process; under torchrun use one of "
            f"{', '.join(DISTRIBUTED_COMMANDS)}",
            2,
        )


for _family in (scoring, reference, training, leaderboard):
    for _command in _family.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """The console script ``ganeval`` (and ``python -m ganeval``)."""
    cli(prog_name="ganeval")


__all__ = ["cli", "main"]
