"""Memorisation as a registered metric (``authpct``): authenticity (Alaa et al. 2022), the copy rate and
the median nearest-training distance of the fakes in pool3 space, with each fake's nearest training
image in the result's arrays. The maths is ``diagnostics.authenticity``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..parts import POOL3
from .diagnostics import authenticity
from .registry import Context, Key, Metric, Need, Row, register


def _compute(context: Context) -> dict[str, object]:
    train, fake = context.reference, context.fake
    result = authenticity(train.rows(POOL3), fake.rows(POOL3), device=context.device)
    context.arrays.update(
        nn_distance=result.nn_distance,
        nn_index=result.nn_index,
        real_names=np.array(train.meta.get("names") or [], dtype=str),
        fake_names=np.array(fake.meta.get("names") or [], dtype=str),
    )
    context.details["authpct"] = {
        "features": "pool3",
        "n_train": train.n,
        "n_fake": fake.n,
        "copy_threshold": "1st percentile of training leave-one-out NN distances",
    }
    return {
        "authpct": result.authpct,
        "copy_rate": result.copy_rate,
        "copy_threshold": result.copy_threshold,
        "copies": int(len(result.copies)),
        "nn_distance_median": result.nn_distance_median,
    }


def _text(s: Mapping[str, Any], provenance: Mapping[str, Any], n_fake: int | None) -> list[Row]:
    if "authpct" not in s:
        return []
    return [
        ("authpct:", f"{s['authpct']:.2f}", "% of fakes authentic (Alaa et al. 2022)"),
        (
            "copy rate:",
            f"{s['copy_rate']:.4f}",
            f"{s['copies']} of {n_fake} fakes closer than {s['copy_threshold']:.4f}",
        ),
        ("NN distance:", f"{s['nn_distance_median']:.4f}", "median, fake to nearest training image"),
    ]


AUTHPCT = register(
    Metric(
        name="authpct",
        title="memorisation",
        order=60,
        command="memorization",
        keys=(
            Key("authpct", "higher"),
            Key("copy_rate", "lower"),
            Key("copy_threshold", column=False),
            Key("copies", column=False),
            Key("nn_distance_median"),
        ),
        needs=lambda options, side, seed: (Need(POOL3),),
        compute=_compute,
        text=_text,
        doc="How close FAKE comes to copying TRAIN, in Inception pool3 space: authpct (the percentage of fakes farther "
        "from their nearest training image than that image is from its own nearest neighbour), the copy rate (fakes "
        "closer than the 1st percentile of TRAIN's leave-one-out distances) and the median distance.",
    )
)
