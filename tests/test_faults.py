"""Fault injection (issue #9, part 3): a writer SIGKILLed mid-write, concurrent writers, a full disk.

Every test runs the real writers (cache entries, statistics files, the --csv file, the leaderboard CSV, the
closest-pairs PNGs, training checkpoints) in child processes. The children are forked from a multiprocessing
*forkserver* that imported ganeval once, so each starts in milliseconds instead of re-importing torch.

A child is stopped at a chosen moment by patching, in that child only, the file object a writer writes
through (``mid-write``: after 64 KiB it flushes what it has, tells the parent and sleeps) or ``os.replace``
(``before-rename``: the new file is complete but not in place); the parent then SIGKILLs it and checks that the
destination is byte for byte the previous version (or absent when there was none), and that what is left
beside it is only hidden temporary/lock names that no reader opens and that the next write removes.
"""

from __future__ import annotations

import errno
import io
import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from ganeval.errors import GanevalError

CTX = multiprocessing.get_context("forkserver")
CTX.set_forkserver_preload(
    [
        "numpy",
        "pandas",
        "torch",
        "PIL.Image",
        "safetensors.torch",
        "ganeval.cache",
        "ganeval.stats",
        "ganeval.result",
        "ganeval.leaderboard.store",
        "ganeval.leaderboard.scoring",
        "ganeval.train.checkpoint",
        "pytest",
    ]
)
STALL_AFTER = 64 * 1024
WAIT_S = 120.0
KEY = "ab" * 32
SHA = "c0ffee" * 10 + "abcd"
SETUP = "5e7a95e7a95e"

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(os.name != "posix", reason="SIGKILL, flock and RLIMIT_FSIZE are POSIX"),
]


# --- the writers under test, each writing a deterministic version (> 64 KiB) of its file ----------------


def _features(version: int):
    from ganeval.parts import POOL3, Features, VectorPart

    rng = np.random.default_rng(version)
    pool3 = rng.standard_normal((256, 512)).astype(np.float32)
    part = VectorPart(256, rows=pool3, mu=pool3.mean(0).astype(np.float64), sigma=np.cov(pool3, rowvar=False))
    return Features(names=[f"img{i:03d}.png" for i in range(256)], provenance={"version": version}, parts={POOL3: part})


def _result(version: int, padding: int = 100_000):
    from ganeval.result import Result

    return Result(
        scores={"fid": float(version)}, n_real=1, n_fake=1, provenance={"version": version, "padding": "x" * padding}
    )


def _table(version: int):
    import pandas as pd

    from ganeval.leaderboard.store import _typed

    rows = [
        {
            "run": f"run{version}",
            "step": step,
            "checkpoint": f"/runs/run{version}/step_{step}",
            "checkpoint_sha256": f"{version:04d}{step:060d}",
            "setup": SETUP,
            "fid": version + step / 1000,
            "warnings": "w" * 200,
        }
        for step in range(400)
    ]
    return _typed(pd.DataFrame(rows))


def _png(version: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.random.default_rng(version).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _modules(version: int):
    import torch

    torch.manual_seed(version)
    return torch.nn.Linear(256, 256), torch.nn.Linear(128, 128)


def write(kind: str, target: Path, version: int) -> Path:
    """Write ``version`` of ``kind``'s file under ``target`` with ganeval's own writer; returns its path."""
    if kind == "cache":
        from ganeval.cache import store_entry

        os.environ["GANEVAL_HOME"] = str(target / "home")
        return store_entry(KEY, "inception:pool3", _features(version))
    if kind == "stats":
        from ganeval.stats import Statistics, save_statistics

        features = _features(version)
        return save_statistics(Statistics(features.mu, features.sigma, 256, {"version": version}), target / "ref.npz")
    if kind == "csv":
        from ganeval.result import append_csv

        return append_csv(target / "runs.csv", _result(version))
    if kind == "leaderboard":
        from ganeval.leaderboard.store import write_table

        return write_table(target / "lb.csv", _table(version))
    if kind == "pairs":
        from ganeval.leaderboard.scoring import _store_pairs, pairs_path

        _store_pairs(target / "lb.csv", SHA, SETUP, _png(version))
        return pairs_path(target / "lb.csv", SHA, SETUP)
    if kind == "checkpoint":
        from ganeval.train.checkpoint import save_checkpoint

        generator, discriminator = _modules(version)
        return save_checkpoint(
            target / "run",
            100,
            generator,
            discriminator,
            {"version": version},
            {"step": 100, "version": version, "tensor": generator.weight.detach().clone()},
        )
    raise AssertionError(kind)


def destination(kind: str, target: Path) -> Path:
    return {
        "cache": target / "home" / "features" / f"{KEY}.npz",
        "stats": target / "ref.npz",
        "csv": target / "runs.csv",
        "leaderboard": target / "lb.csv",
        "pairs": target / "lb.csv.pairs" / f"{SHA[:16]}-{SETUP}.png",
        "checkpoint": target / "run" / "checkpoints" / "step_000100",
    }[kind]


def snapshot(path: Path) -> dict[str, bytes] | None:
    """The bytes of a file, or of every file in a folder (a checkpoint); None when absent."""
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir())}
    return {"": path.read_bytes()} if path.exists() else None


