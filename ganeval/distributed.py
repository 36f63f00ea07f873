"""The one place that knows about torch.distributed: which process this is, which batches it extracts, and
how the results meet on rank 0.

Under ``torchrun`` the CLI joins the process group itself (``join_from_environment``: NCCL with one GPU per
process, gloo on the CPU); inside a DDP training script ganeval uses the group the script made. Work is
split by batch: batch b of a source goes to rank b mod K. An image's features do not depend on the other
images of its forward (tests/test_inception.py), and rank 0 reassembles the batches in source order before
it computes any statistic, so K processes give exactly the numbers one process gives.

Only small Python objects and numpy arrays made by these processes travel between them (torch's
``*_object`` collectives pickle them); nothing a user supplied is unpickled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from .errors import BadInputError, GanevalError

T = TypeVar("T")
_joined = False  # whether join_from_environment made the group (and leave() should destroy it)


def active() -> bool:
    """Whether this process is one of several in an initialised process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_root() -> bool:
    return rank() == 0


def owns(batch: int) -> bool:
    """Whether this process handles batch number ``batch`` (0-based) of a source."""
    return batch % world_size() == rank()


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher) as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def join_from_environment(device: str | None) -> None:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...), once:
    NCCL when the processes use CUDA (``device`` "cuda" or "auto" on a GPU machine), else gloo. Does nothing
    outside a launcher or when a group exists already."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return
    if not dist.is_available():
        raise GanevalError("this torch build has no torch.distributed: run without torchrun")
    cuda = torch.cuda.is_available() and (device in (None, "auto") or str(device).startswith("cuda"))
    if cuda:
        torch.cuda.set_device(local_rank())
    try:
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    except (RuntimeError, ValueError) as exc:
        raise GanevalError(f"could not join the torchrun process group: {str(exc).splitlines()[0]}") from None
    global _joined
    _joined = True


def leave() -> None:
    """Leave the process group ``join_from_environment`` joined (all ranks, after their last collective):
    a gloo group left to the interpreter's shutdown can abort the process as its threads are torn down."""
    global _joined
    if _joined and dist.is_initialized():
        dist.destroy_process_group()
    _joined = False


def portable(exc: BaseException) -> BaseException:
    """An exception that survives pickling with its message: ganeval's own kinds as they are, others as a
    GanevalError naming the original type."""
    if isinstance(exc, GanevalError):
        return type(exc)(str(exc)) if type(exc).__init__ is Exception.__init__ else GanevalError(str(exc))
    return GanevalError(f"rank {rank()}: {type(exc).__name__}: {exc}")


def on_root(compute: Callable[[], T], share: Callable[[T], Any] | None = None) -> Any:
    """Run ``compute`` on rank 0 only and give the other ranks ``share(value)`` (None without ``share``);
    rank 0 returns the value itself. An exception on rank 0 is raised on every rank, so none waits forever.
    Outside a group this is just ``compute()``."""
    if not active():
        return compute()
    if is_root():
        try:
            value = compute()
        except BaseException as exc:
            _broadcast(("error", portable(exc)))
            raise
        _broadcast(("ok", share(value) if share else None))
        return value
    kind, payload = _broadcast(None)
    if kind == "error":
        raise payload
    return payload


def everywhere(outcome: T | BaseException) -> list[T]:
    """Every rank's ``outcome`` (small objects), in rank order, on every rank; when any rank passes an
    exception, every rank raises the lowest rank's one."""
    if not active():
        if isinstance(outcome, BaseException):
            raise outcome
        return [outcome]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, portable(outcome) if isinstance(outcome, BaseException) else outcome)
    for item in gathered:
        if isinstance(item, BaseException):
            raise item
    return gathered


def to_root(payload: T) -> list[T] | None:
    """Every rank's ``payload`` in rank order on rank 0; None on the others."""
    if not active():
        return [payload]
    gathered: list[Any] | None = [None] * world_size() if is_root() else None
    dist.gather_object(payload, gathered, dst=0)
    return gathered


def _broadcast(payload: object) -> Any:
    box = [payload]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def first_bad(errors: list[tuple[int, BadInputError] | None]) -> BadInputError | None:
    """Of each rank's first unreadable image (index, error) or None, the error of the lowest index: the
    one a single process would have stopped at."""
    found = [item for item in errors if item is not None]
    return min(found, key=lambda item: item[0])[1] if found else None
