"""Drawing images from a generator: the one latent scheme every part of ganeval uses (``Evaluator.score``,
the leaderboard's sample grids and closest pairs, ``ganeval sample``). Batch b of ``batch_size`` images
begins at image start = b·batch_size; its latents z ~ N(0, I) (and any torch randomness inside the
generator) come from torch seeded with ``batch_seed(seed, start)``, so any process can draw any batch
without drawing the ones before it, and the same (seed, batch size) always gives the same images."""

from __future__ import annotations

import time
import collections.abc
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .device import synchronise
from .errors import BadInputError

Generator = Callable[..., Any]
Batches = collections.abc.Generator[tuple[int, Any, int, tuple[int, ...] | None, float], None, None]
"""What ``generate_batches`` yields, and ``contextlib.closing`` closes early: (start, images, count, latent
shape, seconds generating) per batch."""


def generate_batches(
    generator: Generator,
    starts: list[int],
    total: int,
    *,
    batch_size: int,
    seed: int,
    z_dim: int | tuple[int, ...] | None = None,
    eval_mode: bool = True,
    desc: str | None = None,
    progress: bool = False,
    free_cuda: bool = False,
) -> Batches:
    """Yield (start, images, count, latent shape, seconds generating) for the batches of ``batch_size`` of
    ``total`` generated images that begin at ``starts``: the one latent scheme of ganeval (the Evaluator,
    the leaderboard's grids, ``ganeval sample``). Each batch's latents (and torch randomness inside
    the generator) come from ``seed`` and its start, under ``torch.no_grad()``, the module in eval mode
    unless ``eval_mode=False``; afterwards every submodule's train/eval flag and torch's global RNG are
    as before."""
    module = generator if isinstance(generator, torch.nn.Module) else None
    latent = _latent_shape(module, z_dim) if module is not None else None
    origin = _module_device(module) if module is not None else None
    flags = [(m, m.training) for m in module.modules()] if module is not None else []
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    counts = [min(batch_size, total - start) for start in starts]
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            if module is not None and eval_mode:
                module.eval()
            with tqdm(total=sum(counts), unit="img", desc=desc, disable=desc is None or not progress) as bar:
                for start, count in zip(starts, counts):
                    state = batch_seed(seed, start)
                    torch.default_generator.manual_seed(state)
                    for index in devices:
                        torch.cuda.default_generators[index].manual_seed(state)
                    began = time.perf_counter()
                    if module is not None:
                        assert latent is not None  # a module always has its latent shape
                        images = module(torch.randn((count, *latent), device=origin))
                    else:
                        images = generator(count)
                    synchronise(images)  # a CUDA generator's time is not billed to extraction
                    yield start, images, count, latent, time.perf_counter() - began
                    del images
                    bar.update(count)
    finally:
        for submodule, training in flags:
            submodule.training = training
        if free_cuda or (origin is not None and origin.type == "cuda"):
            torch.cuda.empty_cache()


def batch_seed(seed: int, start: int) -> int:
    """The torch seed of the batch of generated images that begins at image ``start``: a 63-bit hash of
    (``seed``, ``start``), so any process can draw any batch without drawing the ones before it."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, start]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def _latent_shape(module: torch.nn.Module, z_dim: int | tuple[int, ...] | None) -> tuple[int, ...]:
    declared = z_dim if z_dim is not None else getattr(module, "z_dim", None)
    if declared is None:
        raise BadInputError(
            f"{type(module).__name__} has no z_dim attribute: pass z_dim= (e.g. 100, or (100, 1, 1) "
            f"for a generator that takes (B, 100, 1, 1))"
        )
    shape = (declared,) if isinstance(declared, int) else tuple(declared)
    if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise BadInputError(f"z_dim must be a positive int or a tuple of them, got {declared!r}")
    return shape


def _module_device(module: torch.nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")
