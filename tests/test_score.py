"""`score` end to end: every metric from one decode pass per set, the parts cache, the CLI table, JSON
and CSV, and the rules for metrics that cannot be computed."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

import ganeval
import ganeval.sources
from conftest import smooth_images, write_images
from ganeval.cache import cache_dir
from ganeval.cli import cli
from ganeval.errors import BadInputError, GanevalError
from ganeval.metrics.fid import frechet_distance
from ganeval.metrics.inception_score import inception_score
from ganeval.metrics.kid import kernel_inception_distance
from ganeval.metrics.prdc import precision_recall_density_coverage
from ganeval.result import csv_columns

JSON_KEYS = (
    "fid",
    "kid",
    "kid_std",
    "is",
    "is_std",
    "precision",
    "recall",
    "density",
    "coverage",
    "swd",
    "swd_levels",
    "n_real",
    "n_fake",
    "provenance",
)


@pytest.fixture
def forward_counter(full_extractor, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batch sizes the Inception extractor runs (one call per batch of a pass, every part at once)."""
    calls: list[int] = []
    original = full_extractor.run

    def counting(batch, parts):
        calls.append(len(batch))
        return original(batch, parts)

    monkeypatch.setattr(full_extractor, "run", counting)
    return calls


@pytest.mark.slow
def test_all_metrics_from_one_pass_match_the_metric_functions(
    image_dirs, full_extractor, fresh_home, decode_counter, forward_counter
) -> None:
    real, fake = image_dirs
    result = ganeval.score(real, fake, extractor=full_extractor, progress=False, is_splits=4)
    assert len(decode_counter) == 16, "each image decoded exactly once for all five metrics"
    assert sum(forward_counter) == 16, "one Inception forward per image serves FID, KID, IS and P/R"
    for key in JSON_KEYS:
        assert key in result.to_dict()
    # The same numbers from the pure functions on the cached features.
    r = ganeval.compute_features(real, full_extractor, progress=False)
    f = ganeval.compute_features(fake, full_extractor, progress=False)
    assert result["fid"] == pytest.approx(frechet_distance(r.mu, r.sigma, f.mu, f.sigma), rel=1e-12)
    kid = kernel_inception_distance(r.pool3, f.pool3, seed=2020)
    assert (result["kid"], result["kid_std"]) == pytest.approx((kid.mean, kid.std), rel=1e-12)
    isc = inception_score(f.logits_unbiased, splits=4, seed=2020)
    assert (result["is"], result["is_std"]) == pytest.approx((isc.mean, isc.std), rel=1e-12)
    prdc = precision_recall_density_coverage(r.pool3, f.pool3, seed=2020)
    assert result["precision"] == prdc.precision and result["recall"] == prdc.recall
    assert result["density"] == prdc.density and result["coverage"] == prdc.coverage
    assert len(result["swd_levels"]) == 2 and result["swd"] == pytest.approx(np.mean(result["swd_levels"]))
    p = result.provenance
    assert p["seed"] == 2020 and p["kid"]["subset_size"] == 8 and p["pr_features"] == "inception"
    assert p["swd"]["resolutions"] == [32, 16] and p["is"]["splits"] == 4
    assert any("KID subset size capped" in w for w in result.warnings)
    assert any("SWD" in w and "16,384" in w for w in result.warnings)


@pytest.mark.slow
def test_new_fakes_against_cached_reals_decode_only_the_fakes(
    image_dirs, full_extractor, fresh_home, decode_counter, tmp_path
) -> None:
    real, fake = image_dirs
    ganeval.score(real, fake, extractor=full_extractor, progress=False)
    other = write_images(tmp_path / "other", smooth_images(8, 32, seed=9, shift=20))
    decode_counter.clear()
    result = ganeval.score(real, other, extractor=full_extractor, progress=False)
    assert decode_counter and all(name.startswith(str(other)) for name in decode_counter)
    assert len(decode_counter) == 8
    assert result.provenance["real"]["cached"] is True and result.provenance["fake"]["cached"] is False


