#!/usr/bin/env python
"""Precision/recall/density/coverage benchmark: time and peak memory of ganeval's blocked exact k-NN sweep
on random 2048-d float32 features, against ``prdc.compute_prdc`` (full N×N distance matrices) where that
fits in memory.

    python benchmarks/bench_prdc.py                      # N = 10,000 and 50,000 (several minutes on 2 cores)
    python benchmarks/bench_prdc.py --sizes 2000 --dim 256 --wait-quiet 0   # smoke run

Every size runs in a fresh subprocess: it builds the two input sets (float32, written in place so that
no float64 temporary inflates the baseline), resets the peak-RSS counter (/proc/self/clear_refs; falls
back to ru_maxrss when that is not allowed), runs ganeval, reads the peak (VmHWM), and then does the same
for prdc. "peak above inputs" is that peak minus the resident memory just before the call (inputs,
Python, torch already loaded), so it counts everything the call allocates, torch tensors included.
prdc runs only up to --prdc-max points: at 50,000 its three float32 N×N matrices alone would take
3 × 10 GB. Its run uses nearest_k=5 (one call computes all four numbers; ganeval's k = 3 precision and
recall come from the same sweep, so the time comparison is conservative for ganeval).

Table to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

MIB = 1024.0 * 1024.0
QUIET_CORES = 0.15


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class OtherLoad:
    """Cores used by other processes while the block runs, from /proc/stat minus this process's CPU time."""

    def __init__(self) -> None:
        self.cores: float | None = None

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                values = [int(v) for v in handle.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = values
        own = sum(os.times()[:4])
        return time.perf_counter(), (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"), own

    def __enter__(self) -> OtherLoad:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        if self._start is not None and end is not None and end[0] > self._start[0]:
            busy = (end[1] - self._start[1]) - (end[2] - self._start[2])
            self.cores = max(0.0, busy) / (end[0] - self._start[0])

    def text(self) -> str:
        if self.cores is None:
            return "n/a"
        return f"{self.cores:.2f}" + (" !" if self.cores > QUIET_CORES else "")


def wait_quiet(max_wait: float) -> None:
    """Wait up to ``max_wait`` s until other processes use under QUIET_CORES for 3 s in a row."""
    deadline, quiet_for, warned = time.monotonic() + max_wait, 0, False
    while time.monotonic() < deadline and quiet_for < 3:
        with OtherLoad() as probe:
            time.sleep(1.0)
        if probe.cores is not None and probe.cores > QUIET_CORES:
            quiet_for = 0
            if not warned:
                note(f"other processes use {probe.cores:.2f} cores; waiting up to {max_wait:.0f} s for quiet")
                warned = True
        else:
            quiet_for += 1


class PeakRSS:
    """Peak resident memory of this process during the block, above the resident memory at its start."""

    def __init__(self) -> None:
        self.start_mib = self.peak_mib = 0.0
        self.method = "VmHWM"

    @staticmethod
    def _status(field: str) -> float:
        with open("/proc/self/status", encoding="ascii") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith(field)) / 1024.0

    def __enter__(self) -> PeakRSS:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")
        except OSError:
            self.method = "ru_maxrss"
        self.start_mib = self._status("VmRSS:")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.method == "VmHWM":
            self.peak_mib = self._status("VmHWM:")
        else:
            self.peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    @property
    def above_start_mib(self) -> float:
        return self.peak_mib - self.start_mib


def make_features(n: int, dim: int, seed: int, scale: float, shift: float) -> np.ndarray:
    """(n, dim) float32: |z|·scale + shift for standard normal z (non-negative like pool3), in place."""
    out = np.empty((n, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    for start in range(0, n, 1024):
        block = out[start : start + 1024]
        rng.standard_normal(out=block, dtype=np.float32)
        np.abs(block, out=block)
        block *= scale
        block += shift
    return out


def child(n: int, dim: int, block_size: int | None, run_prdc: bool, wait: float) -> dict:
    """One size in this (fresh) process; returns the measurements as a dict."""
    import torch

    from ganeval.metrics.prdc import precision_recall_density_coverage

    real = make_features(n, dim, seed=1, scale=1.0, shift=0.0)
    fake = make_features(n, dim, seed=2, scale=1.0, shift=0.0)
    precision_recall_density_coverage(real[:200], fake[:200], block_size=block_size)
    record: dict = {
        "n": n,
        "dim": dim,
        "inputs_mib": (real.nbytes + fake.nbytes) / MIB,
        "torch_threads": torch.get_num_threads(),
    }
    wait_quiet(wait)
    with OtherLoad() as load, PeakRSS() as memory:
        started = time.perf_counter()
        result = precision_recall_density_coverage(real, fake, block_size=block_size)
        seconds = time.perf_counter() - started
    record["ganeval"] = {
        "seconds": seconds,
        "peak_above_mib": memory.above_start_mib,
        "peak_mib": memory.peak_mib,
        "start_mib": memory.start_mib,
        "method": memory.method,
        "other_load": load.text(),
        "values": [result.precision, result.recall, result.density, result.coverage],
    }
    if run_prdc:
        import prdc

        wait_quiet(wait)
        with OtherLoad() as load, PeakRSS() as memory, contextlib.redirect_stdout(io.StringIO()):
            started = time.perf_counter()
            theirs = prdc.compute_prdc(real, fake, nearest_k=5)
            seconds = time.perf_counter() - started
        record["prdc"] = {
            "seconds": seconds,
            "peak_above_mib": memory.above_start_mib,
            "peak_mib": memory.peak_mib,
            "start_mib": memory.start_mib,
            "method": memory.method,
            "other_load": load.text(),
            "values": [float(theirs[key]) for key in ("precision", "recall", "density", "coverage")],
        }
    return record


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)) for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000", help="points per set, comma separated")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--block-size", type=int, default=None, help="rows per block (default: ganeval's)")
    parser.add_argument("--prdc-max", type=int, default=10000, help="run the prdc baseline up to this N")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=300.0,
        help="before each timing wait up to this many seconds for other processes to go idle",
    )
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.dim, args.block_size, args.child <= args.prdc_max, args.wait_quiet)))
        return

    import torch

    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    print(
        f"ganeval PRDC benchmark, {time.strftime('%Y-%m-%dT%H:%M:%S')}; "
        f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} usable cores; "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"inputs: two independent samples of N random {args.dim}-d float32 features |z|, z standard normal "
        "(same distribution: ideal P, R near 1, D near 1, C near 1 − 2⁻⁵); k = 3 (P, R), 5 (D, C)\n"
    )
    records = []
    for n in sizes:
        note(f"N = {n}: fresh process")
        command = [
            sys.executable,
            __file__,
            "--child",
            str(n),
            "--dim",
            str(args.dim),
            "--prdc-max",
            str(args.prdc_max),
            "--wait-quiet",
            str(args.wait_quiet),
        ]
        if args.block_size is not None:
            command += ["--block-size", str(args.block_size)]
        completed = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        records.append(json.loads(completed.stdout.strip().splitlines()[-1]))

    rows = []
    for record in records:
        ours, theirs = record["ganeval"], record.get("prdc")
        for name, entry in (("ganeval", ours), ("prdc.compute_prdc", theirs)):
            if entry is None:
                rows.append(
                    [
                        str(record["n"]),
                        name,
                        "skipped",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        f"needs 3 N×N float32 matrices, 3 × {record['n'] ** 2 * 4 / 1e9:.0f} GB",
                    ]
                )
                continue
            ratio = (
                ""
                if name == "ganeval"
                else (
                    f"{entry['seconds'] / ours['seconds']:.2f}× time, "
                    f"{entry['peak_above_mib'] / ours['peak_above_mib']:.1f}× mem"
                )
            )
            rows.append(
                [
                    str(record["n"]),
                    name,
                    f"{entry['seconds']:.1f}",
                    f"{entry['peak_above_mib']:.0f}",
                    f"{record['inputs_mib']:.0f}",
                    f"{record['inputs_mib'] + entry['peak_above_mib']:.0f}",
                    f"{entry['peak_mib']:.0f}",
                    entry["other_load"],
                    " ".join(f"{value:.4f}" for value in entry["values"]),
                    ratio,
                ]
            )
    print(
        table(
            [
                "N",
                "implementation",
                "seconds",
                "call peak MiB",
                "inputs MiB",
                "inputs + call MiB",
                "process peak MiB",
                "other load",
                "P R D C",
                "prdc vs ganeval",
            ],
            rows,
        )
    )
    print(
        f"\ncall peak: highest resident memory during the call minus resident memory just before it (inputs, "
        f"Python, numpy, torch already there), from {records[0]['ganeval']['method']} reset before each call; it "
        "includes torch tensors. 'inputs + call' is what the call needs with its inputs; 'process peak' adds the "
        "interpreter and libraries. prdc uses k = 5 for all four numbers (ours: k = 3 for P and R) and strict < "
        "on float32 distances. other load: cores used by other processes during the call (! above "
        f"{QUIET_CORES}: timing disturbed)."
    )


if __name__ == "__main__":
    main()
