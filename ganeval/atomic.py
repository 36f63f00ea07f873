"""Atomic file writes: a file is either the previous complete version or the new complete one.

``atomic_write(path)`` writes into a unique hidden temporary file beside ``path``
(``.NAME.OWNER-PID-RANDOM.tmp``), fsyncs it, renames it over ``path`` and fsyncs the folder, so a process
killed at any moment (SIGKILL, power loss after the rename) leaves the previous file or the new one, never a
torn one; concurrent writers of the same path each rename a complete file (the last one wins). Readers open
``path`` itself and never see the temporary names, which start with a dot (folder sources skip hidden files).
A temporary file left by a killed writer is removed by the next write of the same path: at once when its
writer was a process of this machine (and pid namespace) that no longer exists, otherwise once it is a day old.

``locked(path)`` serialises read-modify-write updates of one file across processes: an exclusive ``flock``
on the hidden, empty sibling ``.NAME.lock``, removed by its holder when done (left only by a killed holder,
whose lock the kernel releases; the next holder removes it).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import GanevalError

TEMP_SUFFIX = ".tmp"
STALE_SECONDS = 24 * 3600
"""A temporary file whose writer cannot be checked (another machine) is removed once this old."""
_NAME_CHARS = 120
_FULL_DISK = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _owner() -> str:
    """8 hex digits naming this machine and pid namespace: a pid in a temporary name is checkable only there."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{socket.gethostname()}\0{namespace}".encode("utf-8", "replace")).hexdigest()[:8]


_OWNER = _owner()
_TEMP_ID = re.compile(r"([0-9a-f]{8})-(\d+)-[A-Za-z0-9_]+")


def temp_prefix(dest: Path) -> str:
    """The start of every temporary name of ``dest`` (hidden; a long name is cut so the result fits)."""
    return f".{dest.name[:_NAME_CHARS]}."


def own_prefix(dest: Path) -> str:
    """The start of this process's temporary names for ``dest``: ``temp_prefix`` + OWNER-PID-."""
    return f"{temp_prefix(dest)}{_OWNER}-{os.getpid()}-"


def full_disk_message(dest: Path, reason: str) -> str:
    """The one-line message of a write to ``dest`` that failed for lack of space (or a file-size limit)."""
    return (
        f"{dest}: cannot write ({reason}: no space left on the disk, or over a file-size limit); "
        f"nothing was written, the previous version (if any) is unchanged"
    )


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a unique temporary file beside ``path`` for binary writing; on success fsync it, rename it over
    ``path`` and fsync the folder.

    On any error (a full disk included) the temporary file is removed, ``path`` is left as it was, and an
    OSError becomes a one-line GanevalError naming ``path`` and the system's reason."""
    dest = Path(path)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(dest)
        fd, tmp = tempfile.mkstemp(prefix=own_prefix(dest), suffix=TEMP_SUFFIX, dir=dest.parent)
    except OSError as exc:
        raise GanevalError(_message(dest, exc)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.chmod(tmp, _mode_for(dest))
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise GanevalError(_message(dest, exc)) from None
        raise
    fsync_directory(dest.parent)


@contextlib.contextmanager
def locked(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (a file that may not exist yet) for the ``with`` block:
    every ganeval process that updates ``path`` through ``locked`` waits for the others. A no-op where
    ``fcntl`` is missing (Windows).

    The lock is an ``flock`` on the hidden sibling ``.NAME.lock``, which its holder deletes before releasing
    it; a process that was waiting on the deleted file sees that the name no longer leads to the file it
    locked and starts again, so two holders never coexist. A holder killed by SIGKILL releases the lock (the
    kernel closes its descriptor) and leaves the empty file, which the next holder removes."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    dest = Path(path)
    lock = dest.parent / f".{dest.name[:_NAME_CHARS]}.lock"
    while True:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise GanevalError(f"{dest}: cannot lock for writing ({exc.strerror or exc}: {lock})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                current = os.stat(lock)
            except FileNotFoundError:
                current = None
        except OSError as exc:  # e.g. ENOLCK on a file system without locks
            os.close(fd)
            raise GanevalError(f"{dest}: cannot lock for writing ({exc.strerror or exc}: {lock})") from None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)  # the file was deleted by the previous holder after we opened it: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)  # releases the lock


def remove_stale_temporaries(dest: Path) -> list[Path]:
    """Remove the temporary files (or folders, for a checkpoint) of ``dest`` left by killed writers (see the
    module's docstring); returns them. A temporary of a live writer is never removed."""
    prefix, now = temp_prefix(dest), time.time()
    removed: list[Path] = []
    try:
        entries = [e for e in os.scandir(dest.parent) if e.name.startswith(prefix) and e.name.endswith(TEMP_SUFFIX)]
    except OSError:
        return removed
    for entry in entries:
        middle = entry.name[len(prefix) : -len(TEMP_SUFFIX)]
        match = _TEMP_ID.fullmatch(middle)
        try:
            stale = (
                match is not None and match.group(1) == _OWNER and not _alive(int(match.group(2)))
            ) or now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            elif stale and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems cannot fsync a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _message(dest: Path, exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in _FULL_DISK:
        return full_disk_message(dest, reason)
    return f"{dest}: cannot write ({reason})"


def _mode_for(dest: Path) -> int:
    """The permissions the file would have if written directly: the old file's, else 0o666 minus the umask
    (mkstemp's own 0o600 would make a shared cache or CSV unreadable to others)."""
    try:
        return dest.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask can only set it, and
    setting it briefly would race with other threads creating files)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    umask = os.umask(0)
    os.umask(umask)
    return umask
