"""Scoring from inside a training loop: a reference loaded once, fakes streamed batch by batch.

    ev = ganeval.Evaluator("real_dir", metrics=("fid", "kid"), num_samples=10_000, device="cuda")
    scores = ev.score(generator)                        # an nn.Module taking z, or a callable (n) -> images
    ev.reset(); ev.update(fake_batch); ...; scores = ev.compute()   # or streaming, torchmetrics-style

The reference side comes from the features cache (or is computed and cached once, at construction);
``score``/``update``/``compute`` write nothing to disk. FID alone keeps only float64 running sums of the
fakes' pool3 (O(2048²) memory whatever the number of images); pool3 rows are kept only for KID and
precision/recall, logits only for IS.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import distributed
from .batches import BatchChecker, parse_range
from .engine import (
    Extractors,
    assemble,
    new_accumulators,
    open_side,
    plan,
    progress_enabled,
    run_batch,
    usable,
)
from .errors import BadInputError
from .generation import Batches, Generator, batch_seed, generate_batches
from .extractors.base import Batch
from .metrics import registry
from .metrics.fid import psd_factor
from .metrics.registry import Side
from .options import DEFAULT_BATCH_SIZE, Options
from .parts import Accumulator, VectorPart, split
from .result import Result
from .stats import check_compatible, is_statistics_file

__all__ = ["Evaluator", "batch_seed"]


class Evaluator:
    """Scores generated images against a fixed reference, every metric from one forward per fake batch.

    reference: a folder, .zip, .npy/.npz of uint8 images, a uint8 array/tensor, or a statistics .npz (FID
    only); None only for one-set metrics (``("is",)``). metrics: registry names. input_range: how float
    images are scaled ("-1,1", the tanh default; "0,1"; "0,255"; or (low, high)); uint8 images need none.
    num_samples: images drawn by ``score``. seed: the latents drawn by ``score`` and every random choice of
    the metrics. ``options`` (an ``Options``) or keywords as ``ganeval.score``.
    """

    def __init__(
        self,
        reference: object,
        metrics: Iterable[str] | str = ("fid",),
        *,
        num_samples: int = 10_000,
        input_range: str | tuple[float, float] = "-1,1",
        options: Options | None = None,
        **keywords: Any,
    ) -> None:
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        if options is None:
            keywords.setdefault("batch_size", DEFAULT_BATCH_SIZE)
            self.options = Options.build(names, **keywords)
        else:
            self.options = options.replace(metrics=names, **keywords)
        self.metrics = list(self.options.metrics or ())
        if num_samples < 2:
            raise BadInputError(f"num_samples must be at least 2, got {num_samples}")
        self.num_samples = num_samples
        self.seed = self.options.seed
        self.input_range = parse_range(input_range)
        self.progress = self.options.progress
        self._extractors = Extractors(self.options)
        self._wanted = usable(
            self.options.wanted(), self.options, self._extractors, {"real": reference, "fake": object()}, True, []
        )
        self._fake_requests = plan(self._wanted, self.options, "fake")
        self.reference = reference
        self._reference_warnings: list[str] = []
        self._real = self._load_reference(reference)
        self.reset()

    @property
    def extractor(self) -> Any:
        """The Inception extractor (its device, batch size, weights)."""
        return self._extractors.get("inception")

    def _load_reference(self, reference: object) -> Side | None:
        if all(metric.one_set for metric in self._wanted):
            return None
        if reference is None:
            raise BadInputError(f"a reference is needed for {', '.join(m.name for m in self._wanted if not m.one_set)}")
        if is_statistics_file(reference):
            needing = [m.name for m in self._wanted if not m.from_statistics and not m.one_set]
            if needing:
                raise BadInputError(
                    f"{reference} holds only statistics (μ, Σ): {', '.join(needing)} need(s) the "
                    f"reference images; pass the image folder or archive instead"
                )
        side = open_side(
            reference,
            "real",
            plan(self._wanted, self.options, "real"),
            self._extractors,
            self.options,
            classes=registry.wants_labels(self._wanted, self.options.of),
        )
        if any(metric.from_statistics for metric in self._wanted):
            identities = {
                part: self._extractors.get(split(part)[0]).identity(split(part)[1]) for part in self._fake_requests
            }
            self._reference_warnings += check_compatible(
                side.meta,
                {**self.extractor.provenance(), "identities": identities},
                f"reference ({side.meta.get('source')})",
                "this Evaluator's extractor",
                self.options.force,
            )
        for part, value in side.parts.items():  # in a process group, only rank 0 holds the arrays
            if isinstance(value, VectorPart) and (value.sigma is not None or value.rows is not None) and value.n > 1:
                if part in self._fake_requests and self._fake_requests[part].moments:
                    side.factors[part] = psd_factor(value.moments()[1])
        return side

    def setup(self) -> dict[str, object]:
        """Everything except the generator that changes this Evaluator's numbers, JSON-able: the reference's
        content sha256 (a statistics file: its own sha256 when it records none), the extractor, its weights
        and mode, the metrics and their options, the sample count, seed and input range. Two evaluations with
        equal setups of the same generator give the same numbers (the batch size is part of it: each batch's
        latents come from the seed and the batch's position)."""
        reference: dict[str, object] | None = None
        if self._real is not None:
            meta = self._real.meta
            content = meta.get("content_sha256")
            if not content and meta.get("kind") == "statistics":
                content = hashlib.sha256(Path(str(meta["source"])).read_bytes()).hexdigest()
            reference = {
                "source": str(meta.get("source")),
                "sha256": content,
                "n": self._real.n,
                "kind": meta.get("kind"),
            }
        extractor = self.extractor.provenance()
        return {
            "reference": reference,
            "extractor": extractor.get("extractor"),
            "weights_sha256": extractor.get("weights_sha256"),
            "mode": self.options.mode,
            "metrics": sorted(self.metrics),
            "num_samples": self.num_samples,
            "seed": self.seed,
            "input_range": list(self.input_range),
            "batch_size": self.options.batch_size,
            **self.metric_options(),
        }

    def metric_options(self) -> dict[str, object]:
        """The options that change the numbers of the metrics asked for, by keyword: each metric's own
        (an option added after its metric records only a changed value, so earlier setups keep their id),
        ``bootstrap`` when a metric has intervals, the arithmetic precision when not the standard."""
        options: dict[str, object] = {}
        for metric in self._wanted:
            for keyword, f in metric.option_fields():
                value = getattr(self.options.of(metric), f.name)
                if value != f.default or f.metadata.get("recorded_at_default", True):
                    options[keyword] = value
        if self.options.bootstrap or any(m.statistic for m in self._wanted):
            options["bootstrap"] = self.options.bootstrap
        if self.options.features != "inception":
            options["features"] = self.options.features
        if self.options.dinov2_resize != "pil" and any(part.startswith("dinov2:") for part in self._fake_requests):
            options["dinov2_resize"] = self.options.dinov2_resize
        if self.options.precision != "fp32":
            options["precision"] = self.options.precision
        return options

    @property
    def keeps_features(self) -> bool:
        """Whether fake feature rows are kept (KID, precision/recall, the diagnostics, bootstrap intervals);
        FID alone needs only running sums."""
        return any(request.rows for part, request in self._fake_requests.items() if split(part)[0] != "pixels")

    def reset(self) -> None:
        """Forget every fake image seen; the reference stays."""
        self.n = 0  # images in the set (after compute() in a process group: on every rank together)
        self._local = 0  # images this process added since reset
        self._pending = 0  # of those, not yet gathered to rank 0
        self._source = "update() batches"
        self._checker = BatchChecker(self.input_range, "update()")
        self._accumulators: dict[str, Accumulator] = new_accumulators(
            self._fake_requests, self._extractors.for_parts(self._fake_requests), deferred=distributed.active()
        )

    def update(self, images: object) -> None:
        """Add a batch of fake images: a float tensor/array (B, C, H, W) in ``input_range`` (clamped and
        quantised to uint8 as saving a PNG would), or uint8; C = 1 or 3 (arrays may be (B, H, W, C)).
        A wrong shape, channel count, dtype, NaN or a change of size raises BadInputError at once.
        In a process group each rank adds its own batches and ``compute`` takes them all: image i of a
        rank counts as image i·K + rank of the set (K processes)."""
        self._add(images, None, None, None)

    def _add(self, images: object, expected: int | None, start: int | None, total: int | None) -> None:
        """Add one batch; ``start``: the position of its first image in the set ``score`` draws (None for
        ``update``, whose images count in the order they come, interleaved across ranks) of ``total``."""
        batch = self._checker(images, expected)
        count = int(batch.shape[0])
        if start is None:
            world, rank = distributed.world_size(), distributed.rank()
            indices = [(self._local + i) * world + rank for i in range(count)]
        else:
            indices = list(range(start, start + count))
        names = [f"{self._source} image {index}" for index in indices]
        run_batch(
            Batch(indices, names, tensor=batch, total=total),
            {part: request.params for part, request in self._fake_requests.items()},
            self._extractors.for_parts(self._fake_requests),
            self._accumulators,
        )
        self.n += count
        self._local += count
        self._pending += count

    def _gather(self) -> None:
        """In a process group: bring every rank's accumulators to rank 0 and merge them there, so the state
        equals one process's that saw every batch; the image count is the total on every rank."""
        counts = distributed.everywhere(self._pending)
        parts = distributed.to_root(self._accumulators)
        self.n += sum(counts) - self._pending
        self._pending = 0
        if parts is None:
            self._accumulators = new_accumulators(
                self._fake_requests, self._extractors.for_parts(self._fake_requests), deferred=True
            )
            return
        for other in parts[1:]:
            for part, accumulator in self._accumulators.items():
                accumulator.merge(other[part])

    def compute(self) -> Result:
        """The metrics of the fakes added since the last ``reset``, with provenance; the same keys as the
        CLI's ``--json``. In a process group every rank calls it; rank 0 computes and every rank gets the
        Result. Call it once per ``reset`` there (it moves the other ranks' batches to rank 0)."""
        if distributed.active():
            self._gather()
        return distributed.on_root(self._compute, share=lambda result: result)

    def _compute(self) -> Result:
        if self.n < 2:
            raise BadInputError(f"{self.n} fake image(s) seen; the metrics need at least 2 (10,000+ recommended)")
        meta: dict[str, object] = {"source": self._source, "kind": "stream", "n": self.n}
        parts: dict[str, Any] = {}
        for part, accumulator in self._accumulators.items():
            parts[part] = accumulator.finish()
            info = getattr(accumulator, "info", None)
            if info is not None:  # a part that describes itself (SWD: its resolution and images)
                meta[split(part)[1]] = info()
        fake = Side("fake", self.n, parts, meta)
        warnings = self._reference_warnings + ([self._checker.warning] if self._checker.warning else [])
        result = assemble(  # compute() already runs this on rank 0 only
            self._real, fake, self._wanted, self.options, self._extractors, strict=True, warnings=list(warnings)
        )
        result.provenance["input_range"] = list(self.input_range)
        return result

    def score(
        self,
        generator: Generator,
        *,
        num_samples: int | None = None,
        z_dim: int | tuple[int, ...] | None = None,
        eval_mode: bool = True,
    ) -> Result:
        """Draw ``num_samples`` images from ``generator`` and score them (``reset`` first).

        generator: an ``nn.Module`` called with latents z ~ N(0, I) of shape (B, *z_dim), z_dim from the
        argument or the module's ``z_dim`` attribute (an int, or a tuple such as (100, 1, 1)); or any callable
        ``generator(B) -> images``. The latents (and any torch randomness inside the generator) come from
        ``seed`` and the batch's position, so repeated evaluations of one run see the same latents. In a
        process group every rank calls ``score``: each generates and extracts its share of the batches
        (batch b on rank b mod K) and every rank gets the Result one process would have given. Runs under ``torch.no_grad()``,
        with the module in eval mode unless ``eval_mode=False``; afterwards every submodule's train/eval
        flag and torch's global RNG state are as before, and CUDA memory cached during the call is freed.
        ``provenance["timing_s"]`` splits the wall time into generate, extract and metrics (seconds)."""
        total = self.num_samples if num_samples is None else num_samples
        if total < 2:
            raise BadInputError(f"num_samples must be at least 2, got {total}")
        self.reset()
        timing = {"generate": 0.0, "extract": 0.0, "metrics": 0.0}
        self._source = "generator"
        self._checker.label = "generator"
        latent = None
        starts = [
            start for number, start in enumerate(range(0, total, self.options.batch_size)) if distributed.owns(number)
        ]
        with contextlib.closing(self._generate(generator, starts, total, z_dim, eval_mode, "generating")) as batches:
            for start, images, count, latent, generate_s in batches:
                timing["generate"] += generate_s
                began = time.perf_counter()
                self._add(images, count, start, total)
                timing["extract"] += time.perf_counter() - began
        began = time.perf_counter()
        result = self.compute()
        timing["metrics"] = time.perf_counter() - began
        result.provenance["timing_s"] = {key: round(value, 4) for key, value in timing.items()}
        result.provenance["generator"] = {
            "num_samples": total,
            "latent_seed": self.seed,
            "latent_batch_size": self.options.batch_size,
            "latent_shape": list(latent) if latent else None,
            "eval_mode": eval_mode if isinstance(generator, torch.nn.Module) else None,
        }
        return result

    def images(
        self,
        generator: Generator,
        indices: Iterable[int],
        *,
        num_samples: int | None = None,
        z_dim: int | tuple[int, ...] | None = None,
        eval_mode: bool = True,
    ) -> dict[int, np.ndarray]:
        """The fakes number ``indices`` of what ``score(generator)`` scores, as uint8 (H, W, 3), drawn again
        from the same latents (only the batches holding them are generated, none is extracted); for
        showing the images behind a result, such as its closest pairs."""
        total = self.num_samples if num_samples is None else num_samples
        wanted = sorted({int(i) for i in indices})
        if wanted and not 0 <= wanted[0] <= wanted[-1] < total:
            raise BadInputError(f"image indices must lie in [0, {total}), got {wanted[0]}..{wanted[-1]}")
        checker = BatchChecker(self.input_range, "generator")
        found: dict[int, np.ndarray] = {}
        if not wanted:
            return found
        size = self.options.batch_size
        starts = sorted({index // size * size for index in wanted})
        with contextlib.closing(self._generate(generator, starts, total, z_dim, eval_mode, None)) as batches:
            for start, images, count, _, _ in batches:
                batch = checker(images, count).permute(0, 2, 3, 1).cpu().numpy()
                for index in wanted:
                    if start <= index < start + count:
                        found[index] = batch[index - start]
        return found

    def _generate(
        self,
        generator: Generator,
        starts: list[int],
        total: int,
        z_dim: int | tuple[int, ...] | None,
        eval_mode: bool,
        desc: str | None,
    ) -> Batches:
        """The batches of the ``total`` images ``score`` draws that begin at ``starts`` (``generation``)."""
        return generate_batches(
            generator,
            starts,
            total,
            batch_size=self.options.batch_size,
            seed=self.seed,
            z_dim=z_dim,
            eval_mode=eval_mode,
            desc=desc,
            progress=progress_enabled(self.progress) and distributed.is_root(),
            free_cuda=self.extractor.device.type == "cuda",
        )
