"""The metric registry: every metric declared once, next to its maths.

A ``Metric`` says its name, the result keys it produces and their direction (higher or lower is better,
for sorting and the leaderboard), the parts it needs from each side (``inception:pool3``,
``pixels:swd``…, rows or only moments), its options (a frozen dataclass whose fields carry help, bounds
and their keyword), and how it computes from those parts (a ``Context``). The CLI's commands and flags,
``score``'s keywords, ``Evaluator``, ``Result`` keys and CSV columns, the leaderboard's columns and sort
directions and the text table all read this registry; nothing else lists metric names.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ..parts import VectorPart

Better = Literal["higher", "lower"]
Row = tuple[str, str, str]
"""One line of the text table: label, value, spread or note."""


@dataclass(frozen=True)
class Key:
    """A result key. ``better``: its direction when it ranks (None: not a ranking quantity). ``kind``:
    scalar, interval ([low, high]: leaderboard columns ``_low``/``_high``), list or dict (JSON only).
    ``column``: whether the leaderboard keeps it."""

    name: str
    better: Better | None = None
    kind: Literal["scalar", "interval", "list", "dict"] = "scalar"
    column: bool = True
    decimals: int = 4
    integer: bool = False
    plot: bool = False
    """Drawn by the leaderboard's ``--plot`` unless other metrics are asked for."""


@dataclass(frozen=True)
class Need:
    """A part a metric needs from one side: its rows, or only its moments (μ, Σ); ``params`` key the part
    (SWD's seed, size and image cap)."""

    part: str
    rows: bool = True
    params: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class NoOptions:
    """A metric without options of its own."""


def option(
    default: Any,
    help: str,
    *,
    keyword: str | None = None,
    min: int | None = None,
    choices: tuple[Any, ...] | None = None,
    recorded_at_default: bool = True,
) -> Any:
    """A field of a metric's options dataclass: ``keyword`` is its name in ``score(...)`` and (as
    ``--key-word``) on the command line (default ``<metric>_<field>``); ``min``/``choices`` bound it.
    ``recorded_at_default=False`` (an option added after its metric): a leaderboard setup records it only
    when changed, so setups made before it existed keep their id."""
    return field(
        default=default,
        metadata={
            "help": help,
            "keyword": keyword,
            "min": min,
            "choices": choices,
            "recorded_at_default": recorded_at_default,
        },
    )


@dataclass
class Side:
    """One side's data as a metric sees it: its parts (``VectorPart`` or the part's own type), image
    count, provenance, and class labels ((N,) labels, the classes, where they came from) when known."""

    label: str
    n: int | None
    parts: dict[str, Any]
    meta: dict[str, object] = field(default_factory=dict)
    labels: tuple[np.ndarray, list[object], str] | None = None
    factors: dict[str, Any] = field(default_factory=dict)
    """Per part, a square-root factor of Σ kept by callers that compare against this side often."""

    def vector(self, part: str) -> VectorPart:
        value = self.parts.get(part)
        if not isinstance(value, VectorPart):
            raise ValueError(f"{self.label} has no {part} features")
        return value

    def rows(self, part: str) -> np.ndarray:
        rows = self.vector(part).rows
        if rows is None:
            raise ValueError(f"{self.label} has only statistics of {part}, the metric needs its rows")
        return rows


@dataclass
class Context:
    """What a metric computes from: both sides (``real`` None for a one-set metric), its options, the
    seed, the torch device for heavy matrix work, and where it reports: ``warnings``, ``details`` (its
    provenance entry), ``arrays`` (per-image results) and ``progress(done, total)``; ``parts``: the parts
    it asked for, by their real names."""

    real: Side | None
    fake: Side
    options: Any
    seed: int
    device: torch.device
    warnings: list[str] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    progress: Callable[[int, int], None] = lambda done, total: None
    parts: tuple[str, ...] = ()
    """The parts of its ``needs`` with their real names (``features:vector`` resolved)."""

    @property
    def reference(self) -> Side:
        if self.real is None:
            raise ValueError("a real set is needed")
        return self.real


