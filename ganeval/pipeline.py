"""The one pass: source → decoded batches → (Inception forward, SWD descriptor sampler, VGG16) → Features.

Decoding runs in a thread pool a batch ahead of the network (PIL and torch release the GIL), so the
forward is rarely kept waiting. Memory: the pass keeps the float32 features (2048 floats per image, plus
1008 logits with a classifier) and O(D²) running sums, never the decoded images of more than a few
batches.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from . import __version__, distributed
from .device import describe as describe_device
from .device import (check_precision, forward_chunk, inference_precision, prepare_input, prepare_model, resolve_device,
                     to_device, usable_cpus)
from .errors import BadInputError
from .features import Features, MomentAccumulator
from .inception import POOL3_DIM, FIDInceptionV3, build_inception, fold_batchnorm
from .preprocess import DEFAULT_MODE, get_mode
from .sources import ImageSource
from .weights import WeightsInfo, load_state_dict, locate_weights

if TYPE_CHECKING:
    from .metrics.swd import DescriptorSampler
    from .vgg import VGGExtractor

DEFAULT_BATCH_SIZE = 50


def progress_enabled(progress: bool | None) -> bool:
    """Progress bars: on when asked, else only when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else progress


class Extractor:
    """The shared Inception-v3 feature extractor: weights, preprocessing mode, device and arithmetic
    precision in one object.

    ``extract(source)`` makes one pass over a source; ``forward(uint8 batch)`` scores a batch in memory.
    The network runs with BatchNorm folded into the convolutions, channels-last, a few images per forward
    on the CPU (``device.forward_chunk``): pool3 equals the plain NCHW network's to float32 reassociation
    (tests/test_inception.py). ``precision`` other than "fp32" (see ``device.PRECISIONS``) is faster and
    not the standard: it is recorded in the provenance and keys the cache apart.
    """

    def __init__(self, weights: str | os.PathLike[str] | None = None, mode: str = DEFAULT_MODE,
                 device: str | torch.device | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 workers: int | None = None, precision: str = "fp32") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.mode = mode
        self.mode_spec = get_mode(mode)
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.device)
        self.batch_size = batch_size
        self.workers = workers if workers is not None else min(4, usable_cpus())
        self._weights_arg = weights
        self._weights: WeightsInfo | None = None
        self._model: FIDInceptionV3 | None = None

    @property
    def weights(self) -> WeightsInfo:
        """The located and verified Inception weights (found on first use: an SWD-only pass needs none)."""
        if self._weights is None:
            self._weights = locate_weights(self._weights_arg)
        return self._weights

    @property
    def model(self) -> FIDInceptionV3:
        """The network, built on first use (a run whose features are all cached never loads it)."""
        if self._model is None:
            self._model = prepare_model(fold_batchnorm(build_inception(load_state_dict(self.weights))), self.device)
        return self._model

    def provenance(self) -> dict[str, object]:
        """What made the features: extractor, weights, mode, device, versions."""
        return {**self.weights.to_dict(), "mode": self.mode, "precision": self.precision,
                "device": describe_device(self.device), "batch_size": self.batch_size, "ganeval_version": __version__,
                "torch_version": torch.__version__}

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """The network input, float32 (B, 3, 299, 299) on the device, for uint8 images (B, 3, H, W)."""
        if self.mode_spec.prepare_image is None:
            return self.mode_spec.prepare_batch(to_device(images, self.device))
        return self._network_input(list(images.permute(0, 2, 3, 1).cpu().numpy()))

    def _prepared_input(self, prepared: list[np.ndarray]) -> torch.Tensor:
        """The network input from images through the mode's per-image stage, (H, W, 3) each, equal sizes."""
        batch = torch.from_numpy(np.stack(prepared)).permute(0, 3, 1, 2)
        return self.mode_spec.prepare_batch(to_device(batch, self.device))

    def _network_input(self, images: list[np.ndarray]) -> torch.Tensor:
        """The network input from uint8 (H, W, 3) images of possibly different sizes."""
        prepare = self.mode_spec.prepare_image
        if prepare is not None:
            return self._prepared_input([prepare(img) for img in images])
        if len({img.shape for img in images}) == 1:
            return self.preprocess(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2))
        return torch.cat([self.preprocess(torch.from_numpy(img).permute(2, 0, 1)[None]) for img in images])

    @torch.inference_mode()
    def forward(self, images: torch.Tensor | list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """pool3 (B, 2048) and unbiased logits (B, 1008) or None, float32, for uint8 images: a tensor
        (B, 3, H, W) or a list of (H, W, 3) arrays of possibly different sizes."""
        x = self.preprocess(images) if isinstance(images, torch.Tensor) else self._network_input(images)
        return self._run(x)

    @torch.inference_mode()
    def _run(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        chunk = forward_chunk(self.device) or len(x)
        pool3, logits = [], []
        with inference_precision(self.precision, self.device):
            for start in range(0, len(x), chunk):
                out = self.model(prepare_input(x[start:start + chunk]))
                pool3.append(out.pool3.float())
                if out.logits_unbiased is not None:
                    logits.append(out.logits_unbiased.float())
        return torch.cat(pool3).cpu().numpy(), torch.cat(logits).cpu().numpy() if logits else None

    def extract(self, source: ImageSource, skip_bad: bool = False, progress: bool | None = None, *,
                inception: bool = True, swd: DescriptorSampler | None = None, swd_indices: set[int] | None = None,
                vgg: VGGExtractor | None = None) -> Features:
        """One decode pass over ``source`` feeding every requested consumer: the Inception forward
        (pool3, logits, float64 statistics), the SWD descriptor sampler (on the images whose index is in
        ``swd_indices``, all when None) and the VGG16 fc2 network.

        A file that cannot be decoded raises BadInputError naming it, or with ``skip_bad`` is skipped and
        listed in ``provenance['skipped']``. Fewer than 2 usable images is an error.

        In a process group (``distributed``) each process extracts its share of the batches; the arrays
        (and ``swd``'s descriptors) are reassembled in source order on rank 0, the other ranks get the names
        and provenance only. Every rank raises the error a single process would have raised."""
        if len(source) < 2:
            raise BadInputError(f"{source.label}: {len(source)} usable image(s); the metrics need at least 2 "
                                f"(10,000+ recommended)")
        if distributed.active():
            try:
                shard, failure = self._extract_shard(source, skip_bad, progress, inception, swd, swd_indices, vgg), None
            except BadInputError as exc:
                shard, failure = None, (getattr(exc, "index", len(source)), exc)
            except Exception as exc:  # noqa: BLE001 - re-raised on every rank below, so no rank waits forever
                shard, failure = None, (len(source), distributed.portable(exc))
            failed = distributed.first_bad(distributed.everywhere(failure))
            if failed is not None:
                raise failed
            assert shard is not None
            summaries = distributed.everywhere((shard.names, shard.skipped))
            shard.names = sorted(item for names, _ in summaries for item in names)
            shard.skipped = sorted(item for _, skipped in summaries for item in skipped)
            arrays = distributed.to_root((shard.batches, swd))
            if arrays is not None:
                shard.batches = sorted((batch for batches, _ in arrays for batch in batches), key=lambda b: b.start)
                for _, other in arrays[1:]:
                    if swd is not None and other is not None:
                        swd.absorb(other)
        else:
            shard = self._extract_shard(source, skip_bad, progress, inception, swd, swd_indices, vgg)
        names = [name for _, name in shard.names]
        skipped = [message for _, message in shard.skipped]
        if len(names) < 2:
            detail = f" ({len(skipped)} skipped as unreadable)" if skipped else ""
            raise BadInputError(f"{source.label}: {len(names)} usable image(s){detail}; the metrics need at least 2 "
                                f"(10,000+ recommended)")
        provenance = {**source.describe(), "n": len(names), "skipped": skipped,
                      **(self.provenance() if inception else {"ganeval_version": __version__})}
        if distributed.active():
            provenance["world_size"] = distributed.world_size()
        features = Features(names=names, provenance=provenance)
        if not distributed.is_root():
            return features
        if inception:
            moments = MomentAccumulator(POOL3_DIM)
            for batch in shard.batches:
                moments.update(batch.pool3)
            features.pool3 = np.concatenate([batch.pool3 for batch in shard.batches])
            logits = [batch.logits for batch in shard.batches if batch.logits is not None]
            features.logits_unbiased = np.concatenate(logits) if logits else None
            features.mu, features.sigma = moments.mean(), moments.cov()
        if swd is not None:
            features.swd = swd.result()
        if vgg is not None:
            features.vgg = np.concatenate([batch.vgg for batch in shard.batches])
        return features

    def _extract_shard(self, source: ImageSource, skip_bad: bool, progress: bool | None, inception: bool,
                       swd: DescriptorSampler | None, swd_indices: set[int] | None, vgg: VGGExtractor | None) -> _Shard:
        """This process's batches of ``source`` (all of them outside a process group), run through every
        consumer; the arrays are kept per batch, in order."""
        from tqdm import tqdm

        shard = _Shard()
        starts = [start for number, start in enumerate(range(0, len(source), self.batch_size))
                  if distributed.owns(number)]
        own = sum(min(self.batch_size, len(source) - start) for start in starts)
        label = f"extracting {_short(source.label)}" + (f" ({self.mode} mode)" if inception else "")
        with tqdm(total=own, unit="img", desc=label, file=sys.stderr,
                  disable=not progress_enabled(progress) or not distributed.is_root()) as bar:
            prepare = self.mode_spec.prepare_image if inception else None
            for start, indices, batch_names, images, prepared, bad in self._decoded_batches(source, starts, skip_bad,
                                                                                               prepare):
                shard.skipped.extend(bad)
                if images:
                    batch = _Batch(start)
                    if inception:
                        batch.pool3, batch.logits = (self._run(self._prepared_input(prepared)) if prepare
                                                     else self.forward(images))
                    if swd is not None:
                        chosen = [i for i, index in enumerate(indices) if swd_indices is None or index in swd_indices]
                        if chosen:
                            swd.update([images[i] for i in chosen], [batch_names[i] for i in chosen],
                                       [indices[i] for i in chosen])
                    if vgg is not None:
                        batch.vgg = vgg.forward(images)
                    shard.batches.append(batch)
                    shard.names.extend(zip(indices, batch_names))
                bar.update(len(images) + len(bad))
        return shard

    def _decoded_batches(self, source: ImageSource, starts: list[int], skip_bad: bool,
                         prepare: Callable[[np.ndarray], np.ndarray] | None = None
                         ) -> Iterator[tuple[int, list[int], list[str], list[np.ndarray], list[np.ndarray],
                                             list[tuple[int, str]]]]:
        """The batches beginning at ``starts`` as (start, indices, names, decoded images, prepared images,
        (index, skip message) pairs), decoded by a thread pool two batches ahead; ``prepare`` (a mode's
        per-image stage) runs in the same threads. An unreadable file's BadInputError carries its ``index``."""

        def load(index: int) -> tuple[np.ndarray, np.ndarray | None]:
            image = source.load(index)
            return image, (prepare(image) if prepare else None)

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ganeval-decode") as pool:
            pending: deque[tuple[int, list[tuple[int, Future[tuple[np.ndarray, np.ndarray | None]]]]]] = deque()
            ahead = iter(starts)

            def submit_next() -> None:
                start = next(ahead, None)
                if start is not None:
                    stop = min(start + self.batch_size, len(source))
                    pending.append((start, [(i, pool.submit(load, i)) for i in range(start, stop)]))

            for _ in range(3):
                submit_next()
            while pending:
                start, batch = pending.popleft()
                submit_next()
                indices, names, images, prepared, bad = [], [], [], [], []
                for index, future in batch:
                    try:
                        image, ready = future.result()
                        images.append(image)
                        if ready is not None:
                            prepared.append(ready)
                        names.append(source.names[index])
                        indices.append(index)
                    except BadInputError as exc:
                        if not skip_bad:
                            for _, other in (item for _, queued in pending for item in queued):
                                other.cancel()
                            exc.index = index  # type: ignore[attr-defined]
                            raise
                        bad.append((index, str(exc)))
                yield start, indices, names, images, prepared, bad


@dataclass
class _Batch:
    """One batch's arrays: where it starts in the source, pool3 (B, 2048), logits (B, 1008) or None, VGG16
    fc2 (B, 4096) or None."""

    start: int
    pool3: np.ndarray | None = None
    logits: np.ndarray | None = None
    vgg: np.ndarray | None = None


@dataclass
class _Shard:
    """What one process extracted: its batches in order, (index, name) of each usable image, and (index,
    message) of each skipped one."""

    batches: list[_Batch] = field(default_factory=list)
    names: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1):]
