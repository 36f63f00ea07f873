"""The metric registry, the options object and what is built from them (keys, columns, directions)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import ganeval
from ganeval.errors import BadInputError
from ganeval.leaderboard import store
from ganeval.metrics import registry
from ganeval.options import Options
from ganeval.result import csv_columns

PACKAGE = Path(ganeval.__file__).parent


def test_every_key_is_declared_once_and_the_tables_follow_the_registry() -> None:
    keys = registry.result_keys()
    assert len(keys) == len(set(keys))
    assert registry.standard() == ["fid", "kid", "is", "pr", "swd"]
    assert csv_columns()[: len(keys)] == tuple(keys)
    assert "sfid" in store.METRIC_COLUMNS and "sfid_ci95_low" in store.METRIC_COLUMNS
    assert "swd_levels" not in store.METRIC_COLUMNS and "copies" not in store.METRIC_COLUMNS
    assert set(store.HIGHER_IS_BETTER) == {
        "is",
        "precision",
        "recall",
        "density",
        "coverage",
        "authpct",
        "classes_covered",
    }
    assert "sfid" in store.RANKABLE and "sfid" not in store.HIGHER_IS_BETTER
    keywords = registry.option_keywords()
    assert {
        "dims",
        "kid_subsets",
        "kid_subset_size",
        "is_splits",
        "pr_features",
        "swd_size",
        "swd_images",
        "classes",
    } == set(keywords)


def test_a_new_metric_lives_in_its_own_module() -> None:
    """The registry's acceptance rule: sFID, added through it, is named in its own module only (the CLI command,
    keyword, JSON key, CSV and leaderboard columns come from its registry entry)."""
    found = subprocess.run(
        ["grep", "-rl", "--include=*.py", "sfid", str(PACKAGE)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert sorted(Path(f).relative_to(PACKAGE).as_posix() for f in found) == ["metrics/sfid.py"]


def test_options_are_typed_validated_and_rebuilt_from_keywords() -> None:
    options = Options.build(["fid", "kid"], kid_subsets=7, dims=768, device="auto")
    assert options.device is None and options.metrics == ("fid", "kid")
    assert options.of(registry.get("kid")).subsets == 7 and options.of(registry.get("fid")).dims == 768
    assert Options.build(**options.keywords()) == options
    assert options.replace(seed=3).seed == 3 and options.replace(seed=3).of(registry.get("kid")).subsets == 7
    with pytest.raises(TypeError, match="unknown option 'kid_subset'"):
        Options.build(kid_subset=3)
    with pytest.raises(BadInputError, match="bootstrap must be 0 .* at least 2"):
        Options.build(bootstrap=1)
    with pytest.raises(BadInputError, match="dims must be one of 2048, 768, 192, 64"):
        Options.build(dims=100)
    with pytest.raises(BadInputError, match="kid_subset_size must be at least 2"):
        Options.build(kid_subset_size=1)
    with pytest.raises(BadInputError, match="unknown metric"):
        Options.build(["fid", "nope"])


def test_the_old_metric_name_warns_and_maps_to_the_new_one() -> None:
    registry._WARNED.discard("modes")
    with pytest.warns(DeprecationWarning, match="'modes' is deprecated; use 'collapse'"):
        assert Options.build(["modes"]).metrics == ("collapse",)


def test_bootstrap_of_one_resample_is_a_clear_error_not_an_internal_one(image_dirs) -> None:
    real, fake = image_dirs
    with pytest.raises(BadInputError, match="at least 2 resamples"):
        ganeval.score(real, fake, ["fid"], bootstrap=1)
