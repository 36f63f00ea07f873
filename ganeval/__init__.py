"""ganeval: exact, fast GAN evaluation from one shared Inception-v3 pass.

Public API: ``fid``, ``statistics``, ``compute_features``, ``Extractor``, ``Result``, ``Statistics``,
``save_statistics``, ``load_statistics``, ``frechet_distance``.
"""

__version__ = "0.1.0"

from .api import compute_features, fid, statistics  # noqa: E402
from .errors import GanevalError  # noqa: E402
from .metrics.fid import frechet_distance  # noqa: E402
from .pipeline import Extractor  # noqa: E402
from .result import Result  # noqa: E402
from .stats import Statistics, load_statistics, save_statistics  # noqa: E402

__all__ = [
    "Extractor", "GanevalError", "Result", "Statistics", "compute_features", "fid", "frechet_distance",
    "load_statistics", "save_statistics", "statistics", "__version__",
]
