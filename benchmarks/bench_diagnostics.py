#!/usr/bin/env python
"""Diagnostics benchmark: time and peak memory of memorisation (authenticity + copy rate) and duplicate
search (duplicate rate + birthday support size) on random 2048-d float32 features, each against one
precision/recall/density/coverage pass on the same arrays, measured in the same run.

    python benchmarks/bench_diagnostics.py                  # N = 10,000 and 50,000 (the 50,000 case takes a long time)
    python benchmarks/bench_diagnostics.py --sizes 10000    # a few minutes on 2 CPU cores
    python benchmarks/bench_diagnostics.py --quick          # smoke run: N = 2000, no waiting for a quiet machine

Inputs per size N (seeded, built in place as float32): real = |z| (z standard normal, non-negative like
pool3), fake = an independent |z'| with planted exact copies: --copy-fraction of the fakes are copies of
random real (= training) rows, which the copy path must find at distance 0, and --dup-fraction are copies
of other fakes, which add exact duplicate pairs. Train and real are the same array, of the same size as fake.

Cases, each in a fresh subprocess per size, each after a warm-up call on 200 rows:

- ``P/R/D/C (baseline)``: ``precision_recall_density_coverage(real, fake)`` (k = 3 and 5), the kernel the
  diagnostics are compared with;
- ``memorisation``: ``authenticity(real, fake)`` (training leave-one-out nearest neighbours, then each
  fake's nearest training row);
- ``duplicate search``: ``duplicates(fake, real, seed=S)`` then ``support_size(fake, threshold, seed=S)``
  with that call's threshold (the 1st percentile of real pair distances); both times are listed.

Memory: the resident-set high-water mark of the child process (VmHWM, reset through /proc/self/clear_refs
just before the call; ru_maxrss from ``resource.getrusage`` when the reset is not allowed, which can only
over-state), minus the resident memory just before the call (inputs, Python, numpy and torch already
there). On a CPU that counts every allocation of the call, torch tensors included; with --device cuda
the GPU peak (``torch.cuda.max_memory_allocated``) is listed as well. Table to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from bench_foundation import cpu_model
from bench_prdc import QUIET_CORES, OtherLoad, PeakRSS, make_features, note, table, wait_quiet

MIB = 1024.0 * 1024.0
CASES = ("prdc", "memorisation", "duplicates")
LABELS = {"prdc": "P/R/D/C (baseline)", "memorisation": "memorisation", "duplicates": "duplicate search"}


def make_sets(
    n: int, dim: int, seed: int, copy_fraction: float, dup_fraction: float
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(real, fake, planted training copies, planted fake duplicates); see the module doc."""
    real = make_features(n, dim, seed=seed, scale=1.0, shift=0.0)
    fake = make_features(n, dim, seed=seed + 1, scale=1.0, shift=0.0)
    rng = np.random.default_rng([seed, 2])
    copies, dups = round(copy_fraction * n), round(dup_fraction * n)
    rows = rng.choice(n, copies + dups, replace=False)
    fake[rows[:copies]] = real[rng.choice(n, copies, replace=False)]
    untouched = np.setdiff1d(np.arange(n), rows)
    fake[rows[copies:]] = fake[rng.choice(untouched, dups)]
    return real, fake, copies, dups


