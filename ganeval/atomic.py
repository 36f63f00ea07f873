"""Atomic file writes: a file is either the previous complete version or the new complete one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import GanevalError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a unique temporary file beside ``path`` for binary writing; on success fsync and rename it over ``path``.

    On any error the temporary file is removed and ``path`` is left as it was.
    """
    dest = Path(path)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise GanevalError(f"{dest}: cannot write ({exc.strerror or exc})") from None
    try:
        os.chmod(tmp, _mode_for(dest))
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise GanevalError(f"{dest}: cannot write ({exc.strerror or exc})") from None
        raise


def _mode_for(dest: Path) -> int:
    """The permissions the file would have if written directly: the old file's, else 0o666 minus the umask
    (mkstemp's own 0o600 would make a shared cache or CSV unreadable to others)."""
    try:
        return dest.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
