"""The public functions: every metric between two image sets from one pass each, one metric at a time, the
features and statistics of one set.

Either side may be a folder, a .zip, a .npy/.npz of uint8 images, a uint8 array/tensor, or (for FID) a
statistics .npz. Options are ``score``'s keywords (see ``options.Options.build``: the run's settings and
every metric's options by keyword, e.g. ``kid_subsets``, ``dims``, ``pr_features``) or one ``Options``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import distributed
from .engine import (
    Extractors,
    Request,
    check_pair,
    compute_features as _compute_features,
    evaluate,
    open_side,
    plan,
    usable,
)
from .errors import BadInputError
from .metrics import registry
from .extractors.inception import InceptionExtractor
from .options import Options
from .parts import LOGITS, POOL3, VGG_FC2, Features
from .result import Result
from .stats import Statistics, is_statistics_file, load_statistics

if TYPE_CHECKING:  # imported where used: VGG16 is optional
    from .vgg import VGGExtractor


def _options(metrics: Iterable[str] | str | None, options: Options | None, keywords: dict[str, Any]) -> Options:
    if options is None:
        return Options.build(metrics, **keywords)
    if metrics is not None or keywords:
        return options.replace(**({"metrics": metrics} if metrics is not None else {}), **keywords)
    return options


def score(
    real: object | None,
    fake: object,
    metrics: Iterable[str] | str | None = None,
    *,
    options: Options | None = None,
    extractor: InceptionExtractor | None = None,
    real_labels: Sequence[object] | np.ndarray | None = None,
    **keywords: Any,
) -> Result:
    """Every asked-for metric between ``real`` and ``fake`` from one decode pass over each set.

    ``metrics``: registry names (``ganeval.metrics.registry.names()``); None means the standard set
    (``registry.standard()``), where a metric that cannot be computed (IS without the
    classifier, KID/PR/SWD against a statistics file) is left out with a warning; a metric named explicitly
    that cannot be computed is an error. ``real`` may be None when only one-set metrics (``is``) are asked
    for. Random choices all derive from ``seed``. ``bootstrap`` > 0 adds 95% intervals to the metrics that
    support them. Metrics that use classes (``collapse``: class coverage) get the real images' labels:
    ``real_labels`` (one per image, in the source's order), else, unless ``classes=False``, the source's own.
    ``extractor``: an Inception extractor to reuse. Other keywords: see ``Options.build``.
    """
    run = _options(metrics, options, keywords)
    strict = run.metrics is not None
    wanted = run.wanted()
    if real is None and any(not metric.one_set for metric in wanted):
        raise BadInputError("a real set is needed for every metric but the Inception Score")
    extractors = Extractors(run, {"inception": extractor} if extractor is not None else None)
    warnings: list[str] = []
    wanted = usable(wanted, run, extractors, {"real": real, "fake": fake}, strict, warnings)
    labelled: Any = registry.wants_labels(wanted, run.of)
    if real_labels is not None and any(metric.wants_labels for metric in wanted):
        labelled = real_labels
    sides = {
        label: open_side(obj, label, plan(wanted, run, label), extractors, run, labelled if label == "real" else False)
        for obj, label in ((real, "real"), (fake, "fake"))
        if obj is not None
    }
    real_side, fake_side = sides.get("real"), sides["fake"]
    warnings += check_pair(real_side, fake_side, wanted, run.force)
    return evaluate(real_side, fake_side, wanted, run, extractors, strict=strict, warnings=warnings)


def compute_features(
    source: object,
    extractor: InceptionExtractor | None = None,
    cache: bool = True,
    skip_bad: bool = False,
    progress: bool | None = None,
    *,
    inception: bool = True,
    vgg: VGGExtractor | None = None,
    parts: Iterable[str] | None = None,
) -> Features:
    """Features of an image source in one decode pass: the Inception pool3 (with μ, Σ) and, with a
    classifier, its logits; VGG16 fc2 when ``vgg`` (a ``vgg.VGGExtractor``) is given; or exactly the named
    ``parts`` (``inception:spatial``, ``inception:pool_768``…). Cached by content."""
    inception_extractor = extractor or InceptionExtractor()
    run = Options(batch_size=inception_extractor.batch_size, cache=cache, skip_bad=skip_bad, progress=progress)
    given: dict[str, Any] = {"inception": inception_extractor}
    if vgg is not None:
        from .extractors.vgg16 import VGG16Extractor

        given["vgg16"] = VGG16Extractor(network=vgg)
    if parts is None:
        chosen = ([POOL3, LOGITS] if inception_extractor.weights.has_classifier else [POOL3]) if inception else []
        chosen += [VGG_FC2] if vgg is not None else []
    else:
        chosen = list(parts)
    requests = {part: Request(rows=True, moments=True) for part in chosen}
    return _compute_features(
        source, requests, Extractors(run, given), cache=cache, skip_bad=skip_bad, progress=progress
    )


def statistics(
    source: object, *, options: Options | None = None, extractor: InceptionExtractor | None = None, **keywords: Any
) -> Statistics:
    """Reference statistics of an image source for FID: μ (D,), Σ (D, D) of pool3 (or of the pool that
    ``dims`` names), n, provenance (which records the part)."""
    if is_statistics_file(source):
        stats = load_statistics(str(source))
        stats.meta = {**stats.meta, "source": str(source), "kind": "statistics", "n": stats.n}
        return stats
    run = _options(["fid"], options, keywords)
    from .metrics import registry

    fid = registry.get("fid")
    requests = plan([fid], run, "real")
    (part,) = requests
    extractors = Extractors(run, {"inception": extractor} if extractor is not None else None)
    features = _compute_features(
        source, requests, extractors, cache=run.cache, skip_bad=run.skip_bad, progress=run.progress
    )

    def assemble() -> Statistics:
        mu, sigma = features.parts[part].moments()
        meta = dict(features.provenance)
        if part != POOL3:
            meta["part"] = part
        return Statistics(mu, sigma, features.n, meta)

    return distributed.on_root(assemble, share=lambda stats: stats)


def _one(metric: str, real: object | None, fake: object, options: Options | None, keywords: dict[str, Any]) -> Result:
    return score(real, fake, [metric], options=options, **keywords)


def fid(real: object, fake: object, *, options: Options | None = None, **keywords: Any) -> Result:
    """FID between two image sets (or their statistics files); options as ``score`` (``dims`` picks the
    feature layer). Statistics made with other weights or another preprocessing mode are refused
    (IncompatibleStatsError) unless ``force``."""
    return _one("fid", real, fake, options, keywords)


def kid(real: object, fake: object, *, options: Options | None = None, **keywords: Any) -> Result:
    """KID (mean ± std over subsets) between two image sets; options as ``score``."""
    return _one("kid", real, fake, options, keywords)


def inception_score(fake: object, *, options: Options | None = None, **keywords: Any) -> Result:
    """Inception Score (mean ± std over splits) of one image set; needs the full weights with classifier."""
    return _one("is", None, fake, options, keywords)


def precision_recall(real: object, fake: object, *, options: Options | None = None, **keywords: Any) -> Result:
    """Precision, recall (k=3), density and coverage (k=5); options as ``score`` (``pr_features``)."""
    return _one("pr", real, fake, options, keywords)


def swd(real: object, fake: object, *, options: Options | None = None, **keywords: Any) -> Result:
    """Progressive GAN's sliced Wasserstein distance (×1e3, per level and mean); options as ``score``."""
    return _one("swd", real, fake, options, keywords)


def memorization(train: object, fake: object, *, options: Options | None = None, **keywords: Any) -> Result:
    """How close the fakes come to the training set in pool3 space: authpct (Alaa et al. 2022), copy rate
    and its threshold, the median nearest-training distance; ``result.arrays`` holds each fake's nearest
    training image (``nn_index`` into ``real_names``) and distance. Options as ``score``."""
    return _one("authpct", train, fake, options, keywords)


def collapse(real: object, fake: object, *, options: Options | None = None, **keywords: Any) -> Result:
    """Mode-collapse diagnostics: duplicate rate (fakes vs an equal-size real subset), birthday-paradox
    support size and, when the real images have classes, class coverage, KL and per-class FID. Options as
    ``score`` (``classes``, ``real_labels``)."""
    return _one("collapse", real, fake, options, keywords)


def modes(real: object, fake: object, **keywords: Any) -> Result:
    """The old name of ``collapse`` (deprecated; removed in the next release)."""
    import warnings

    warnings.warn("ganeval.modes is deprecated; use ganeval.collapse", DeprecationWarning, stacklevel=2)
    return collapse(real, fake, **keywords)


def parse_metrics(text: str | Sequence[str] | None) -> list[str] | None:
    """``"fid,kid,pr"`` → ["fid", "kid", "pr"]; None or "all" → None (the standard set)."""
    if text is None:
        return None
    items = [part.strip().lower() for part in (text.split(",") if isinstance(text, str) else text) if part.strip()]
    return None if items in (["all"], []) else items
