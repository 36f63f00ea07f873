"""ganeval.defaults is the one table of defaults: the metric modules read it instead of repeating its values."""

from __future__ import annotations

import importlib.util
import inspect
import typing
from pathlib import Path
from types import ModuleType

import pytest

import ganeval.metrics

from ganeval import defaults
from ganeval.result import Result

_CHANGED = {"PR_K": 7, "DC_K": 9, "SEED": 11, "SWD_IMAGES": 123}


def _fresh(module: str) -> ModuleType:
    """A new, unregistered copy of ``ganeval.metrics.<module>`` executed from its source now."""
    spec = importlib.util.spec_from_file_location(
        f"ganeval.metrics.{module}", Path(ganeval.metrics.__file__).with_name(f"{module}.py")
    )
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy


def test_metric_defaults_follow_the_defaults_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changed in the table before the metric modules are executed, the values show up in their signatures
    and constants: they are read from ganeval.defaults, not repeated as literals."""
    for name, value in _CHANGED.items():
        monkeypatch.setattr(defaults, name, value)
    prdc, swd = _fresh("prdc"), _fresh("swd")
    params = inspect.signature(prdc.precision_recall_density_coverage).parameters
    assert (params["k_pr"].default, params["k_dc"].default, params["seed"].default) == (7, 9, 11)
    assert (swd.PROTOCOL_IMAGES, swd.DEFAULT_SEED) == (123, 11)
    assert inspect.signature(swd.sliced_wasserstein_distance).parameters["seed"].default == 11


def test_metric_defaults_are_the_table_values() -> None:
    from ganeval.metrics import prdc, swd

    params = inspect.signature(prdc.precision_recall_density_coverage).parameters
    assert params["k_pr"].default == defaults.PR_K
    assert params["k_dc"].default == defaults.DC_K
    assert params["seed"].default == defaults.SEED
    assert (swd.PROTOCOL_IMAGES, swd.DEFAULT_SEED) == (defaults.SWD_IMAGES, defaults.SEED)


def test_result_item_type_admits_lists_and_dicts() -> None:
    """A score can be a list or a dict (per-class FID, histograms): ``Result[key]`` is not typed as float."""
    assert typing.get_type_hints(Result.__getitem__)["return"] is typing.Any
