"""The table of extractors: each built (by the prefix of its parts) from a run's options, and the vector
part that stands for its feature space (``--features``)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..options import Options
    from .base import Extractor

_CLASSES = {
    "inception": ("inception", "InceptionExtractor"),
    "vgg16": ("vgg16", "VGG16Extractor"),
    "pixels": ("swd_pixels", "SWDPixelExtractor"),
}


def _class(name: str) -> Any:
    if name not in _CLASSES:
        raise KeyError(f"no extractor named {name!r}")
    module, cls = _CLASSES[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def feature_spaces() -> list[str]:
    """The extractors with a default vector part: what ``--features`` may name."""
    return [name for name in _CLASSES if getattr(_class(name), "default_vector", None)]


def vector_part(name: str) -> str:
    """The part that stands for extractor ``name``'s feature space (``inception`` → ``inception:pool3``);
    KeyError when it has none."""
    short = getattr(_class(name), "default_vector", None)
    if not short:
        raise KeyError(f"{name!r} has no feature vector; choose from {', '.join(feature_spaces())}")
    return f"{name}:{short}"


def build_extractor(name: str, options: Options, device: Any = None) -> Extractor:
    """The extractor ``name`` (the prefix of its parts) set up from ``options``."""
    cls = _class(name)
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
