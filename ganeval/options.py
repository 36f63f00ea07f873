"""One typed, validated options object for a run: built once — by the CLI from its flags, by the API from
keyword arguments — and read by the engine, the Evaluator and the leaderboard.

The run's own settings are fields here; each metric's options are its own frozen dataclass (declared
next to its maths, see ``metrics.registry``), kept in ``metric_options`` by metric name. Defaults come
from ``defaults`` and the metrics' declarations, so the CLI and the API cannot drift.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import defaults
from .device import NUMERICS
from .errors import BadInputError
from .extractors.build import features_weights_target
from .metrics import registry
from .metrics.registry import Metric
from .preprocess import DEFAULT_MODE, MODES

DEFAULT_BATCH_SIZE = 50
DINOV2_RESIZE = ("pil", "torch")
PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Options:
    """Everything that changes a run. metrics: names (None: the standard set). precision: the networks'
        arithmetic ("fp32" is the standard; see ``device.NUMERICS``). bootstrap: resamples for 95% intervals
        (0: none). features: the extractor whose vector part FD, KD and PRDC use (``inception`` = pool3, the
    standard; ``vgg16`` = fc2; ``dinov2``, ``clip-vit-b-32``…: docs/feature-spaces.md). features_weights: a weights
    file for that network (or for CMMD's CLIP). dinov2_resize: ``pil`` (dgm-eval's) or ``torch`` (EDM2's
    default). metric_options: metric name → that metric's options dataclass."""

    metrics: tuple[str, ...] | None = None
    seed: int = defaults.SEED
    mode: str = DEFAULT_MODE
    weights: PathLike | None = None
    vgg_weights: PathLike | None = None
    device: Any = None
    batch_size: int = DEFAULT_BATCH_SIZE
    precision: str = "fp32"
    cache: bool = True
    skip_bad: bool = False
    force: bool = False
    progress: bool | None = None
    bootstrap: int = defaults.BOOTSTRAP
    features: str = "inception"
    features_weights: PathLike | None = None
    dinov2_resize: str = "pil"
    metric_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metrics is not None:
            names = tuple(registry.canonical(name) for name in self.metrics if name.strip())
            unknown = [name for name in names if name not in registry.names()]
            if unknown or not names:
                raise BadInputError(
                    f"unknown metric(s) {', '.join(sorted(unknown)) or '(none given)'}; choose from "
                    f"{', '.join(registry.names())}"
                )
            object.__setattr__(self, "metrics", tuple(dict.fromkeys(names)))
        if self.mode not in MODES:
            raise BadInputError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.precision not in NUMERICS:
            raise BadInputError(f"precision must be one of {', '.join(NUMERICS)}, got {self.precision!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise BadInputError(f"batch_size must be at least 1, got {self.batch_size}")
        if not isinstance(self.bootstrap, int) or self.bootstrap < 0 or self.bootstrap == 1:
            raise BadInputError(f"bootstrap must be 0 (none) or at least 2 resamples, got {self.bootstrap}")
        if self.dinov2_resize not in DINOV2_RESIZE:
            raise BadInputError(f"dinov2_resize must be one of {', '.join(DINOV2_RESIZE)}, got {self.dinov2_resize!r}")
        if self.device == "auto":
            object.__setattr__(self, "device", None)
        complete = {
            metric.name: _metric_options(metric, self.metric_options.get(metric.name))
            for metric in registry.all_metrics()
        }
        object.__setattr__(self, "metric_options", complete)
        features_weights_target(self)

    @classmethod
    def build(cls, metrics: Iterable[str] | str | None = None, **keywords: Any) -> Options:
        """Options from flat keywords: the fields above and every metric option by its keyword
        (``kid_subsets=50``, ``dims=768``, ``pr_features="vgg16"``…). An unknown keyword is a TypeError."""
        if isinstance(metrics, str):
            metrics = [metrics]
        own = {f.name for f in dataclasses.fields(cls)} - {"metrics", "metric_options"}
        index = registry.option_keywords()
        common: dict[str, Any] = {}
        per_metric: dict[str, dict[str, Any]] = {}
        for keyword, value in keywords.items():
            if keyword in own:
                common[keyword] = value
            elif keyword in index:
                metric, name = index[keyword]
                per_metric.setdefault(metric.name, {})[name] = value
            else:
                raise TypeError(f"unknown option {keyword!r}; options are {', '.join(sorted(own | set(index)))}")
        return cls(
            metrics=tuple(metrics) if metrics is not None else None,
            **common,
            metric_options={name: values for name, values in per_metric.items()},
        )

    def replace(self, **keywords: Any) -> Options:
        """A copy with some flat keywords changed (as ``build`` takes them)."""
        flat = {**self.keywords(), **keywords}
        metrics = flat.pop("metrics", self.metrics)
        return Options.build(metrics, **flat)

    def keywords(self) -> dict[str, Any]:
        """The flat keywords that rebuild these options."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "metric_options"}
        for keyword, (metric, name) in registry.option_keywords().items():
            out[keyword] = getattr(self.metric_options[metric.name], name)
        return out

    def of(self, metric: Metric) -> Any:
        """``metric``'s options."""
        return self.metric_options[metric.name]

    def wanted(self) -> list[Metric]:
        """The metrics asked for (the standard set when None), in registry order."""
        names = set(self.metrics) if self.metrics is not None else set(registry.standard())
        return [metric for metric in registry.all_metrics() if metric.name in names]


def _metric_options(metric: Metric, given: Any) -> Any:
    """``metric``'s options from a dataclass instance, a mapping of field values or None, checked against
    each field's declared bounds."""
    if isinstance(given, metric.options):
        values = given
    else:
        try:
            values = metric.options(**dict(given or {}))
        except TypeError as exc:
            raise BadInputError(f"{metric.name}: {exc}") from None
    for keyword, f in metric.option_fields():
        value, meta = getattr(values, f.name), f.metadata
        if value is None and f.default is None:
            continue
        kind = str if "str" in str(f.type) else int if f.default is None else type(f.default)
        if kind is str and not isinstance(value, str):
            raise BadInputError(f"{keyword} must be a name, got {value!r}")
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise BadInputError(f"{keyword} must be an integer, got {value!r}")
        if meta.get("min") is not None and value < meta["min"]:
            raise BadInputError(f"{keyword} must be at least {meta['min']}, got {value}")
        if meta.get("choices") and value not in meta["choices"]:
            raise BadInputError(f"{keyword} must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")
    return values
