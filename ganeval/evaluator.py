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
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from . import defaults, distributed
from .api import SWDOptions, _needs, _open_side, _provenance, _Side, compute_metrics
from .batches import BatchChecker, parse_range
from .device import synchronise
from .errors import BadInputError, GanevalError
from .features import Features, MomentAccumulator
from .inception import POOL3_DIM
from .metrics.fid import psd_factor
from .pipeline import DEFAULT_BATCH_SIZE, Extractor, progress_enabled
from .preprocess import DEFAULT_MODE
from .result import Result
from .stats import check_compatible, is_statistics_file
from .weights import HOW_TO_GET_FULL

Generator = Callable[..., Any]


class Evaluator:
    """Scores generated images against a fixed reference, every metric from one forward per fake batch.

    reference: a folder, .zip, .npy/.npz of uint8 images, a uint8 array/tensor, or a statistics .npz (FID
    only); None only when ``metrics`` is just ``("is",)``. metrics: names from ``defaults.METRICS``.
    input_range: how float images are scaled ("-1,1", the tanh default; "0,1"; "0,255"; or (low, high));
    uint8 images need none. num_samples: images drawn by ``score``. seed: the latents drawn by ``score``
    and every random choice of the metrics. Other options as ``ganeval.score``.
    """

    def __init__(self, reference: object, metrics: Iterable[str] = ("fid",), *, num_samples: int = 10_000,
                 device: str | torch.device | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 seed: int = defaults.SEED, input_range: str | tuple[float, float] = "-1,1", mode: str = DEFAULT_MODE,
                 weights: str | os.PathLike[str] | None = None, cache: bool = True, skip_bad: bool = False,
                 force: bool = False, progress: bool | None = None, kid_subsets: int = defaults.KID_SUBSETS,
                 kid_subset_size: int = defaults.KID_SUBSET_SIZE, is_splits: int = defaults.IS_SPLITS,
                 pr_features: str = "inception", vgg_weights: str | os.PathLike[str] | None = None,
                 swd_size: int | None = None, swd_images: int = defaults.SWD_IMAGES,
                 bootstrap: int = defaults.BOOTSTRAP, precision: str = "fp32") -> None:
        self.metrics = [m.strip().lower() for m in ([metrics] if isinstance(metrics, str) else metrics)]
        unknown = set(self.metrics) - set(defaults.METRICS)
        if unknown or not self.metrics:
            raise BadInputError(f"unknown metric(s) {', '.join(sorted(unknown)) or '(none given)'}; choose from "
                                f"{', '.join(defaults.METRICS)}")
        if pr_features not in defaults.PR_FEATURES:
            raise BadInputError(f"pr_features must be one of {', '.join(defaults.PR_FEATURES)}, got {pr_features!r}")
        if num_samples < 2:
            raise BadInputError(f"num_samples must be at least 2, got {num_samples}")
        if bootstrap < 0:
            raise BadInputError(f"bootstrap must be 0 or more resamples, got {bootstrap}")
        wanted = set(self.metrics)
        self.num_samples = num_samples
        self.seed = seed
        self.input_range = parse_range(input_range)
        self.progress = progress
        self.extractor = Extractor(weights=weights, mode=mode, device=device, batch_size=batch_size,
                                   precision=precision)
        self._options = {"kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size, "is_splits": is_splits,
                         "pr_features": pr_features, "swd_images": swd_images, "bootstrap": bootstrap}
        self._swd = SWDOptions(seed=seed, size=swd_size, max_images=swd_images)
        self._vgg_weights = vgg_weights
        self._vgg: Any = None
        if "is" in wanted and not self.extractor.weights.has_classifier:
            raise GanevalError(f"the Inception Score needs the Inception classifier, which the weights in use "
                               f"lack: {HOW_TO_GET_FULL}")
        self._fake_parts = _needs(wanted, pr_features, "fake")
        self.reference = reference
        self._reference_warnings: list[str] = []
        self._real = self._load_reference(reference, wanted, cache, skip_bad, force)
        self.reset()

    def _load_reference(self, reference: object, wanted: set[str], cache: bool, skip_bad: bool,
                        force: bool) -> _Side | None:
        if wanted == {"is"}:
            return None  # the Inception Score looks at the fakes only
        if reference is None:
            raise BadInputError(f"a reference is needed for {', '.join(sorted(wanted - {'is'}))}")
        if is_statistics_file(reference) and wanted - {"fid", "is"}:
            raise BadInputError(f"{reference} holds only statistics (μ, Σ): {', '.join(sorted(wanted - {'fid', 'is'}))} "
                                f"need(s) the reference images; pass the image folder or archive instead")
        side = _open_side(reference, "real", _needs(wanted, str(self._options["pr_features"]), "real"),
                          lambda: self.extractor, cache, skip_bad, self.progress, self._swd, self._get_vgg,
                          classes="modes" in wanted)
        if "fid" in wanted:
            self._reference_warnings += check_compatible(side.meta, self.extractor.provenance(),
                                                         f"reference ({side.meta.get('source')})",
                                                         "this Evaluator's extractor", force)
            if side.features.sigma is not None:  # in a process group, only rank 0 holds the arrays
                side.factor = psd_factor(side.features.sigma)
        return side

    def _get_vgg(self) -> Any:
        if self._vgg is None:
            from .vgg import VGGExtractor

            self._vgg = VGGExtractor(weights=self._vgg_weights, device=self.extractor.device)
        return self._vgg

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
            reference = {"source": str(meta.get("source")), "sha256": content, "n": self._real.n,
                         "kind": meta.get("kind")}
        extractor = self.extractor.provenance()
        used = {"kid_subsets": "kid", "kid_subset_size": "kid", "is_splits": "is", "pr_features": "pr",
                "swd_images": "swd", "bootstrap": "fid" if "fid" in self.metrics else "kid"}
        options = {key: value for key, value in self._options.items() if used[key] in self.metrics}
        if "swd" in self.metrics:
            options["swd_size"] = self._swd.size
        if self.extractor.precision != "fp32":
            options["precision"] = self.extractor.precision
        return {"reference": reference, "extractor": extractor.get("extractor"),
                "weights_sha256": extractor.get("weights_sha256"), "mode": self.extractor.mode,
                "metrics": sorted(self.metrics), "num_samples": self.num_samples, "seed": self.seed,
                "input_range": list(self.input_range), "batch_size": self.extractor.batch_size, **options}

    @property
    def keeps_features(self) -> bool:
        """Whether fake pool3 rows are kept (KID, precision/recall, the diagnostics, bootstrap intervals); FID
        alone needs only running sums."""
        return ("kid" in self.metrics or ("pr" in self.metrics and self._options["pr_features"] == "inception")
                or "authpct" in self.metrics or "modes" in self.metrics
                or (bool(self._options["bootstrap"]) and "fid" in self.metrics))

    def reset(self) -> None:
        """Forget every fake image seen; the reference stays."""
        self.n = 0  # images in the set (after compute() in a process group: on every rank together)
        self._local = 0  # images this process added since reset
        self._pending = 0  # of those, not yet gathered to rank 0
        self._source = "update() batches"
        self._checker = BatchChecker(self.input_range, "update()")
        self._moments = MomentAccumulator(POOL3_DIM)
        self._pool3: list[np.ndarray] = []
        self._logits: list[np.ndarray] = []
        self._vgg_rows: list[np.ndarray] = []
        self._batches: list[tuple[tuple[int, int], np.ndarray | None, np.ndarray | None, np.ndarray | None]] = []
        self._sampler = self._new_sampler()

    def _new_sampler(self) -> Any:
        """An empty SWD descriptor sampler, or None when SWD is not asked for."""
        if "swd" not in self._fake_parts:
            return None
        from .metrics.swd import DescriptorSampler

        return DescriptorSampler(seed=self._swd.seed, size=self._swd.size)

    def update(self, images: object) -> None:
        """Add a batch of fake images: a float tensor/array (B, C, H, W) in ``input_range`` (clamped and
        quantised to uint8 as saving a PNG would), or uint8; C = 1 or 3 (arrays may be (B, H, W, C)).
        A wrong shape, channel count, dtype, NaN or a change of size raises BadInputError at once.
        In a process group each rank adds its own batches and ``compute`` takes them all: image i of a
        rank counts as image i·K + rank of the set (K processes)."""
        self._add(images, None, None)

    def _add(self, images: object, expected: int | None, start: int | None) -> None:
        """Add one batch; ``start``: the position of its first image in the set ``score`` draws (None for
        ``update``, whose images count in the order they come, interleaved across ranks)."""
        batch = self._checker(images, expected)
        count = int(batch.shape[0])
        if start is None:
            world, rank = distributed.world_size(), distributed.rank()
            indices = [(self._local + i) * world + rank for i in range(count)]
        else:
            indices = list(range(start, start + count))
        pool3 = logits = vgg_rows = None
        if "inception" in self._fake_parts:
            pool3, logits = self.extractor.forward(batch)
            if "is" not in self.metrics:
                logits = None
        if self._sampler is not None or "vgg" in self._fake_parts:
            arrays = list(batch.permute(0, 2, 3, 1).cpu().numpy())
            if self._sampler is not None:
                chosen = [i for i, index in enumerate(indices) if index < self._swd.max_images]
                if chosen:
                    self._sampler.update([arrays[i] for i in chosen],
                                         [f"{self._source} image {indices[i]}" for i in chosen],
                                         [indices[i] for i in chosen])
            if "vgg" in self._fake_parts:
                vgg_rows = self._get_vgg().forward(arrays)
        if distributed.active():  # kept per batch, to be put in order on rank 0 by compute()
            self._batches.append(((indices[0], distributed.rank()), pool3, logits, vgg_rows))
        else:
            self._keep(pool3, logits, vgg_rows)
        self.n += count
        self._local += count
        self._pending += count

    def _keep(self, pool3: np.ndarray | None, logits: np.ndarray | None, vgg_rows: np.ndarray | None) -> None:
        """Fold one batch into the running state: pool3 into the moments (and kept when a metric needs the
        rows), logits for IS, VGG16 rows."""
        if pool3 is not None:
            self._moments.update(pool3)
            if self.keeps_features:
                self._pool3.append(pool3)
        if logits is not None:
            self._logits.append(logits)
        if vgg_rows is not None:
            self._vgg_rows.append(vgg_rows)

    def _gather(self) -> None:
        """In a process group: bring every rank's batches (and SWD descriptors) to rank 0 and fold them in
        the set's order there, so the state equals one process's that saw every batch; the image count is
        the total on every rank."""
        counts = distributed.everywhere(self._pending)
        parts = distributed.to_root((self._batches, self._sampler))
        self.n += sum(counts) - self._pending
        self._pending, self._batches = 0, []
        if parts is None:
            self._sampler = self._new_sampler()  # its descriptors are rank 0's now
            return
        for _, pool3, logits, vgg_rows in sorted((b for batches, _ in parts for b in batches), key=lambda b: b[0]):
            self._keep(pool3, logits, vgg_rows)
        for _, sampler in parts[1:]:
            if self._sampler is not None and sampler is not None:
                self._sampler.absorb(sampler)

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
        features = Features(names=[], provenance=meta)
        if "inception" in self._fake_parts:
            features.mu, features.sigma = self._moments.mean(), self._moments.cov()
            features.pool3 = np.concatenate(self._pool3) if self._pool3 else None
            features.logits_unbiased = np.concatenate(self._logits) if self._logits else None
        if self._vgg_rows:
            features.vgg = np.concatenate(self._vgg_rows)
        if self._sampler is not None:
            features.swd = self._sampler.result()
            resolution = list(self._sampler.resolution) if self._sampler.resolution else None
            meta["swd"] = {"seed": self._swd.seed, "size": self._swd.size, "resolution": resolution,
                           "images": self._sampler.n_images}
        fake = _Side("fake", features, self.n, meta)
        wanted = set(self.metrics)
        warnings = self._reference_warnings + ([self._checker.warning] if self._checker.warning else [])
        arrays: dict[str, np.ndarray] = {}
        scores, details = compute_metrics(self._real, fake, wanted, strict=True, seed=self.seed,
                                          device=self.extractor.device, warnings=warnings, progress=False,
                                          get_vgg=self._get_vgg, arrays=arrays, **self._options)  # type: ignore[arg-type]
        extractor = self.extractor if "inception" in self._fake_parts else None
        provenance = _provenance(extractor, self._real, fake, wanted, warnings)
        provenance.update(details)
        provenance["input_range"] = list(self.input_range)
        return Result(scores, self._real.n if self._real else None, self.n, provenance, warnings, arrays)

    def score(self, generator: Generator, *, num_samples: int | None = None,
              z_dim: int | tuple[int, ...] | None = None, eval_mode: bool = True) -> Result:
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
        starts = [start for number, start in enumerate(range(0, total, self.extractor.batch_size))
                  if distributed.owns(number)]
        with contextlib.closing(self._generate(generator, starts, total, z_dim, eval_mode, "generating")) as batches:
            for start, images, count, latent, generate_s in batches:
                timing["generate"] += generate_s
                began = time.perf_counter()
                self._add(images, count, start)
                timing["extract"] += time.perf_counter() - began
        began = time.perf_counter()
        result = self.compute()
        timing["metrics"] = time.perf_counter() - began
        result.provenance["timing_s"] = {key: round(value, 4) for key, value in timing.items()}
        result.provenance["generator"] = {"num_samples": total, "latent_seed": self.seed,
                                          "latent_batch_size": self.extractor.batch_size,
                                          "latent_shape": list(latent) if latent else None,
                                          "eval_mode": eval_mode if isinstance(generator, torch.nn.Module) else None}
        return result

    def images(self, generator: Generator, indices: Iterable[int], *, num_samples: int | None = None,
               z_dim: int | tuple[int, ...] | None = None, eval_mode: bool = True) -> dict[int, np.ndarray]:
        """The fakes number ``indices`` of what ``score(generator)`` scores, as uint8 (H, W, 3), drawn again
        from the same latents (only the batches holding them are generated, none is extracted); for
        showing the images behind a result, such as its closest pairs."""
        total = self.num_samples if num_samples is None else num_samples
        wanted = sorted({int(i) for i in indices})
        if wanted and not 0 <= wanted[0] <= wanted[-1] < total:
            raise BadInputError(f"image indices must lie in [0, {total}), got {wanted[0]}..{wanted[-1]}")
        checker, found = BatchChecker(self.input_range, "generator"), {}
        if not wanted:
            return found
        size = self.extractor.batch_size
        starts = sorted({index // size * size for index in wanted})
        with contextlib.closing(self._generate(generator, starts, total, z_dim, eval_mode, None)) as batches:
            for start, images, count, _, _ in batches:
                batch = checker(images, count).permute(0, 2, 3, 1).cpu().numpy()
                for index in wanted:
                    if start <= index < start + count:
                        found[index] = batch[index - start]
        return found

    def _generate(self, generator: Generator, starts: list[int], total: int, z_dim: int | tuple[int, ...] | None,
                  eval_mode: bool, desc: str | None
                  ) -> Iterator[tuple[int, Any, int, tuple[int, ...] | None, float]]:
        """Yield (start, images, count, latent shape, seconds generating) for the batches of the ``total``
        images ``score`` draws that begin at ``starts``. Each batch's latents (and torch randomness inside
        the generator) come from ``seed`` and its start, under ``torch.no_grad()``, the module in eval mode
        unless ``eval_mode=False``; afterwards every submodule's train/eval flag and torch's global RNG are
        as before."""
        module = generator if isinstance(generator, torch.nn.Module) else None
        latent = _latent_shape(module, z_dim) if module is not None else None
        origin = _module_device(module) if module is not None else None
        flags = [(m, m.training) for m in module.modules()] if module is not None else []
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        devices = list(range(torch.cuda.device_count())) if cuda else []
        batch_size = self.extractor.batch_size
        counts = [min(batch_size, total - start) for start in starts]
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                if module is not None and eval_mode:
                    module.eval()
                with tqdm(total=sum(counts), unit="img", desc=desc,
                          disable=desc is None or not progress_enabled(self.progress) or not distributed.is_root()) as bar:
                    for start, count in zip(starts, counts):
                        seed = batch_seed(self.seed, start)
                        torch.default_generator.manual_seed(seed)
                        for index in devices:
                            torch.cuda.default_generators[index].manual_seed(seed)
                        began = time.perf_counter()
                        if module is not None:
                            images = module(torch.randn((count, *latent), device=origin))  # type: ignore[misc]
                        else:
                            images = generator(count)
                        synchronise(images)  # a CUDA generator's time is not billed to extraction
                        yield start, images, count, latent, time.perf_counter() - began
                        del images
                        bar.update(count)
        finally:
            for submodule, training in flags:
                submodule.training = training
            if self.extractor.device.type == "cuda" or (origin is not None and origin.type == "cuda"):
                torch.cuda.empty_cache()


def batch_seed(seed: int, start: int) -> int:
    """The torch seed of the batch of generated images that begins at image ``start``: a 63-bit hash of
    (``seed``, ``start``), so any process can draw any batch without drawing the ones before it."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, start]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def _latent_shape(module: torch.nn.Module, z_dim: int | tuple[int, ...] | None) -> tuple[int, ...]:
    declared = z_dim if z_dim is not None else getattr(module, "z_dim", None)
    if declared is None:
        raise BadInputError(f"{type(module).__name__} has no z_dim attribute: pass z_dim= (e.g. 100, or (100, 1, 1) "
                            f"for a generator that takes (B, 100, 1, 1))")
    shape = (declared,) if isinstance(declared, int) else tuple(declared)
    if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise BadInputError(f"z_dim must be a positive int or a tuple of them, got {declared!r}")
    return shape


def _module_device(module: torch.nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")
