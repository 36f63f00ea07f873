"""The checkpoint leaderboard end to end through the CLI: discovery of run folders and foreign files, one
row per checkpoint and setup with the scores an Evaluator gives, reruns that score nothing new, an
interrupted run completed by the rerun, refused pickles, the plot and report, `show`, and `demo`."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

import ganeval
from ganeval.cli import cli
from ganeval.leaderboard.discovery import discover
from ganeval.leaderboard.store import COLUMNS, rank, read_table, setup_id, upsert
from ganeval.stats import load_statistics
from ganeval.train.models import DCGANGenerator
from ganeval.train.trainer import TrainConfig, Trainer, load_generator

SAMPLES = 6
OPTIONS = ["--metrics", "fid,kid", "--samples", str(SAMPLES), "--kid-subset-size", "4", "--batch-size", "4", "-q"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, trunk_info) -> Path:
    """runs/alpha (DCGAN) and runs/group/beta (WGAN-GP), tiny, with checkpoints at steps 2 and 4."""
    root = tmp_path_factory.mktemp("runs") / "runs"
    for name, model in (("alpha", "dcgan"), ("group/beta", "wgan-gp")):
        config = TrainConfig(
            out=str(root / name),
            model=model,
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
    return root


@pytest.fixture
def my_runs(runs: Path, tmp_path: Path) -> Path:
    """A private copy of the runs, for tests that add checkpoints."""
    return Path(shutil.copytree(runs, tmp_path / "runs"))


@pytest.fixture
def count_generator_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = DCGANGenerator.forward

    def counting(self: DCGANGenerator, z: torch.Tensor) -> torch.Tensor:
        calls.append(len(z))
        return original(self, z)

    monkeypatch.setattr(DCGANGenerator, "forward", counting)
    return calls


def invoke(*args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def checkpoint_folders(root: Path) -> list[Path]:
    return sorted(root.rglob("step_*"))


@pytest.mark.slow
def test_one_row_per_checkpoint_with_every_column_ranked_and_equal_to_the_evaluator(runs, image_dirs, tmp_path) -> None:
    real, _ = image_dirs
    out = tmp_path / "lb.csv"
    result = invoke("leaderboard", runs, "--reference", real, "--out", out, *OPTIONS)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, dtype={"checkpoint_sha256": str, "setup": str})
    assert tuple(table.columns) == COLUMNS
    assert len(table) == 4
    assert sorted(zip(table["run"], table["step"])) == [
        ("alpha", 2),
        ("alpha", 4),
        ("group/beta", 2),
        ("group/beta", 4),
    ]
    assert list(table["rank"]) == [1, 2, 3, 4] and list(table["fid"]) == sorted(table["fid"])
    assert set(table["rank_by"]) == {"fid"} and table["setup"].nunique() == 1
    assert (table["samples"] == SAMPLES).all() and (table["seed"] == ganeval.defaults.SEED).all()
    assert table["kid"].notna().all() and table["kid_std"].notna().all() and table["is"].isna().all()
    assert set(table["mode"]) == {"tf"} and set(table["weights_sha256"]) == {trunk_sha256()}
    assert set(table["reference_sha256"].str.len()) == {64} and set(table["n_reference"]) == {8}
    assert set(table["ganeval_version"]) == {ganeval.__version__}
    assert (table[["generate_s", "extract_s", "metrics_s", "wall_s"]] >= 0).all().all()
    assert pd.to_datetime(table["scored_at"]).notna().all()
    for row in table.itertuples():
        folder = Path(row.checkpoint)
        assert row.checkpoint_sha256 == hashlib.sha256((folder / "generator.safetensors").read_bytes()).hexdigest()
    # the numbers are the Evaluator's on the same checkpoint (whose own equality with the CLI on PNGs is tested)
    best = table.iloc[0]
    evaluator = ganeval.Evaluator(real, ("fid", "kid"), num_samples=SAMPLES, batch_size=4, kid_subset_size=4)
    expected = evaluator.score(load_generator(best["checkpoint"])[0])
    assert best["fid"] == pytest.approx(expected["fid"], rel=1e-9)
    assert best["kid"] == pytest.approx(expected["kid"], rel=1e-9)
    printed = result.stdout.splitlines()
    assert printed[0].split()[:4] == ["rank", "run", "step", "fid"] and len(printed) == 5


def trunk_sha256() -> str:
    from ganeval.weights import locate_weights

    return locate_weights(None).sha256


@pytest.mark.slow
def test_a_rerun_scores_nothing_new_and_a_new_checkpoint_only(
    my_runs, image_dirs, tmp_path, count_generator_calls
) -> None:
    real, _ = image_dirs
    out = tmp_path / "lb.csv"
    assert invoke("leaderboard", my_runs, "--reference", real, "--out", out, *OPTIONS).exit_code == 0
    assert sum(count_generator_calls) == 4 * SAMPLES
    before = out.read_bytes()
    count_generator_calls.clear()
    again = invoke(
        "leaderboard", my_runs, "--reference", real, "--out", out, "--kid-subset-size", "4", "--batch-size", "4"
    )  # the short command: metrics, samples and seed come from the CSV
    assert again.exit_code == 0, again.output
    assert count_generator_calls == [] and out.read_bytes() == before
    assert "4 of 4 checkpoint(s) already scored" in again.output
    Trainer(TrainConfig(out=str(my_runs / "alpha"), steps=6), resume=True, log=lambda line: None).run()
    count_generator_calls.clear()
    third = invoke("leaderboard", my_runs, "--reference", real, "--out", out, *OPTIONS)
    assert third.exit_code == 0, third.output
    assert sum(count_generator_calls) == SAMPLES  # only step 6
    table = read_table(out)
    assert len(table) == 5 and sorted(table["rank"]) == [1, 2, 3, 4, 5]
    assert 6 in set(table.loc[table["run"] == "alpha", "step"])


@pytest.mark.slow
def test_an_interrupted_run_leaves_a_valid_csv_that_the_rerun_completes(
    runs, image_dirs, tmp_path, monkeypatch
) -> None:
    real, _ = image_dirs
    out = tmp_path / "lb.csv"
    original = ganeval.Evaluator.score
    calls = []

    def interrupted(self, generator, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, generator, **kwargs)

    monkeypatch.setattr(ganeval.Evaluator, "score", interrupted)
    result = invoke("leaderboard", runs, "--reference", real, "--out", out, *OPTIONS)
    assert result.exit_code == 130 and "interrupted" in result.output
    first = read_table(out)
    assert len(first) == 1 and first["fid"].notna().all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lb.csv"]  # no temporary file left behind
    monkeypatch.setattr(ganeval.Evaluator, "score", original)
    assert invoke("leaderboard", runs, "--reference", real, "--out", out, *OPTIONS).exit_code == 0
    done = read_table(out)
    assert len(done) == 4
    kept = done[done["checkpoint_sha256"] == first["checkpoint_sha256"].iloc[0]]
    assert kept["scored_at"].iloc[0] == first["scored_at"].iloc[0]  # not scored twice


@pytest.mark.slow
def test_another_setup_gets_its_own_rows_and_ranks_and_rescore_replaces(
    runs, image_dirs, tmp_path, count_generator_calls
) -> None:
    real, fake = image_dirs
    out = tmp_path / "lb.csv"
    assert invoke("leaderboard", runs, "--reference", real, "--out", out, *OPTIONS).exit_code == 0
    assert invoke("leaderboard", runs, "--reference", fake, "--out", out, *OPTIONS).exit_code == 0
    table = read_table(out)
    assert len(table) == 8 and table["setup"].nunique() == 2
    for _, group in table.groupby("setup"):
        assert sorted(group["rank"]) == [1, 2, 3, 4] and group["reference"].nunique() == 1
    shown = invoke("leaderboard", "show", out, "--top", 2)
    assert shown.exit_code == 0 and shown.stdout.count("setup ") == 2
    assert len([line for line in shown.stdout.splitlines() if re.match(r"\s+[12]\s", line)]) == 4
    by_kid = invoke("leaderboard", "show", out, "--sort-by", "kid")
    assert by_kid.exit_code == 0 and by_kid.stdout.count("ranked by kid") == 2
    count_generator_calls.clear()
    assert invoke("leaderboard", runs, "--reference", real, "--out", out, "--rescore", *OPTIONS).exit_code == 0
    assert sum(count_generator_calls) == 4 * SAMPLES
    after = read_table(out)
    assert len(after) == 8 and after["setup"].nunique() == 2


FACTORY = """
import torch

