"""The one pass over a source: the parts' cache lookup, then decode (a thread pool a batch ahead of the
networks; PIL and torch release the GIL) → per-batch fan-out to the extractors (``run_batch``, which the
Evaluator's ``update`` calls too) → accumulators → reassembly in source order across torchrun ranks →
cache. Memory: the kept feature rows, O(D²) running sums, never the decoded images of more than a few
batches."""

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
from tqdm import tqdm

from .. import __version__, distributed
from ..cache import FORMAT, load_entry, store_entry
from ..device import usable_cpus
from ..errors import BadInputError
from ..extractors.base import Batch, Extractor
from ..parts import Accumulator, Features, split
from ..sources import ImageSource, open_source
from .planning import Extractors, Request, progress_enabled


def entry_key(content: str, part: str, extractor: Extractor, params: Mapping[str, object]) -> str:
    """The cache key (hex) of one part of one source: its content and everything that changes the part."""
    return hashlib.sha256(
        json.dumps(
            {
                "format": FORMAT,
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
        merged.provenance["identities"] = {
            part: by_name[split(part)[0]].identity(split(part)[1]) for part in sorted(keys)
        }
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
