"""Planning a run: which parts the asked-for metrics need from each side (rows or only moments), which
extractors make them (built on first use from the options), and which metrics can run on these inputs."""

from __future__ import annotations

import dataclasses

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from ..device import resolve_device
from ..errors import BadInputError, GanevalError
from ..extractors.build import build_extractor, feature_spaces, vector_part
from ..extractors.base import Extractor
from ..metrics.registry import Metric, Need
from ..options import Options
from ..parts import split
from ..stats import is_statistics_file


def progress_enabled(progress: bool | None) -> bool:
    """Progress bars: on when asked, else only when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else progress


@dataclass
class Request:
    """One part asked of a side: its parameters, and whether its rows are kept (else only moments)."""

    params: dict[str, object] = field(default_factory=dict)
    rows: bool = False
    moments: bool = False


def resolve_part(part: str, options: Options) -> str:
    """A part's real name: ``features:vector`` → the run's feature space's vector part, ``NAME:vector`` →
    extractor NAME's (``vgg16:vector`` → ``vgg16:fc2``); other names unchanged."""
    extractor, short = split(part)
    if extractor == "features":
        extractor = options.features
    if short != "vector":
        return f"{extractor}:{short}"
    try:
        return vector_part(extractor)
    except KeyError:
        raise BadInputError(
            f"features {extractor!r}: no such feature space; choose from {', '.join(feature_spaces())}"
        ) from None


def needs_of(metric: Metric, options: Options, side: str) -> list[Need]:
    """What ``metric`` needs from ``side`` ("real" or "fake"), its parts resolved (``resolve_part``)."""
    return [
        dataclasses.replace(need, part=resolve_part(need.part, options))
        for need in metric.needs(options.of(metric), side, options.seed)
    ]


def plan(metrics: list[Metric], options: Options, side: str) -> dict[str, Request]:
    """The parts ``metrics`` need from ``side`` ("real" or "fake"): part name → Request."""
    requests: dict[str, Request] = {}
    for metric in metrics:
        for number, need in enumerate(needs_of(metric, options, side)):
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
    kept: list[Metric] = []
    only_statistics: dict[str, list[str]] = {}
    for metric in metrics:
        problem: GanevalError | None = None
        for label, obj in sides.items():
            needs = needs_of(metric, options, label)
            if obj is None or not needs:
                continue
            if is_statistics_file(obj):
                if not metric.from_statistics:
                    only_statistics.setdefault(str(obj), []).append(metric.name)
                    problem = GanevalError()
                    break
                continue
            reason = next((reason for need in needs if (reason := extractors.unavailable(need.part))), None)
            if reason:
                problem = GanevalError(reason)
                if strict:
                    raise problem
                warnings.append(f"{metric.title} left out: {problem}")
                break
        if problem is None:
            kept.append(metric)
    for path, names in only_statistics.items():
        message = (
            f"{path} holds only statistics (μ, Σ): {', '.join(names)} need(s) the images; pass the image folder "
            f"or archive instead"
        )
        if strict:
            raise BadInputError(message)
        warnings.append(f"left out: {message}")
    return kept
