"""Computing the metrics from the two sides, their bootstrap intervals, and the Result with its provenance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .. import __version__, defaults, distributed
from ..errors import BadInputError
from ..extractors.build import FEATURE_NETWORKS
from ..metrics import registry
from ..metrics.registry import Context, Metric, Side
from ..options import Options
from ..result import Result
from .planning import Extractors, needs_of, progress_enabled


RECOMMENDED_MIN = defaults.FID_RECOMMENDED_MIN


def compute_metrics(
    real: Side | None,
    fake: Side,
    metrics: list[Metric],
    options: Options,
    *,
    strict: bool,
    device: torch.device,
    warnings: list[str],
    arrays: dict[str, np.ndarray],
) -> tuple[dict[str, object], dict[str, object], list[Metric]]:
    """The ``metrics`` between two sides whose needed parts are present: (values in registry key order,
    provenance details, the metrics computed). A metric that fails on the data (ValueError) is an error
    when ``strict``, else left out with a warning."""
    scores: dict[str, object] = {}
    details: dict[str, object] = {"seed": options.seed}
    done: list[Metric] = []
    todo = [metric for metric in metrics if real is not None or metric.one_set]
    with tqdm(desc="metrics", unit="metric", total=len(todo), disable=not progress_enabled(options.progress)) as bar:
        for metric in todo:
            bar.set_postfix_str(metric.title)
            context = Context(
                real,
                fake,
                options.of(metric),
                options.seed,
                device,
                warnings,
                details,
                arrays,
                _reporter(bar, metric.name, metric.progress_unit),
                tuple(need.part for need in needs_of(metric, options, "fake")),
            )
            try:
                scores.update(metric.compute(context))
                done.append(metric)
            except ValueError as exc:
                if strict:
                    raise BadInputError(f"{metric.title}: {exc}") from None
                warnings.append(f"{metric.title} left out: {exc}")
            bar.update(1)
    if options.bootstrap and real is not None:
        scores.update(_bootstrap(real, fake, [m for m in done if m.statistic is not None], options, details, warnings))
    order = registry.result_keys()
    return {key: scores[key] for key in order if key in scores}, details, done


def statistic_of(metric: Metric) -> Callable[[np.ndarray, np.ndarray, Any, int], float]:
    if metric.statistic is None:
        raise ValueError(f"{metric.name} has no bootstrap statistic")
    return metric.statistic


def _reporter(bar: tqdm, name: str, unit: str) -> Callable[[int, int], None]:
    """``progress(done, total)`` of one metric, shown after the metrics bar."""
    return lambda done, total: bar.set_postfix_str(f"{name} {done}/{total} {unit}")


def _bootstrap(
    real: Side, fake: Side, metrics: list[Metric], options: Options, details: dict[str, object], warnings: list[str]
) -> dict[str, object]:
    """95% percentile intervals of each metric with a ``statistic`` over ``options.bootstrap`` seeded
    resamples (with replacement) of both sides' rows; every metric sees the same resampled images."""
    from ..metrics.bootstrap import bootstrap_interval

    if not metrics:
        return {}
    parts = [needs_of(metric, options, "real")[0].part for metric in metrics]
    try:
        rows = [(real.rows(part), fake.rows(part)) for part in parts]
    except ValueError:
        warnings.append("--bootstrap needs features on both sides (a statistics file has none): no intervals")
        return {}
    with tqdm(
        total=options.bootstrap, desc="bootstrap", unit="resample", disable=not progress_enabled(options.progress)
    ) as bar:

        def statistic(x: np.ndarray, y: np.ndarray) -> list[float]:
            values = [
                statistic_of(metric)(r[x[:, 0]], f[y[:, 0]], options.of(metric), options.seed)
                for metric, (r, f) in zip(metrics, rows)
            ]
            bar.update(1)
            return values

        result = bootstrap_interval(
            np.arange(real.n or 0)[:, None],
            np.arange(fake.n or 0)[:, None],
            statistic,
            resamples=options.bootstrap,
            seed=options.seed,
        )
    details["bootstrap"] = {"resamples": options.bootstrap, "seed": options.seed, "interval": "95% percentile"}
    return {f"{metric.name}_ci95": [float(result.low[i]), float(result.high[i])] for i, metric in enumerate(metrics)}