@pytest.mark.slow
def test_a_missing_part_is_computed_without_redoing_the_cached_ones(
    image_dirs, full_extractor, fresh_home, decode_counter, forward_counter
) -> None:
    real, fake = image_dirs
    ganeval.fid(real, fake, extractor=full_extractor, progress=False)
    assert sum(forward_counter) == 16
    forward_counter.clear()
    decode_counter.clear()
    ganeval.swd(real, fake, extractor=full_extractor, progress=False)
    assert len(decode_counter) == 16 and forward_counter == [], "SWD needs pixels, not another Inception forward"
    decode_counter.clear()
    ganeval.score(real, fake, metrics=["fid", "swd"], extractor=full_extractor, progress=False)
    assert decode_counter == []
    assert len(list(cache_dir().glob("*.npz"))) == 4


@pytest.mark.slow
def test_default_metrics_leave_out_what_cannot_be_computed(image_dirs, extractor, fresh_home, tmp_path) -> None:
    """Trunk weights have no classifier: `score` gives every other metric and says why IS is missing; asked
    for explicitly, IS is an error with the how-to-get-the-file message."""
    real, fake = image_dirs
    result = ganeval.score(real, fake, extractor=extractor, progress=False)
    assert "is" not in result and "fid" in result and "swd" in result
    assert any("IS left out" in w and "pt_inception-2015-12-05" in w for w in result.warnings)
    with pytest.raises(GanevalError, match="classifier"):
        ganeval.inception_score(fake, extractor=extractor, progress=False)
    stats_file = tmp_path / "real_stats.npz"
    ganeval.save_statistics(ganeval.statistics(real, extractor=extractor, progress=False), stats_file)
    partial = ganeval.score(stats_file, fake, extractor=extractor, progress=False)
    assert set(partial) == {"fid"}
    assert any("holds only statistics" in w for w in partial.warnings)
    with pytest.raises(BadInputError, match="holds only statistics"):
        ganeval.score(stats_file, fake, metrics=["fid", "kid"], extractor=extractor, progress=False)
    with pytest.raises(BadInputError, match="unknown metric"):
        ganeval.score(real, fake, metrics=["fid", "lpips"], extractor=extractor, progress=False)


def test_swd_refuses_mixed_resolutions_unless_resized(image_dirs, extractor, fresh_home, tmp_path) -> None:
    real, _ = image_dirs
    big = write_images(tmp_path / "big", smooth_images(8, 64, seed=5))
    with pytest.raises(BadInputError, match="--swd-size"):
        ganeval.swd(real, big, extractor=extractor, progress=False)
    resized = ganeval.swd(real, big, extractor=extractor, progress=False, swd_size=32)
    assert len(resized["swd_levels"]) == 2 and resized["swd"] > 0


