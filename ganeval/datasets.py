"""The named datasets: Fashion-MNIST (from its IDX files), MNIST and CIFAR-10 (through torchvision) and
``shapes`` (procedural, drawn on the fly), with their readers and class names, as uint8 pixel arrays or as
image sources for scoring (``ganeval stats --data NAME``, ``fashion-mnist:test`` as a SOURCE).

Training loaders over them (resizing, batching) are in :mod:`ganeval.train.data`. This module builds on
:mod:`ganeval.imagesource` and never imports :mod:`ganeval.sources`, which imports it.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .errors import BadInputError
from .images import conform
from .imagesource import ArraySource
from .paths import ganeval_home

DATASET_NAMES = ("fashion-mnist", "mnist", "cifar10", "shapes")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SHAPES_LENGTH = 10_000
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049

_ALIASES = {"fashionmnist": "fashion-mnist", "fashion_mnist": "fashion-mnist", "cifar-10": "cifar10"}
_FASHION_SPLITS = ("train", "t10k")


def dataset_key(name: str) -> str:
    """``name`` lower-cased with its aliases resolved (fashion_mnist → fashion-mnist, cifar-10 → cifar10): one of
    DATASET_NAMES when it names a dataset."""
    return _ALIASES.get(name.lower(), name.lower())


def default_channels(key: str) -> int:
    """The channel count a named dataset is read with by default: 1 for (fashion-)MNIST, else 3."""
    return 1 if key in ("fashion-mnist", "mnist") else 3


def dataset_arrays(key: str, root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray | None, Path]:
    """All images of the array dataset ``key`` (fashion-mnist, mnist or cifar10), training then test, as uint8
    (N, H, W) or (N, H, W, 3), their labels ((N,) or None) and the folder read."""
    if key == "fashion-mnist":
        return load_fashion_mnist(root)
    return load_torchvision(key, root)


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_shapes(seed: int, index: int, size: int) -> Image.Image:
    """Image ``index`` of the shapes dataset seeded ``seed``, as an RGB PIL image of size×size px."""
    rng = np.random.default_rng([seed, index])
    scale = 4 if size <= 128 else 2 if size <= 256 else 1
    big = size * scale
    start = rng.integers(0, 256, size=3)
    if rng.random() < 0.5:
        end = rng.integers(0, 256, size=3)
        angle = rng.uniform(0.0, 2 * math.pi)
        axis = (np.arange(big, dtype=np.float32) + 0.5) / big - 0.5
        along = axis[None, :] * math.cos(angle) + axis[:, None] * math.sin(angle)
        t = ((along - along.min()) / max(float(np.ptp(along)), 1e-6))[..., None]
        background = np.rint(start * (1.0 - t) + end * t).astype(np.uint8)
        mean = (start + end) / 2.0
    else:
        background = np.broadcast_to(start.astype(np.uint8), (big, big, 3))
        mean = start.astype(np.float64)
    image = Image.fromarray(np.ascontiguousarray(background))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 3))
        colour = rng.integers(0, 256, size=3)
        for _ in range(8):
            if np.abs(colour - mean).sum() >= 160:
                break
            colour = rng.integers(0, 256, size=3)
        radius = rng.uniform(0.12, 0.3)
        cx, cy = rng.uniform(radius, 1.0 - radius, size=2)
        rotation = rng.uniform(0.0, 2 * math.pi)
        fill = tuple(int(c) for c in colour)
        r, x, y = radius * big, cx * big, cy * big
        if kind == 0:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
        else:
            corners = 4 if kind == 1 else 3
            points = [
                (
                    x + r * math.cos(rotation + 2 * math.pi * k / corners),
                    y + r * math.sin(rotation + 2 * math.pi * k / corners),
                )
                for k in range(corners)
            ]
            draw.polygon(points, fill=fill)
    return image.reduce(scale) if scale > 1 else image


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip-compressed when the name ends in .gz): images (magic 2051,
    returns uint8 (N, rows, cols)) or labels (magic 2049, returns uint8 (N,)). Checks the magic number,
    the dimensions and the file length; a damaged file is a BadInputError naming it."""
    fix = "re-download or reinstall it"
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise BadInputError(f"{path}: cannot read the IDX file ({_one_line(exc)}); {fix}") from None
    kind = "images" if magic == IDX_IMAGES_MAGIC else "labels"
    found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if found != magic:
        raise BadInputError(f"{path}: not an IDX {kind} file (magic number {found}, expected {magic}); {fix}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise BadInputError(f"{path}: truncated IDX header ({len(data)} bytes); {fix}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if any(d == 0 for d in dims[1:]):
        raise BadInputError(f"{path}: IDX {kind} of empty shape {dims}; {fix}")
    expected = header + math.prod(dims)
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "too long"
        raise BadInputError(
            f"{path}: {what}: {len(data)} bytes where the header ({' x '.join(map(str, dims))}) needs {expected}; {fix}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _idx_files(folder: Path, kind: str) -> list[Path] | None:
    """The training and test IDX files of ``kind`` (e.g. "images-idx3-ubyte") in ``folder``, in that order, or
    None unless both are there."""
    files = [_idx_file(folder, f"{split}-{kind}") for split in _FASHION_SPLITS]
    present = [path for path in files if path is not None]
    return present if len(present) == len(files) else None


def fashion_mnist_folders(root: str | Path | None = None) -> list[Path]:
    """The folders searched for the Fashion-MNIST IDX files, in order."""
    folders = []
    if root is not None:
        folders += [Path(root), Path(root) / "FashionMNIST" / "raw"]
    if os.environ.get("GANEVAL_DATA"):
        data = Path(os.environ["GANEVAL_DATA"])
        folders += [data / "fashion-mnist", data / "FashionMNIST" / "raw"]
    folders.append(DEBIAN_FASHION_MNIST)
    return folders


def load_fashion_mnist(root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray | None, Path]:
    """Fashion-MNIST's 60,000 training then 10,000 test images, uint8 (N, 28, 28), their labels (uint8 (N,),
    or None when the label files are absent) and the folder read: the first of
    :func:`fashion_mnist_folders` that holds both image files."""
    folders = fashion_mnist_folders(root)
    for folder in folders:
        image_files = _idx_files(folder, "images-idx3-ubyte")
        if image_files is not None:
            break
    else:
        raise BadInputError(
            "fashion-mnist: train-images-idx3-ubyte[.gz] and t10k-images-idx3-ubyte[.gz] not found in "
            f"{', '.join(map(str, folders))}; install them with `apt-get install dataset-fashion-mnist`, or set "
            "GANEVAL_DATA to a folder whose fashion-mnist/ holds them, or pass as root the folder filled by "
            "torchvision.datasets.FashionMNIST(root, download=True)"
        )
    parts = [read_idx(path, IDX_IMAGES_MAGIC) for path in image_files]
    if parts[0].shape[1:] != parts[1].shape[1:]:
        raise BadInputError(
            f"fashion-mnist: {image_files[0]} holds {parts[0].shape[1:]} images but {image_files[1]} "
            f"{parts[1].shape[1:]}; re-download or reinstall them"
        )
    images = np.concatenate(parts)
    label_files = _idx_files(folder, "labels-idx1-ubyte")
    labels = None
    if label_files is not None:
        label_parts = [read_idx(path, IDX_LABELS_MAGIC) for path in label_files]
        for path, part, image_part in zip(label_files, label_parts, parts):
            if len(part) != len(image_part):
                raise BadInputError(
                    f"{path}: {len(part)} labels for {len(image_part)} images; re-download or reinstall it"
                )
        labels = np.concatenate(label_parts)
    return images, labels, folder


def _torchvision_root(root: str | Path | None) -> Path:
    if root is not None:
        return Path(root)
    if os.environ.get("GANEVAL_DATA"):
        return Path(os.environ["GANEVAL_DATA"])
    return ganeval_home() / "datasets"


def load_torchvision(name: str, root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, Path]:
    """MNIST (uint8 (70000, 28, 28)) or CIFAR-10 (uint8 (60000, 32, 32, 3)): training then test images,
    their labels (int64) and the root folder. Read with torchvision from ``root``, else ``$GANEVAL_DATA``,
    else ``$GANEVAL_HOME/datasets``; downloaded there when missing."""
    try:
        import torchvision.datasets as tv_datasets
    except ImportError:
        raise BadInputError(
            f"{name}: reading it needs torchvision; install it with `pip install torchvision`"
        ) from None
    folder = _torchvision_root(root)
    cls = tv_datasets.MNIST if name == "mnist" else tv_datasets.CIFAR10
    splits = []
    for train in (True, False):
        # torchvision signals a missing or damaged dataset with various exception types
        try:
            splits.append(cls(str(folder), train=train, download=False))
        except Exception:  # noqa: BLE001
            splits.append(_download(name, cls, folder, train))
    images = np.concatenate([np.asarray(split.data, dtype=np.uint8) for split in splits])
    labels = np.concatenate([np.asarray(split.targets, dtype=np.int64) for split in splits])
    return images, labels, folder


def _download(name: str, cls: type, folder: Path, train: bool) -> object:
    """One split of MNIST/CIFAR-10 downloaded into ``folder``; a failed download is a one-line BadInputError
    that says where to put the files."""
    try:
        return cls(str(folder), train=train, download=True)
    except Exception as exc:  # noqa: BLE001
        if name == "mnist":
            where = (
                f"{folder / 'MNIST' / 'raw'} (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)"
            )
        else:
            where = f"{folder} (cifar-10-python.tar.gz, or its extracted cifar-10-batches-py/)"
        raise BadInputError(
            f"{name}: not found in {folder} and downloading it failed ({_one_line(exc)}); put the files in "
            f"{where}, or set GANEVAL_DATA / pass root= to a folder that has them, or run once with network access"
        ) from None


def dataset_images(
    name: str, size: int | None = None, *, limit: int | None = None, root: str | None = None
) -> ArraySource:
    """The first ``limit`` (default: all) images of a named dataset (one of DATASET_NAMES) as uint8 size×size
    images with the dataset's default channels (see :func:`default_channels`; shapes with seed 0), an image
    source labelled with the dataset's name and size, for reference statistics (``ganeval stats --data NAME``).
    ``size`` defaults to 28 for fashion-mnist and mnist, else 32."""
    key = dataset_key(name)
    if key not in DATASET_NAMES:
        raise BadInputError(
            f"{name}: not a dataset name; use one of {', '.join(DATASET_NAMES)}, or give a folder "
            f"of images as the source"
        )
    if size is None:
        size = 28 if key in ("fashion-mnist", "mnist") else 32
    channels = default_channels(key)
    if key == "shapes":
        count = SHAPES_LENGTH if limit is None else min(limit, SHAPES_LENGTH)
        images = np.stack([np.array(render_shapes(0, i, size), dtype=np.uint8) for i in range(count)])
        return ArraySource(images, f"{key} ({count} images, {size} px)")
    arrays, _, _ = dataset_arrays(key, root)
    count = len(arrays) if limit is None else min(limit, len(arrays))
    images = np.stack([conform(arrays[i], size, channels) for i in range(count)])
    return ArraySource(images, f"{key} ({count} images, {size} px)")


FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_TRAIN_SIZES = {"fashion-mnist": 60_000, "mnist": 60_000, "cifar10": 50_000}


def named_dataset_source(spec: str, root: str | None = None) -> ArraySource | None:
    """A labelled dataset named ``NAME`` or ``NAME:SPLIT`` (fashion-mnist, mnist or cifar10; split train,
    the default, or test) as an image source at its own size whose ``labels`` are class names, or None
    when ``spec`` names no such dataset. A named dataset whose files are missing is a BadInputError that
    says how to get them."""
    name, _, split = spec.partition(":")
    key = dataset_key(name)
    if key not in _TRAIN_SIZES:
        return None
    split = split.lower() or "train"
    if split not in ("train", "test"):
        raise BadInputError(f"{spec}: unknown split {split!r}; use {key}:train or {key}:test")
    images, labels, _ = dataset_arrays(key, root)
    if labels is None:  # only Fashion-MNIST's label files can be missing (torchvision reads both or fails)
        raise BadInputError(
            "fashion-mnist: the label files (train-labels-idx1-ubyte, t10k-labels-idx1-ubyte) "
            "are missing beside the images; reinstall dataset-fashion-mnist"
        )
    if key == "fashion-mnist":
        names: tuple[str, ...] = FASHION_MNIST_CLASSES
    else:
        names = CIFAR10_CLASSES if key == "cifar10" else tuple(str(d) for d in range(10))
    part = slice(0, _TRAIN_SIZES[key]) if split == "train" else slice(_TRAIN_SIZES[key], None)
    images, labels = images[part], np.asarray(labels[part], dtype=np.int64)
    return ArraySource(
        images, f"{key}:{split}", labels=np.array(names, dtype=object)[labels].astype(str), classes=list(names)
    )