class Tiny(torch.nn.Module):
    def __init__(self, z_dim):
        super().__init__()
        self.z_dim = z_dim
        self.project = torch.nn.Linear(z_dim, 3 * 8 * 8)

    def forward(self, z):
        x = self.project(z).view(-1, 3, 8, 8)
        return torch.tanh(torch.nn.functional.interpolate(x, size=32, mode="bilinear", align_corners=False))

def build_generator(config):
    return Tiny(int(config.get("z_dim", 8)))
"""


class Evil:
    """Unpickling this runs open(marker, "w"): what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.slow
def test_foreign_checkpoints_through_generator_and_a_malicious_pickle_is_refused(image_dirs, tmp_path) -> None:
    real, _ = image_dirs
    (tmp_path / "mygen.py").write_text(FACTORY)
    spec = f"{tmp_path / 'mygen.py'}:build_generator"
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    namespace: dict[str, object] = {}
    exec(FACTORY, namespace)  # noqa: S102 - the test's own factory, to make the state dicts
    torch.manual_seed(0)
    first, second = namespace["Tiny"](8), namespace["Tiny"](8)  # type: ignore[operator]
    save_file(first.state_dict(), str(ckpts / "g_100.safetensors"))
    (ckpts / "g_100.json").write_text('{"z_dim": 8}')
    torch.save({"generator": second.state_dict(), "step": 5}, ckpts / "g_200.pt")
    out = tmp_path / "lb.csv"
    nested = invoke("leaderboard", "--generator", spec, ckpts, "--reference", real, "--out", out, *OPTIONS)
    assert nested.exit_code == 2 and "g_200.pt" in nested.output and "--state-key" in nested.output
    assert "one of: generator" in nested.output
    assert list(read_table(out)["step"]) == [100]  # the checkpoint before the bad one is kept
    (ckpts / "g_200.pt").unlink()
    torch.save(second.state_dict(), ckpts / "g_200.pt")
    result = invoke("leaderboard", "--generator", spec, ckpts, "--reference", real, "--out", out, *OPTIONS)
    assert result.exit_code == 0, result.output
    table = read_table(out)
    assert sorted(table["step"]) == [100, 200] and set(table["run"]) == {"ckpts"}
    evaluator = ganeval.Evaluator(real, ("fid", "kid"), num_samples=SAMPLES, batch_size=4, kid_subset_size=4)
    expected = evaluator.score(first)["fid"]
    assert table.loc[table["step"] == 100, "fid"].iloc[0] == pytest.approx(expected, rel=1e-9)

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil"
    evil.mkdir()
    torch.save({"weight": Evil(marker)}, evil / "g_1.pt")
    refused = invoke(
        "leaderboard", "--generator", spec, evil, "--reference", real, "--out", tmp_path / "x.csv", *OPTIONS
    )
    assert refused.exit_code == 2, refused.output
    assert "g_1.pt" in refused.output and "refused" in refused.output and "Traceback" not in refused.output
    assert not marker.exists() and not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_plot_and_report_are_made_and_show_every_checkpoint(runs, image_dirs, tmp_path) -> None:
    real, _ = image_dirs
    out, plot, report = tmp_path / "lb.csv", tmp_path / "curves.png", tmp_path / "report.html"
    result = invoke(
        "leaderboard", runs, "--reference", real, "--out", out, "--plot", plot, "--report", report, *OPTIONS
    )
    assert result.exit_code == 0, result.output
    with Image.open(plot) as image:
        assert image.size == (2 * 480, 360)  # fid and kid panels
        assert len(image.convert("RGB").getcolors(1 << 16) or []) > 10
    page = report.read_text()
    table = read_table(out)
    for row in table.itertuples():
        assert row.checkpoint in page
        found = re.search(rf'<tr id="ckpt-{row.checkpoint_sha256[:16]}">.*?src="data:image/png;base64,([^"]+)"', page)
        assert found, row.checkpoint
        with Image.open(io.BytesIO(base64.b64decode(found.group(1)))) as grid:
            assert grid.size == (4 * 34 + 2, 4 * 34 + 2)  # 16 samples of 32 px, 2-px gaps
    assert 'src="http' not in page and page.count("data:image/png;base64,") == 4 + 1  # grids and curves


