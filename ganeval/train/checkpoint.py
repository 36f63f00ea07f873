"""Checkpoints of a training run, written so that scoring never unpickles anything.

    RUN/checkpoints/step_000100/
        generator.safetensors       G's weights and buffers (safetensors: tensors only)
        discriminator.safetensors   D's
        checkpoint.json             model kwargs (size, channels, z_dim, width, ...), step, seed, loss, data,
                                    ganeval version: enough to rebuild G without the training code's state
        state.pt                    everything resume needs: optimiser states, step, torch RNG state; plain
                                    tensors and numbers, read with torch.load(weights_only=True)

A checkpoint is written into a hidden temporary folder beside its final name and renamed into place when
complete, so ``step_*`` folders are always whole; a run interrupted mid-write resumes from the previous one.
Rewriting an existing step moves the old folder aside to ``.step_NNNNNN.previous`` first, renames the new one in,
then deletes the old: a process killed between the two renames leaves only ``.step_NNNNNN.previous``, which
:func:`list_checkpoints` returns for that step (readers never rename anything) and the next
:func:`save_checkpoint` of the run renames back (or deletes, when the new folder made it into place).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..atomic import TEMP_SUFFIX, fsync_directory, full_disk_message, own_prefix, remove_stale_temporaries
from ..errors import BadInputError, GanevalError
from ..paths import load_problem, safe_torch_load

FORMAT = "ganeval-checkpoint"
FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"step_(\d+)")
_PREVIOUS_SUFFIX = ".previous"
_PREVIOUS_DIR = re.compile(r"\.step_(\d+)\.previous")


def checkpoint_dir(run: str | os.PathLike[str], step: int) -> Path:
    return Path(run) / "checkpoints" / f"step_{step:06d}"


def _previous(final: Path) -> Path:
    """Where the old folder of step ``final`` waits while its new version is renamed into place."""
    return final.with_name(f".{final.name}{_PREVIOUS_SUFFIX}")


def list_checkpoints(run: str | os.PathLike[str]) -> list[Path]:
    """The complete checkpoint folders of a run, oldest first (temporary folders are ignored); for a step whose
    rewrite was killed between its two renames, the old folder left at ``.step_NNNNNN.previous``."""
    folder = Path(run) / "checkpoints"
    if not folder.is_dir():
        return []
    found = {int(m.group(1)): p for p in folder.iterdir() if (m := _STEP_DIR.fullmatch(p.name)) and p.is_dir()}
    for path in folder.iterdir():
        m = _PREVIOUS_DIR.fullmatch(path.name)
        if m and int(m.group(1)) not in found and path.is_dir():
            found[int(m.group(1))] = path
    return [found[step] for step in sorted(found)]


def recover_checkpoints(run: str | os.PathLike[str]) -> None:
    """Finish the rewrites of ``run`` killed between their two renames: a ``.step_NNNNNN.previous`` folder is renamed
    back to ``step_NNNNNN`` when that is missing, else deleted (the new version made it into place). For the
    run's one writer only (a reader never renames)."""
    folder = Path(run) / "checkpoints"
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        m = _PREVIOUS_DIR.fullmatch(path.name)
        if not m or not path.is_dir():
            continue
        final = folder / f"step_{m.group(1)}"
        if final.is_dir():
            shutil.rmtree(path)
        else:
            os.replace(path, final)


def save_checkpoint(
    run: str | os.PathLike[str],
    step: int,
    generator: torch.nn.Module,
    discriminator: torch.nn.Module,
    meta: dict[str, Any],
    state: dict[str, Any],
) -> Path:
    """Write checkpoint ``step`` of ``run`` atomically; ``meta`` goes to checkpoint.json (with format, step and
    ganeval version added), ``state`` (tensors, numbers, lists, dicts) to state.pt. Returns its folder."""
    final = checkpoint_dir(run, step)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        recover_checkpoints(run)
        remove_stale_temporaries(final)
        temporary = Path(tempfile.mkdtemp(prefix=own_prefix(final), suffix=TEMP_SUFFIX, dir=final.parent))
    except OSError as exc:
        raise GanevalError(f"{final}: cannot write the checkpoint ({exc.strerror or exc})") from None
    replaced = _previous(final)
    moved_aside = False
    try:
        save_file(_tensors(generator), str(temporary / "generator.safetensors"))
        save_file(_tensors(discriminator), str(temporary / "discriminator.safetensors"))
        torch.save(state, temporary / "state.pt")
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **meta,
            "step": step,
            "ganeval_version": __version__,
        }
        (temporary / "checkpoint.json").write_text(json.dumps(document, indent=2, sort_keys=True))
        for file in temporary.iterdir():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():  # moved aside, not deleted, until the new one is in place
            os.replace(final, replaced)
            moved_aside = True
        os.replace(temporary, final)
        fsync_directory(final.parent)
        moved_aside = False
        with contextlib.suppress(OSError):  # else removed by the run's next save (recover_checkpoints)
            shutil.rmtree(replaced)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise GanevalError(
            full_disk_message(final, reason)
            if exc.errno in (errno.ENOSPC, errno.EFBIG)
            else f"{final}: cannot write the checkpoint ({reason})"
        ) from None
    except (SafetensorError, RuntimeError) as exc:  # how safetensors and torch.save report a full disk
        raise GanevalError(f"{final}: cannot write the checkpoint ({str(exc).splitlines()[0]})") from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(temporary)
        if moved_aside and not final.exists():  # the new folder did not make it: the old one goes back
            with contextlib.suppress(OSError):
                os.replace(replaced, final)
    return final


def _tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu().contiguous() for key, value in module.state_dict().items()}


def read_meta(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """checkpoint.json of a checkpoint folder, checked; BadInputError naming the folder otherwise."""
    path = Path(folder) / "checkpoint.json"
    try:
        meta = json.loads(path.read_text())
    except OSError as exc:
        raise BadInputError(
            f"{folder}: not a ganeval checkpoint (cannot read checkpoint.json: {exc.strerror or exc})"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadInputError(f"{path}: not a ganeval checkpoint description")
    version = meta.get("format_version", 0)
    if not isinstance(version, int):
        raise BadInputError(f"{path}: format_version {version!r} is not a number")
    if version > FORMAT_VERSION:
        raise BadInputError(f"{path}: checkpoint format v{version} is newer than this ganeval")
    return meta


def load_weights(module: torch.nn.Module, file: str | os.PathLike[str]) -> torch.nn.Module:
    """Load a safetensors file into ``module`` (strict); BadInputError naming the file when it is missing,
    damaged, not safetensors (e.g. a pickle under that name, never unpickled) or does not fit."""
    try:
        state = load_file(str(file))
        module.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, ValueError, SafetensorError) as exc:
        raise BadInputError(f"{file}: cannot load the weights ({load_problem(exc)})") from None
    return module


def load_state(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """state.pt of a checkpoint folder (weights_only: tensors and plain values, no arbitrary objects; a
    pickle that asks for anything else is refused before it can run code)."""
    path = Path(folder) / "state.pt"
    try:
        state = safe_torch_load(path)
    except Exception as exc:  # noqa: BLE001 - a damaged file fails the unpickler in many ways
        problem = load_problem(exc)
        detail = f": {problem}" if problem.startswith("refused") else f" ({problem})"
        raise BadInputError(f"{path}: cannot read the training state{detail}") from None
    if not isinstance(state, dict):
        raise BadInputError(f"{path}: cannot read the training state (a {type(state).__name__}, not a dict)")
    return state
