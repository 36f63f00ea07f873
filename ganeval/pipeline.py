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
from typing import TYPE_CHECKING

import numpy as np
import torch

from . import __version__
from .device import describe as describe_device
from .device import exact_float32, prepare_input, prepare_model, resolve_device, to_device, usable_cpus
from .errors import BadInputError
from .features import Features, MomentAccumulator
from .inception import POOL3_DIM, FIDInceptionV3, build_inception
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
    """The shared Inception-v3 feature extractor: weights, preprocessing mode and device in one object.

    ``extract(source)`` makes one pass over a source; ``forward(uint8 batch)`` scores a batch in memory.
    """

    def __init__(self, weights: str | os.PathLike[str] | None = None, mode: str = DEFAULT_MODE,
                 device: str | torch.device | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 workers: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.mode = mode
        self.mode_spec = get_mode(mode)
        self.device = resolve_device(device)
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
            self._model = prepare_model(build_inception(load_state_dict(self.weights)), self.device)
        return self._model

    def provenance(self) -> dict[str, object]:
        """What made the features: extractor, weights, mode, device, versions."""
        return {**self.weights.to_dict(), "mode": self.mode, "device": describe_device(self.device),
                "batch_size": self.batch_size, "ganeval_version": __version__, "torch_version": torch.__version__}

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
        with exact_float32():
            out = self.model(prepare_input(x))
        logits = None if out.logits_unbiased is None else out.logits_unbiased.float().cpu().numpy()
        return out.pool3.float().cpu().numpy(), logits

    def extract(self, source: ImageSource, skip_bad: bool = False, progress: bool | None = None, *,
                inception: bool = True, swd: DescriptorSampler | None = None, swd_indices: set[int] | None = None,
                vgg: VGGExtractor | None = None) -> Features:
        """One decode pass over ``source`` feeding every requested consumer: the Inception forward
        (pool3, logits, float64 statistics), the SWD descriptor sampler (on the images whose index is in
        ``swd_indices``, all when None) and the VGG16 fc2 network.

        A file that cannot be decoded raises BadInputError naming it, or with ``skip_bad`` is skipped and
        listed in ``provenance['skipped']``. Fewer than 2 usable images is an error."""
        from tqdm import tqdm

        pool3_parts: list[np.ndarray] = []
        logit_parts: list[np.ndarray] = []
        vgg_parts: list[np.ndarray] = []
        names: list[str] = []
        skipped: list[str] = []
        moments = MomentAccumulator(POOL3_DIM)
        label = f"extracting {_short(source.label)}" + (f" ({self.mode} mode)" if inception else "")
        with tqdm(total=len(source), unit="img", desc=label, disable=not progress_enabled(progress),
                  file=sys.stderr) as bar:
            prepare = self.mode_spec.prepare_image if inception else None
            for indices, batch_names, images, prepared, bad in self._decoded_batches(source, skip_bad, prepare):
                skipped.extend(bad)
                if images:
                    if inception:
                        pool3, logits = (self._run(self._prepared_input(prepared)) if prepare
                                         else self.forward(images))
                        moments.update(pool3)
                        pool3_parts.append(pool3)
                        if logits is not None:
                            logit_parts.append(logits)
                    if swd is not None:
                        chosen = [i for i, index in enumerate(indices) if swd_indices is None or index in swd_indices]
                        if chosen:
                            swd.update([images[i] for i in chosen], [batch_names[i] for i in chosen],
                                       [indices[i] for i in chosen])
                    if vgg is not None:
                        vgg_parts.append(vgg.forward(images))
                    names.extend(batch_names)
                bar.update(len(images) + len(bad))
        if len(names) < 2:
            detail = f" ({len(skipped)} skipped as unreadable)" if skipped else ""
            raise BadInputError(f"{source.label}: {len(names)} usable image(s){detail}; the metrics need at least 2 "
                                f"(10,000+ recommended)")
        provenance = {**source.describe(), "n": len(names), "skipped": skipped,
                      **(self.provenance() if inception else {"ganeval_version": __version__})}
        features = Features(names=names, provenance=provenance)
        if inception:
            features.pool3 = np.concatenate(pool3_parts)
            features.logits_unbiased = np.concatenate(logit_parts) if logit_parts else None
            features.mu, features.sigma = moments.mean(), moments.cov()
        if swd is not None:
            features.swd = swd.result()
        if vgg is not None:
            features.vgg = np.concatenate(vgg_parts)
        return features

    def _decoded_batches(self, source: ImageSource, skip_bad: bool,
                         prepare: Callable[[np.ndarray], np.ndarray] | None = None
                         ) -> Iterator[tuple[list[int], list[str], list[np.ndarray], list[np.ndarray], list[str]]]:
        """Batches of (indices, names, decoded images, prepared images, skip messages), decoded by a thread
        pool two batches ahead; ``prepare`` (a mode's per-image stage) runs in the same threads."""

        def load(index: int) -> tuple[np.ndarray, np.ndarray | None]:
            image = source.load(index)
            return image, (prepare(image) if prepare else None)

        starts = range(0, len(source), self.batch_size)
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ganeval-decode") as pool:
            pending: deque[list[tuple[int, Future[tuple[np.ndarray, np.ndarray | None]]]]] = deque()
            ahead = iter(starts)

            def submit_next() -> None:
                start = next(ahead, None)
                if start is not None:
                    stop = min(start + self.batch_size, len(source))
                    pending.append([(i, pool.submit(load, i)) for i in range(start, stop)])

            for _ in range(3):
                submit_next()
            while pending:
                batch = pending.popleft()
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
                            for _, other in (item for queued in pending for item in queued):
                                other.cancel()
                            raise
                        bad.append(str(exc))
                yield indices, names, images, prepared, bad


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1):]