@pytest.mark.slow
def test_bootstrap_intervals_are_seeded(image_dirs, extractor, fresh_home) -> None:
    real, fake = image_dirs
    one = ganeval.score(real, fake, metrics=["fid", "kid"], bootstrap=3, extractor=extractor, progress=False)
    two = ganeval.score(real, fake, metrics=["fid", "kid"], bootstrap=3, extractor=extractor, progress=False)
    other = ganeval.score(real, fake, metrics=["kid"], bootstrap=3, seed=7, extractor=extractor, progress=False)
    assert one["fid_ci95"] == two["fid_ci95"] and one["kid_ci95"] == two["kid_ci95"]
    assert other["kid_ci95"] != one["kid_ci95"] and "fid_ci95" not in other
    assert one["kid_ci95"][0] < one["kid_ci95"][1] and one["fid_ci95"][0] < one["fid_ci95"][1]
    assert one.provenance["bootstrap"]["resamples"] == 3
    assert "95% CI [" in one.text()


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.slow
def test_cli_score_table_json_and_csv(image_dirs, full_weights_file, fresh_home, tmp_path) -> None:
    real, fake = image_dirs
    common = ["--weights", str(full_weights_file), "--device", "cpu", "--batch-size", "8", "-q", "--is-splits", "4"]
    table = run("score", str(real), str(fake), *common)
    assert table.exit_code == 0, table.output
    lines = table.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "FID",
        "KID",
        "IS",
        "precision",
        "recall",
        "density",
        "coverage",
        "SWD×1e3",
    ]
    value_ends = {re.match(r"\S+:\s+\S+", line).end() for line in lines}
    assert len(value_ends) == 1, "values are right-aligned in one column"
    assert re.search(r"KID: +\d\.\d{6}  ± \d\.\d{6}", table.stdout)
    assert "@32px" in table.stdout and "(inception features)" in table.stdout
    csv_file = tmp_path / "scores.csv"
    doc = json.loads(run("score", str(real), str(fake), *common, "--json", "--csv", str(csv_file)).stdout)
    for key in JSON_KEYS:
        assert key in doc
    assert isinstance(doc["swd_levels"], list) and doc["n_real"] == 8
    assert doc["provenance"]["weights_sha256"] and doc["provenance"]["seed"] == 2020
    subset = json.loads(
        run("score", str(real), str(fake), *common, "--json", "--metrics", "fid,kid,pr", "--csv", str(csv_file)).stdout
    )
    assert {"fid", "kid", "precision"} <= set(subset) and "swd" not in subset and "is" not in subset
    with open(csv_file, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0].keys()) == csv_columns() and len(rows) == 2
    assert float(rows[0]["fid"]) == doc["fid"] and json.loads(rows[0]["swd_levels"]) == doc["swd_levels"]
    assert rows[1]["swd"] == "" and float(rows[1]["kid"]) == subset["kid"]


@pytest.mark.slow
def test_cli_single_metric_commands(image_dirs, full_weights_file, fresh_home, tmp_path) -> None:
    real, fake = image_dirs
    common = [
        "--weights",
        str(full_weights_file),
        "--device",
        "cpu",
        "--batch-size",
        "8",
        "-q",
        "--json",
    ]
    assert set(json.loads(run("kid", str(real), str(fake), *common).stdout)) >= {"kid", "kid_std"}
    is_doc = json.loads(run("is", str(fake), *common, "--is-splits", "4").stdout)
    assert "is" in is_doc and "fid" not in is_doc and is_doc["n_real"] is None
    pr = json.loads(run("pr", str(real), str(fake), *common).stdout)
    assert {"precision", "recall", "density", "coverage"} <= set(pr)
    assert "swd_levels" in json.loads(run("swd", str(real), str(fake), *common).stdout)
    bad_csv = tmp_path / "other.csv"
    bad_csv.write_text("a,b\n1,2\n")
    refused = CliRunner().invoke(cli, ["fid", str(real), str(fake), *common, "--csv", str(bad_csv)])
    assert refused.exit_code == 2 and "header" in refused.stderr and bad_csv.read_text() == "a,b\n1,2\n"
    no_classifier = CliRunner().invoke(cli, ["is", str(fake), "--device", "cpu", "-q"])
    assert no_classifier.exit_code == 2 and "classifier" in no_classifier.stderr


@pytest.mark.slow
def test_statistics_file_real_side_still_gives_fid_and_is(image_dirs, full_extractor, fresh_home, tmp_path) -> None:
    real, fake = image_dirs
    stats_file = tmp_path / "real_stats.npz"
    ganeval.save_statistics(ganeval.statistics(real, extractor=full_extractor, progress=False), stats_file)
    result = ganeval.score(stats_file, fake, extractor=full_extractor, is_splits=4, progress=False)
    assert set(result) == {"fid", "is", "is_std"}
    assert any("kid, pr, swd need(s) the images" in w for w in result.warnings)


@pytest.mark.slow
def test_cached_parts_keep_their_own_provenance(image_dirs, extractor, full_extractor, fresh_home) -> None:
    """An SWD part cached in a pass with one Inception network must not relabel FID made with another."""
    real, fake = image_dirs
    ganeval.score(real, fake, metrics=["fid", "swd"], extractor=full_extractor, progress=False)
    again = ganeval.score(real, fake, metrics=["fid", "swd"], extractor=extractor, progress=False)
    assert again.provenance["real"]["weights_sha256"] == extractor.weights.sha256
    assert again.provenance["extractor"] == extractor.weights.extractor
