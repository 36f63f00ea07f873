"""Planning a run: which parts the asked-for metrics need from each side (rows or only moments), which
extractors make them (built on first use from the options), and which metrics can run on these inputs."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from ..device import resolve_device
from ..errors import BadInputError, GanevalError
from ..extractors.build import build_extractor
from ..extractors.base import Extractor
from ..metrics.registry import Metric
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
