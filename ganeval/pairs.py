"""The closest fake/training pairs of a memorisation result, and their picture: fake left, training image
right, the pool3 distance under each pair.

The training images are found by the names the features were stored with (a folder's relative paths, an
archive's member names, ``label[i]`` for arrays), so a cached training set needs no second pass: only the
``count`` images shown are decoded again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .atomic import atomic_write
from .errors import BadInputError
from .images import png_bytes
from .result import Result
from .sources import open_source

CELL = 96  # display size of each image, pixels
PER_ROW = 4  # pairs per row of the grid
_CAPTION = 14  # pixels of caption under each pair
_GAP = 4


@dataclass(frozen=True)
class Pair:
    """One fake and its nearest training image: indices into the feature rows, their names, the distance."""

    fake_index: int
    fake_name: str
    train_index: int
    train_name: str
    distance: float


def closest_pairs(result: Result, count: int) -> list[Pair]:
    """The ``count`` fakes closest to the training set (ascending distance, ties by fake order) with their
    nearest training images, from a result computed with the ``authpct`` metric."""
    arrays = result.arrays
    if "nn_distance" not in arrays:
        raise BadInputError("closest pairs need a result computed with the authpct metric (memorisation)")
    if count < 1:
        raise BadInputError(f"the number of pairs must be at least 1, got {count}")
    distance, index = arrays["nn_distance"], arrays["nn_index"]
    fake_names, real_names = arrays["fake_names"], arrays["real_names"]
    order = np.argsort(distance, kind="stable")[:count]
    return [
        Pair(
            int(j),
            str(fake_names[j]) if len(fake_names) else f"fake[{j}]",
            int(index[j]),
            str(real_names[index[j]]),
            float(distance[j]),
        )
        for j in order
    ]


def load_named(source: object, names: Sequence[str]) -> list[np.ndarray]:
    """The images called ``names`` in ``source`` (a path or array, as ``score`` takes), uint8 (H, W, 3)."""
    src = open_source(source)
    position = {name: i for i, name in enumerate(src.names)}
    missing = [name for name in names if name not in position]
    if missing:
        raise BadInputError(
            f"{src.label}: {missing[0]} is no longer there (the features were computed when it "
            f"was); score again to refresh them"
        )
    return [src.load(position[name]) for name in names]


def _fit(image: np.ndarray, cell: int) -> Image.Image:
    picture = Image.fromarray(
        image
        if image.ndim == 3 and image.shape[2] == 3
        else np.repeat(image.reshape(*image.shape[:2], -1)[..., :1], 3, axis=2)
    )
    height, width = image.shape[:2]
    scale = cell / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 and float(scale).is_integer() else Image.Resampling.LANCZOS
    return picture.resize(size, resample)


def pairs_picture(
    pairs: Sequence[Pair],
    fakes: Sequence[np.ndarray],
    trains: Sequence[np.ndarray],
    *,
    cell: int = CELL,
    per_row: int = PER_ROW,
) -> Image.Image:
    """A white RGB grid of ``per_row`` pairs per row; each pair is the fake (left) and its training image
    (right), each fitted into ``cell``×``cell`` pixels, with ``d = distance`` under the pair."""
    if not (len(pairs) == len(fakes) == len(trains)) or not pairs:
        raise ValueError("pairs, fakes and trains must be equally long and not empty")
    columns = min(per_row, len(pairs))
    rows = -(-len(pairs) // columns)
    pair_w, pair_h = 2 * cell + _GAP, cell + _CAPTION
    canvas = Image.new("RGB", (columns * (pair_w + 3 * _GAP) + _GAP, rows * (pair_h + 2 * _GAP) + _GAP), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (pair, fake, train) in enumerate(zip(pairs, fakes, trains)):
        r, c = divmod(i, columns)
        left, top = _GAP + c * (pair_w + 3 * _GAP), _GAP + r * (pair_h + 2 * _GAP)
        for offset, image in ((0, fake), (cell + _GAP, train)):
            fitted = _fit(image, cell)
            canvas.paste(fitted, (left + offset + (cell - fitted.width) // 2, top + (cell - fitted.height) // 2))
        text = f"d = {pair.distance:.2f}"
        width = draw.textlength(text)
        draw.text((left + (pair_w - width) / 2, top + cell + 2), text, fill="black")
    return canvas


def pairs_png(pairs: Sequence[Pair], fakes: Sequence[np.ndarray], trains: Sequence[np.ndarray]) -> bytes:
    """``pairs_picture`` encoded as PNG."""
    return png_bytes(np.asarray(pairs_picture(pairs, fakes, trains)))


def write_pairs_grid(
    path: str | os.PathLike[str], result: Result, train: object, fake: object, count: int
) -> list[Pair]:
    """Write the PNG of the ``count`` closest pairs of ``result`` (from ``score(train, fake,
    metrics=[..., "authpct"])``) to ``path`` atomically; returns the pairs shown."""
    pairs = closest_pairs(result, count)
    fakes = load_named(fake, [p.fake_name for p in pairs])
    trains = load_named(train, [p.train_name for p in pairs])
    with atomic_write(Path(path)) as handle:
        handle.write(pairs_png(pairs, fakes, trains))
    return pairs
