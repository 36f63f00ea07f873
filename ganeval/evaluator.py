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

from . import defaults
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
                 bootstrap: int = defaults.BOOTSTRAP) -> None:
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
        self.extractor = Extractor(weights=weights, mode=mode, device=device, batch_size=batch_size)
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
        equal setups of the same generator give the same numbers."""
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
        return {"reference": reference, "extractor": extractor.get("extractor"),
                "weights_sha256": extractor.get("weights_sha256"), "mode": self.extractor.mode,
                "metrics": sorted(self.metrics), "num_samples": self.num_samples, "seed": self.seed,
                "input_range": list(self.input_range), **options}

    @property
    def keeps_features(self) -> bool:
        """Whether fake pool3 rows are kept (KID, precision/recall, the diagnostics, bootstrap intervals); FID
        alone needs only running sums."""
        return ("kid" in self.metrics or ("pr" in self.metrics and self._options["pr_features"] == "inception")
                or "authpct" in self.metrics or "modes" in self.metrics
                or (bool(self._options["bootstrap"]) and "fid" in self.metrics))

    def reset(self) -> None:
        """Forget every fake image seen; the reference stays."""
        self.n = 0
        self._source = "update() batches"
        self._checker = BatchChecker(self.input_range, "update()")
        self._moments = MomentAccumulator(POOL3_DIM)
        self._pool3: list[np.ndarray] = []
        self._logits: list[np.ndarray] = []
        self._vgg_rows: list[np.ndarray] = []
        self._sampler = None
        if "swd" in self._fake_parts:
            from .metrics.swd import DescriptorSampler

            self._sampler = DescriptorSampler(seed=self._swd.seed, size=self._swd.size)

    def update(self, images: object) -> None:
        """Add a batch of fake images: a float tensor/array (B, C, H, W) in ``input_range`` (clamped and
        quantised to uint8 as saving a PNG would), or uint8; C = 1 or 3 (arrays may be (B, H, W, C)).
        A wrong shape, channel count, dtype, NaN or a change of size raises BadInputError at once."""
        self._add(images, None)

    def _add(self, images: object, expected: int | None) -> None:
        batch = self._checker(images, expected)
        count = int(batch.shape[0])
        if "inception" in self._fake_parts:
            pool3, logits = self.extractor.forward(batch)
            self._moments.update(pool3)
            if self.keeps_features:
                self._pool3.append(pool3)
            if "is" in self.metrics and logits is not None:
                self._logits.append(logits)
        if self._sampler is not None or "vgg" in self._fake_parts:
            arrays = list(batch.permute(0, 2, 3, 1).cpu().numpy())
            if self._sampler is not None:
                take = max(0, min(count, self._swd.max_images - self.n))
                if take:
                    indices = list(range(self.n, self.n + take))
                    self._sampler.update(arrays[:take], [f"{self._source} image {i}" for i in indices], indices)
            if "vgg" in self._fake_parts:
                self._vgg_rows.append(self._get_vgg().forward(arrays))
        self.n += count

    def compute(self) -> Result:
        """The metrics of the fakes added since the last ``reset``, with provenance; the same keys as the
        CLI's ``--json``."""
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
        ``generator(B) -> images``. The latents (and any torch randomness inside the callable) come from
        ``seed``, so repeated evaluations of one run see the same latents. Runs under ``torch.no_grad()``,
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
        with contextlib.closing(self._generate(generator, total, z_dim, eval_mode, "generating")) as batches:
            for images, count, latent, generate_s in batches:
                timing["generate"] += generate_s
                began = time.perf_counter()
                self._add(images, count)
                timing["extract"] += time.perf_counter() - began
        began = time.perf_counter()
        result = self.compute()
        timing["metrics"] = time.perf_counter() - began
        result.provenance["timing_s"] = {key: round(value, 4) for key, value in timing.items()}
        result.provenance["generator"] = {"num_samples": total, "latent_seed": self.seed,
                                          "latent_shape": list(latent) if latent else None,
                                          "eval_mode": eval_mode if isinstance(generator, torch.nn.Module) else None}
        return result

    def images(self, generator: Generator, indices: Iterable[int], *, num_samples: int | None = None,
               z_dim: int | tuple[int, ...] | None = None, eval_mode: bool = True) -> dict[int, np.ndarray]:
        """The fakes number ``indices`` of what ``score(generator)`` scores, as uint8 (H, W, 3), drawn again
        from the same latents (the batches up to the last index are generated, none is extracted); for
        showing the images behind a result, such as its closest pairs."""
        total = self.num_samples if num_samples is None else num_samples
        wanted = sorted({int(i) for i in indices})
        if wanted and not 0 <= wanted[0] <= wanted[-1] < total:
            raise BadInputError(f"image indices must lie in [0, {total}), got {wanted[0]}..{wanted[-1]}")
        checker, found, start = BatchChecker(self.input_range, "generator"), {}, 0
        if not wanted:
            return found
        with contextlib.closing(self._generate(generator, wanted[-1] + 1, z_dim, eval_mode, None, total)) as batches:
            for images, count, _, _ in batches:
                batch = checker(images, count).permute(0, 2, 3, 1).cpu().numpy()
                for index in wanted:
                    if start <= index < start + count:
                        found[index] = batch[index - start]
                start += count
        return found

    def _generate(self, generator: Generator, total: int, z_dim: int | tuple[int, ...] | None, eval_mode: bool,
                  desc: str | None, planned: int | None = None) -> Iterator[tuple[Any, int, tuple[int, ...] | None, float]]:
        """Yield (images, count, latent shape, seconds generating) for the first ``total`` images that
        ``score`` draws when it draws ``planned`` (default ``total``): the latents (and torch randomness
        inside a callable) come from ``seed``, under ``torch.no_grad()``, the module in eval mode unless
        ``eval_mode=False``; afterwards every submodule's train/eval flag and torch's global RNG are as before."""
        module = generator if isinstance(generator, torch.nn.Module) else None
        latent = _latent_shape(module, z_dim) if module is not None else None
        origin = _module_device(module) if module is not None else None
        flags = [(m, m.training) for m in module.modules()] if module is not None else []
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        devices = list(range(torch.cuda.device_count())) if cuda else []
        batch_size = self.extractor.batch_size
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                torch.default_generator.manual_seed(self.seed)
                for index in devices:
                    torch.cuda.default_generators[index].manual_seed(self.seed)
                if module is not None and eval_mode:
                    module.eval()
                with tqdm(total=total, unit="img", desc=desc,
                          disable=desc is None or not progress_enabled(self.progress)) as bar:
                    for start in range(0, total, batch_size):
                        count = min(batch_size, (planned or total) - start)
                        began = time.perf_counter()
                        if module is not None:
                            images = module(torch.randn((count, *latent), device=origin))  # type: ignore[misc]
                        else:
                            images = generator(count)
                        synchronise(images)  # a CUDA generator's time is not billed to extraction
                        yield images, count, latent, time.perf_counter() - began
                        del images
                        bar.update(min(count, total - start))
        finally:
            for submodule, training in flags:
                submodule.training = training
            if self.extractor.device.type == "cuda" or (origin is not None and origin.type == "cuda"):
                torch.cuda.empty_cache()


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
