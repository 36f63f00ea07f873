"""The CLI's shared options and their checks: --bootstrap, per-metric options, --device auto, -v/-q on every
command that prints provenance, one-line usage errors, the deprecated `modes`, the leaderboard's
--skip-failed (and --skip-bad's old meaning there) and the setup a leaderboard CSV passes on."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from ganeval.cli import cli
from ganeval.errors import BadInputError
from ganeval.leaderboard.setup import INHERITED, inherited, latest_setup
from ganeval.train.trainer import TrainConfig, Trainer


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def error_line(result) -> str:
    """The one ``error:`` line of a result that exited 2, with no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def commands(group: click.Group = cli, prefix: str = "") -> dict[str, click.Command]:
    """Every command under ``group``, by its path (``leaderboard score``)."""
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(commands(command, f"{prefix}{name} "))
        else:
            found[prefix + name] = command
    return found


def options_of(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


@pytest.mark.parametrize("value", ["1"])
def test_bootstrap_of_one_is_a_usage_error_naming_the_option(value: str) -> None:
    line = error_line(run("score", "real", "fake", "--bootstrap", value))
    assert "--bootstrap" in line and "at least 2" in line
    assert "--bootstrap" in error_line(run("fid", "real", "fake", "--bootstrap", "-3"))


def test_single_metric_commands_take_only_their_own_options() -> None:
    assert "--kid-subsets" in error_line(run("is", "fake", "--kid-subsets", "5"))
    assert "--dims" in error_line(run("kid", "real", "fake", "--dims", "768"))
    found = commands()
    assert "--kid-subsets" in options_of(found["kid"]) and "--dims" in options_of(found["fid"])
    assert "--kid-subsets" not in options_of(found["fid"])


def test_usage_errors_are_one_line() -> None:
    assert "FAKE" in error_line(run("fid", "real"))
    assert "nosuch" in error_line(run("nosuch"))
    assert "--dims" in error_line(run("fid", "real", "fake", "--dims", "7"))


def test_device_auto_is_none_for_every_command() -> None:
    with_device = {name: command for name, command in commands().items() if "--device" in options_of(command)}
    assert {"score", "fid", "stats", "compat", "train", "sample", "demo", "leaderboard score"} <= set(with_device)
    for name, command in with_device.items():
        param = next(p for p in command.params if p.name == "device")
        context = click.Context(command)
        assert param.type_cast_value(context, "auto") is None, name
        assert param.type_cast_value(context, "AUTO") is None, name
        assert param.type_cast_value(context, "cuda:1") == "cuda:1", name
        assert (
            param.get_default(context) == "auto" or param.type_cast_value(context, param.get_default(context)) is None
        )


@pytest.mark.parametrize(
    "name", ["score", "fid", "kid", "is", "memorization", "collapse", "compat", "stats", "leaderboard score"]
)
def test_commands_that_print_provenance_have_verbose_and_quiet(name: str) -> None:
    assert {"-v", "--verbose", "-q", "--quiet"} <= options_of(commands()[name])


def test_stats_verbose_prints_the_provenance(image_dirs, tmp_path: Path) -> None:
    real, _ = image_dirs
    result = run("stats", real, "-o", tmp_path / "real.npz", "-v", "-q")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout
    provenance = json.loads(result.stderr[result.stderr.index("{") :])
    assert len(provenance["weights_sha256"]) == 64 and len(provenance["content_sha256"]) == 64


def test_modes_still_works_and_says_it_is_deprecated(image_dirs) -> None:
    real, fake = image_dirs
    old = run("modes", real, fake, "--json", "-q")
    assert old.exit_code == 0, old.output
    assert "deprecated" in old.stderr.lower()
    new = run("collapse", real, fake, "--json", "-q")
    assert "deprecated" not in new.stderr.lower()
    assert json.loads(old.stdout)["duplicate_rate"] == json.loads(new.stdout)["duplicate_rate"]


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory: pytest.TempPathFactory, trunk_info) -> Path:
    """A tiny run with checkpoints at steps 2 and 4, the second one's generator file unreadable."""
    root = tmp_path_factory.mktemp("broken") / "run"
    config = TrainConfig(
        out=str(root),
        model="dcgan",
        data="shapes",
        size=32,
        width=4,
        z_dim=8,
        batch_size=4,
        steps=4,
        checkpoint_every=2,
        sample_every=0,
    )
    Trainer(config, log=lambda line: None).run()
    broken = sorted(root.rglob("step_*"))[-1] / "generator.safetensors"
    broken.write_bytes(b"not a safetensors file")
    return root


LEADERBOARD = ["--metrics", "fid", "--samples", "6", "--batch-size", "4", "--device", "cpu", "-q"]


def test_skip_failed_skips_failing_checkpoints(broken_run: Path, image_dirs, tmp_path: Path) -> None:
    real, _ = image_dirs
    stopped = run("leaderboard", broken_run, "--reference", real, "--out", tmp_path / "a.csv", *LEADERBOARD)
    assert stopped.exit_code == 2, stopped.output
    skipped = run(
        "leaderboard", broken_run, "--reference", real, "--out", tmp_path / "b.csv", "--skip-failed", *LEADERBOARD
    )
    assert skipped.exit_code == 0, skipped.output
    assert "1 checkpoint(s) could not be scored" in skipped.stderr and "deprecated" not in skipped.stderr
    assert len(pd.read_csv(tmp_path / "b.csv")) == 1


def test_skip_bad_still_skips_failing_checkpoints_with_a_deprecation(
    broken_run: Path, image_dirs, tmp_path: Path
) -> None:
    real, _ = image_dirs
    result = run(
        "leaderboard", broken_run, "--reference", real, "--out", tmp_path / "c.csv", "--skip-bad", *LEADERBOARD
    )
    assert result.exit_code == 0, result.output
    assert "warning: --skip-bad for failing checkpoints is deprecated; use --skip-failed" in result.stderr
    assert "1 checkpoint(s) could not be scored" in result.stderr


def _row(scored_at: str, seed: int, options: object = "{}") -> dict[str, object]:
    return {
        "scored_at": scored_at,
        "metrics": "fid,kid",
        "samples": 6,
        "seed": seed,
        "mode": "tf",
        "input_range": "-1,1",
        "options": options,
    }


def test_the_latest_setup_passes_on_only_what_was_left_at_defaults() -> None:
    table = pd.DataFrame([_row("2024-01-02", 7, json.dumps({"kid_subsets": 5, "bootstrap": 0})), _row("2024-01-01", 3)])
    assert latest_setup(table)["seed"] == 7 and latest_setup(table)["kid_subsets"] == 5
    assert inherited(table, {"seed", "kid_subsets", "samples"}) == {"samples": 6, "seed": 7, "kid_subsets": 5}
    assert inherited(table, set()) == {}
    assert inherited(table, {"out", "device"}) == {}
    assert set(inherited(table, set(INHERITED))) <= set(INHERITED)
    assert inherited(pd.DataFrame(), {"seed"}) == {}


def test_a_setup_with_a_broken_options_cell_is_refused() -> None:
    with pytest.raises(BadInputError, match="lb.csv: the options cell"):
        latest_setup(pd.DataFrame([_row("2024-01-01", 1, "[1, 2]")]), "lb.csv")
    assert "seed" in latest_setup(pd.DataFrame([_row("2024-01-01", 1, float("nan"))]))