def test_bad_inputs_are_one_line_errors(runs, image_dirs, tmp_path) -> None:
    real, _ = image_dirs
    checkpoint = checkpoint_folders(runs)[0]
    cases = [
        (
            ["leaderboard", checkpoint / "generator.safetensors", "--reference", real, "--out", tmp_path / "a.csv"],
            "--generator",
        ),
        (["leaderboard", tmp_path, "--reference", real, "--out", tmp_path / "b.csv"], "no ganeval checkpoints"),
        (["leaderboard", runs, "--reference", real, "--out", tmp_path / "c.csv", "--sort-by", "speed"], "--sort-by"),
        (["leaderboard", runs, "--reference", real, "--out", tmp_path / "d.csv", "--state-key", "g"], "--state-key"),
        (["leaderboard", runs, "--reference", real, "--out", real / "0000.png"], "not a ganeval leaderboard"),
        (
            [
                "leaderboard",
                runs,
                "--generator",
                "nosuchmodule_xyz:build",
                "--reference",
                real,
                "--out",
                tmp_path / "e.csv",
            ],
            "cannot import nosuchmodule_xyz",
        ),
    ]
    for args, expected in cases:
        result = invoke(*args, *OPTIONS[:2])
        assert result.exit_code == 2, (args, result.output)
        assert expected in result.output and "Traceback" not in result.output, result.output


