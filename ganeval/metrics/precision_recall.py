"""Precision, recall (Kynkäänniemi et al. 2019, k = 3), density and coverage (Naeem et al. 2020, k = 5) as a
registered metric, on Inception pool3 or on VGG16 fc2 (the published protocol). The maths is ``prdc``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..parts import split
from .prdc import precision_recall_density_coverage
from .registry import Context, Key, Metric, Need, Row, default_row, option, register


@dataclass(frozen=True)
class PROptions:
    features: str | None = option(
        None,
        "Feature space for precision/recall/density/coverage (default: --features, Inception pool3): inception, "
        "or vgg16 (VGG16 fc2, the published protocol; needs torchvision's VGG16 weights).",
        keyword="pr_features",
    )


def _needs(options: PROptions, side: str, seed: int) -> tuple[Need, ...]:
    return (Need(f"{options.features or 'features'}:vector"),)


def _compute(context: Context) -> dict[str, object]:
    (part,) = context.parts
    features = split(part)[0]
    prdc = precision_recall_density_coverage(
        context.reference.rows(part),
        context.fake.rows(part),
        seed=context.seed,
        device=context.device,
        progress=context.progress,
    )
    context.details["pr_features"] = features
    context.details["pr"] = {
        "features": features,
        "k_pr": prdc.k_pr,
        "k_dc": prdc.k_dc,
        "n": prdc.n,
        "subsampled": prdc.subsampled,
        "seed": context.seed,
        **{k: v for k, v in context.reference.meta.items() if str(k).startswith("pr_")},
    }
    return {"precision": prdc.precision, "recall": prdc.recall, "density": prdc.density, "coverage": prdc.coverage}


def _text(scores: Mapping[str, Any], provenance: Mapping[str, Any], n_fake: int | None) -> list[Row]:
    if "precision" not in scores:
        return []
    rows = [default_row(key, scores, key) for key in ("precision", "recall", "density", "coverage")]
    if provenance.get("pr_features"):
        rows[0] = (*rows[0][:2], f"({provenance['pr_features']} features)")
    return rows


PR = register(
    Metric(
        name="pr",
        title="precision/recall",
        order=40,
        progress_unit="blocks",
        standard=True,
        command="pr",
        options=PROptions,
        keys=(
            Key("precision", "higher", plot=True),
            Key("recall", "higher", plot=True),
            Key("density", "higher"),
            Key("coverage", "higher"),
        ),
        needs=_needs,
        compute=_compute,
        text=_text,
        doc="Precision and recall (k=3), density and coverage (k=5) between REAL and FAKE.",
    )
)
