"""The metrics' own options as click options, generated from the registry's declarations (keyword, help,
bounds, choices, default), with --seed, --bootstrap and --vgg-weights where the metrics use them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import click

from .. import defaults
from ..metrics import registry
from ..options import DINOV2_RESIZE
from ..extractors.build import networks_named
from .common import Decorator, stack


class TypedChoice(click.Choice):
    """A choice among declared values of any type: typed as strings, returned as the declared value
    (``--dims 768`` → 768), from the command line or from a value recorded in a CSV."""

    def __init__(self, values: Iterable[Any]) -> None:
        self.declared = {str(value): value for value in values}
        super().__init__(list(self.declared))

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return self.declared[super().convert(str(value), param, ctx)]


def click_option(keyword: str, f: dataclasses.Field[Any]) -> Decorator:
    """The click option of one metric option (its declared keyword, help, bounds and default)."""
    meta, flag = f.metadata, "--" + keyword.replace("_", "-")
    if isinstance(f.default, bool):
        return click.option(
            f"{flag}/--no-{flag[2:]}", keyword, default=f.default, show_default=True, help=meta.get("help")
        )
    kind: click.ParamType
    if meta.get("choices"):
        kind = TypedChoice(meta["choices"])
    elif "str" in str(f.type):
        kind = click.STRING
    else:
        kind = click.IntRange(min=meta.get("min"))
    return click.option(
        flag, keyword, type=kind, default=f.default, show_default=f.default is not None, help=meta.get("help")
    )


def dinov2_resize_option() -> Decorator:
    """``--dinov2-resize pil|torch`` (with ``--features dinov2``)."""
    return click.option(
        "--dinov2-resize",
        type=click.Choice(list(DINOV2_RESIZE)),
        default="pil",
        show_default=True,
        help="--features dinov2: resize to 224² with PIL bicubic on the uint8 image (dgm-eval's, EDM2's "
        "resize_mode='pil') or torch (F.interpolate bicubic with antialias, EDM2's default).",
    )


def features_weights_option() -> Decorator:
    """``--features-weights PATH``: the weights of the DINOv2 or CLIP network in use."""
    return click.option(
        "--features-weights",
        type=click.Path(dir_okay=False),
        default=None,
        help="Weights of the DINOv2 or CLIP network in use (official file or a state dict in its layout; "
        "else $GANEVAL_DINOV2_WEIGHTS / $GANEVAL_CLIP_WEIGHTS, the caches, a verified download).",
    )


def features_option() -> Decorator:
    """``--features NAME``: the feature space of FD, KD and PRDC (an extractor with a vector part)."""
    from ..extractors.build import feature_spaces

    return click.option(
        "--features",
        type=click.Choice(feature_spaces()),
        default="inception",
        show_default=True,
        help="Feature space of FID, KID and precision/recall: inception (pool3, the standard), vgg16 (fc2), "
        "dinov2 (FD_DINOv2's ViT-L/14 CLS token), clip-vit-b-32 (clean-fid's CLIP-FID), clip-vit-l-14-336 (CMMD's "
        "CLIP); recorded in the provenance (docs/feature-spaces.md).",
    )


def _no_single_resample(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value == 1:
        raise click.BadParameter("give 0 (no intervals) or at least 2 resamples", ctx, param)
    return value


def bootstrap_option() -> Decorator:
    """``--bootstrap N``: 0 (none) or at least 2 resamples, checked as the option is read."""
    return click.option(
        "--bootstrap",
        type=click.IntRange(min=0),
        default=defaults.BOOTSTRAP,
        show_default=True,
        callback=_no_single_resample,
        help="Resamples for 95% intervals (0: none; else at least 2).",
    )


def metric_options(names: Sequence[str] | None = None) -> Decorator:
    """The options of the metrics ``names`` (all when None) as the registry declares them, with --seed,
    --bootstrap (when one of them has intervals), and --features and --vgg-weights (when one works in any
    feature space)."""
    metrics = [registry.get(name) for name in names] if names else registry.all_metrics()
    options = [
        click.option(
            "--seed",
            type=int,
            default=defaults.SEED,
            show_default=True,
            help="Seed of every random choice (KID subsets, IS shuffle, P/R subsampling, SWD, bootstrap).",
        )
    ]
    any_space = any(metric.in_any_space() for metric in metrics)
    if any_space:
        options.append(features_option())
    options += [click_option(keyword, f) for metric in metrics for keyword, f in metric.option_fields()]
    if any_space:
        options.append(
            click.option(
                "--vgg-weights",
                type=click.Path(dir_okay=False),
                default=None,
                help="VGG16 state dict (torchvision layout) for --features vgg16 or --pr-features vgg16.",
            )
        )
        options.append(dinov2_resize_option())
    if any_space or any(networks_named(metric) for metric in metrics):
        options.append(features_weights_option())
    if any(metric.statistic for metric in metrics):
        options.append(bootstrap_option())
    return stack(*options)
