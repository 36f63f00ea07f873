"""The table that builds each extractor (by the prefix of its parts) from a run's options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..options import Options
    from .base import Extractor


def build_extractor(name: str, options: Options, device: Any = None) -> Extractor:
    """The extractor ``name`` (the prefix of its parts) set up from ``options``."""
    if name == "inception":
        from .inception import InceptionExtractor

        return InceptionExtractor(
            weights=options.weights,
            mode=options.mode,
            device=device,
            batch_size=options.batch_size,
            precision=options.precision,
        )
    if name == "vgg16":
        from .vgg16 import VGG16Extractor

        return VGG16Extractor(weights=options.vgg_weights, device=device)
    if name == "pixels":
        from .swd_pixels import SWDPixelExtractor

        return SWDPixelExtractor()
    raise KeyError(f"no extractor named {name!r}")