def test_discovery_finds_runs_at_any_depth_and_ignores_temporary_folders(runs, tmp_path) -> None:
    copy = Path(shutil.copytree(runs, tmp_path / "runs"))
    (copy / "alpha" / "checkpoints" / ".step_000006.tmp").mkdir()
    found = discover([copy])
    assert [(c.run, c.step) for c in found] == [("alpha", 2), ("alpha", 4), ("group/beta", 2), ("group/beta", 4)]
    assert [(c.run, c.step) for c in discover([copy / "group" / "beta"])] == [("beta", 2), ("beta", 4)]
    single = discover([copy / "alpha" / "checkpoints" / "step_000004"])
    assert [(c.run, c.step) for c in single] == [("alpha", 4)]
    assert len(discover([copy, copy / "alpha"])) == 4  # the same checkpoint once


def test_ranking_follows_each_metrics_direction_ties_and_missing_values() -> None:
    rows = [
        {
            "checkpoint_sha256": f"{i}",
            "setup": "s",
            "run": "r",
            "step": i,
            "scored_at": "t",
            "fid": fid,
            "precision": precision,
        }
        for i, (fid, precision) in enumerate([(3.0, 0.5), (1.0, 0.9), (1.0, 0.7), (None, 0.1)])
    ]
    table = None
    for row in rows:
        table = upsert(table if table is not None else read_table("/nonexistent.csv"), row)
    by_fid = rank(table, "fid")
    assert list(by_fid["step"]) == [1, 2, 0, 3] and list(by_fid["rank"].astype("Float64").fillna(-1)) == [1, 1, 3, -1]
    by_precision = rank(table, "precision")
    assert list(by_precision["step"]) == [1, 2, 0, 3] and list(by_precision["rank"]) == [1, 2, 3, 4]
    replaced = upsert(table, {**rows[0], "fid": 0.5})
    assert len(replaced) == 4 and rank(replaced, "fid")["step"].iloc[0] == 0
    assert setup_id({"a": 1, "b": [2]}) == setup_id({"b": [2], "a": 1}) != setup_id({"a": 2, "b": [2]})


