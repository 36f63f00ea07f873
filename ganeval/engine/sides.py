"""The two sides of a comparison as the metrics see them: an image source's parts, or a statistics file's
moments, with class labels when asked for; and what to warn about when comparing them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import BadInputError
from ..metrics.registry import Metric, Side
from ..options import Options
from ..parts import VectorPart
from ..sources import class_labels, jpeg_mismatch, open_source
from ..stats import check_compatible, is_statistics_file, load_statistics
from .one_pass import compute_features
from .planning import Extractors, Request


def statistics_side(path: object, label: str, requests: Mapping[str, Request]) -> Side:
    """A side from a statistics .npz: the moments of its one part. A metric that needs another part, or
    rows, is refused with a line saying what to do."""
    stats = load_statistics(str(path))
    part = str(stats.meta.get("part") or "inception:pool3")
    meta = {**stats.meta, "source": str(path), "kind": "statistics", "n": stats.n}
    for wanted, request in requests.items():
        if wanted != part:
            raise BadInputError(
                f"{path} holds statistics of {part} ({stats.mu.shape[0]}-d) and {wanted} was asked "
                f"for: compute them again for it (ganeval stats ... --dims) or pass the images"
            )
        if request.rows:
            raise BadInputError(
                f"{path} holds only statistics (μ, Σ); this needs the images: pass the image folder or archive instead"
            )
    return Side(label, stats.n, {part: VectorPart(int(stats.n or 0), mu=stats.mu, sigma=stats.sigma)}, meta)


def source_side(
    obj: object,
    label: str,
    requests: Mapping[str, Request],
    extractors: Extractors,
    options: Options,
    classes: bool | np.ndarray | list[object] = False,
) -> Side:
    """A side from images (the parts in ``requests``). ``classes``: True to attach the source's class
    labels when it has them (class subfolders, a named dataset), or the labels themselves (one per image)."""
    src = open_source(obj)
    features = compute_features(
        src, requests, extractors, cache=options.cache, skip_bad=options.skip_bad, progress=options.progress
    )
    meta = dict(features.provenance)
    meta["names"] = features.names
    side = Side(label, features.n, features.parts, meta)
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


def open_side(
    obj: object,
    label: str,
    requests: Mapping[str, Request],
    extractors: Extractors,
    options: Options,
    classes: bool | np.ndarray | list[object] = False,
) -> Side:
    """A statistics file or an image source as a Side."""
    if is_statistics_file(obj):
        return statistics_side(obj, label, requests)
    return source_side(obj, label, requests, extractors, options, classes)


def check_pair(real: Side | None, fake: Side, metrics: list[Metric], force: bool) -> list[str]:
    """Warnings (or, unless ``force``, IncompatibleStatsError) about comparing these two sides."""
    warnings: list[str] = []
    if real is None:
        return warnings
    names_real, names_fake = real.meta.get("names"), fake.meta.get("names")
    if (
        isinstance(names_real, list)
        and isinstance(names_fake, list)
        and (mismatch := jpeg_mismatch(names_real, names_fake))
    ):
        warnings.append(mismatch)
    if any(metric.from_statistics for metric in metrics):
        warnings += check_compatible(
            real.meta, fake.meta, f"real ({real.meta.get('source')})", f"fake ({fake.meta.get('source')})", force
        )
    return warnings
