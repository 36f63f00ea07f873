#!/usr/bin/env python
"""Overhead of ``Evaluator.score(generator)`` over the bare extractor forward on the same images.

    python benchmarks/bench_evaluator.py            # N = 200 images of 32×32 (~2 min on 2 cores)
    python benchmarks/bench_evaluator.py --n 20     # smoke run

The generator is a small DCGAN-like module (z of 100 → 32×32 tanh images). Rows, in one process, best of
``--rounds`` interleaved rounds:

- ``generator only``: the module's own forward for N latents (the user's cost, in neither row below);
- ``bare forward``: ``Extractor.forward`` on the same N images, pre-generated as uint8 (the floor);
- ``Evaluator.score fid``: generation + quantisation + forward + streaming sums + FID against the cached
  reference (its factor computed once, at construction);
- ``Evaluator.score fid,kid``: the same, keeping pool3 rows for KID (100 subsets).

``overhead`` = (score − generator − bare forward) / bare forward: what ganeval adds (target ≤ 5% on CPU).
``of which compute()``: the metrics at the end (once per call, whatever N), timed again on the same state;
the rest of the overhead grows with N (quantisation, running sums).
Weights: the packaged trunk; the reference is N generated images (computed before timing).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


class Generator(torch.nn.Module):
    z_dim = 100

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Unflatten(1, (100, 1, 1)),
            torch.nn.ConvTranspose2d(100, 128, 4, 1, 0),
            torch.nn.BatchNorm2d(128),
            torch.nn.ReLU(),
            torch.nn.ConvTranspose2d(128, 64, 4, 2, 1),
            torch.nn.BatchNorm2d(64),
            torch.nn.ReLU(),
            torch.nn.ConvTranspose2d(64, 32, 4, 2, 1),
            torch.nn.BatchNorm2d(32),
            torch.nn.ReLU(),
            torch.nn.ConvTranspose2d(32, 3, 4, 2, 1),
            torch.nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import ganeval
    from ganeval.batches import quantise

    torch.manual_seed(0)
    generator = Generator().eval()
    with torch.no_grad():
        latents = torch.randn(args.n, 100)
        images = [quantise(generator(z), (-1.0, 1.0)) for z in latents.split(args.batch_size)]
    reference = torch.cat(images).permute(0, 2, 3, 1).numpy()
    note("building the Evaluators (reference features once)")
    evaluators = {
        metrics: ganeval.Evaluator(
            reference,
            metrics=metrics,
            num_samples=args.n,
            device="cpu",
            batch_size=args.batch_size,
            progress=False,
            kid_subset_size=100,
        )
        for metrics in (("fid",), ("fid", "kid"))
    }
    extractor = evaluators[("fid",)].extractor
    extractor.forward(images[0])  # warm-up

    best: dict[str, float] = {}

    def timed(name: str, work) -> None:
        note(name)
        start = time.perf_counter()
        work()
        best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)

    def generate_only() -> None:
        with torch.no_grad():
            for z in latents.split(args.batch_size):
                generator(z)

    for _ in range(args.rounds):
        timed("generator only", generate_only)
        timed("bare forward", lambda: [extractor.forward(batch) for batch in images])
        for metrics, evaluator in evaluators.items():
            timed("Evaluator.score " + ",".join(metrics), lambda ev=evaluator: ev.score(generator))
            timed("  of which compute() " + ",".join(metrics), evaluator.compute)

    print(
        f"ganeval {ganeval.__version__} · torch {torch.__version__} ({torch.get_num_threads()} threads) · "
        f"N={args.n} images 32×32, batch {args.batch_size}, best of {args.rounds} rounds"
    )
    print(f"{'run':<26} {'seconds':>8} {'images/s':>9} {'overhead':>9}")
    floor = best["bare forward"]
    for name, seconds in best.items():
        overhead = ""
        if name.startswith("Evaluator"):
            overhead = f"{(seconds - best['generator only'] - floor) / floor:+.1%}"
        elif name.startswith("  of which"):
            overhead = f"{seconds / floor:+.1%}"
        rate = "" if name.startswith("  of which") else f"{args.n / seconds:.2f}"
        print(f"{name:<26} {seconds:>8.2f} {rate:>9} {overhead:>9}")


if __name__ == "__main__":
    main()
