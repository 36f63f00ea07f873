"""The engine: plan which parts the asked-for metrics need, make one pass over each source for them (decode
→ per-batch fan-out to the extractors → reassembly in source order, also across torchrun ranks →
accumulate → cache), then compute the metrics from the parts and assemble the Result with its provenance.

``score``, the CLI, the leaderboard and ``Evaluator`` all go through here. Decoding runs in a thread pool
a batch ahead of the networks (PIL and torch release the GIL). Memory: the kept feature rows (2048 floats
per image for pool3…), O(D²) running sums, never the decoded images of more than a few batches.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from . import __version__, defaults, distributed
from .cache import load_entry, store_entry
from .device import resolve_device, usable_cpus
from .errors import BadInputError, GanevalError
from .extractors.build import build_extractor
from .extractors.base import Batch, Extractor
from .metrics import registry
from .metrics.registry import Context, Metric, Side
from .options import Options
from .parts import Accumulator, Features, VectorPart, split
from .result import Result
from .sources import ImageSource, class_labels, jpeg_mismatch, open_source
from .stats import check_compatible, is_statistics_file, load_statistics

RECOMMENDED_MIN = defaults.FID_RECOMMENDED_MIN


def progress_enabled(progress: bool | None) -> bool:
    """Progress bars: on when asked, else only when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else progress


@dataclass
class Request:
    """One part asked of a side: its parameters, and whether its rows are kept (else only moments)."""

    params: dict[str, object] = field(default_factory=dict)
    rows: bool = False
    moments: bool = False


def plan(metrics: list[Metric], options: Options, side: str) -> dict[str, Request]:
    """The parts ``metrics`` need from ``side`` ("real" or "fake"): part name → Request."""
    requests: dict[str, Request] = {}
    for metric in metrics:
        for number, need in enumerate(metric.needs(options.of(metric), side, options.seed)):
            request = requests.setdefault(need.part, Request(dict(need.params)))
            if request.params != dict(need.params):
                raise BadInputError(
                    f"{need.part} is asked for with two settings: {request.params} and {dict(need.params)}"
                )
            bootstrapped = options.bootstrap > 0 and metric.statistic is not None and number == 0
            request.rows |= need.rows or bootstrapped
            request.moments |= not need.rows
    return requests


class Extractors:
    """The extractors of one run, each built on first use from the options (``given`` ones are used as
    they are, e.g. an Inception extractor shared by many calls)."""

    def __init__(self, options: Options, given: Mapping[str, Extractor] | None = None) -> None:
        self.options = options
        self.built: dict[str, Extractor] = dict(given or {})
        self.used: set[str] = set()

    def get(self, name: str) -> Extractor:
        if name not in self.built:
            first = next(iter(self.built.values()), None)
            device = getattr(first, "device", None) or self.options.device
            self.built[name] = build_extractor(name, self.options, device)
        return self.built[name]

    @property
    def device(self) -> torch.device:
        """The device of the run's networks (for the metrics' matrix work too)."""
        for extractor in self.built.values():
            device = getattr(extractor, "device", None)
            if isinstance(device, torch.device):
                return device
        return resolve_device(self.options.device)

    def for_parts(self, requests: Mapping[str, Request]) -> dict[str, Extractor]:
        names = {split(part)[0] for part in requests}
        self.used |= names
        return {name: self.get(name) for name in sorted(names)}

    def unavailable(self, part: str) -> str | None:
        """Why ``part`` cannot be produced (e.g. logits without the classifier), or None."""
        extractor = self.get(split(part)[0])
        check = getattr(extractor, "unavailable", None)
        return check(split(part)[1]) if check is not None else None