_SIDE_KEYS = (
    "source",
    "kind",
    "n",
    "content_sha256",
    "cached",
    "skipped",
    "ignored_files",
    "mode",
    "weights_sha256",
    "precision",
)


_EXTRACTOR_KEYS = (
    "extractor",
    "weights_sha256",
    "weights_source",
    "weights_standard",
    "mode",
    "resize",
    "precision",
    "ganeval_version",
)


def provenance(
    extractors: Extractors, real: Side | None, fake: Side, metrics: list[Metric], options: Options, warnings: list[str]
) -> dict[str, object]:
    """The run's provenance: the Inception extractor (when used; else the features' extractor as the sides
    recorded it), the metrics, the DINOv2/CLIP networks used (``networks``: name → their provenance), each
    side's source."""
    from ..weights import nonstandard_warning

    inception = extractors.built.get("inception") if "inception" in extractors.used else None
    described = real.meta if real is not None and real.meta.get("extractor") else fake.meta
    common: dict[str, object] = (
        inception.provenance()
        if inception is not None
        else {k: described[k] for k in _EXTRACTOR_KEYS if described.get(k) is not None}
    )
    common.setdefault("ganeval_version", __version__)
    inception_made = inception is not None or str(common.get("extractor", "")).startswith("inception")
    if inception_made and common.get("extractor") and not common.get("weights_standard"):
        warnings.insert(0, nonstandard_warning(common.get("weights_sha256")))
    networks: dict[str, object] = {}
    for name in sorted(extractors.used - {"inception"}):
        extractor = extractors.built.get(name)
        warning = getattr(extractor, "warning", None)
        if warning:
            warnings.append(warning)
        if name in FEATURE_NETWORKS and extractor is not None:
            networks[name] = extractor.provenance()
    out: dict[str, object] = {**common, "metrics": sorted(metric.name for metric in metrics)}
    if options.features != "inception":
        out["features"] = options.features
    if networks:
        out["networks"] = networks
    if distributed.active():
        out["world_size"] = distributed.world_size()
    uses_fd = any(
        not need.rows for metric in metrics for need in metric.needs(options.of(metric), "fake", options.seed)
    )
    for side in (real, fake):
        if side is None:
            continue
        if side.meta.get("ignored_files"):
            warnings.append(
                f"{side.label}: {side.meta['ignored_files']} non-image or hidden files in "
                f"{side.meta.get('source')} were ignored"
            )
        if uses_fd and side.n is not None and side.n <= RECOMMENDED_MIN:
            warnings.append(
                f"{side.label} has {side.n} images (<= {RECOMMENDED_MIN}): its covariance is rank-deficient "
                f"and FID is biased upwards; use 10,000+ images for numbers comparable with papers"
            )
        out[side.label] = {k: side.meta.get(k) for k in _SIDE_KEYS if k in side.meta}
    return out


def evaluate(
    real: Side | None,
    fake: Side,
    metrics: list[Metric],
    options: Options,
    extractors: Extractors,
    *,
    strict: bool,
    warnings: list[str],
) -> Result:
    """The metrics between the two sides as a Result, computed on rank 0 in a process group (every rank
    calls this and gets the Result)."""
    return distributed.on_root(
        lambda: assemble(real, fake, metrics, options, extractors, strict=strict, warnings=warnings),
        share=lambda result: result,
    )


def assemble(
    real: Side | None,
    fake: Side,
    metrics: list[Metric],
    options: Options,
    extractors: Extractors,
    *,
    strict: bool,
    warnings: list[str],
) -> Result:
    """The metrics between the two sides as a Result, in this process (rank 0's part of ``evaluate``)."""
    arrays: dict[str, np.ndarray] = {}
    scores, details, done = compute_metrics(
        real, fake, metrics, options, strict=strict, device=extractors.device, warnings=warnings, arrays=arrays
    )
    out = provenance(extractors, real, fake, done if not strict else metrics, options, warnings)
    out.update(details)
    return Result(scores, real.n if real else None, fake.n, out, warnings, arrays)