def child(case: str, args: argparse.Namespace) -> dict:
    """One case at one size in this (fresh) process; the measurements as a dict."""
    import torch

    from ganeval.metrics.diagnostics import authenticity, duplicates, support_size
    from ganeval.metrics.prdc import precision_recall_density_coverage

    n, device, seed = args.child_n, args.device, args.seed
    real, fake, planted_copies, planted_dups = make_sets(n, args.dim, seed, args.copy_fraction, args.dup_fraction)
    cuda = device is not None and str(device).startswith("cuda")
    timings: dict[str, float] = {}

    def run(x: np.ndarray, y: np.ndarray) -> str:
        if case == "prdc":
            r = precision_recall_density_coverage(x, y, device=device)
            return f"P {r.precision:.4f} R {r.recall:.4f} D {r.density:.4f} C {r.coverage:.4f}"
        if case == "memorisation":
            a = authenticity(x, y, device=device)
            exact = int(np.count_nonzero(a.nn_distance == 0))
            return (
                f"authpct {a.authpct:.1f}, copy_rate {a.copy_rate:.4f} ({len(a.copies)} copies, {exact} at "
                f"distance 0; planted {planted_copies})"
            )
        started = time.perf_counter()
        d = duplicates(y, x, seed=seed, device=device)
        middle = time.perf_counter()
        s = support_size(y, d.threshold, seed=seed, device=device)
        timings.update(duplicates=middle - started, support_size=time.perf_counter() - middle)
        return (
            f"duplicate_rate {d.duplicate_rate:.4f} vs real {d.duplicate_rate_real:.4f}, support_estimate "
            f"{s.support_estimate} (s = {s.batch_size_at_half}); duplicates {timings['duplicates']:.1f} s "
            f"+ support_size {timings['support_size']:.1f} s"
        )

    run(real[:200], fake[:200])  # warm-up: torch thread pools, first-call costs
    wait_quiet(args.wait_quiet)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with OtherLoad() as load, PeakRSS() as memory:
        started = time.perf_counter()
        summary = run(real, fake)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    return {
        "case": case,
        "n": n,
        "dim": args.dim,
        "seconds": seconds,
        "peak_above_mib": memory.above_start_mib,
        "peak_mib": memory.peak_mib,
        "method": memory.method,
        "other_load": load.text(),
        "other_cores": load.cores,
        "gpu_peak_mib": torch.cuda.max_memory_allocated() / MIB if cuda else None,
        "inputs_mib": (real.nbytes + fake.nbytes) / MIB,
        "summary": summary,
        "timings": timings,
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=None, help="points per set, comma separated (default 10000,50000)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: N = 2000 (unless --sizes is given), --wait-quiet 0"
    )
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--copy-fraction", type=float, default=0.01, help="fakes that copy a training row (0.01)")
    parser.add_argument("--dup-fraction", type=float, default=0.01, help="fakes that copy another fake (0.01)")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--device", default=None, help="torch device for every call (default: CPU)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        help="before each timing wait up to this many seconds for other processes to go idle",
    )
    parser.add_argument("--child", choices=CASES, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-n", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args)))
        return
    if args.sizes is None:
        args.sizes = "2000" if args.quick else "10000,50000"
    if args.quick:
        args.wait_quiet = 0.0

    import torch

    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    print(
        f"ganeval diagnostics benchmark, {time.strftime('%Y-%m-%dT%H:%M:%S')}; {cpu_model()}, "
        f"{len(os.sched_getaffinity(0))} usable cores; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}, Python {platform.python_version()}; "
        f"device {args.device or 'cpu'}"
    )
    print(
        f"inputs per N: real = train = |z|, fake = independent |z'|, both N × {args.dim} float32; planted in fake: "
        f"{args.copy_fraction:.0%} exact copies of training rows, {args.dup_fraction:.0%} exact copies of other "
        f"fakes; seed {args.seed}\n"
    )
    records = []
    for n in sizes:
        for case in CASES:
            note(f"N = {n}: {LABELS[case]} (fresh process)")
            command = [
                sys.executable,
                __file__,
                "--child",
                case,
                "--child-n",
                str(n),
                "--dim",
                str(args.dim),
                "--copy-fraction",
                str(args.copy_fraction),
                "--dup-fraction",
                str(args.dup_fraction),
                "--seed",
                str(args.seed),
                "--wait-quiet",
                str(args.wait_quiet),
            ]
            if args.device is not None:
                command += ["--device", args.device]
            completed = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
            records.append(json.loads(completed.stdout.strip().splitlines()[-1]))
            note(f"  {records[-1]['seconds']:.1f} s, {records[-1]['peak_above_mib']:.0f} MiB above start")

    gpu = args.device is not None and str(args.device).startswith("cuda")
    rows = []
    for record in records:
        base = next(r for r in records if r["n"] == record["n"] and r["case"] == "prdc")
        row = [
            LABELS[record["case"]],
            str(record["n"]),
            f"{record['seconds']:.1f}",
            f"{record['peak_above_mib']:.0f}",
            f"{record['seconds'] / base['seconds']:.2f}",
            f"{record['peak_above_mib'] / base['peak_above_mib']:.2f}" if base["peak_above_mib"] > 0 else "n/a",
            f"{record['inputs_mib']:.0f}",
            f"{record['peak_mib']:.0f}",
        ]
        if gpu:
            row.append(f"{record['gpu_peak_mib']:.0f}")
        rows.append(row + [record["other_load"], record["summary"]])
    headers = ["case", "n", "seconds", "peak MiB", "time vs P/R", "mem vs P/R", "inputs MiB", "process peak MiB"]
    print(table(headers + (["GPU peak MiB"] if gpu else []) + ["other load", "result"], rows))
    method = {r["method"] for r in records}
    print(
        f"\npeak MiB: resident-set high-water mark of the case's own process during the call minus its resident "
        f"memory just before it ({'/'.join(sorted(method))}, reset before the call; inputs, interpreter, numpy and "
        "torch were already resident), so it counts everything the call allocates on the CPU, torch tensors "
        "included. 'vs P/R': this row divided by the P/R/D/C row of the same n (1.00 for the baseline itself). "
        "'inputs MiB': the two float32 arrays; 'process peak MiB': the whole process. other load: cores used by "
        f"other processes during the call (! above {QUIET_CORES}: the timing was disturbed). One timing per case."
    )


if __name__ == "__main__":
    main()
