"""Reference statistics files: (μ, Σ, n) with provenance, and the check that two of them are comparable.

Format (``.npz``, no pickles): ``mu`` (D,) float64, ``sigma`` (D, D) float64, ``n`` () int64 and ``meta``, a
JSON string with ``format``, ``format_version``, ``extractor``, ``weights_sha256``, ``mode``,
``ganeval_version``, ``content_sha256``, ``source`` and ``skipped``. pytorch-fid's files (only ``mu`` and
``sigma``) are read too; they carry no provenance, which every result that uses them says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import BadInputError, IncompatibleStatsError
from .sources import printable

FORMAT = "ganeval-stats"
FORMAT_VERSION = 1


@dataclass
class Statistics:
    """Gaussian statistics of pool3 features. mu: (D,), sigma: (D, D), float64; n: images used."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int | None
    meta: dict[str, object] = field(default_factory=dict)


def save_statistics(stats: Statistics, path: str | Path) -> Path:
    """Write ``stats`` to ``path`` (``.npz`` appended if missing) atomically."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        path = path.with_name(path.name + ".npz")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **{key: value for key, value in stats.meta.items() if key != "cached"},
    }
    with atomic_write(path) as handle:
        np.savez(
            handle,
            mu=stats.mu.astype(np.float64),
            sigma=stats.sigma.astype(np.float64),
            n=np.int64(stats.n if stats.n is not None else -1),
            meta=np.array(json.dumps(meta, sort_keys=True)),
        )
    return path


def is_statistics_file(path: object) -> bool:
    """True for an existing ``.npz`` that holds ``mu`` and ``sigma`` (ours or pytorch-fid's)."""
    if not isinstance(path, (str, Path)) or Path(path).suffix.lower() != ".npz":
        return False
    try:
        if not Path(path).is_file():
            return False
        with np.load(path, allow_pickle=False) as archive:
            return {"mu", "sigma"} <= set(archive.keys())
    except Exception:  # noqa: BLE001 - unreadable, or an .npy array under an .npz name: not statistics
        return False


def load_statistics(path: str | Path) -> Statistics:
    """Read and validate a statistics file; never unpickles. Raises BadInputError naming the file."""
    path = Path(path)
    shown = printable(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            raise BadInputError(f"{shown}: not a statistics file (one .npy array, not an .npz archive)")
        with loaded as archive:
            keys = set(archive.keys())
            if not {"mu", "sigma"} <= keys:
                raise BadInputError(f"{shown}: not a statistics file (needs 'mu' and 'sigma', has {sorted(keys)})")
            mu, sigma = archive["mu"], archive["sigma"]
            n = _count(archive["n"], shown) if "n" in keys else None
            meta = json.loads(str(archive["meta"])) if "meta" in keys else {}
    except BadInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file fails numpy's readers in many ways: ValueError,
        # OSError, EOFError, BadZipFile, a damaged .npy header (SyntaxError, tokenize.TokenError), a member that
        # is encrypted, of an unknown compression method or damaged (RuntimeError, zlib.error, LZMAError)
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise BadInputError(f"{shown}: cannot read statistics ({reason})") from None
    if not isinstance(meta, dict):
        raise BadInputError(f"{shown}: 'meta' is not a JSON object")
    version = meta.get("format_version", FORMAT_VERSION)
    if meta.get("format", FORMAT) != FORMAT or not isinstance(version, int) or version > FORMAT_VERSION:
        raise BadInputError(f"{shown}: unsupported statistics format {meta.get('format')} v{version}")
    validate_statistics(mu, sigma, shown)
    return Statistics(mu.astype(np.float64), sigma.astype(np.float64), n if n is None or n >= 0 else None, meta)


def _count(value: np.ndarray, shown: str) -> int:
    """``n``: one finite whole number (an integer, or a float such as 50000.0); BadInputError otherwise."""
    if value.shape != () or value.dtype.kind not in "iuf":
        raise BadInputError(f"{shown}: 'n' must be one whole number, got {value.dtype} of shape {value.shape}")
    number = value.item()
    if isinstance(number, float) and not (np.isfinite(number) and number.is_integer()):
        raise BadInputError(f"{shown}: 'n' must be one whole number, got {number}")
    return int(number)


PSD_TOLERANCE = 1e-6
"""Σ is accepted as positive semi-definite when its smallest eigenvalue is at least −PSD_TOLERANCE·Tr(Σ):
far above the round-off of a float64 covariance or of one stored as float32 (‖ΔΣ‖ ≤ 6e-8·Tr(Σ)), far
below any real error (a negative variance, a matrix that is not a covariance)."""


def validate_statistics(mu: np.ndarray, sigma: np.ndarray, name: str) -> None:
    """Shapes (D,) and (D, D), real floats, finite, Σ symmetric and positive semi-definite (to
    ``PSD_TOLERANCE``); raises BadInputError naming ``name``."""
    if mu.dtype.kind not in "fiu" or sigma.dtype.kind not in "fiu":
        raise BadInputError(f"{name}: mu/sigma must be real numbers, got {mu.dtype}/{sigma.dtype}")
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise BadInputError(f"{name}: mu has shape {mu.shape} and sigma {sigma.shape}; expected (D,) and (D, D)")
    if mu.shape[0] == 0:
        raise BadInputError(f"{name}: mu and sigma are empty (0 dimensions)")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise BadInputError(f"{name}: mu or sigma contains NaN or infinite values")
    scale = max(float(np.abs(sigma).max()), 1e-300)
    if float(np.abs(sigma - sigma.T).max()) > 1e-6 * scale:
        raise BadInputError(f"{name}: sigma is not symmetric, so it is not a covariance matrix")
    _check_psd(sigma.astype(np.float64), name)


def _check_psd(sigma: np.ndarray, name: str) -> None:
    """Cholesky of Σ + tol·Tr(Σ)·I (cheap) proves Σ's eigenvalues ≥ −tol·Tr(Σ); only when it fails are the
    eigenvalues computed, to refuse with the smallest one."""
    slack = PSD_TOLERANCE * max(float(np.trace(sigma)), 0.0)
    try:
        np.linalg.cholesky(sigma + slack * np.eye(len(sigma)))
        return
    except np.linalg.LinAlgError:
        pass
    values = np.linalg.eigvalsh((sigma + sigma.T) / 2)
    if values[0] < -slack:
        raise BadInputError(
            f"{name}: sigma is not positive semi-definite (smallest eigenvalue {values[0]:.4g}, "
            f"largest {values[-1]:.4g}), so it is not a covariance matrix"
        )


def check_compatible(
    a: dict[str, object], b: dict[str, object], label_a: str, label_b: str, force: bool = False
) -> list[str]:
    """Refuse to compare statistics made with different extractors, weights, preprocessing modes or
    arithmetic precisions (absent = fp32). Parts of other networks than Inception (DINOv2, CLIP) are compared
    by their recorded identities (``provenance['identities']``: everything that changes their arrays).

    ``a``/``b`` are provenance dicts (``extractor``, ``weights_sha256``, ``mode``, ``precision``); an empty one (a
    pytorch-fid file) cannot be checked and gives a warning. With ``force`` a mismatch becomes a warning.
    Returns the warnings to attach to the result."""
    shared = _shared_identities(a, b)
    if shared and not any(part.startswith("inception:") for part in shared):
        problems = [
            f"{part}: {key} {ids_a.get(key)!r} vs {ids_b.get(key)!r}"
            for part, (ids_a, ids_b) in shared.items()
            for key in sorted(set(ids_a) | set(ids_b))
            if ids_a.get(key) != ids_b.get(key)
        ]
        return _verdict(problems, label_a, label_b, force)
    warnings = [
        f"{label} carries no provenance (pytorch-fid layout?): cannot check that it was made with the "
        f"same weights and preprocessing"
        for label, meta in ((label_a, a), (label_b, b))
        if not meta.get("extractor")
    ]
    if warnings:
        return warnings
    problems = []
    if a.get("mode") != b.get("mode"):
        problems.append(f"preprocessing mode {a.get('mode')!r} vs {b.get('mode')!r}")
    if a.get("precision", "fp32") != b.get("precision", "fp32"):
        problems.append(f"precision {a.get('precision', 'fp32')} vs {b.get('precision', 'fp32')}")
    if a.get("extractor") != b.get("extractor"):
        problems.append(f"extractor {a.get('extractor')!r} vs {b.get('extractor')!r}")
    elif not a.get("weights_standard") and a.get("weights_sha256") != b.get("weights_sha256"):
        problems.append(f"weights sha256 {str(a.get('weights_sha256'))[:12]}… vs {str(b.get('weights_sha256'))[:12]}…")
    return _verdict(problems, label_a, label_b, force)


def _shared_identities(
    a: dict[str, object], b: dict[str, object]
) -> dict[str, tuple[dict[str, object], dict[str, object]]]:
    """The parts whose identity (``provenance['identities']``: what changes their arrays) both sides record."""
    ids_a, ids_b = a.get("identities"), b.get("identities")
    if not isinstance(ids_a, dict) or not isinstance(ids_b, dict):
        return {}
    return {part: (ids_a[part], ids_b[part]) for part in ids_a if part in ids_b}


def _verdict(problems: list[str], label_a: str, label_b: str, force: bool) -> list[str]:
    if not problems:
        return []
    message = f"{label_a} and {label_b} were made differently ({'; '.join(problems)})"
    if not force:
        raise IncompatibleStatsError(message + ": their FID would be meaningless; recompute one side, or pass --force")
    return [message + ": compared anyway because of --force"]