@pytest.mark.slow
def test_demo_trains_scores_and_reports(tmp_path, trunk_info) -> None:
    out = tmp_path / "demo"
    result = invoke(
        "demo",
        "--out",
        out,
        "--data",
        "shapes",
        "--steps",
        4,
        "--checkpoints",
        2,
        "--samples",
        6,
        "--reference-images",
        6,
        "--width",
        4,
        "-q",
    )
    assert result.exit_code == 0, result.output
    table = read_table(out / "leaderboard.csv")
    assert sorted(zip(table["run"], table["step"])) == [("dcgan", 2), ("dcgan", 4), ("wgan-gp", 1), ("wgan-gp", 2)]
    assert table[["fid", "kid", "precision", "recall"]].notna().all().all()
    assert (out / "curves.png").stat().st_size > 1000 and (out / "report.html").stat().st_size > 1000
    stats = load_statistics(out / "reference_stats.npz")
    assert stats.n == 6 and stats.meta["weights_sha256"] == trunk_sha256()
    again = invoke(
        "demo",
        "--out",
        out,
        "--data",
        "shapes",
        "--steps",
        4,
        "--checkpoints",
        2,
        "--samples",
        6,
        "--reference-images",
        6,
        "--width",
        4,
        "-q",
    )
    assert again.exit_code == 0 and "4 of 4 checkpoint(s) already scored" in again.output


def test_demo_reference_and_its_fallback_to_shapes(tmp_path, monkeypatch) -> None:
    """The demo's data steps without its training and scoring (the fast tier's share of demo.py): without
    Fashion-MNIST it says so and uses the shapes; the reference is the dataset's first images as PNGs, and a
    rerun keeps the files it finds."""
    import ganeval.demo as demo
    from ganeval.errors import BadInputError
    from ganeval.datasets import dataset_images

    def missing(*args, **kwargs):
        raise BadInputError("/usr/share/datasets/fashion-mnist: not installed")

    lines: list[str] = []
    monkeypatch.setattr(demo, "dataset_images", missing)
    assert demo._dataset("fashion-mnist", lines.append) == ("shapes", 32)
    assert "using the procedural shapes instead" in lines[0]
    monkeypatch.undo()
    folder = demo._write_reference("shapes", 32, 3, tmp_path / "reference", lines.append)
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["00000.png", "00001.png", "00002.png"]
    expected = dataset_images("shapes", 32, limit=3)
    for index, name in enumerate(names):
        assert (np.asarray(Image.open(folder / name).convert("RGB")) == expected.load(index)).all()
    stamp = (folder / "00000.png").stat().st_mtime_ns
    demo._write_reference("shapes", 32, 3, folder, lines.append)
    assert (folder / "00000.png").stat().st_mtime_ns == stamp and lines[-1].startswith("reference: 3 shapes")


@pytest.mark.slow
def test_diagnostic_columns_and_closest_pairs_in_the_report(runs, image_dirs, tmp_path) -> None:
    """--metrics fid,authpct,modes: the diagnostic columns hold the Evaluator's numbers, each checkpoint's
    closest pairs are kept beside the CSV and shown in the report, and ranking by copy_rate works."""
    from ganeval.leaderboard.scoring import pairs_path

    real, _ = image_dirs
    out, report = tmp_path / "lb.csv", tmp_path / "report.html"
    result = invoke(
        "leaderboard",
        runs,
        "--reference",
        real,
        "--out",
        out,
        "--metrics",
        "fid,authpct,modes",
        "--samples",
        SAMPLES,
        "--batch-size",
        "4",
        "--sort-by",
        "copy_rate",
        "--report",
        report,
        "-q",
    )
    assert result.exit_code == 0, result.output
    table = read_table(out)
    assert len(table) == 4 and set(table["rank_by"]) == {"copy_rate"}
    assert table["authpct"].between(0, 100).all() and table["duplicate_rate"].notna().all()
    assert table["support_estimate"].notna().any() or table["duplicate_rate"].eq(0).any()
    assert table["classes_covered"].isna().all()  # the reference has no class subfolders
    best = table.iloc[0]
    generator = load_generator(best["checkpoint"])[0]
    evaluator = ganeval.Evaluator(
        real, metrics=("fid", "authpct", "modes"), num_samples=SAMPLES, batch_size=4, progress=False
    )
    expected = evaluator.score(generator)
    for key in ("authpct", "copy_rate", "nn_distance_median", "duplicate_rate"):
        assert best[key] == pytest.approx(expected[key], rel=1e-6), key
    setup = str(best["setup"])
    for sha in table["checkpoint_sha256"]:
        png = pairs_path(out, str(sha), setup)
        assert png.is_file() and Image.open(png).size[0] > 200
    page = report.read_text()
    assert "closest pairs" in page and page.count('class="pairs"') == 4
