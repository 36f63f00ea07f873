"""The public functions: features of an image set, and every metric between two sets from one pass each.

Either side may be a folder, a .zip, a .npy/.npz of uint8 images, a uint8 array/tensor, or (for FID) a
statistics .npz. Each source is decoded once; the decoded batches feed the Inception network, the SWD
descriptor sampler and (for ``pr_features="vgg16"``) VGG16 together. Every part is cached by content (see
``cache``), so scoring new fakes against the same real folder decodes the real images only once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from . import __version__, defaults, distributed
from .cache import features_key, load_part, part_key, store_part
from .errors import BadInputError, GanevalError
from .features import Features
from .metrics.fid import PSDFactor, frechet_distance
from .pipeline import DEFAULT_BATCH_SIZE, Extractor, progress_enabled
from .preprocess import DEFAULT_MODE
from .result import Result
from .sources import ImageSource, class_labels, jpeg_mismatch, open_source
from .stats import Statistics, check_compatible, is_statistics_file, load_statistics
from .weights import HOW_TO_GET_FULL, nonstandard_warning

RECOMMENDED_MIN = defaults.FID_RECOMMENDED_MIN
PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class SWDOptions:
    """How SWD descriptors are sampled: the seed, an optional common size (pixels) and the image cap."""

    seed: int = defaults.SEED
    size: int | None = None
    max_images: int = defaults.SWD_IMAGES

    def indices(self, n: int) -> set[int] | None:
        """The image indices used for SWD out of ``n``: all (None) up to the cap, else a seeded subset."""
        if n <= self.max_images:
            return None
        rng = np.random.default_rng([self.seed, 0x5D])
        return {int(i) for i in rng.choice(n, self.max_images, replace=False)}

    def params(self, n: int) -> dict[str, object]:
        from .metrics import swd

        return {"seed": self.seed, "size": self.size, "max_images": self.max_images if n > self.max_images else None,
                "nhood": swd.NHOOD_SIZE, "per_image": swd.NHOODS_PER_IMAGE}


def compute_features(source: object, extractor: Extractor, cache: bool = True, skip_bad: bool = False,
                     progress: bool | None = None, *, inception: bool = True, swd: SWDOptions | None = None,
                     vgg: object | None = None) -> Features:
    """Features of an image source (path, array or tensor) in one decode pass: the Inception part
    (pool3, logits, μ, Σ), SWD descriptors when ``swd`` is given and VGG16 fc2 features when ``vgg`` (a
    ``VGGExtractor``) is given. Parts seen before with the same content and settings come from the cache;
    only the missing parts are computed, in one pass. ``provenance['cached']`` is True when nothing was
    decoded. In a process group (``distributed``) every rank must call this with the same source; the
    arrays are returned on rank 0, the other ranks get the names and provenance only."""
    src = open_source(source)

    def look_up() -> tuple[str, dict[str, str], dict[str, Features], list[str]]:
        content = src.content_key()
        keys: dict[str, str] = {}
        if inception:
            keys["inception"] = features_key(content, extractor.provenance(), extractor.mode)
        if swd is not None:
            keys["swd"] = part_key("swd", content, swd.params(len(src)))
        if vgg is not None:
            from .vgg import PREPROCESS_ID

            keys["vgg"] = part_key("vgg", content, {"weights_sha256": vgg.weights.sha256,  # type: ignore[attr-defined]
                                                    "preprocess": PREPROCESS_ID, "layer": "fc2_relu"})
        found = {part: entry for part, key in keys.items() if cache and (entry := load_part(part, key)) is not None}
        for entry in found.values():
            skipped = entry.provenance.get("skipped")
            if skipped and not skip_bad:
                more = f" (and {len(skipped) - 1} more unreadable files)" if len(skipped) > 1 else ""
                raise BadInputError(f"{skipped[0]}{more}; pass --skip-bad to skip unreadable files")
        return content, keys, found, [part for part in keys if part not in found]

    # In a process group rank 0 reads the cache and decides; every rank extracts its share of what is missing.
    content, keys, found, missing = distributed.on_root(look_up, share=lambda plan: (*plan[:2], {}, plan[3]))
    fresh = _extract(src, extractor, skip_bad, progress, missing, swd, vgg) if missing else None

    def merge() -> Features:
        if fresh is not None:
            fresh.provenance.update(content_sha256=content, cached=False)
            inception_keys = set(extractor.provenance()) - {"ganeval_version"} if "inception" in missing else set()
            for part in missing:
                own = fresh if part == "inception" else _without(fresh, inception_keys)
                if cache:
                    store_part(part, keys[part], own)
                found[part] = own
        merged = Features(names=next(iter(found.values())).names) if found else Features(names=[])
        for part in sorted(keys, key=lambda name: name == "inception"):
            entry = found[part]
            merged.provenance.update(entry.provenance)
            if part == "inception":
                merged.pool3, merged.logits_unbiased = entry.pool3, entry.logits_unbiased
                merged.mu, merged.sigma = entry.mu, entry.sigma
            elif part == "swd":
                merged.swd = entry.swd
            else:
                merged.vgg = entry.vgg
        merged.provenance.update(source=src.label, cached=not missing)
        return merged

    return distributed.on_root(merge, share=lambda merged: Features(names=merged.names,
                                                                     provenance=merged.provenance))


def _without(features: Features, keys: set[str]) -> Features:
    """The same arrays with provenance ``keys`` (the Inception extractor's) left out: an SWD or VGG part
    must not carry the description of a network that did not make it."""
    return Features(names=features.names, provenance={k: v for k, v in features.provenance.items() if k not in keys},
                    swd=features.swd, vgg=features.vgg)


def _extract(src: ImageSource, extractor: Extractor, skip_bad: bool, progress: bool | None, parts: list[str],
             swd: SWDOptions | None, vgg: object | None) -> Features:
    sampler = None
    if "swd" in parts and swd is not None:
        from .metrics.swd import DescriptorSampler

        sampler = DescriptorSampler(seed=swd.seed, size=swd.size)
    features = extractor.extract(src, skip_bad=skip_bad, progress=progress, inception="inception" in parts,
                                 swd=sampler, swd_indices=swd.indices(len(src)) if sampler and swd else None,
                                 vgg=vgg if "vgg" in parts else None)  # type: ignore[arg-type]
    if sampler is not None and swd is not None:
        resolution = list(sampler.resolution) if sampler.resolution else None
        features.provenance["swd"] = {"seed": swd.seed, "size": swd.size, "resolution": resolution,
                                      "images": sampler.n_images}
    if "vgg" in parts and vgg is not None:
        features.provenance.update(vgg.provenance())  # type: ignore[attr-defined]
    return features


@dataclass
class _Side:
    """One side of a comparison: its features (some parts), or only statistics from a file."""

    label: str
    features: Features
    n: int | None
    meta: dict[str, object] = field(default_factory=dict)
    factor: PSDFactor | None = None  # psd_factor(Σ), kept by callers that compare against this side often
    labels: tuple[np.ndarray, list[object], str] | None = None  # class labels (N,), classes, their origin


def _open_side(obj: object, label: str, needs: set[str], get_extractor, cache: bool, skip_bad: bool,
               progress: bool | None, swd: SWDOptions, get_vgg, classes: bool | Sequence[object] = False) -> _Side:
    """One side's features (the parts in ``needs``). ``classes``: True to attach the source's class labels
    when it has them (class subfolders, a named dataset), or the labels themselves (one per image)."""
    if is_statistics_file(obj):
        stats = load_statistics(obj)  # type: ignore[arg-type]
        meta = {**stats.meta, "source": str(obj), "kind": "statistics", "n": stats.n}
        return _Side(label, Features(names=[], provenance=meta, mu=stats.mu, sigma=stats.sigma), stats.n, meta)
    src = open_source(obj)
    features = compute_features(src, get_extractor(), cache=cache, skip_bad=skip_bad, progress=progress,
                                inception="inception" in needs, swd=swd if "swd" in needs else None,
                                vgg=get_vgg() if "vgg" in needs else None)
    side = _Side(label, features, features.n, dict(features.provenance))
    if classes is True:
        side.labels = class_labels(src, features.names)
    elif classes is not False:
        given = np.asarray(classes)
        if given.shape != (len(src),):
            raise BadInputError(f"{label}: {given.shape[0] if given.ndim else 0} labels for {len(src)} images")
        position = {name: i for i, name in enumerate(src.names)}
        kept = given[[position[name] for name in features.names]]
        side.labels = kept, sorted(set(kept.tolist())), "labels given"
    if side.labels is not None:
        side.meta["classes"] = side.labels[2]
    return side


def _needs(metrics: set[str], pr_features: str, side: str) -> set[str]:
    parts = set()
    if (metrics & {"fid", "kid", "authpct", "modes"} or ("pr" in metrics and pr_features == "inception")
            or ("is" in metrics and side == "fake")):
        parts.add("inception")
    if "pr" in metrics and pr_features == "vgg16":
        parts.add("vgg")
    if "swd" in metrics:
        parts.add("swd")
    return parts


def score(real: object | None, fake: object, *, metrics: Iterable[str] | None = None, seed: int = defaults.SEED,
          mode: str = DEFAULT_MODE, weights: PathLike | None = None, device: str | torch.device | None = None,
          batch_size: int = DEFAULT_BATCH_SIZE, cache: bool = True, skip_bad: bool = False, force: bool = False,
          progress: bool | None = None, extractor: Extractor | None = None,
          kid_subsets: int = defaults.KID_SUBSETS, kid_subset_size: int = defaults.KID_SUBSET_SIZE,
          is_splits: int = defaults.IS_SPLITS, pr_features: str = "inception", vgg_weights: PathLike | None = None,
          swd_size: int | None = None, swd_images: int = defaults.SWD_IMAGES,
          bootstrap: int = defaults.BOOTSTRAP, classes: bool = True,
          real_labels: Sequence[object] | np.ndarray | None = None, precision: str = "fp32") -> Result:
    """Every asked-for metric between ``real`` and ``fake`` from one decode pass over each set.

    ``metrics``: names from ``defaults.METRICS`` (``pr`` = precision, recall, density, coverage; ``authpct``
    and ``modes`` the memorisation and mode-collapse diagnostics, with ``real`` as the training set); None
    means all of ``defaults.STANDARD_METRICS``, where a metric that cannot be computed (IS without the
    classifier, KID/PR/SWD against a statistics file) is left out with a warning; a metric named explicitly
    that cannot be computed is an error. ``real`` may be None when only ``is`` is asked for. Random choices
    all derive from ``seed``. ``bootstrap`` > 0 adds 95% intervals for FID and KID from that many seeded
    resamples of the features. ``modes`` adds class coverage when the real images have class labels:
    ``real_labels`` (one per image, in the source's order), else, unless ``classes`` is False, the
    source's own (first-level class subfolders, or a named dataset such as ``"fashion-mnist"``).
    ``precision``: the Inception forward's arithmetic, "fp32" (the standard) or a faster non-standard one
    (``device.PRECISIONS``), recorded in the provenance.
    """
    strict = metrics is not None
    wanted = set(defaults.STANDARD_METRICS if metrics is None else metrics)
    unknown = wanted - set(defaults.METRICS)
    if unknown or not wanted:
        raise BadInputError(f"unknown metric(s) {', '.join(sorted(unknown)) or '(none given)'}; choose from "
                            f"{', '.join(defaults.METRICS)}")
    if pr_features not in defaults.PR_FEATURES:
        raise BadInputError(f"pr_features must be one of {', '.join(defaults.PR_FEATURES)}, got {pr_features!r}")
    if real is None and wanted != {"is"}:
        raise BadInputError("a real set is needed for every metric but the Inception Score")
    if bootstrap < 0:
        raise BadInputError(f"bootstrap must be 0 or more resamples, got {bootstrap}")
    built: list[Extractor] = [extractor] if extractor else []
    vggs: list[object] = []

    def get_extractor() -> Extractor:
        if not built:
            built.append(Extractor(weights=weights, mode=mode, device=device, batch_size=batch_size, precision=precision))
        return built[0]

    def get_vgg() -> object:
        if not vggs:
            from .vgg import VGGExtractor

            vggs.append(VGGExtractor(weights=vgg_weights, device=get_extractor().device))
        return vggs[0]

    warnings: list[str] = []
    if "is" in wanted and not is_statistics_file(fake):
        has_classifier = get_extractor().weights.has_classifier
        if not has_classifier:
            message = f"the Inception Score needs the Inception classifier, which the weights in use lack: {HOW_TO_GET_FULL}"
            if strict:
                raise GanevalError(message)
            warnings.append(f"IS left out: {message}")
            wanted.discard("is")
    swd_options = SWDOptions(seed=seed, size=swd_size, max_images=swd_images)
    given = [(obj, label) for obj, label in ((real, "real"), (fake, "fake")) if obj is not None]
    for obj, label in given:
        needs_features = [m for m in sorted(wanted)
                          if is_statistics_file(obj) and m != "fid" and not (m == "is" and label == "real")]
        if needs_features:
            message = (f"{obj} holds only statistics (μ, Σ): {', '.join(needs_features)} need(s) the images; pass "
                       f"the image folder or archive instead")
            if strict:
                raise BadInputError(message)
            warnings.append(f"left out: {message}")
            wanted -= set(needs_features)
    labelled: bool | Sequence[object] = False
    if "modes" in wanted:
        labelled = classes if real_labels is None else real_labels
    sides = [_open_side(obj, label, _needs(wanted, pr_features, label), get_extractor, cache, skip_bad, progress,
                        swd_options, get_vgg, labelled if label == "real" else False) for obj, label in given]
    real_side = sides[0] if real is not None else None
    fake_side = sides[-1]

    if real_side is not None and (mismatch := jpeg_mismatch(real_side.features.names, fake_side.features.names)):
        warnings.append(mismatch)
    if real_side is not None and "fid" in wanted:
        warnings += check_compatible(real_side.meta, fake_side.meta, f"real ({real_side.meta.get('source')})",
                                     f"fake ({fake_side.meta.get('source')})", force)

    def finish() -> Result:
        arrays: dict[str, np.ndarray] = {}
        scores, details = compute_metrics(real_side, fake_side, wanted, strict=strict, seed=seed,
                                          kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                                          is_splits=is_splits, pr_features=pr_features, swd_images=swd_images,
                                          bootstrap=bootstrap, device=get_extractor().device, warnings=warnings,
                                          progress=progress, get_vgg=get_vgg, arrays=arrays)
        uses_inception = "inception" in _needs(wanted, pr_features, "fake")
        provenance = _provenance(built[0] if built and uses_inception else None, real_side, fake_side, wanted,
                                 warnings)
        provenance.update(details)
        return Result(scores, real_side.n if real_side else None, fake_side.n, provenance, warnings, arrays)

    # In a process group the features are on rank 0: it computes, and every rank returns its Result.
    return distributed.on_root(finish, share=lambda result: result)


def compute_metrics(real_side: _Side | None, fake_side: _Side, wanted: set[str], *, strict: bool, seed: int,
                    kid_subsets: int, kid_subset_size: int, is_splits: int, pr_features: str, swd_images: int,
                    bootstrap: int, device: torch.device, warnings: list[str], progress: bool | None,
                    get_vgg: Callable[[], object], arrays: dict[str, np.ndarray] | None = None
                    ) -> tuple[dict[str, object], dict[str, object]]:
    """The ``wanted`` metrics between two sides whose needed parts are present, in a fixed key order, and
    their parameters for the provenance. A metric that fails on the data (ValueError) is an error when
    ``strict``, else left out (removed from ``wanted``) with a warning appended to ``warnings``. Per-image
    results (each fake's nearest real image and distance, its kNN class) go into ``arrays`` when given."""
    arrays = {} if arrays is None else arrays
    scores: dict[str, object] = {}
    details: dict[str, object] = {"seed": seed}
    bar = tqdm(desc="metrics", unit="metric", disable=not progress_enabled(progress))

    def report(name: str, unit: str) -> Callable[[int, int], None]:
        return lambda done, total: bar.set_postfix_str(f"{name} {done}/{total} {unit}")

    def compute_kid() -> None:
        from .metrics.kid import kernel_inception_distance

        kid = kernel_inception_distance(real_side.features.pool3, fake_side.features.pool3, subsets=kid_subsets,
                                        subset_size=kid_subset_size, seed=seed)
        scores.update(kid=kid.mean, kid_std=kid.std)
        details["kid"] = {"subsets": kid.subsets, "subset_size": kid.subset_size, "seed": seed}
        if kid.capped:
            warnings.append(f"KID subset size capped from {kid_subset_size} to {kid.subset_size} (the smaller set's size)")

    def compute_is() -> None:
        from .metrics.inception_score import inception_score

        logits = fake_side.features.logits_unbiased
        if logits is None:
            raise GanevalError(f"the Inception Score needs the Inception classifier: {HOW_TO_GET_FULL}")
        result = inception_score(logits, splits=is_splits, seed=seed)
        scores.update({"is": result.mean, "is_std": result.std})
        details["is"] = {"splits": result.splits, "seed": seed, "n": len(logits)}

    def compute_pr() -> None:
        from .metrics.prdc import precision_recall_density_coverage

        attr = "pool3" if pr_features == "inception" else "vgg"
        prdc = precision_recall_density_coverage(getattr(real_side.features, attr), getattr(fake_side.features, attr),
                                                 seed=seed, device=device, progress=report("pr", "blocks"))
        scores.update(precision=prdc.precision, recall=prdc.recall, density=prdc.density, coverage=prdc.coverage)
        details["pr_features"] = pr_features
        details["pr"] = {"features": pr_features, "k_pr": prdc.k_pr, "k_dc": prdc.k_dc, "n": prdc.n,
                         "subsampled": prdc.subsampled, "seed": seed,
                         **{k: v for k, v in real_side.meta.items() if str(k).startswith("pr_")}}
        if pr_features == "vgg16" and (vgg_warning := get_vgg().weights.warning):  # type: ignore[attr-defined]
            warnings.append(vgg_warning)

    computations = {
        "fid": lambda: scores.update(fid=_fid(real_side, fake_side)),
        "kid": compute_kid,
        "is": compute_is,
        "pr": compute_pr,
        "swd": lambda: scores.update(_swd(real_side, fake_side, seed, swd_images, details, warnings, device,
                                          report("swd", "levels"))),
        "authpct": lambda: scores.update(_memorization(real_side, fake_side, device, details, arrays)),
        "modes": lambda: scores.update(_modes(real_side, fake_side, seed, device, details, warnings, arrays)),
    }
    todo = [name for name in computations if name in wanted and (real_side is not None or name == "is")]
    with bar:
        bar.reset(total=len(todo))
        for name in todo:
            bar.set_postfix_str(_NAMES[name])
            try:
                computations[name]()
            except ValueError as exc:
                if strict:
                    raise BadInputError(f"{_NAMES[name]}: {exc}") from None
                warnings.append(f"{_NAMES[name]} left out: {exc}")
                wanted.discard(name)
            bar.update(1)
    if bootstrap and real_side is not None and wanted & {"fid", "kid"}:
        scores.update(_bootstrap(real_side, fake_side, wanted, bootstrap, seed, kid_subsets, kid_subset_size,
                                 details, warnings, progress))
    return {key: scores[key] for key in _KEY_ORDER if key in scores}, details


_NAMES = {"fid": "FID", "kid": "KID", "is": "IS", "pr": "precision/recall", "swd": "SWD", "authpct": "memorisation",
          "modes": "mode collapse"}
_KEY_ORDER = ("fid", "fid_ci95", "kid", "kid_std", "kid_ci95", "is", "is_std", "precision", "recall", "density",
              "coverage", "swd", "swd_levels", "authpct", "copy_rate", "copy_threshold", "copies", "nn_distance_median",
              "duplicate_rate", "duplicate_rate_real", "duplicate_threshold", "support_estimate", "support_batch_size",
              "classes_covered", "classes_total", "class_kl", "class_histogram", "real_class_histogram", "class_fid")


def _memorization(train: _Side, fake: _Side, device: torch.device, details: dict[str, object],
                  arrays: dict[str, np.ndarray]) -> dict[str, object]:
    """Authenticity, copy rate and nearest-training distances of the fakes in pool3 space."""
    from .metrics.diagnostics import authenticity

    result = authenticity(train.features.pool3, fake.features.pool3, device=device)  # type: ignore[arg-type]
    arrays.update(nn_distance=result.nn_distance, nn_index=result.nn_index,
                  real_names=np.array(train.features.names, dtype=str),
                  fake_names=np.array(fake.features.names, dtype=str))
    details["authpct"] = {"features": "pool3", "n_train": train.n, "n_fake": fake.n,
                          "copy_threshold": "1st percentile of training leave-one-out NN distances"}
    return {"authpct": result.authpct, "copy_rate": result.copy_rate, "copy_threshold": result.copy_threshold,
            "copies": int(len(result.copies)), "nn_distance_median": result.nn_distance_median}


def _modes(real: _Side, fake: _Side, seed: int, device: torch.device, details: dict[str, object],
           warnings: list[str], arrays: dict[str, np.ndarray]) -> dict[str, object]:
    """Duplicate rates, the birthday-paradox support size and, when the real side has labels, class coverage
    with per-class FID."""
    from .metrics.diagnostics import class_coverage, duplicates, support_size

    x, y = real.features.pool3, fake.features.pool3
    dup = duplicates(y, x, seed=seed, device=device)  # type: ignore[arg-type]
    support = support_size(y, dup.threshold, seed=seed, draws=defaults.SUPPORT_DRAWS, device=device)  # type: ignore[arg-type]
    out: dict[str, object] = {"duplicate_rate": dup.duplicate_rate, "duplicate_rate_real": dup.duplicate_rate_real,
                              "duplicate_threshold": dup.threshold, "support_estimate": support.support_estimate,
                              "support_batch_size": support.batch_size_at_half}
    if support.support_estimate is None:
        largest = max(support.probabilities) if support.probabilities else fake.n
        warnings.append(f"support size: fewer than half of the batches of {largest} fakes hold a near-duplicate, so "
                        f"the support exceeds about {largest}² = {largest * largest:,} (more fakes would bound it)")
    details["modes"] = {"seed": seed, "duplicate_threshold": "1st percentile of real pair distances",
                        "real_subset": dup.n_real_subset, "support_draws": support.draws,
                        "support_probabilities": {str(s): p for s, p in support.probabilities.items()},
                        "classes": real.labels[2] if real.labels else None}
    if real.labels is None:
        return out
    labels, classes, _ = real.labels
    coverage = class_coverage(x, labels, y, k=defaults.COVERAGE_K, classes=classes, device=device)  # type: ignore[arg-type]
    arrays["fake_labels"] = coverage.fake_labels
    class_fid: dict[str, float | None] = {}
    for name in classes:
        rows_real, rows_fake = x[labels == name], y[coverage.fake_labels == name]  # type: ignore[index]
        small = min(len(rows_real), len(rows_fake)) < defaults.CLASS_FID_MIN
        class_fid[str(name)] = None if small else _fid_of_rows(rows_real, rows_fake)
    details["modes"].update(coverage_k=coverage.k, class_fid_min=defaults.CLASS_FID_MIN)  # type: ignore[union-attr]
    if any(v is None for v in class_fid.values()):
        warnings.append(f"per-class FID is left out (null) for classes with fewer than {defaults.CLASS_FID_MIN} real "
                        f"or fake images")
    out.update(classes_covered=coverage.classes_covered, classes_total=coverage.classes_total,
               class_kl=coverage.class_kl,
               class_histogram={str(k): v for k, v in coverage.class_histogram.items()},
               real_class_histogram={str(k): v for k, v in coverage.real_histogram.items()}, class_fid=class_fid)
    return out


def _fid_of_rows(x: np.ndarray, y: np.ndarray) -> float:
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    return frechet_distance(x64.mean(0), np.cov(x64, rowvar=False), y64.mean(0), np.cov(y64, rowvar=False))


def _fid(real: _Side, fake: _Side) -> float:
    if real.features.mu is None or fake.features.mu is None:
        raise GanevalError("FID needs pool3 statistics on both sides")
    if real.features.mu.shape != fake.features.mu.shape:
        raise BadInputError(f"real ({real.meta.get('source')}) has {real.features.mu.shape[0]}-d statistics and fake "
                            f"({fake.meta.get('source')}) {fake.features.mu.shape[0]}-d; both must be pool3 (2048-d)")
    return frechet_distance(real.features.mu, real.features.sigma, fake.features.mu, fake.features.sigma,
                            factor1=real.factor)


def _swd(real: _Side, fake: _Side, seed: int, swd_images: int, details: dict[str, object], warnings: list[str],
         device: torch.device, progress: Callable[[int, int], None]) -> dict[str, object]:
    from .metrics.swd import PROTOCOL_IMAGES, sliced_wasserstein_distance

    real_info, fake_info = real.meta.get("swd") or {}, fake.meta.get("swd") or {}
    if real_info.get("resolution") != fake_info.get("resolution"):  # type: ignore[union-attr]
        raise BadInputError(f"SWD compares images of one resolution: real ({real.meta.get('source')}) is "
                            f"{_size(real_info)} and fake ({fake.meta.get('source')}) {_size(fake_info)}; pass "
                            f"--swd-size to resize both")
    size = min(real_info["resolution"])  # type: ignore[index]
    resolutions = [size >> level for level in range(len(real.features.swd or []))]
    result = sliced_wasserstein_distance(real.features.swd, fake.features.swd, seed=seed,  # type: ignore[arg-type]
                                         resolutions=resolutions, device=device, progress=progress)
    details["swd"] = {"seed": seed, "resolutions": list(result.resolutions),
                      "images_real": real_info.get("images"), "images_fake": fake_info.get("images"),  # type: ignore[union-attr]
                      "size": real_info.get("size"), "descriptors_per_level": result.n_descriptors,  # type: ignore[union-attr]
                      "subsampled": result.subsampled}
    for info, label in ((real_info, "real"), (fake_info, "fake")):
        images = int(info.get("images") or 0)  # type: ignore[union-attr]
        if images < PROTOCOL_IMAGES:
            warnings.append(f"SWD: {label} has {images} images (< {PROTOCOL_IMAGES:,}, the Progressive GAN protocol); "
                            f"values are noisier and not comparable with published tables")
    if swd_images != PROTOCOL_IMAGES:
        warnings.append(f"SWD uses at most {swd_images} images per set instead of the protocol's {PROTOCOL_IMAGES:,}")
    return {"swd": result.mean, "swd_levels": list(result.levels)}


def _size(info: object) -> str:
    resolution = info.get("resolution") if isinstance(info, dict) else None
    return "×".join(str(v) for v in resolution) if isinstance(resolution, (list, tuple)) else str(resolution)


def _bootstrap(real: _Side, fake: _Side, wanted: set[str], resamples: int, seed: int, kid_subsets: int,
               kid_subset_size: int, details: dict[str, object], warnings: list[str],
               progress: bool | None) -> dict[str, object]:
    """95% percentile intervals of FID and KID over ``resamples`` seeded resamples (with replacement) of both
    pool3 feature sets."""
    from .metrics.bootstrap import bootstrap_interval
    from .metrics.kid import kernel_inception_distance

    if real.features.pool3 is None or fake.features.pool3 is None:
        warnings.append("--bootstrap needs features on both sides (a statistics file has none): no intervals")
        return {}
    names = [name for name in ("fid", "kid") if name in wanted]

    with tqdm(total=resamples, desc="bootstrap", unit="resample", disable=not progress_enabled(progress)) as bar:
        def statistic(x: np.ndarray, y: np.ndarray) -> list[float]:
            values = []
            if "fid" in names:
                values.append(_fid_of_rows(x, y))
            if "kid" in names:
                values.append(kernel_inception_distance(x, y, subsets=kid_subsets, subset_size=kid_subset_size,
                                                        seed=seed).mean)
            bar.update(1)
            return values

        result = bootstrap_interval(real.features.pool3, fake.features.pool3, statistic, resamples=resamples, seed=seed)
    details["bootstrap"] = {"resamples": resamples, "seed": seed, "interval": "95% percentile"}
    return {f"{name}_ci95": [float(result.low[i]), float(result.high[i])] for i, name in enumerate(names)}


_SIDE_KEYS = ("source", "kind", "n", "content_sha256", "cached", "skipped", "ignored_files", "mode", "weights_sha256",
              "precision")


def _provenance(extractor: Extractor | None, real: _Side | None, fake: _Side, wanted: set[str],
                warnings: list[str]) -> dict[str, object]:
    described = real.meta if real is not None and real.meta.get("extractor") else fake.meta
    common: dict[str, object] = extractor.provenance() if extractor else {k: described[k] for k in (
        "extractor", "weights_sha256", "weights_source", "weights_standard", "mode", "precision", "ganeval_version")
        if described.get(k) is not None}
    common.setdefault("ganeval_version", __version__)
    if common.get("extractor") and not common.get("weights_standard"):
        warnings.insert(0, nonstandard_warning(common.get("weights_sha256")))
    provenance: dict[str, object] = {**common, "metrics": sorted(wanted)}
    if distributed.active():
        provenance["world_size"] = distributed.world_size()
    for side in (real, fake):
        if side is None:
            continue
        if side.meta.get("ignored_files"):
            warnings.append(f"{side.label}: {side.meta['ignored_files']} non-image or hidden files in "
                            f"{side.meta.get('source')} were ignored")
        if "fid" in wanted and side.n is not None and side.n <= RECOMMENDED_MIN:
            warnings.append(f"{side.label} has {side.n} images (<= {RECOMMENDED_MIN}): its covariance is rank-deficient "
                            f"and FID is biased upwards; use 10,000+ images for numbers comparable with papers")
        provenance[side.label] = {k: side.meta.get(k) for k in _SIDE_KEYS if k in side.meta}
    return provenance


def statistics(source: object, *, mode: str = DEFAULT_MODE, weights: PathLike | None = None,
               device: str | torch.device | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
               cache: bool = True, skip_bad: bool = False, progress: bool | None = None,
               extractor: Extractor | None = None, precision: str = "fp32") -> Statistics:
    """Reference statistics (μ (2048,), Σ (2048, 2048), n, provenance) of an image source."""
    if is_statistics_file(source):
        stats = load_statistics(source)  # type: ignore[arg-type]
        stats.meta = {**stats.meta, "source": str(source), "kind": "statistics", "n": stats.n}
        return stats
    extractor = extractor or Extractor(weights=weights, mode=mode, device=device, batch_size=batch_size,
                                       precision=precision)
    features = compute_features(source, extractor, cache=cache, skip_bad=skip_bad, progress=progress)
    return distributed.on_root(lambda: Statistics(features.mu, features.sigma, features.n,  # type: ignore[arg-type]
                                                  dict(features.provenance)), share=lambda stats: stats)


def fid(real: object, fake: object, **options: object) -> Result:
    """FID between two image sets (or their statistics files); options as ``score``. Statistics made with
    other weights or another preprocessing mode are refused (IncompatibleStatsError) unless ``force``."""
    return score(real, fake, metrics=["fid"], **options)  # type: ignore[arg-type]


def kid(real: object, fake: object, **options: object) -> Result:
    """KID (mean ± std over subsets) between two image sets; options as ``score``."""
    return score(real, fake, metrics=["kid"], **options)  # type: ignore[arg-type]


def inception_score(fake: object, **options: object) -> Result:
    """Inception Score (mean ± std over splits) of one image set; needs the full weights with classifier."""
    return score(None, fake, metrics=["is"], **options)  # type: ignore[arg-type]


def precision_recall(real: object, fake: object, **options: object) -> Result:
    """Precision, recall (k=3), density and coverage (k=5); options as ``score`` (``pr_features``)."""
    return score(real, fake, metrics=["pr"], **options)  # type: ignore[arg-type]


def swd(real: object, fake: object, **options: object) -> Result:
    """Progressive GAN's sliced Wasserstein distance (×1e3, per level and mean); options as ``score``."""
    return score(real, fake, metrics=["swd"], **options)  # type: ignore[arg-type]


def memorization(train: object, fake: object, **options: object) -> Result:
    """How close the fakes come to the training set in pool3 space: authpct (Alaa et al. 2022), copy rate
    and its threshold, the median nearest-training distance; ``result.arrays`` holds each fake's nearest
    training image (``nn_index`` into ``real_names``) and distance. Options as ``score``."""
    return score(train, fake, metrics=["authpct"], **options)  # type: ignore[arg-type]


def modes(real: object, fake: object, **options: object) -> Result:
    """Mode-collapse diagnostics: duplicate rate (fakes vs an equal-size real subset), birthday-paradox
    support size and, when the real images have classes, class coverage, KL and per-class FID. Options as
    ``score`` (``classes``, ``real_labels``)."""
    return score(real, fake, metrics=["modes"], **options)  # type: ignore[arg-type]


def parse_metrics(text: str | Sequence[str] | None) -> list[str] | None:
    """``"fid,kid,pr"`` → ["fid", "kid", "pr"]; None or "all" → None (all metrics)."""
    if text is None:
        return None
    items = [part.strip().lower() for part in (text.split(",") if isinstance(text, str) else text) if part.strip()]
    return None if items in (["all"], []) else items
