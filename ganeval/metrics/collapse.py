"""Mode collapse as a registered metric (``collapse``; ``modes`` until the next release): the fakes'
near-duplicate rate next to an equal-size real subset, the birthday-paradox support size and, when the
real images have class labels, class coverage, KL(real ‖ fake) and per-class FID. The maths is
``diagnostics``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import defaults
from ..parts import POOL3
from .diagnostics import class_coverage, duplicates, support_size
from .fid import fid_of_rows
from .registry import Context, Key, Metric, Need, Row, option, register


@dataclass(frozen=True)
class CollapseOptions:
    classes: bool = option(
        True,
        "Use REAL's class labels (class subfolders, a named dataset) for class coverage.",
        keyword="classes",
        recorded_at_default=False,
    )


def _compute(context: Context) -> dict[str, object]:
    real, fake, seed, device = context.reference, context.fake, context.seed, context.device
    x, y = real.rows(POOL3), fake.rows(POOL3)
    dup = duplicates(y, x, seed=seed, device=device)
    support = support_size(y, dup.threshold, seed=seed, draws=defaults.SUPPORT_DRAWS, device=device)
    out: dict[str, object] = {
        "duplicate_rate": dup.duplicate_rate,
        "duplicate_rate_real": dup.duplicate_rate_real,
        "duplicate_threshold": dup.threshold,
        "support_estimate": support.support_estimate,
        "support_batch_size": support.batch_size_at_half,
    }
    if support.support_estimate is None:
        largest = max(support.probabilities) if support.probabilities else int(fake.n or 0)
        context.warnings.append(
            f"support size: fewer than half of the batches of {largest} fakes hold a near-duplicate, "
            f"so the support exceeds about {largest}² = {largest * largest:,} (more fakes would "
            f"bound it)"
        )
    details: dict[str, object] = {
        "seed": seed,
        "duplicate_threshold": "1st percentile of real pair distances",
        "real_subset": dup.n_real_subset,
        "support_draws": support.draws,
        "support_probabilities": {str(s): p for s, p in support.probabilities.items()},
        "classes": real.labels[2] if real.labels else None,
    }
    context.details["modes"] = details
    if real.labels is None:
        return out
    labels, classes, _ = real.labels
    coverage = class_coverage(x, labels, y, k=defaults.COVERAGE_K, classes=classes, device=device)
    context.arrays["fake_labels"] = coverage.fake_labels
    class_fid: dict[str, float | None] = {}
    for name in classes:
        rows_real, rows_fake = x[labels == name], y[coverage.fake_labels == name]
        small = min(len(rows_real), len(rows_fake)) < defaults.CLASS_FID_MIN
        class_fid[str(name)] = None if small else fid_of_rows(rows_real, rows_fake)
    details.update(coverage_k=coverage.k, class_fid_min=defaults.CLASS_FID_MIN)
    if any(v is None for v in class_fid.values()):
        context.warnings.append(
            f"per-class FID is left out (null) for classes with fewer than {defaults.CLASS_FID_MIN} real or fake images"
        )
    out.update(
        classes_covered=coverage.classes_covered,
        classes_total=coverage.classes_total,
        class_kl=coverage.class_kl,
        class_histogram={str(k): v for k, v in coverage.class_histogram.items()},
        real_class_histogram={str(k): v for k, v in coverage.real_histogram.items()},
        class_fid=class_fid,
    )
    return out


def _text(s: Mapping[str, Any], provenance: Mapping[str, Any], n_fake: int | None) -> list[Row]:
    rows: list[Row] = []
    if "duplicate_rate" in s:
        rows.append(
            (
                "duplicate rate:",
                f"{s['duplicate_rate']:.6f}",
                f"real subset {s['duplicate_rate_real']:.6f}, pairs closer than {s['duplicate_threshold']:.4f}",
            )
        )
        support = s.get("support_estimate")
        rows.append(
            (
                "support size:",
                "n/a" if support is None else f"{support:,}",
                "no batch size reached p = 1/2"
                if support is None
                else f"batch size {s['support_batch_size']} gives a duplicate with p >= 1/2",
            )
        )
    if "classes_covered" in s:
        rows.append(
            (
                "classes covered:",
                f"{s['classes_covered']}/{s['classes_total']}",
                f"KL(real || fake) {s['class_kl']:.4f} nats",
            )
        )
    return rows


def class_table(scores: Mapping[str, Any]) -> list[str]:
    """The per-class lines under the table: fakes' and real shares, per-class FID."""
    fake, real = scores.get("class_histogram"), scores.get("real_class_histogram")
    if not isinstance(fake, dict) or not isinstance(real, dict):
        return []
    fids = scores.get("class_fid") or {}
    width = max(len("class"), *(len(str(name)) for name in real))
    lines = [f"{'class':<{width}}  {'fakes':>7}  {'real':>7}  {'FID':>9}"]
    for name, share in real.items():
        fid = fids.get(name)
        lines.append(
            f"{name:<{width}}  {fake.get(name, 0.0):>7.3f}  {share:>7.3f}  {'-' if fid is None else f'{fid:.2f}':>9}"
        )
    return lines


COLLAPSE = register(
    Metric(
        name="collapse",
        title="mode collapse",
        order=70,
        command="collapse",
        aliases=("modes",),
        options=CollapseOptions,
        keys=(
            Key("duplicate_rate", "lower", decimals=6),
            Key("duplicate_rate_real", decimals=6),
            Key("duplicate_threshold", column=False),
            Key("support_estimate", integer=True),
            Key("support_batch_size", column=False),
            Key("classes_covered", "higher", integer=True),
            Key("classes_total", integer=True),
            Key("class_kl", "lower"),
            Key("class_histogram", kind="dict"),
            Key("real_class_histogram", kind="dict"),
            Key("class_fid", kind="dict"),
        ),
        needs=lambda options, side, seed: (Need(POOL3),),
        compute=_compute,
        wants_labels=lambda options: options.classes,
        text=_text,
        lines=class_table,
        doc="Mode collapse of FAKE: its near-duplicate rate next to an equal-size subset of REAL, and the "
        "birthday-paradox support size. When REAL has class subfolders (every image in one, 2+ of them) or is a "
        "labelled dataset by name (fashion-mnist, fashion-mnist:test, mnist, cifar10), also the class histogram of "
        "FAKE (k=5 nearest-neighbour vote), classes covered, KL(real || fake) and per-class FID.",
    )
)
