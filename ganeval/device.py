"""The one place that knows about hardware: device choice, memory format, arithmetic precision, chunking, copies."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TypeVar

import torch

from .distributed import launched, local_rank
from .errors import GanevalError

_Net = TypeVar("_Net", bound=torch.nn.Module)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Turn a user's device request into a torch.device.

    ``None`` or ``"auto"`` picks CUDA when it is available, else the CPU; under torchrun "cuda" means the
    process's own GPU (``LOCAL_RANK``).
    Asking for CUDA on a machine without it is an error, never a silent fallback.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise GanevalError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GanevalError(f"device {device!r} requested but CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is None and launched():
        return torch.device("cuda", local_rank())  # one GPU per torchrun process
    return dev


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def describe(device: torch.device) -> str:
    """A short human-readable name for provenance, e.g. 'cpu (2 threads)' or 'cuda:0 (NVIDIA H100)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def prepare_model(model: _Net, device: torch.device) -> _Net:
    """Move a convolutional network to ``device`` in channels-last memory format (1.3–1.9× faster on
    CPU with oneDNN, and the layout cuDNN prefers; pool3 moves by ~1e-5 absolute from float
    reassociation, ~1e-6 relative). In place, like ``Module.to``; returns the same network."""
    return model.to(device).to(memory_format=torch.channels_last)


def prepare_input(batch: torch.Tensor) -> torch.Tensor:
    """The network input (N, C, H, W) in the memory format ``prepare_model`` chose."""
    return batch.contiguous(memory_format=torch.channels_last)


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a batch to ``device``; a CPU batch goes to CUDA through pinned memory with a non-blocking copy."""
    if device.type == "cuda" and batch.device.type == "cpu":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


NUMERICS = ("fp32", "tf32", "bf16", "fp16")
"""Arithmetic of the Inception forward: fp32 (IEEE float32, the standard and the default); tf32 (CUDA
float32 convolutions and matmuls with 10-bit mantissas, Ampere and newer); bf16 and fp16 (autocast)."""

CPU_FORWARD_CHUNK = 4
"""Images per Inception forward on the CPU. Small chunks keep each layer's activations in the cache: 4 at a
time is 1.2–1.3× faster than 32 at once on 2-core EPYC (benchmarks/bench_speed.py), and every image's
features are bit-identical whatever the chunk."""


def forward_chunk(device: torch.device) -> int | None:
    """How many images one forward takes on ``device``: ``CPU_FORWARD_CHUNK`` on CPU, all (None) on CUDA."""
    return CPU_FORWARD_CHUNK if device.type == "cpu" else None


def check_numerics(precision: str, device: torch.device) -> str:
    """``precision`` when ``device`` can run it; GanevalError naming the choices otherwise."""
    if precision not in NUMERICS:
        raise GanevalError(f"unknown precision {precision!r}; choose from {', '.join(NUMERICS)} (fp32 is the standard)")
    if precision == "tf32" and device.type != "cuda":
        raise GanevalError("precision tf32 is a CUDA (Ampere or newer) mode; on the CPU use fp32, or bf16 for speed")
    return precision


@contextlib.contextmanager
def numerics_context(precision: str, device: torch.device) -> Iterator[None]:
    """Run the block's float32 network in ``precision`` (see ``NUMERICS``); fp32 is exact IEEE float32
    (TF32 off even where PyTorch would allow it). The caller's settings are restored afterwards."""
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        with _cuda_float32("ieee"), torch.autocast(device.type, dtype=dtype):
            yield
        return
    with _cuda_float32("tf32" if precision == "tf32" else "ieee"):
        yield


def exact_float32() -> contextlib.AbstractContextManager[None]:
    """Run float32 convolutions and matmuls at full IEEE precision inside the block.

    PyTorch lets cuDNN use TF32 for float32 convolutions by default on Ampere and newer GPUs (10-bit
    mantissa), which moves pool3 by ~1e-3; this turns it off for the block and restores the caller's
    settings afterwards, so a training loop that wants TF32 keeps it."""
    return _cuda_float32("ieee")


@contextlib.contextmanager
def _cuda_float32(mode: str) -> Iterator[None]:
    """cuDNN convolutions and CUDA matmuls in ``mode`` ("ieee" or "tf32") inside the block."""
    cudnn_conv = getattr(torch.backends.cudnn, "conv", None)
    matmul = torch.backends.cuda.matmul
    if cudnn_conv is not None and hasattr(cudnn_conv, "fp32_precision"):
        saved = (cudnn_conv.fp32_precision, matmul.fp32_precision)
        cudnn_conv.fp32_precision, matmul.fp32_precision = mode, mode
        try:
            yield
        finally:
            cudnn_conv.fp32_precision, matmul.fp32_precision = saved
        return
    saved_legacy = (torch.backends.cudnn.allow_tf32, matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = matmul.allow_tf32 = mode == "tf32"
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, matmul.allow_tf32 = saved_legacy


def synchronise(tensor: object) -> None:
    """Wait until the CUDA work that produced ``tensor`` is done (for timings); nothing on CPU."""
    if isinstance(tensor, torch.Tensor) and tensor.is_cuda:
        torch.cuda.synchronize(tensor.device)
