"""ganeval: exact, fast GAN evaluation from one shared Inception-v3 pass.

Public API: ``score`` (every metric from one pass per set), ``Evaluator`` (a fixed reference, fakes
from a generator or streamed batches, for training loops), ``fid``, ``kid``, ``inception_score``,
``precision_recall``, ``swd``, ``memorization`` and ``collapse`` (diagnostics; ``write_pairs_grid`` draws
the closest fake/training pairs), ``statistics``, ``compute_features``, ``compare_modes`` (FID in every
preprocessing mode), ``Extractor``, ``Result``, ``Statistics``, ``save_statistics``, ``load_statistics``.
The metrics as pure functions over feature arrays are in ``ganeval.metrics``.
"""

__version__ = "0.2.0"

from .api import (  # noqa: E402
    collapse,
    compute_features,
    fid,
    inception_score,
    kid,
    memorization,
    modes,
    precision_recall,
    score,
    statistics,
    swd,
)
from .compat import compare_modes  # noqa: E402
from .errors import GanevalError  # noqa: E402
from .evaluator import Evaluator  # noqa: E402
from .metrics.fid import frechet_distance  # noqa: E402
from .pairs import write_pairs_grid  # noqa: E402
from .extractors.inception import Extractor  # noqa: E402
from .options import Options  # noqa: E402
from .result import Result  # noqa: E402
from .stats import Statistics, load_statistics, save_statistics  # noqa: E402

__all__ = [
    "Evaluator",
    "Extractor",
    "GanevalError",
    "Options",
    "Result",
    "Statistics",
    "collapse",
    "compare_modes",
    "compute_features",
    "fid",
    "frechet_distance",
    "inception_score",
    "kid",
    "load_statistics",
    "memorization",
    "modes",
    "precision_recall",
    "save_statistics",
    "score",
    "statistics",
    "swd",
    "write_pairs_grid",
    "__version__",
]
