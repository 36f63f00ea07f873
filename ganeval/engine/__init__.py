"""The engine: plan which parts the asked-for metrics need (``planning``), make one pass over each source for
them (``one_pass``), turn sources and statistics files into sides (``sides``), then compute the metrics and
assemble the Result with its provenance (``results``). ``score``, the CLI, the leaderboard and
``Evaluator`` all go through here."""

from .one_pass import compute_features, entry_key, extract_parts, new_accumulators, run_batch
from .planning import Extractors, Request, plan, progress_enabled, usable
from .results import assemble, compute_metrics, evaluate, provenance
from .sides import check_pair, open_side, source_side, statistics_side

__all__ = [
    "Extractors",
    "Request",
    "assemble",
    "check_pair",
    "compute_features",
    "compute_metrics",
    "entry_key",
    "evaluate",
    "extract_parts",
    "new_accumulators",
    "open_side",
    "plan",
    "progress_enabled",
    "provenance",
    "run_batch",
    "source_side",
    "statistics_side",
    "usable",
]
