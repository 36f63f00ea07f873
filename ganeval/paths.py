"""Where ganeval keeps its files, and safe readers of files: the cache folders, sha256 of a file, a
weights-only ``torch.load`` and the one-line reason it failed."""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path

import torch

from .errors import WeightsError


def ganeval_home() -> Path:
    """``$GANEVAL_HOME``, default ``~/.cache/ganeval``."""
    return Path(os.environ.get("GANEVAL_HOME") or Path.home() / ".cache" / "ganeval")


def ganeval_weights_dir() -> Path:
    """``$GANEVAL_HOME/weights``: downloaded and converted weights."""
    return ganeval_home() / "weights"


def torch_hub_checkpoints() -> Path:
    """torch hub's checkpoints folder (``$TORCH_HOME/hub/checkpoints``), where pytorch-fid keeps its file."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of the file's bytes; an unreadable file is a one-line WeightsError naming it."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return digest.hexdigest()


def load_problem(exc: BaseException) -> str:
    """One printable line saying why ``torch.load(weights_only=True)`` or a safetensors reader failed.

    A pickle that would build arbitrary Python objects (and so could run code) is refused by torch's
    weights-only unpickler before anything runs: the line says so and names the global it asked for,
    instead of torch's advice to load the file unsafely. Other unpickler errors (a damaged or foreign file)
    give the unpickler's reason; anything else its first line (an empty or truncated file: ``EOFError``).
    Terminal escape codes are removed."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    _, marker, rest = text.partition("WeightsUnpickler error:")
    detail = next((line.strip() for line in rest.splitlines() if line.strip()), "") if marker else ""
    detail = detail.split(" Please use `torch")[0].rstrip(". ")[:160]
    if "GLOBAL" in detail or "Unsupported global" in detail or "Unsupported class" in detail:
        return (
            f"refused: reading it would unpickle arbitrary Python objects ({detail}); ganeval reads only "
            f"tensors, e.g. a state dict saved with torch.save(model.state_dict()) or safetensors"
        )
    if marker:
        return f"not a pickle of tensors torch can read safely ({detail or 'weights-only unpickler failed'})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:200] if lines else f"{type(exc).__name__}: empty or truncated file"


def safe_torch_load(path: str | os.PathLike[str], mmap: bool = False) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU, with torch's warnings about odd pickle protocols
    (random or damaged files) silenced: the caller reports the failure on one line. ``mmap`` maps a
    zip-format file instead of reading it. Call it from the main thread (``warnings.catch_warnings`` is
    process-wide)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