# --- the child side ---------------------------------------------------------------------------------------


class _StallingFile:
    """A writable file that, once ``after`` bytes went through it, flushes them to the disk, tells the parent
    and sleeps until it is killed."""

    def __init__(self, handle, conn, after: int) -> None:
        self._handle, self._conn, self._after, self._written = handle, conn, after, 0

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        if self._written + len(data) < self._after:
            self._written += len(data)
            return self._handle.write(data)
        self._handle.write(data[: self._after - self._written])  # a torn file: only its beginning
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._conn.send(("stalled", self._after))
        time.sleep(3600)
        raise AssertionError("not killed")

    def __getattr__(self, name: str):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)


def _arm(kind: str, moment: str, conn) -> None:
    """Install the stall for ``moment`` in this (child) process."""
    if moment == "before-rename":

        def replace(src, dst, *args, **kwargs):
            conn.send(("stalled", os.path.basename(dst)))
            time.sleep(3600)

        os.replace = replace
    elif kind == "checkpoint":  # safetensors writes the file itself: tear generator.safetensors half-way
        import safetensors.torch

        import ganeval.train.checkpoint as checkpoint

        def save_file(tensors, filename, metadata=None):
            data = safetensors.torch.save(tensors, metadata)
            with open(filename, "wb") as handle:
                handle.write(data[: len(data) // 2])
                handle.flush()
                os.fsync(handle.fileno())
            conn.send(("stalled", len(data) // 2))
            time.sleep(3600)

        checkpoint.save_file = save_file
    else:
        fdopen = os.fdopen

        def stalling_fdopen(fd, mode="r", *args, **kwargs):
            handle = fdopen(fd, mode, *args, **kwargs)
            return _StallingFile(handle, conn, STALL_AFTER) if "w" in mode else handle

        os.fdopen = stalling_fdopen


def _killed_child(kind: str, target: str, version: int, moment: str, conn) -> None:
    _arm(kind, moment, conn)
    try:
        write(kind, Path(target), version)
        conn.send(("finished", None))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _run_child(function, *args, timeout: float = WAIT_S):
    """Start ``function(*args, conn)`` in a forkserver child; returns (process, parent end of the pipe)."""
    receiver, sender = CTX.Pipe(duplex=False)
    process = CTX.Process(target=function, args=(*args, sender), daemon=True)
    process.start()
    sender.close()
    return process, receiver


def _leftovers(folder: Path, keep: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p != keep) if folder.is_dir() else []


# --- SIGKILL mid-write ------------------------------------------------------------------------------------

KINDS = ["cache", "stats", "csv", "leaderboard", "pairs", "checkpoint"]


@pytest.mark.parametrize("previous", [False, True], ids=["no-previous", "previous"])
@pytest.mark.parametrize("moment", ["mid-write", "before-rename"])
@pytest.mark.parametrize("kind", KINDS)
def test_sigkill_leaves_the_previous_file_or_none(
    kind: str, moment: str, previous: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANEVAL_HOME", str(tmp_path / "home"))
    dest = destination(kind, tmp_path)
    if previous:
        assert write(kind, tmp_path, 0) == dest
    before = snapshot(dest)

    process, conn = _run_child(_killed_child, kind, str(tmp_path), 1, moment)
    try:
        assert conn.poll(WAIT_S), f"{kind}: the child never reached the {moment} point"
        status, detail = conn.recv()
        assert status == "stalled", f"{kind}: child {status}: {detail}"
    finally:
        process.kill()
        process.join(WAIT_S)
    assert process.exitcode == -signal.SIGKILL

    after = snapshot(dest)
    if kind == "checkpoint" and previous and moment == "before-rename":
        # save_checkpoint moves an existing folder of the same step aside before renaming the new one in;
        # test_checkpoint_rewrite_killed_between_renames_stays_loadable kills it between the two renames.
        assert after in (before, None)
    else:
        assert after == before, f"{kind}: the destination changed although its writer was killed"
    if after is not None:
        _check_readable(kind, dest, version=0)

    # What is left beside it: hidden names only, ignored by every reader.
    stray = _leftovers(dest.parent, dest)
    assert all(name.startswith(".") for name in stray), stray
    if kind == "checkpoint":
        from ganeval.train.checkpoint import list_checkpoints

        assert list_checkpoints(tmp_path / "run") == ([dest] if after is not None else [])
    if kind == "pairs":
        from ganeval.sources import FolderSource

        assert FolderSource(dest.parent).names == ([dest.name] if after is not None else [])

    # The next write succeeds and removes the dead writer's temporary file (a checkpoint's: folder) and lock file.
    write(kind, tmp_path, 2)
    _check_readable(kind, dest, version=2)
    assert _leftovers(dest.parent, dest) == []


def _check_readable(kind: str, dest: Path, version: int) -> None:
    """``dest`` reads back through ganeval's reader as the given version."""
    if kind == "cache":
        from ganeval.cache import load_entry

        features = load_entry(KEY)
        assert features is not None and features.provenance == {"version": version}
        np.testing.assert_array_equal(features.pool3, _features(version).pool3)
    elif kind == "stats":
        from ganeval.stats import load_statistics

        assert load_statistics(dest).meta["version"] == version
    elif kind == "csv":
        import pandas as pd

        table = pd.read_csv(dest)
        assert table["fid"].iloc[-1] == float(version)
    elif kind == "leaderboard":
        from ganeval.leaderboard.store import read_table

        table = read_table(dest)
        assert len(table) == 400 and table["run"].iloc[0] == f"run{version}"
    elif kind == "pairs":
        assert dest.read_bytes() == _png(version)
    else:
        from safetensors.torch import load_file

        from ganeval.train.checkpoint import load_state, read_meta

        generator, _ = _modules(version)
        assert read_meta(dest)["version"] == version
        assert load_state(dest)["version"] == version
        np.testing.assert_array_equal(
            load_file(str(dest / "generator.safetensors"))["weight"].numpy(), generator.weight.detach().numpy()
        )


def test_a_live_writers_temporary_file_is_never_removed(tmp_path: Path) -> None:
    """A concurrent writer of the same path, alive, keeps its temporary file while another write completes."""
    from ganeval.atomic import atomic_write

    dest = tmp_path / "file.bin"
    with atomic_write(dest) as outer:
        outer.write(b"outer")
        with atomic_write(dest) as inner:
            inner.write(b"inner")
        assert dest.read_bytes() == b"inner"
    assert dest.read_bytes() == b"outer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


def test_old_temporary_files_of_other_machines_are_removed_after_a_day(tmp_path: Path) -> None:
    from ganeval.atomic import STALE_SECONDS, atomic_write

    dest = tmp_path / "file.bin"
    other_host = tmp_path / ".file.bin.0123abcd-1-xyz.tmp"  # another machine's writer: cannot be checked
    legacy = tmp_path / ".file.bin.k3j4h5.tmp"  # the name an older ganeval gave
    foreign = tmp_path / ".file.bin.notes.txt"  # not ours: never touched
    for path in (other_host, legacy, foreign):
        path.write_bytes(b"x")
    with atomic_write(dest) as handle:
        handle.write(b"1")
    assert other_host.exists() and legacy.exists()
    old = time.time() - STALE_SECONDS - 60
    for path in (other_host, legacy, foreign):
        os.utime(path, (old, old))
    with atomic_write(dest) as handle:
        handle.write(b"2")
    assert not other_host.exists() and not legacy.exists() and foreign.exists()


# --- concurrent writers -----------------------------------------------------------------------------------


def _cache_writer(home: str, version: int, rounds: int, conn) -> None:
    from ganeval.cache import store_entry

    os.environ["GANEVAL_HOME"] = home
    features = _features(version)
    for _ in range(rounds):
        store_entry(KEY, "inception:pool3", features)
    conn.send("done")


def _cache_reader(home: str, stop, conn) -> None:
    import logging

    from ganeval.cache import load_entry

    os.environ["GANEVAL_HOME"] = home
    damaged: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            damaged.append(record.getMessage())

    logging.getLogger("ganeval").addHandler(Catch())
    seen, reads = set(), 0
    while not stop.is_set() or not seen:
        features = load_entry(KEY)
        reads += 1
        if features is not None:
            assert features.pool3.shape == (256, 512)
            np.testing.assert_array_equal(features.pool3, _features(features.provenance["version"]).pool3)
            seen.add(features.provenance["version"])
    conn.send((sorted(seen), damaged, reads))


def test_concurrent_writers_and_readers_of_one_cache_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three processes store the same key (different contents) ten times each while a fourth reads it: every
    read is one complete version (none is reported damaged, so none is deleted and recomputed), and the
    final entry is one writer's complete version."""
    from ganeval.cache import load_entry

    home = str(tmp_path / "home")
    stop = CTX.Event()
    reader, reader_conn = _run_child(_cache_reader, home, stop)
    writers = [_run_child(_cache_writer, home, version, 10) for version in (1, 2, 3)]
    for process, conn in writers:
        assert conn.poll(WAIT_S) and conn.recv() == "done"
        process.join(WAIT_S)
    stop.set()
    assert reader_conn.poll(WAIT_S)
    seen, damaged, reads = reader_conn.recv()
    reader.join(WAIT_S)
    assert reader.exitcode == 0
    assert damaged == [], damaged
    assert set(seen) <= {1, 2, 3} and seen and reads > 1
    monkeypatch.setenv("GANEVAL_HOME", home)
    final = load_entry(KEY)
    assert final is not None and final.provenance["version"] in (1, 2, 3)
    leftovers = sorted(p.name for p in (tmp_path / "home" / "features").iterdir())
    assert leftovers == [f"{KEY}.npz"], leftovers


def _csv_appender(path: str, writer: int, rows: int, conn) -> None:
    from ganeval.result import Result, append_csv

    for i in range(rows):
        append_csv(path, Result(scores={"fid": writer * 1000.0 + i}, n_real=writer, n_fake=i, provenance={}))
    conn.send("done")


def test_concurrent_csv_appends_lose_no_row(tmp_path: Path) -> None:
    """Four processes append 15 rows each to one --csv file at once: all 60 rows are there, each once."""
    import pandas as pd

    path = tmp_path / "runs.csv"
    children = [_run_child(_csv_appender, str(path), writer, 15) for writer in range(1, 5)]
    for process, conn in children:
        assert conn.poll(WAIT_S) and conn.recv() == "done"
        process.join(WAIT_S)
    table = pd.read_csv(path)
    expected = sorted(w * 1000.0 + i for w in range(1, 5) for i in range(15))
    assert sorted(table["fid"]) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.csv"]


def _leaderboard_updater(path: str, writer: int, rows: int, conn) -> None:
    from ganeval.leaderboard.store import rank, update_table, upsert

    for i in range(rows):
        row = {
            "run": f"run{writer}",
            "step": i,
            "checkpoint": f"c{writer}-{i}",
            "checkpoint_sha256": f"{writer:02d}{i:062d}",
            "setup": SETUP,
            "fid": writer + i / 100,
            "scored_at": f"2026-01-01T00:00:{writer:02d}",
        }
        update_table(path, lambda table, row=row: rank(upsert(table, row), "fid"))
    conn.send("done")


def test_concurrent_leaderboard_updates_lose_no_row(tmp_path: Path) -> None:
    """Three processes add ten rows each to one leaderboard through ``update_table``: all 30 are there,
    ranked; the file is a valid leaderboard throughout."""
    from ganeval.leaderboard.store import read_table

    path = tmp_path / "lb.csv"
    children = [_run_child(_leaderboard_updater, str(path), writer, 10) for writer in (1, 2, 3)]
    for process, conn in children:
        assert conn.poll(WAIT_S) and conn.recv() == "done"
        process.join(WAIT_S)
    table = read_table(path)
    assert len(table) == 30 and table["checkpoint_sha256"].is_unique
    assert sorted(table["rank"].tolist()) == list(range(1, 31))


# --- a full disk --------------------------------------------------------------------------------------------


def _limited_writer(kind: str, target: str, limit: int, conn) -> None:
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        write(kind, Path(target), 1)
        conn.send(("finished", None))
    except GanevalError as exc:
        conn.send(("GanevalError", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - any other outcome fails the test
        conn.send((type(exc).__name__, str(exc)))


@pytest.mark.parametrize("kind", KINDS)
def test_file_size_limit_gives_one_clear_error_and_no_partial_file(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over RLIMIT_FSIZE every write fails with EFBIG, as on a full disk: one line naming the file and the
    reason, the previous version (a small one, under the limit) unchanged, no temporary file left."""
    monkeypatch.setenv("GANEVAL_HOME", str(tmp_path / "home"))
    dest = destination(kind, tmp_path)
    if kind == "csv":
        from ganeval.result import append_csv

        append_csv(dest, _result(0, padding=10))
    elif kind == "leaderboard":
        from ganeval.leaderboard.store import empty_table, write_table

        write_table(dest, empty_table())
    before = snapshot(dest)
    process, conn = _run_child(_limited_writer, kind, str(tmp_path), 32 * 1024)
    assert conn.poll(WAIT_S), f"{kind}: no answer from the child"
    status, message = conn.recv()
    process.join(WAIT_S)
    assert snapshot(dest) == before
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".step_")]
    assert status == "GanevalError", f"{kind}: {status}: {message}"
    assert "\n" not in message and str(dest) in message and "File too large" in message, message
    if kind != "checkpoint":
        assert "no space left" in message, message


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_no_space_left_gives_one_clear_error_and_no_partial_file(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC (simulated: the file system reports it on a write, or only when the data is flushed at fsync)."""
    import ganeval.atomic
    from ganeval.stats import Statistics, save_statistics

    dest = tmp_path / "ref.npz"
    features = _features(0)
    save_statistics(Statistics(features.mu[:4], features.sigma[:4, :4], 3), dest)
    before = dest.read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "fsync":
        monkeypatch.setattr(ganeval.atomic.os, "fsync", no_space)
    else:
        real_fdopen = os.fdopen

        class Full:
            """The file system runs out of space once 10 kB are written."""

            def __init__(self, handle) -> None:
                self.handle = handle

            def __getattr__(self, name):
                return getattr(self.handle, name)

            def write(self, data):
                if self.handle.tell() > 10_000:
                    no_space()
                return self.handle.write(data)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self.handle.__exit__(*exc)

        monkeypatch.setattr(ganeval.atomic.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(GanevalError) as caught:
        save_statistics(Statistics(features.mu, features.sigma, 256), dest)
    message = str(caught.value)
    assert message.startswith(f"{dest}: cannot write (No space left on device") and "\n" not in message
    assert "previous version (if any) is unchanged" in message
    assert dest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.npz"]


class _Killed(BaseException):
    """Stands for SIGKILL in-process: nothing after it runs (cleanup is disabled alongside)."""


@pytest.mark.parametrize("renames_done", [0, 1, 2])
def test_checkpoint_rewrite_killed_between_renames_stays_loadable(
    renames_done: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rewriting step 100 is killed after ``renames_done`` of its renames (old aside, new in) and before its
    cleanup: the step is still listed and loadable (old or new version), and the next save of the run puts
    things in order."""
    import shutil

    import ganeval.train.checkpoint as checkpoint

    monkeypatch.setenv("GANEVAL_HOME", str(tmp_path / "home"))
    write("checkpoint", tmp_path, 0)
    calls = [0]
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if calls[0] == renames_done:
            raise _Killed
        calls[0] += 1
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(checkpoint.os, "replace", replace)
    monkeypatch.setattr(checkpoint.shutil, "rmtree", lambda *args, **kwargs: None)
    if renames_done < 2:
        with pytest.raises(_Killed):
            write("checkpoint", tmp_path, 1)
    else:  # both renames done, killed before deleting the old folder: with rmtree disabled it stays
        write("checkpoint", tmp_path, 1)
    monkeypatch.undo()
    for leftover in (tmp_path / "run" / "checkpoints").glob(".*.tmp"):
        shutil.rmtree(leftover)  # a killed writer's temporary folder; removed as stale by the next writer anyway

    found = checkpoint.list_checkpoints(tmp_path / "run")
    assert len(found) == 1
    version = checkpoint.read_meta(found[0])["version"]
    assert version == (1 if renames_done == 2 else 0)
    assert isinstance(checkpoint.load_state(found[0]), dict)
    write("checkpoint", tmp_path, 2)
    dest = destination("checkpoint", tmp_path)
    assert checkpoint.list_checkpoints(tmp_path / "run") == [dest]
    _check_readable("checkpoint", dest, version=2)
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]
