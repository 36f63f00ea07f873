#!/usr/bin/env python
"""`score` (all five metrics from one pass per set) against `fid` alone, in one process on this machine.

    python benchmarks/bench_score.py               # N = 200 real and 200 fake 32×32 PNGs (~3 min, 2 cores)
    python benchmarks/bench_score.py --n 50        # smoke run

Both runs start from an empty cache (``cache=False``), so each decodes and extracts both sets; the ratio
is what the extra metrics cost on top of the pass FID needs anyway (target ≤ 1.2×). Weights: the packaged
trunk plus a seeded random classifier (so the Inception Score is included; its value is meaningless, its
cost is real). Tables go to stdout, notes to stderr.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_images(folder: Path, n: int, size: int, seed: int, shift: float) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        tile = (rng.uniform(0, 255, (4, 4, 3)) + shift).clip(0, 255).astype(np.uint8)
        Image.fromarray(tile).resize((size, size), Image.BICUBIC).save(folder / f"{i:05d}.png")
    return folder


def full_weights(path: Path) -> Path:
    from ganeval.weights import load_state_dict, locate_weights

    state = dict(load_state_dict(locate_weights(download=False)))
    generator = torch.Generator().manual_seed(2015)
    state["fc.weight"] = torch.randn(1008, 2048, generator=generator) * 0.05
    state["fc.bias"] = torch.randn(1008, generator=generator) * 0.1
    torch.save(state, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="images per set (default 200)")
    parser.add_argument("--size", type=int, default=32, help="image size in pixels (default 32)")
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ganeval-bench-") as tmp:
        root = Path(tmp)
        os.environ["GANEVAL_HOME"] = str(root / "home")
        import ganeval
        from ganeval.extractors.inception import Extractor

        real = write_images(root / "real", args.n, args.size, seed=1, shift=0)
        fake = write_images(root / "fake", args.n, args.size, seed=2, shift=40)
        extractor = Extractor(weights=full_weights(root / "full.pth"), device="cpu", batch_size=args.batch_size)
        note("warm-up forward")
        extractor.forward(torch.zeros(2, 3, args.size, args.size, dtype=torch.uint8))

        rows = []
        for label, metrics in (("fid", ["fid"]), ("score (fid,kid,is,pr,swd)", None)):
            note(f"timing {label}")
            start = time.perf_counter()
            result = ganeval.score(real, fake, metrics=metrics, extractor=extractor, cache=False, progress=False)
            rows.append((label, time.perf_counter() - start, ", ".join(result)))

    print(
        f"# bench_score · {time.strftime('%Y-%m-%d')} · {platform.processor() or platform.machine()} · "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads · N = {args.n} real + {args.n} fake "
        f"{args.size}×{args.size} PNGs, batch {args.batch_size}, cache off"
    )
    print(f"{'run':<28} {'seconds':>8} {'× fid':>7}  keys")
    for label, seconds, keys in rows:
        print(f"{label:<28} {seconds:8.2f} {seconds / rows[0][1]:7.3f}  {keys}")


if __name__ == "__main__":
    main()
