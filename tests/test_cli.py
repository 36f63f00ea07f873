"""The CLI end to end with click's runner: text, --json, stats files, exit codes and bad inputs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import smooth_images, write_images
from ganeval.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.slow
def test_fid_text_and_json(image_dirs) -> None:
    real, fake = image_dirs
    text = run("fid", str(real), str(fake), "--batch-size", "8")
    assert text.exit_code == 0, text.output
    assert re.fullmatch(r"FID: \d+\.\d{4}\n", text.stdout)
    assert "inception-v3-tf-2015-12-05" in text.stderr and "mode tf" in text.stderr
    assert "warning: real has 8 images (<= 2048)" in text.stderr

    as_json = run("fid", str(real), str(fake), "--json", "--quiet")
    assert as_json.exit_code == 0
    doc = json.loads(as_json.stdout)
    assert doc["fid"] == pytest.approx(float(text.stdout.split()[1]), abs=1e-4)
    assert doc["n_real"] == 8 and doc["n_fake"] == 8
    provenance = doc["provenance"]
    assert provenance["extractor"] == "inception-v3-tf-2015-12-05" and provenance["mode"] == "tf"
    assert len(provenance["weights_sha256"]) == 64 and provenance["weights_standard"] is True
    assert provenance["real"]["source"] == str(real) and len(provenance["real"]["content_sha256"]) == 64


def test_verbose_prints_the_provenance(image_dirs) -> None:
    real, fake = image_dirs
    result = run("fid", str(real), str(fake), "-v")
    assert result.exit_code == 0
    assert '"weights_sha256"' in result.stderr and '"content_sha256"' in result.stderr


@pytest.mark.slow
def test_stats_then_fid_from_the_file(image_dirs, tmp_path) -> None:
    real, fake = image_dirs
    made = run("stats", str(real), "-o", str(tmp_path / "real.npz"), "-q")
    assert made.exit_code == 0, made.output
    assert "wrote" in made.stdout and "8 images" in made.stdout
    direct = json.loads(run("fid", str(real), str(fake), "--json").stdout)["fid"]
    from_file = json.loads(run("fid", str(tmp_path / "real.npz"), str(fake), "--json").stdout)
    assert from_file["fid"] == pytest.approx(direct, rel=1e-12)
    assert from_file["provenance"]["real"]["kind"] == "statistics"
    assert run("stats", str(real)).exit_code == 2


def _assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("zero.png", b"", "not a readable image"),
        ("text.png", b"just some text\n", "not a readable image"),
        ("cut.png", None, "cannot decode image"),
    ],
)
@pytest.mark.slow
def test_bad_images_exit_2_naming_the_file(image_dirs, tmp_path: Path, name, content, reason) -> None:
    real, _ = image_dirs
    folder = write_images(tmp_path / "fake", smooth_images(3, 32, seed=21))
    if content is None:
        data = (folder / "0000.png").read_bytes()
        content = data[: len(data) // 2]
    (folder / name).write_bytes(content)
    result = run("fid", str(real), str(folder), "-q")
    _assert_one_line_error(result, name, reason)
    skipped = run("fid", str(real), str(folder), "--skip-bad", "--json")
    assert skipped.exit_code == 0, skipped.output
    doc = json.loads(skipped.stdout)
    assert doc["n_fake"] == 3 and len(doc["provenance"]["fake"]["skipped"]) == 1


def test_empty_and_missing_sources_exit_2(image_dirs, tmp_path) -> None:
    real, _ = image_dirs
    (tmp_path / "empty").mkdir()
    _assert_one_line_error(run("fid", str(real), str(tmp_path / "empty")), "contains no images")
    _assert_one_line_error(run("fid", str(real), str(tmp_path / "nope")), "no such file or folder")
    one = write_images(tmp_path / "one", smooth_images(1, 16, seed=3))
    _assert_one_line_error(run("fid", str(real), str(one), "--no-cache"), "at least 2")
    Image.fromarray(smooth_images(1, 16, seed=3)[0]).save(tmp_path / "single.png")
    _assert_one_line_error(run("fid", str(real), str(tmp_path / "single.png")), "single image is not a data set")


def test_unknown_weights_file_exits_2(image_dirs, tmp_path) -> None:
    real, fake = image_dirs
    (tmp_path / "junk.pth").write_bytes(b"\x00" * 100)
    _assert_one_line_error(run("fid", str(real), str(fake), "--weights", str(tmp_path / "junk.pth")), "junk.pth")


@pytest.mark.subprocess
def test_python_dash_m_runs_the_same_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "ganeval", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for command in ("fid", "stats", "weights"):
        assert command in out.stdout
