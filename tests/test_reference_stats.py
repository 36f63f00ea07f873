"""The published reference statistics manifest: shipped file, validation, table, and `ganeval stats --list`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganeval import reference_stats
from ganeval.cli import cli
from ganeval.errors import GanevalError
from ganeval.reference_stats import MANIFEST_MODES, REQUIRED_KEYS, format_manifest, load_manifest

SHIPPED = Path(__file__).resolve().parent.parent / "reference_stats" / "manifest.json"


def _valid_entry(**changes: object) -> dict:
    entry = {
        "name": "toy-train-tf-test",
        "dataset": "toy",
        "split": "train",
        "resolution": 32,
        "n_images": 10,
        "mode": "tf",
        "producer": "test",
        "url": "https://example.invalid/toy.npz",
        "sha256": None,
        "format": "npz mu/sigma",
        "notes": "made up",
    }
    entry.update(changes)
    return entry


@pytest.fixture
def manifest_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point the manifest lookup at a file in tmp_path; call the fixture with the text to write."""
    path = tmp_path / "broken-manifest.json"
    monkeypatch.setattr(reference_stats, "REPO_MANIFEST", path)
    monkeypatch.setattr(reference_stats, "INSTALLED_MANIFEST", tmp_path / "absent.json")

    def write(text: str) -> Path:
        path.write_text(text, encoding="utf-8")
        return path

    return write


def test_shipped_manifest_loads_with_valid_entries() -> None:
    entries = load_manifest()
    assert reference_stats.manifest_path() == SHIPPED
    assert len(entries) >= 10
    for entry in entries:
        assert set(REQUIRED_KEYS) <= set(entry), entry.get("name")
        assert entry["mode"] in MANIFEST_MODES
        assert entry["url"].startswith(("http://", "https://"))
        assert entry["url"].endswith(".npz")
    assert len({entry["name"] for entry in entries}) == len(entries)


def test_shipped_manifest_covers_the_datasets_users_ask_for() -> None:
    entries = load_manifest()
    have = {(entry["dataset"], entry["split"]) for entry in entries}
    for wanted in [
        ("cifar10", "train"),
        ("cifar10", "test"),
        ("celeba", "all"),
        ("svhn", "train"),
        ("imagenet", "train"),
        ("imagenet", "valid"),
        ("lsun_bedroom", "train"),
        ("lsun_church", "train"),
    ]:
        assert wanted in have
    assert {entry["resolution"] for entry in entries if entry["dataset"] == "ffhq"} >= {1024, 256}
    assert any(entry["mode"] == "tf" and entry["producer"] == "TTUR" for entry in entries)


def test_sha256_is_null_or_lowercase_hex() -> None:
    for entry in load_manifest():
        assert entry["sha256"] is None or re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), entry["name"]


def test_cleanfid_entries_follow_cleanfid_naming_and_mode_mapping() -> None:
    to_cleanfid = {"clean": "clean", "tf": "legacy_tensorflow", "pytorch-fid": "legacy_pytorch"}
    entries = [entry for entry in load_manifest() if entry["producer"] == "clean-fid"]
    assert entries
    for entry in entries:
        expected = (
            f"https://www.cs.cmu.edu/~clean-fid/stats/{entry['dataset']}_{to_cleanfid[entry['mode']]}_"
            f"{entry['split']}_{entry['resolution']}.npz"
        )
        assert entry["url"] == expected


def test_format_manifest_lists_every_entry() -> None:
    entries = load_manifest()
    text = format_manifest(entries)
    for entry in entries:
        assert entry["name"] in text
        assert entry["url"] in text
    assert "unknown" in text
    table_lines = [line for line in text.splitlines() if not line.startswith("    ")]
    assert max(len(line) for line in table_lines) <= 120


def test_format_manifest_shows_sha256_prefix_and_missing_resolution() -> None:
    sha = "ab" * 32
    text = format_manifest([_valid_entry(sha256=sha, resolution=None)])
    row = next(line for line in text.splitlines() if line.startswith("toy-train-tf-test"))
    assert sha[:12] in row and "unknown" not in row
    assert " ? " in row


def test_cli_stats_list() -> None:
    result = CliRunner().invoke(cli, ["stats", "--list"])
    assert result.exit_code == 0, result.output
    for entry in load_manifest():
        assert entry["name"] in result.output


def test_bad_json_names_the_file(manifest_file) -> None:
    path = manifest_file("[{not json")
    with pytest.raises(GanevalError, match=re.escape(str(path))):
        load_manifest()


def test_not_a_list_names_the_file(manifest_file) -> None:
    path = manifest_file(json.dumps({"name": "x"}))
    with pytest.raises(GanevalError, match=re.escape(path.name)):
        load_manifest()


def test_missing_key_names_the_file_and_entry(manifest_file) -> None:
    entry = _valid_entry()
    del entry["url"]
    path = manifest_file(json.dumps([_valid_entry(name="fine"), entry]))
    with pytest.raises(GanevalError) as info:
        load_manifest()
    message = str(info.value)
    assert path.name in message and "entry 1 (toy-train-tf-test)" in message and "url" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"mode": "legacy_tensorflow"}, "unknown mode"),
        ({"sha256": "ABC"}, "sha256"),
        ({"sha256": "AB" * 32}, "sha256"),
        ({"resolution": "32"}, "resolution"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_values_are_refused(manifest_file, changes: dict, fragment: str) -> None:
    path = manifest_file(json.dumps([_valid_entry(**changes)]))
    with pytest.raises(GanevalError, match=re.escape(fragment)) as info:
        load_manifest()
    assert path.name in str(info.value)


def test_duplicate_names_are_refused(manifest_file) -> None:
    manifest_file(json.dumps([_valid_entry(), _valid_entry()]))
    with pytest.raises(GanevalError, match="repeats the name"):
        load_manifest()


def test_cli_reports_a_broken_manifest_in_one_line(manifest_file) -> None:
    path = manifest_file("not json at all")
    result = CliRunner().invoke(cli, ["stats", "--list"])
    assert result.exit_code == 2
    assert path.name in result.output


def test_missing_manifest_falls_back_then_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = tmp_path / "share" / "ganeval" / "manifest.json"
    monkeypatch.setattr(reference_stats, "REPO_MANIFEST", tmp_path / "nope.json")
    monkeypatch.setattr(reference_stats, "INSTALLED_MANIFEST", installed)
    with pytest.raises(GanevalError, match="manifest not found"):
        load_manifest()
    installed.parent.mkdir(parents=True)
    installed.write_text(json.dumps([_valid_entry()]), encoding="utf-8")
    assert [entry["name"] for entry in load_manifest()] == ["toy-train-tf-test"]