@dataclass(frozen=True)
class Metric:
    """One metric's declaration (see the module docstring).

    needs(options, side, seed) → the parts it needs from side "real" or "fake". compute(context) → its
    values (keys among ``keys``). order: its place among the result keys. statistic: (real rows, fake
    rows, options, seed) → its value on resampled rows of its first need, for bootstrap intervals (key
    ``<name>_ci95``). text: the table rows of its values,
    when the default (title, value, ± ``<name>_std``, ``<name>_ci95``) does not fit."""

    name: str
    title: str
    keys: tuple[Key, ...]
    needs: Callable[[Any, str, int], tuple[Need, ...]]
    compute: Callable[[Context], dict[str, object]]
    order: float = 100.0
    options: type = NoOptions
    doc: str = ""
    standard: bool = False
    one_set: bool = False
    from_statistics: bool = False
    command: str | None = None
    aliases: tuple[str, ...] = ()
    """Old names, accepted with a deprecation warning."""
    synonyms: tuple[str, ...] = ()
    """Other names, accepted silently (``fd`` for ``fid`` in any feature space)."""
    progress_unit: str = "steps"
    """What ``context.progress(done, total)`` counts, for the progress bar."""
    statistic: Callable[[np.ndarray, np.ndarray, Any, int], float] | None = None
    text: Callable[[Mapping[str, Any], Mapping[str, Any], int | None], list[Row]] | None = None
    lines: Callable[[Mapping[str, Any]], list[str]] | None = None
    """Extra lines under the table (a per-class breakdown)."""
    wants_labels: Callable[[Any], bool] | None = None
    """(its options) → whether it uses the real side's class labels (``Side.labels``)."""

    def option_fields(self) -> list[tuple[str, dataclasses.Field[Any]]]:
        """(keyword, field) of each of its options."""
        return [(f.metadata.get("keyword") or f"{self.name}_{f.name}", f) for f in dataclasses.fields(self.options)]

    def rows(self, scores: Mapping[str, Any], provenance: Mapping[str, Any], n_fake: int | None) -> list[Row]:
        """Its lines of the text table (none when it was not computed)."""
        if self.name not in scores and not self.text:
            return []
        if self.text is not None:
            return self.text(scores, provenance, n_fake)
        row = default_row(self.title, scores, self.name)
        space = provenance.get("features")
        if space and space != "inception" and self.in_any_space():
            row = (*row[:2], " ".join(filter(None, (row[2], f"({space} features)"))))
        return [row]

    def in_any_space(self) -> bool:
        """Whether it works in the run's feature space (``--features``) with its default options."""
        needs = self.needs(self.options(), "fake", 0)
        return any(need.part.startswith("features:") or need.part.endswith(":vector") for need in needs)


def default_row(title: str, scores: Mapping[str, Any], key: str) -> Row:
    """``TITLE: value  ± std, 95% CI [low, high]`` of ``scores[key]``, with its key's decimals."""
    spec = keys_by_name().get(key)
    decimals = spec.decimals if spec is not None else 4
    spread = []
    if f"{key}_std" in scores:
        spread.append(f"± {scores[f'{key}_std']:.{decimals}f}")
    if f"{key}_ci95" in scores:
        low, high = scores[f"{key}_ci95"]
        spread.append(f"95% CI [{low:.{decimals}f}, {high:.{decimals}f}]")
    return f"{title}:", f"{scores[key]:.{decimals}f}", ", ".join(spread)


_METRICS: dict[str, Metric] = {}
_ALIASES: dict[str, str] = {}
_SYNONYMS: dict[str, str] = {}
_WARNED: set[str] = set()
_LOADED: list[bool] = []


def register(metric: Metric) -> Metric:
    """Add ``metric`` (its module calls this once, at import). The same module executed again (a reload, a
    copy) keeps the first entry; another metric of the same name is an error."""
    old = _METRICS.get(metric.name)
    if old is not None:
        if _source(old) != _source(metric):
            raise ValueError(f"metric {metric.name!r} is registered twice")
        return old
    if metric.name in _ALIASES or metric.name in _SYNONYMS:
        raise ValueError(f"metric {metric.name!r} is registered twice")
    _METRICS[metric.name] = metric
    for alias in metric.aliases:
        _ALIASES[alias] = metric.name
    for synonym in metric.synonyms:
        _SYNONYMS[synonym] = metric.name
    return metric


