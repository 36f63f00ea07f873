"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) ‖ p(y))) per split, mean and std over splits.

Protocol as torch-fidelity: the unbiased logits (pool3 · Wᵀ, no classifier bias; 1008 classes in the FID
network), rows shuffled with ``RandomState(seed).permutation(N)``, float64, split i = rows
[i·N//splits, (i+1)·N//splits), p(y) = mean of p(y|x) over the split, population std over splits.

log p(y) is taken as logsumexp over the split's log p(y|x) minus log n, finite for finite logits, so a
class whose p(y|x) underflows to 0 adds exactly 0 to the KL. Results equal torch-fidelity's to round-off;
they differ only where torch-fidelity's log(mean p) underflows to −inf (a class whose probability is exactly
0 in every row of a split, e.g. very confident logits): it returns NaN there, this the limit value.

Numerical safety: finite for any finite logits, float32 ones of any magnitude included (logits of ±1e4 or
±3e38 give the same score as an exact log-sum-exp computation in float64: log_softmax subtracts each row's
maximum, so nothing overflows); a term p·log(p/q) with p = 0 counts 0 even where log p is −inf (float64
logits more than 1.8e308 apart). NaN/inf logits raise ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax, logsumexp

from ..defaults import IS_SPLITS
from ..defaults import SEED as DEFAULT_SEED
from ..parts import LOGITS
from .registry import Context, Key, Metric, Need, option, register

__all__ = ["DEFAULT_SEED", "IS_SPLITS", "ISResult", "inception_score"]


@dataclass(frozen=True, eq=False)
class ISResult:
    """IS mean and population std over ``splits`` per-split scores (``values``, float64, read-only)."""

    mean: float
    std: float
    splits: int
    seed: int
    values: np.ndarray


def inception_score(
    logits: np.ndarray, *, splits: int = IS_SPLITS, shuffle: bool = True, seed: int = DEFAULT_SEED
) -> ISResult:
    """Inception Score of unbiased classifier logits (N, C), any real dtype (computed in float64).
    Each score lies in [1, C]. Requires N >= splits >= 1."""
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (N, C); got shape {logits.shape}")
    if not np.issubdtype(logits.dtype, np.number) or np.issubdtype(logits.dtype, np.complexfloating):
        raise ValueError(f"logits must be real numbers; got dtype {logits.dtype}")
    if not np.isfinite(logits).all():
        raise ValueError("logits contain NaN or infinite values")
    if int(splits) != splits or splits < 1:
        raise ValueError(f"splits must be an integer >= 1; got {splits}")
    n = logits.shape[0]
    if n < splits:
        raise ValueError(f"need at least as many images as splits; got {n} images for {splits} splits")
    splits = int(splits)
    order = np.random.RandomState(seed).permutation(n) if shuffle else np.arange(n)
    values = np.empty(splits, dtype=np.float64)
    for i in range(splits):
        with np.errstate(over="ignore", invalid="ignore"):
            chunk = log_softmax(logits[order[i * n // splits : (i + 1) * n // splits]].astype(np.float64), axis=1)
            log_q = logsumexp(chunk, axis=0) - np.log(chunk.shape[0])
            p = np.exp(chunk)
            # p·log(p/q) is 0 where p is 0 (also where log p is -inf: logits spanning more than float64's range)
            kl = np.where(p > 0, p * (chunk - log_q), 0.0).sum(axis=1)
        values[i] = np.exp(kl.mean())
    values.flags.writeable = False
    return ISResult(mean=float(values.mean()), std=float(values.std()), splits=splits, seed=seed, values=values)


@dataclass(frozen=True)
class ISOptions:
    splits: int = option(IS_SPLITS, "Splits the score is averaged over (after a seeded shuffle).", min=1)


def _compute(context: Context) -> dict[str, object]:
    logits = context.fake.rows(LOGITS)
    result = inception_score(logits, splits=context.options.splits, seed=context.seed)
    context.details["is"] = {"splits": result.splits, "seed": context.seed, "n": len(logits)}
    return {"is": result.mean, "is_std": result.std}


IS = register(
    Metric(
        name="is",
        title="IS",
        order=30,
        standard=True,
        one_set=True,
        command="is",
        options=ISOptions,
        keys=(Key("is", "higher", plot=True), Key("is_std")),
        needs=lambda options, side, seed: (Need(LOGITS),) if side == "fake" else (),
        compute=_compute,
        doc="Inception Score of FAKE (one set): mean ± std over splits; needs the full weights with the classifier.",
    )
)
