#!/usr/bin/env python
"""Write the image sets behind the table in docs/why-fid-differs.md, from Debian's Fashion-MNIST.

    python docs/examples/make_compat_sets.py OUT [--n 500]
    ganeval compat OUT/real OUT/other      # and OUT/blurred, OUT/jpeg75, then OUT/real512 vs OUT/other512

real: the first N test images; other: the first N training images (a perfect generator: the same
distribution); blurred: those training images under a Gaussian blur of radius 1 px (a generator that
misses fine detail); jpeg75: those training images saved as JPEG at quality 75 (the same images,
compressed). real512/other512: real and other upscaled to 512×512 with PIL bicubic, so every mode must
shrink them to 299 (where antialiasing matters). All are RGB PNG (jpeg75: JPEG), 28×28 unless named 512.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # apt install dataset-fashion-mnist


def read_idx_images(path: Path) -> np.ndarray:
    """uint8 (N, 28, 28) from an idx3-ubyte.gz file (magic 2051, big-endian sizes)."""
    data = gzip.decompress(path.read_bytes())
    magic, n, rows, cols = np.frombuffer(data[:16], dtype=">u4")
    if magic != 2051:
        raise SystemExit(f"{path}: not an idx3 image file (magic {magic})")
    return np.frombuffer(data[16:], dtype=np.uint8).reshape(n, rows, cols)


def save(folder: Path, images: list[Image.Image], ext: str = "png", **options: object) -> None:
    folder.mkdir(parents=True, exist_ok=False)
    for i, image in enumerate(images):
        image.save(folder / f"{i:05d}.{ext}", **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    test = read_idx_images(FASHION_MNIST / "t10k-images-idx3-ubyte.gz")[: args.n]
    train = read_idx_images(FASHION_MNIST / "train-images-idx3-ubyte.gz")[: args.n]
    real = [Image.fromarray(x).convert("RGB") for x in test]
    other = [Image.fromarray(x).convert("RGB") for x in train]
    save(args.out / "real", real)
    save(args.out / "other", other)
    save(args.out / "blurred", [image.filter(ImageFilter.GaussianBlur(1)) for image in other])
    save(args.out / "jpeg75", other, ext="jpg", quality=75)
    save(args.out / "real512", [image.resize((512, 512), Image.Resampling.BICUBIC) for image in real])
    save(args.out / "other512", [image.resize((512, 512), Image.Resampling.BICUBIC) for image in other])


if __name__ == "__main__":
    main()
