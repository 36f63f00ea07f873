#!/usr/bin/env python
"""Images/s of each preprocessing mode (tf, pytorch-fid, clean) on the same images, in one process.

    python benchmarks/bench_modes.py             # N = 48 images of 32×32 and of 256×256 (~3 min, 2 cores)
    python benchmarks/bench_modes.py --n 8       # smoke run

Two tables. [1] End to end: ``Extractor(mode=M).extract(folder)`` (listing, decoding, the mode's
preprocessing, the Inception forward, the statistics), after one warm-up batch; images/s and the ratio to
tf. [2] The preprocessing alone (no network): milliseconds per image to turn decoded uint8 images into the
299×299 network input, split into the per-image CPU stage (clean's PIL resize, run in the decode threads)
and the batched stage. On a CPU the network dominates [1]; on a GPU [2] is what could hold the forward
back. Weights: the packaged trunk. Tables go to stdout, notes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_foundation import cpu_model  # the CPU model and its vector extensions, as every benchmark prints


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_images(folder: Path, n: int, size: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        tile = rng.uniform(0, 255, (4, 4, 3)).astype(np.uint8)
        Image.fromarray(tile).resize((size, size), Image.BICUBIC).save(folder / f"{i:05d}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48, help="images per folder (default 48)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="timings of [1] per mode, interleaved; the best is shown")
    parser.add_argument("--repeats", type=int, default=5, help="timings of [2] per mode; the best is shown")
    args = parser.parse_args()

    from ganeval import __version__
    from ganeval.extractors.inception import Extractor
    from ganeval.preprocess import MODES
    from ganeval.sources import open_source

    print(
        f"ganeval {__version__} · torch {torch.__version__} ({torch.get_num_threads()} threads) · {cpu_model()} · "
        f"n={args.n} per folder, batch {args.batch_size}, best of {args.rounds} rounds"
    )
    with tempfile.TemporaryDirectory(prefix="ganeval-bench-modes-") as tmp:
        folders = {size: write_images(Path(tmp) / f"s{size}", args.n, size, seed=size) for size in (32, 256)}
        extractors = {mode: Extractor(mode=mode, device="cpu", batch_size=args.batch_size) for mode in MODES}
        for extractor in extractors.values():
            extractor.model  # built before timing  # noqa: B018

        print("\n[1] extraction end to end (decode + preprocess + Inception forward + statistics)")
        print(f"{'size':>6}  {'mode':<12} {'seconds':>8} {'images/s':>9} {'vs tf':>6}")
        for size, folder in folders.items():
            source = open_source(folder)
            warm = [np.asarray(Image.open(folder / name).convert("RGB")) for name in source.names[: args.batch_size]]
            best = {mode: float("inf") for mode in MODES}
            for round_ in range(args.rounds):
                for mode, extractor in extractors.items():
                    extractor.forward(warm)
                    note(f"{size}px {mode} round {round_ + 1}/{args.rounds}")
                    start = time.perf_counter()
                    extractor.extract(source, progress=False)
                    best[mode] = min(best[mode], time.perf_counter() - start)
            for mode, seconds in best.items():
                rate = len(source) / seconds
                print(f"{size:>5}px  {mode:<12} {seconds:>8.2f} {rate:>9.2f} {best['tf'] / seconds:>6.2f}", flush=True)

        print("\n[2] preprocessing only, ms per image (best of repeats; one thread for the per-image stage)")
        print(f"{'size':>6}  {'mode':<12} {'per-image':>9} {'batched':>8} {'total':>8} {'vs tf':>6}")
        for size, folder in folders.items():
            paths = sorted(folder.iterdir())[: args.batch_size]
            images = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
            totals = {}
            for mode, extractor in extractors.items():
                spec = MODES[mode]
                per_image = batched = float("inf")
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    prepared = [spec.prepare_image(img) for img in images] if spec.prepare_image else None
                    middle = time.perf_counter()
                    if prepared is not None:
                        extractor._prepared_input(prepared)
                    else:
                        extractor.preprocess(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2))
                    end = time.perf_counter()
                    per_image, batched = min(per_image, middle - start), min(batched, end - middle)
                per_image, batched = 1e3 * per_image / len(images), 1e3 * batched / len(images)
                totals[mode] = per_image + batched
                print(
                    f"{size:>5}px  {mode:<12} {per_image:>9.3f} {batched:>8.3f} {totals[mode]:>8.3f} "
                    f"{totals[mode] / totals['tf']:>6.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
