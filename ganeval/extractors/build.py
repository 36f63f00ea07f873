"""The table of extractors: each built (by the prefix of its parts) from a run's options, and the vector
part that stands for its feature space (``--features``)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..metrics.registry import Metric
    from ..options import Options
    from .base import Extractor
    from .weights import WeightsInfo

_CLASSES = {
    "inception": ("inception", "InceptionExtractor", "pool3"),
    "vgg16": ("vgg16", "VGG16Extractor", "fc2"),
    "dinov2": ("dinov2", "DINOv2Extractor", "cls"),
    "clip-vit-b-32": ("clip", "CLIPExtractor", "embedding"),
    "clip-vit-l-14-336": ("clip", "CLIPExtractor", "embedding"),
    "pixels": ("swd_pixels", "SWDPixelExtractor", None),
}
"""Extractor name → (module, class, the vector part that stands for its feature space or None); the class's
``default_vector`` says the same (tests/test_feature_spaces.py)."""
FEATURE_NETWORKS = ("dinov2", "clip-vit-b-32", "clip-vit-l-14-336")
"""The networks whose weights ``--features-weights`` names (Inception's are ``--weights``, VGG16's
``--vgg-weights``)."""


def _class(name: str) -> Any:
    if name not in _CLASSES:
        raise KeyError(f"no extractor named {name!r}")
    module, cls, _ = _CLASSES[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def feature_spaces() -> list[str]:
    """The extractors with a default vector part: what ``--features`` may name."""
    return [name for name, (_, _, vector) in _CLASSES.items() if vector]


def vector_part(name: str) -> str:
    """The part that stands for extractor ``name``'s feature space (``inception`` → ``inception:pool3``);
    KeyError when it has none."""
    short = _CLASSES[name][2] if name in _CLASSES else None
    if not short:
        raise KeyError(f"{name!r} has no feature vector; choose from {', '.join(feature_spaces())}")
    return f"{name}:{short}"


def names() -> list[str]:
    """Every extractor's name."""
    return list(_CLASSES)


def networks_named(metric: Metric, metric_options: Any = None) -> set[str]:
    """The DINOv2/CLIP networks ``metric`` asks for by name (CMMD's CLIP), with its options (default ones
    when None)."""
    from ..parts import split

    chosen = metric.options() if metric_options is None else metric_options
    return {split(need.part)[0] for need in metric.needs(chosen, "fake", 0)} & set(FEATURE_NETWORKS)


def features_weights_target(options: Options) -> str | None:
    """The network ``options.features_weights`` is for: the ``--features`` one when it is among
    ``FEATURE_NETWORKS``, else the only one of them a wanted metric asks for by name (CMMD's CLIP); None
    without ``features_weights``. BadInputError when no network or several could take it."""
    from ..errors import BadInputError

    if options.features_weights is None:
        return None
    if options.features in FEATURE_NETWORKS:
        return options.features
    named = set().union(*(networks_named(metric, options.of(metric)) for metric in options.wanted()))
    if len(named) != 1:
        raise BadInputError(
            f"--features-weights is for the network of --features ({', '.join(FEATURE_NETWORKS)})"
            + (f" but this run uses {', '.join(sorted(named))}" if named else "; this run uses none of them")
        )
    return named.pop()


def build_extractor(name: str, options: Options, device: Any = None) -> Extractor:
    """The extractor ``name`` (the prefix of its parts) set up from ``options``."""
    cls = _class(name)
    if name in FEATURE_NETWORKS:
        weights = options.features_weights if features_weights_target(options) == name else None
        network = dict(device=device, batch_size=options.batch_size, precision=options.precision)
        if name == "dinov2":
            return cls(weights=weights, resize=options.dinov2_resize, **network)
        return cls(name, weights=weights, **network)
    if name == "inception":
        return cls(
            weights=options.weights,
            mode=options.mode,
            device=device,
            batch_size=options.batch_size,
            precision=options.precision,
        )
    if name == "vgg16":
        return cls(weights=options.vgg_weights, device=device)
    return cls()


def locate_weights_of(name: str, explicit: str | None = None, download: bool = False) -> WeightsInfo:
    """The weights extractor ``name`` would use (``explicit``: a file given on the command line), found as a
    run finds them; downloads only with ``download``. WeightsError when none is found."""
    from . import weights

    if name == "inception":
        from ..weights import locate_weights

        return locate_weights(explicit, download=download)
    if name == "vgg16":
        from ..vgg import locate_vgg_weights

        return locate_vgg_weights(explicit, download=download)
    if name == "dinov2":
        from .dinov2 import dinov2_spec

        return weights.locate(dinov2_spec(), explicit, download)
    if name in FEATURE_NETWORKS:
        from .clip import clip_spec

        return weights.locate(clip_spec(name), explicit, download)
    raise KeyError(f"{name!r} has no weights; choose from {', '.join(feature_spaces())}")