def _source(metric: Metric) -> str:
    """The file that declares ``metric``."""
    code = getattr(metric.compute, "__code__", None)
    return code.co_filename if code is not None else repr(metric.compute)


def _load() -> None:
    """Import every module of ``ganeval.metrics`` once: each registers its metrics."""
    if _LOADED:
        return
    import importlib
    import pkgutil

    from .. import metrics

    for module in pkgutil.iter_modules(metrics.__path__):
        importlib.import_module(f"{metrics.__name__}.{module.name}")
    _LOADED.append(True)


def all_metrics() -> list[Metric]:
    """Every metric, in the order of the result keys."""
    _load()
    return sorted(_METRICS.values(), key=lambda metric: metric.order)


def names() -> list[str]:
    return [metric.name for metric in all_metrics()]


def standard() -> list[str]:
    """What ``--metrics all`` computes."""
    return [metric.name for metric in all_metrics() if metric.standard]


def canonical(name: str) -> str:
    """The metric's name for ``name``, a synonym or an old alias of it (which warns once); unknown names
    unchanged."""
    _load()
    name = name.strip().lower()
    if name in _SYNONYMS:
        return _SYNONYMS[name]
    if name in _ALIASES:
        new = _ALIASES[name]
        if name not in _WARNED:
            _WARNED.add(name)
            warnings.warn(f"metric name {name!r} is deprecated; use {new!r}", DeprecationWarning, stacklevel=3)
        return new
    return name


def get(name: str) -> Metric:
    """The metric named ``name`` (or an alias); KeyError when unknown."""
    return _METRICS[canonical(name)]


def result_keys() -> list[str]:
    """Every result key, in the order results, JSON and CSV show them."""
    return [key.name for metric in all_metrics() for key in metric.keys]


def keys_by_name() -> dict[str, Key]:
    return {key.name: key for metric in all_metrics() for key in metric.keys}


def option_keywords() -> dict[str, tuple[Metric, str]]:
    """Every metric option's keyword → (metric, field name)."""
    return {keyword: (metric, f.name) for metric in all_metrics() for keyword, f in metric.option_fields()}


def wants_labels(metrics: list[Metric], options_of: Callable[[Metric], Any]) -> bool:
    """Whether any of ``metrics`` (with their options) uses the real side's class labels."""
    return any(metric.wants_labels is not None and metric.wants_labels(options_of(metric)) for metric in metrics)


def leaderboard_columns() -> list[str]:
    """The leaderboard's metric columns in order: scalar keys, intervals as ``_low``/``_high``."""
    columns: list[str] = []
    for key in keys_by_name().values():
        if key.column and key.kind == "scalar":
            columns.append(key.name)
        elif key.column and key.kind == "interval":
            columns += [f"{key.name}_low", f"{key.name}_high"]
    return columns


def rankable() -> list[str]:
    """The keys a leaderboard can sort by (those with a direction)."""
    return [key.name for key in keys_by_name().values() if key.better]


def higher_is_better(key: str) -> bool:
    return keys_by_name()[key].better == "higher"


def format_value(key: str, value: Any) -> str:
    """A value of ``key`` as text: integers for counts, else its declared decimals (4 unless said)."""
    spec = keys_by_name().get(key)
    if spec is not None and spec.integer:
        return f"{int(value)}"
    return f"{float(value):.{spec.decimals if spec is not None else 4}f}"


def headline(names: list[str]) -> str:
    """The column a leaderboard of these metrics ranks by by default: the first ranking key of the first of
    them in registry order (FID when it is computed)."""
    first = min((get(name) for name in names), key=lambda metric: metric.order)
    return next(key.name for key in first.keys if key.better)


def plotted() -> list[str]:
    """The keys ``--plot`` draws by default."""
    return [key.name for key in keys_by_name().values() if key.plot]