def entry_key(content: str, part: str, extractor: Extractor, params: Mapping[str, object]) -> str:
    """The cache key (hex) of one part of one source: its content and everything that changes the part."""
    return hashlib.sha256(
        json.dumps(
            {
                "format": "ganeval-part-v2",
                "content": content,
                "part": part,
                "identity": extractor.identity(split(part)[1]),
                "params": dict(params),
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()


def _check_skipped(features: Features, skip_bad: bool) -> None:
    skipped = features.provenance.get("skipped")
    if skipped and not skip_bad:
        assert isinstance(skipped, list)
        more = f" (and {len(skipped) - 1} more unreadable files)" if len(skipped) > 1 else ""
        raise BadInputError(f"{skipped[0]}{more}; pass --skip-bad to skip unreadable files")


def compute_features(
    source: object,
    requests: Mapping[str, Request],
    extractors: Extractors,
    *,
    cache: bool = True,
    skip_bad: bool = False,
    progress: bool | None = None,
) -> Features:
    """The ``requests``ed parts of a source in one decode pass. Parts seen before with the same content and
    settings come from the cache; only the missing ones are computed. ``provenance['cached']`` is True
    when nothing was decoded. In a process group every rank calls this with the same source; the arrays
    are returned on rank 0, the other ranks get the names and provenance only."""
    src = open_source(source)
    by_name = extractors.for_parts(requests)

    def look_up() -> tuple[str, dict[str, str], dict[str, Features], list[str]]:
        content = src.content_key()
        keys = {
            part: entry_key(content, part, by_name[split(part)[0]], request.params)
            for part, request in requests.items()
        }
        found = {part: entry for part, key in keys.items() if cache and (entry := load_entry(key)) is not None}
        for entry in found.values():
            _check_skipped(entry, skip_bad)
        return content, keys, found, [part for part in keys if part not in found]

    content, keys, found, missing = distributed.on_root(look_up, share=lambda plan: (*plan[:2], {}, plan[3]))
    fresh = None
    if missing:
        fresh = extract_parts(
            src,
            {part: requests[part].params for part in missing},
            by_name,
            batch_size=extractors.options.batch_size,
            workers=getattr(by_name.get("inception"), "workers", None),
            skip_bad=skip_bad,
            progress=progress,
            keep_rows=True,
        )

    def merge() -> Features:
        if fresh is not None:
            fresh.provenance.update(content_sha256=content, cached=False)
            for part in missing:
                own = Features(fresh.names, _own_provenance(fresh.provenance, part, by_name), {part: fresh.parts[part]})
                if cache:
                    store_entry(keys[part], part, own)
                found[part] = own
        merged = Features(names=next(iter(found.values())).names if found else [])
        for part in sorted(keys, key=lambda name: split(name)[0] == "inception"):
            merged.provenance.update(found[part].provenance)
            merged.parts[part] = found[part].parts[part]
        merged.provenance.update(source=src.label, cached=not missing)
        return merged

    return distributed.on_root(merge, share=lambda merged: Features(names=merged.names, provenance=merged.provenance))


def _own_provenance(provenance: dict[str, object], part: str, by_name: Mapping[str, Extractor]) -> dict[str, object]:
    """The provenance of one part's cache entry: the source's and its own extractor's, not the others'."""
    others = set()
    for name, extractor in by_name.items():
        if name != split(part)[0]:
            others |= (set(extractor.provenance()) - {"ganeval_version"}) | set(extractor.part_dims())
    own = {k: v for k, v in provenance.items() if k not in others}
    if split(part)[0] != "inception":
        own.setdefault("ganeval_version", __version__)
    return own


@dataclass
class _Shard:
    """What one process extracted: its accumulators, (index, name) of each usable image, and (index,
    message) of each skipped one."""

    accumulators: dict[str, Accumulator]
    names: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def new_accumulators(
    requests: Mapping[str, Mapping[str, object]] | Mapping[str, Request],
    by_name: Mapping[str, Extractor],
    *,
    deferred: bool,
    keep_rows: bool | None = None,
) -> dict[str, Accumulator]:
    """An empty accumulator per part. ``requests``: part → Request (its rows/moments flags) or → params
    (rows and moments both kept, as for a cached source)."""
    out: dict[str, Accumulator] = {}
    for part, request in requests.items():
        name, short = split(part)
        if isinstance(request, Request):
            params, rows, moments = request.params, request.rows, request.moments
        else:
            params, rows, moments = dict(request), True, True
        out[part] = by_name[name].accumulator(
            short, params, keep_rows=rows if keep_rows is None else keep_rows, moments=moments, deferred=deferred
        )
    return out


def run_batch(
    batch: Batch,
    params: Mapping[str, Mapping[str, object]],
    by_name: Mapping[str, Extractor],
    accumulators: Mapping[str, Accumulator],
) -> None:
    """Fan one batch out to every extractor asked for and fold what each returns into its parts'
    accumulators."""
    for name, extractor in by_name.items():
        wanted = {split(part)[1]: part_params for part, part_params in params.items() if split(part)[0] == name}
        if not wanted:
            continue
        values = extractor.run(batch, wanted)
        for short, value in values.items():
            accumulators[f"{name}:{short}"].add(batch.indices, value)


def extract_parts(
    source: ImageSource,
    params: Mapping[str, Mapping[str, object]],
    by_name: Mapping[str, Extractor],
    *,
    batch_size: int,
    workers: int | None = None,
    skip_bad: bool = False,
    progress: bool | None = None,
    keep_rows: bool = True,
) -> Features:
    """One decode pass over ``source`` feeding every extractor of the asked-for ``params`` (part → its
    parameters). A file that cannot be decoded raises BadInputError naming it, or with ``skip_bad`` is
    skipped and listed in ``provenance['skipped']``. Fewer than 2 usable images is an error.

    In a process group each process extracts its share of the batches; the parts are reassembled in source
    order on rank 0, the other ranks get the names and provenance only. Every rank raises the error a single
    process would have raised."""
    if len(source) < 2:
        raise BadInputError(
            f"{source.label}: {len(source)} usable image(s); the metrics need at least 2 (10,000+ recommended)"
        )
    workers = workers if workers is not None else min(4, usable_cpus())
    active = distributed.active()
    accumulators = new_accumulators(params, by_name, deferred=active, keep_rows=keep_rows)
    if active:
        failure: Any
        try:
            shard, failure = (
                _extract_shard(source, params, by_name, accumulators, batch_size, workers, skip_bad, progress),
                None,
            )
        except BadInputError as exc:
            shard, failure = None, (exc.index if exc.index is not None else len(source), exc)
        except Exception as exc:  # noqa: BLE001 - re-raised on every rank below, so no rank waits forever
            shard, failure = None, (len(source), distributed.portable(exc))
        failed = distributed.first_bad(distributed.everywhere(failure))
        if failed is not None:
            raise failed
        assert shard is not None
        summaries = distributed.everywhere((shard.names, shard.skipped))
        shard.names = sorted(item for names, _ in summaries for item in names)
        shard.skipped = sorted(item for _, skipped in summaries for item in skipped)
        gathered = distributed.to_root(shard.accumulators)
        if gathered is not None:
            for other in gathered[1:]:
                for part, accumulator in shard.accumulators.items():
                    accumulator.merge(other[part])
    else:
        shard = _extract_shard(source, params, by_name, accumulators, batch_size, workers, skip_bad, progress)
    names = [name for _, name in shard.names]
    skipped = [message for _, message in shard.skipped]
    if len(names) < 2:
        detail = f" ({len(skipped)} skipped as unreadable)" if skipped else ""
        raise BadInputError(
            f"{source.label}: {len(names)} usable image(s){detail}; the metrics need at least 2 (10,000+ recommended)"
        )
    provenance: dict[str, object] = {
        **source.describe(),
        "n": len(names),
        "skipped": skipped,
        "ganeval_version": __version__,
    }
    for name in sorted(by_name, key=lambda name: name == "inception"):
        if any(split(part)[0] == name for part in params):
            provenance.update(by_name[name].provenance())
    if active:
        provenance["world_size"] = distributed.world_size()
    features = Features(names=names, provenance=provenance)
    if not distributed.is_root():
        return features
    for part, accumulator in shard.accumulators.items():
        features.parts[part] = accumulator.finish()
        info = getattr(accumulator, "info", None)
        if info is not None:  # a part that describes itself (SWD: its resolution and images), under its name
            provenance[split(part)[1]] = info()
    return features


def _extract_shard(
    source: ImageSource,
    params: Mapping[str, Mapping[str, object]],
    by_name: Mapping[str, Extractor],
    accumulators: dict[str, Accumulator],
    batch_size: int,
    workers: int,
    skip_bad: bool,
    progress: bool | None,
) -> _Shard:
    """This process's batches of ``source`` (all of them outside a process group), run through every
    extractor into ``accumulators``."""
    shard = _Shard(accumulators)
    starts = [start for number, start in enumerate(range(0, len(source), batch_size)) if distributed.owns(number)]
    own = sum(min(batch_size, len(source) - start) for start in starts)
    stages = {}
    for name, extractor in by_name.items():
        wanted = {split(part)[1]: p for part, p in params.items() if split(part)[0] == name}
        if wanted and (stage := extractor.per_image(wanted)) is not None:
            stages[name] = stage
    mode = getattr(by_name.get("inception"), "mode", None)
    label = f"extracting {_short(source.label)}" + (
        f" ({mode} mode)" if mode and any(split(part)[0] == "inception" for part in params) else ""
    )
    with tqdm(
        total=own,
        unit="img",
        desc=label,
        file=sys.stderr,
        disable=not progress_enabled(progress) or not distributed.is_root(),
    ) as bar:
        for batch, bad in _decoded_batches(source, starts, batch_size, workers, skip_bad, stages):
            shard.skipped.extend(bad)
            if batch.indices:
                run_batch(batch, params, by_name, accumulators)
                shard.names.extend(zip(batch.indices, batch.names))
            bar.update(len(batch) + len(bad))
    return shard


def _decoded_batches(
    source: ImageSource,
    starts: list[int],
    batch_size: int,
    workers: int,
    skip_bad: bool,
    stages: Mapping[str, Callable[[np.ndarray], Any]],
) -> Iterator[tuple[Batch, list[tuple[int, str]]]]:
    """The batches beginning at ``starts`` with (index, skip message) pairs, decoded by a thread pool two
    batches ahead; the extractors' per-image ``stages`` run in the same threads. An unreadable file's
    BadInputError carries its ``index``."""

    def load(index: int) -> tuple[np.ndarray, dict[str, Any]]:
        image = source.load(index)
        return image, {name: stage(image) for name, stage in stages.items()}

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ganeval-decode") as pool:
        pending: deque[tuple[int, list[tuple[int, Future[tuple[np.ndarray, dict[str, Any]]]]]]] = deque()
        ahead = iter(starts)

        def submit_next() -> None:
            start = next(ahead, None)
            if start is not None:
                stop = min(start + batch_size, len(source))
                pending.append((start, [(i, pool.submit(load, i)) for i in range(start, stop)]))

        for _ in range(3):
            submit_next()
        while pending:
            _, queued = pending.popleft()
            submit_next()
            batch = Batch(indices=[], names=[], images=[], prepared={name: [] for name in stages}, total=len(source))
            bad: list[tuple[int, str]] = []
            for index, future in queued:
                try:
                    image, ready = future.result()
                except BadInputError as exc:
                    if not skip_bad:
                        for _, other in (item for _, waiting in pending for item in waiting):
                            other.cancel()
                        exc.index = index
                        raise
                    bad.append((index, str(exc)))
                    continue
                assert batch.images is not None
                batch.images.append(image)
                for name, value in ready.items():
                    batch.prepared[name].append(value)
                batch.names.append(source.names[index])
                batch.indices.append(index)
            yield batch, bad


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1) :]


# --- sides: a source, a statistics file or a stream, as the metrics see it --------------------------------


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


# --- metrics, bootstrap, provenance -------------------------------------------------------------------------


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
    from .metrics.bootstrap import bootstrap_interval

    if not metrics:
        return {}
    parts = [metric.needs(options.of(metric), "real", options.seed)[0].part for metric in metrics]
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
    "precision",
    "ganeval_version",
)


