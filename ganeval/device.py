"""The one place that knows about hardware: device choice and CPU threads."""

from __future__ import annotations

import torch

from .errors import GanevalError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Turn a user's device request into a torch.device.

    ``None`` or ``"auto"`` picks CUDA when it is available, else the CPU.
    Asking for CUDA on a machine without it is an error, never a silent fallback.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise GanevalError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GanevalError(f"device {device!r} requested but CUDA is not available on this machine")
    return dev


def describe(device: torch.device) -> str:
    """A short human-readable name for provenance, e.g. 'cpu (2 threads)' or 'cuda:0 (NVIDIA H100)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a CPU batch to ``device``; on CUDA through pinned memory with a non-blocking copy."""
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)
