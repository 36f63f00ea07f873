#!/usr/bin/env python
"""Seconds per checkpoint of ``ganeval leaderboard``, split into generate, extract and metrics.

    python benchmarks/bench_leaderboard.py                      # 2 checkpoints × 5,000 samples at 32 px (~16 min on 2 cores)
    python benchmarks/bench_leaderboard.py --samples 200 --reference 100   # smoke run

Two DCGAN checkpoints (32 px, width 64, the paper's generator) are trained for a few steps on the procedural
``shapes`` data; the reference is ``--reference`` shapes images. Timed, in one process:

- ``reference, first load``: building the Evaluator with an empty cache (the network, and the reference
  decoded and extracted once);
- ``reference, cached``: building it again (what every later leaderboard run pays);
- one row per checkpoint: ``score_checkpoints`` with FID and KID, its split from the CSV's ``generate_s``,
  ``extract_s``, ``metrics_s`` and ``wall_s`` columns, images/s of the extraction, and the number of
  reference extractions during scoring (must be 0: the reference is loaded once per leaderboard).

Ratios: ``cached vs first`` = the second Evaluator build / the first; a checkpoint's ``vs naive`` = its
wall time / (its wall time + the first reference load), i.e. against a tool that reloads the network and
re-extracts the reference for every checkpoint; and the shares of generate/extract/metrics in its wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_foundation import OtherLoad, cpu_model, emit, load_legend, note, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--reference", type=int, default=1000)
    parser.add_argument("--checkpoints", type=int, default=2)
    parser.add_argument("--metrics", default="fid,kid")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-leaderboard-"))
    os.environ["GANEVAL_HOME"] = str(work / "home")  # an empty cache: the first load really extracts
    import ganeval.pipeline
    from ganeval.evaluator import Evaluator
    from ganeval.leaderboard.scoring import score_checkpoints
    from ganeval.leaderboard.store import read_table
    from ganeval.datasets import dataset_images
    from ganeval.train.trainer import TrainConfig, Trainer

    note(f"training {args.checkpoints} checkpoint(s) in {work}")
    Trainer(
        TrainConfig(
            out=str(work / "runs" / "dcgan"),
            data="shapes",
            size=32,
            width=64,
            steps=args.checkpoints,
            checkpoint_every=1,
            sample_every=0,
        ),
        log=lambda line: None,
    ).run()
    reference = dataset_images("shapes", 32, limit=args.reference)
    metrics = args.metrics.split(",")

    def build() -> Evaluator:
        return Evaluator(reference, metrics, num_samples=args.samples, device="cpu", progress=False)

    loads = [OtherLoad(), OtherLoad(), OtherLoad()]
    note(f"reference: {args.reference} images, first load")
    with loads[0]:
        start = time.perf_counter()
        build()
        first = time.perf_counter() - start
    with loads[1]:
        start = time.perf_counter()
        evaluator = build()
        cached = time.perf_counter() - start

    extractions = []
    original = ganeval.pipeline.Extractor.extract

    def counting(self, source, *a, **k):
        extractions.append(source.label)
        return original(self, source, *a, **k)

    ganeval.pipeline.Extractor.extract = counting
    note(f"scoring {args.checkpoints} checkpoint(s) × {args.samples} samples")
    with loads[2]:
        score_checkpoints([work / "runs"], evaluator, work / "leaderboard.csv", log=lambda line: note(line))
    rows = read_table(work / "leaderboard.csv").sort_values("step")

    emit(
        f"ganeval leaderboard, {cpu_model()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"DCGAN 32 px, {args.samples} samples per checkpoint, metrics {args.metrics}, reference {args.reference} "
        f"shapes images"
    )
    emit()
    emit(
        table(
            ["reference", "seconds", "ms per image", "vs first", "other load"],
            [
                [
                    "first load (network + extract)",
                    f"{first:.1f}",
                    f"{1000 * first / args.reference:.1f}",
                    "1.00",
                    loads[0].short(),
                ],
                ["cached (network + cache read)", f"{cached:.1f}", "", f"{cached / first:.3f}", loads[1].short()],
            ],
            right={1, 2, 3},
        )
    )
    emit()
    lines = []
    for row in rows.itertuples():
        wall = float(row.wall_s)
        lines.append(
            [
                str(row.step),
                f"{row.generate_s:.1f} ({row.generate_s / wall:.1%})",
                f"{row.extract_s:.1f} ({row.extract_s / wall:.1%})",
                f"{row.metrics_s:.1f} ({row.metrics_s / wall:.1%})",
                f"{wall:.1f}",
                f"{args.samples / row.extract_s:.1f}",
                f"{wall / (wall + first):.2f}",
            ]
        )
    emit(
        table(
            ["step", "generate s", "extract s", "metrics s", "wall s", "extract img/s", "vs naive"],
            lines,
            right={1, 2, 3, 4, 5, 6},
        )
    )
    emit()
    emit(
        f"reference extractions during scoring: {len(extractions)} (the reference is loaded once, at the "
        f"Evaluator's construction); scoring other load {loads[2].short()}"
    )
    emit(load_legend(loads))


if __name__ == "__main__":
    sys.exit(main())