def provenance(
    extractors: Extractors, real: Side | None, fake: Side, metrics: list[Metric], options: Options, warnings: list[str]
) -> dict[str, object]:
    """The run's provenance: the Inception extractor (when used), the metrics, each side's source."""
    from .weights import nonstandard_warning

    inception = extractors.built.get("inception") if "inception" in extractors.used else None
    described = real.meta if real is not None and real.meta.get("extractor") else fake.meta
    common: dict[str, object] = (
        inception.provenance()
        if inception is not None
        else {k: described[k] for k in _EXTRACTOR_KEYS if described.get(k) is not None}
    )
    common.setdefault("ganeval_version", __version__)
    if common.get("extractor") and not common.get("weights_standard"):
        warnings.insert(0, nonstandard_warning(common.get("weights_sha256")))
    for name in sorted(extractors.used - {"inception"}):
        warning = getattr(extractors.built.get(name), "warning", None)
        if warning:
            warnings.append(warning)
    out: dict[str, object] = {**common, "metrics": sorted(metric.name for metric in metrics)}
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
    """The metrics between the two sides as a Result (computed on rank 0 in a process group; every rank
    gets it)."""

    def finish() -> Result:
        arrays: dict[str, np.ndarray] = {}
        scores, details, done = compute_metrics(
            real, fake, metrics, options, strict=strict, device=extractors.device, warnings=warnings, arrays=arrays
        )
        out = provenance(extractors, real, fake, done if not strict else metrics, options, warnings)
        out.update(details)
        return Result(scores, real.n if real else None, fake.n, out, warnings, arrays)

    return distributed.on_root(finish, share=lambda result: result)


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


def usable(
    metrics: list[Metric],
    options: Options,
    extractors: Extractors,
    sides: Mapping[str, object],
    strict: bool,
    warnings: list[str],
) -> list[Metric]:
    """The metrics that can run on these inputs. A metric whose part cannot be produced (IS without the
    classifier) or that needs images where a side is a statistics file is an error when ``strict``, else
    left out with a warning."""
    kept = []
    for metric in metrics:
        problem: GanevalError | None = None
        for label, obj in sides.items():
            needs = metric.needs(options.of(metric), label, options.seed)
            if obj is None or not needs:
                continue
            if is_statistics_file(obj):
                if not metric.from_statistics:
                    problem = BadInputError(
                        f"{obj} holds only statistics (μ, Σ): {metric.name} need(s) the images; "
                        f"pass the image folder or archive instead"
                    )
                    break
                continue
            reason = next((reason for need in needs if (reason := extractors.unavailable(need.part))), None)
            if reason:
                problem = GanevalError(reason)
                break
        if problem is None:
            kept.append(metric)
        elif strict:
            raise problem
        else:
            warnings.append(f"{metric.title} left out: {problem}")
    return kept
