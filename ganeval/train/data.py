"""Training data for the reference GAN trainers: images of a fixed size and channel count, as float32
tensors (C, size, size) in [-1, 1] (``x / 127.5 - 1`` of the uint8 pixel values).

Sources (see :func:`open_dataset`): a folder of images (decoded lazily), Fashion-MNIST from its IDX files,
MNIST and CIFAR-10 through torchvision, and ``shapes``, a procedural dataset drawn on the fly.

Batches (:meth:`TrainingData.batches`) follow an epoch scheme that is a pure function of (seed, step): epoch
``e`` visits the images in the order ``np.random.default_rng([seed, e]).permutation(n)``, cut into
``n // batch_size`` batches (the last ``n % batch_size`` images of each epoch's order are left out, as with
``drop_last``). Batch ``k`` is batch ``k % (n // batch_size)`` of epoch ``k // (n // batch_size)``, so a run
resumed at step ``k`` sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import gzip
import math
import operator
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..errors import BadInputError
from ..sources import ArraySource, decode_image
from ..paths import ganeval_home

DATASET_NAMES = ("fashion-mnist", "mnist", "cifar10", "shapes")
FOLDER_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SHAPES_LENGTH = 10_000
FOLDER_CACHE_BYTES = 256 * 2**20
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049

_ALIASES = {"fashionmnist": "fashion-mnist", "fashion_mnist": "fashion-mnist", "cifar-10": "cifar10"}
_FASHION_SPLITS = ("train", "t10k")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit_square(image: Image.Image, size: int) -> Image.Image:
    """Resize ``image`` so that its shorter side is ``size`` px (PIL bicubic; the longer side is rounded to
    the nearest pixel) and crop the centre size×size square (offsets rounded down)."""
    width, height = image.size
    if width <= height:
        new_size = (size, max(size, round(height * size / width)))
    else:
        new_size = (max(size, round(width * size / height)), size)
    if new_size != image.size:
        image = image.resize(new_size, Image.Resampling.BICUBIC)
    left, top = (new_size[0] - size) // 2, (new_size[1] - size) // 2
    if new_size != (size, size):
        image = image.crop((left, top, left + size, top + size))
    return image


def _hwc(array: np.ndarray) -> np.ndarray:
    return array[..., None] if array.ndim == 2 else array


class TrainingData:
    """A fixed-length sequence of images of ``size``×``size`` px with ``channels`` (1 or 3) channels.
    ``data[i]`` is a float32 tensor (C, size, size) in [-1, 1]; ``data.uint8(i)`` the same image as a
    uint8 array (size, size, C)."""

    def __init__(self, name: str, size: int, channels: int, count: int, source: str, seed: int) -> None:
        self.name = name
        self.size = size
        self.channels = channels
        self.source = source
        self.seed = seed
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, n={len(self)}, size={self.size}, channels={self.channels})"

    def _index(self, i: int) -> int:
        index = operator.index(i)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"{self.name}: image index {i} out of range for {len(self)} images")
        return index

    def _load(self, index: int) -> np.ndarray:
        """Image ``index`` (already in range) as uint8 (size, size, channels)."""
        raise NotImplementedError

    def _load_many(self, indices: np.ndarray) -> np.ndarray:
        """Images ``indices`` (in range) as uint8 (B, size, size, channels)."""
        return np.stack([self._load(int(i)) for i in indices])

    def uint8(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8 (size, size, channels), values 0..255."""
        return self._load(self._index(i))

    def __getitem__(self, i: int) -> torch.Tensor:
        """Image ``i`` as float32 (channels, size, size) in [-1, 1]."""
        return self._to_float(self.uint8(i)[None])[0]

    @staticmethod
    def _to_float(images: np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W, C) → float32 (B, C, H, W) as x / 127.5 - 1."""
        chw = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
        return torch.from_numpy(chw).to(torch.float32).div_(127.5).sub_(1.0)

    def batch(self, indices: np.ndarray | list[int]) -> torch.Tensor:
        """The images ``indices`` as float32 (B, channels, size, size) in [-1, 1]."""
        checked = np.array([self._index(int(i)) for i in indices], dtype=np.int64)
        if checked.size == 0:
            return torch.empty((0, self.channels, self.size, self.size), dtype=torch.float32)
        return self._to_float(self._load_many(checked))

    def describe(self) -> dict[str, object]:
        """name, source (a path or "procedural"), count, size (px), channels and seed."""
        return {
            "name": self.name,
            "source": self.source,
            "count": len(self),
            "size": self.size,
            "channels": self.channels,
            "seed": self.seed,
        }

    def _check_batching(self, batch_size: int, seed: int, step: int) -> int:
        _check_int("batch_size", batch_size, 1)
        _check_int("seed", seed, 0)
        _check_int("step", step, 0)
        if batch_size > len(self):
            raise BadInputError(
                f"{self.name}: batch size {batch_size} is larger than the dataset ({len(self)} images); "
                f"use a batch size of at most {len(self)}"
            )
        return len(self) // batch_size

    def epoch_order(self, seed: int, epoch: int) -> np.ndarray:
        """The order (int64 permutation of range(len)) in which epoch ``epoch`` visits the images."""
        return np.random.default_rng([seed, epoch]).permutation(len(self))

    def batch_indices(self, batch_size: int, seed: int, step: int) -> np.ndarray:
        """The image indices (int64, batch_size) of batch number ``step`` of the run seeded ``seed``."""
        per_epoch = self._check_batching(batch_size, seed, step)
        epoch, within = divmod(step, per_epoch)
        return self.epoch_order(seed, epoch)[within * batch_size:(within + 1) * batch_size]

    def batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[torch.Tensor]:
        """Infinite iterator of float32 batches (batch_size, channels, size, size) in [-1, 1], beginning with
        batch number ``start_step``; batch k depends only on (seed, k) (see the module docstring)."""
        per_epoch = self._check_batching(batch_size, seed, start_step)
        return self._iterate(batch_size, seed, start_step, per_epoch)

    def _iterate(self, batch_size: int, seed: int, step: int, per_epoch: int) -> Iterator[torch.Tensor]:
        order_epoch, order = -1, np.empty(0, dtype=np.int64)
        while True:
            epoch, within = divmod(step, per_epoch)
            if epoch != order_epoch:
                order_epoch, order = epoch, self.epoch_order(seed, epoch)
            yield self._to_float(self._load_many(order[within * batch_size:(within + 1) * batch_size]))
            step += 1


class ArrayData(TrainingData):
    """Images held in memory as uint8 (N, H, W) (grayscale) or (N, H, W, 3) (RGB), converted per image to
    the wanted channels (gray → RGB repeats the channel; RGB → gray is PIL's ``convert("L")``) and fitted
    to size×size with :func:`fit_square` when H, W differ from ``size``."""

    def __init__(
        self,
        name: str,
        images: np.ndarray,
        size: int,
        channels: int,
        source: str,
        seed: int = 0,
        labels: np.ndarray | None = None,
    ) -> None:
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3):
            raise BadInputError(f"{name}: expected uint8 images (N, H, W) or (N, H, W, 3), got "
                                f"{images.dtype} {images.shape}")
        if len(images) == 0:
            raise BadInputError(f"{name}: {source} holds no images")
        super().__init__(name, size, channels, len(images), source, seed)
        self.images = images
        self.labels = labels
        self._native_channels = 1 if images.ndim == 3 else 3
        self._as_is = images.shape[1:3] == (size, size)

    def _load(self, index: int) -> np.ndarray:
        image = self.images[index]
        if self._as_is and self._native_channels == 1:
            gray = image[..., None]
            return np.repeat(gray, 3, axis=2) if self.channels == 3 else gray.copy()
        if self._as_is and self.channels == 3:
            return image.copy()
        pil = Image.fromarray(image)
        if self.channels == 1:
            pil = pil.convert("L")
        out = _hwc(np.asarray(fit_square(pil, self.size), dtype=np.uint8))
        return np.repeat(out, 3, axis=2) if out.shape[2] != self.channels else out.copy()

    def _load_many(self, indices: np.ndarray) -> np.ndarray:
        if self._as_is and self._native_channels == self.channels:
            picked = self.images[indices]
            return picked[..., None] if self._native_channels == 1 else picked
        return super()._load_many(indices)


class FolderData(TrainingData):
    """Every image in a folder and its subfolders (png, jpg/jpeg, bmp, webp in any letter case; hidden files
    and folders skipped; symlinked folders not followed), sorted by relative path. Decoded lazily with
    :func:`ganeval.sources.decode_image` (RGB), converted to L for one channel, and fitted with
    :func:`fit_square`. Up to ``cache_bytes`` of fitted images are kept in memory."""

    def __init__(
        self, path: Path, size: int, channels: int, name: str | None = None, seed: int = 0,
        cache_bytes: int = FOLDER_CACHE_BYTES,
    ) -> None:
        root = Path(path).resolve()
        if not root.is_dir():
            raise BadInputError(f"{path}: not a folder; pass a folder of images or one of {', '.join(DATASET_NAMES)}")
        self.root = root
        self.files = _list_images(root)
        if not self.files:
            raise BadInputError(
                f"{root}: no images found (looked for {', '.join(sorted(FOLDER_EXTENSIONS))} files, recursively); "
                f"point to a folder that holds the training images"
            )
        super().__init__(name or str(path), size, channels, len(self.files), str(root), seed)
        self._cache: dict[int, np.ndarray] = {}
        self._cache_left = cache_bytes

    def _load(self, index: int) -> np.ndarray:
        cached = self._cache.get(index)
        if cached is not None:
            return cached.copy()
        path = self.root / self.files[index]
        try:
            rgb = decode_image(path, str(path))
        except BadInputError as exc:
            raise BadInputError(f"{exc}; remove or replace it in the training folder {self.root}") from None
        pil = Image.fromarray(rgb)
        if self.channels == 1:
            pil = pil.convert("L")
        out = _hwc(np.array(fit_square(pil, self.size), dtype=np.uint8))
        if out.nbytes <= self._cache_left:
            self._cache[index] = out
            self._cache_left -= out.nbytes
            return out.copy()
        return out


def _list_images(root: Path) -> list[str]:
    def unlistable(exc: OSError) -> None:
        raise BadInputError(f"{exc.filename}: cannot list folder ({exc.strerror}); check its permissions")

    names = []
    for folder, subfolders, files in os.walk(root, onerror=unlistable, followlinks=False):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        for file in files:
            if not file.startswith(".") and Path(file).suffix.lower() in FOLDER_EXTENSIONS:
                names.append(os.path.relpath(os.path.join(folder, file), root).replace(os.sep, "/"))
    return sorted(names)


class ShapesData(TrainingData):
    """Procedural images: 1-3 circles, squares and triangles (random colour, position, size, rotation) on a
    random-colour background, a linear gradient half of the time. Image i depends only on (seed, i) (it is
    drawn from ``np.random.default_rng([seed, i])``), is drawn with PIL.ImageDraw supersampled and reduced
    with a box filter, and has the same layout at every size."""

    def __init__(self, size: int, channels: int = 3, seed: int = 0, length: int = SHAPES_LENGTH) -> None:
        _check_int("length", length, 1)
        super().__init__("shapes", size, channels, length, "procedural", seed)
        self.length = length

    def _load(self, index: int) -> np.ndarray:
        image = render_shapes(self.seed, index, self.size)
        if self.channels == 1:
            image = image.convert("L")
        return _hwc(np.array(image, dtype=np.uint8))


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
            points = [(x + r * math.cos(rotation + 2 * math.pi * k / corners),
                       y + r * math.sin(rotation + 2 * math.pi * k / corners)) for k in range(corners)]
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
        image_files = [_idx_file(folder, f"{split}-images-idx3-ubyte") for split in _FASHION_SPLITS]
        if all(image_files):
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
    label_files = [_idx_file(folder, f"{split}-labels-idx1-ubyte") for split in _FASHION_SPLITS]
    labels = None
    if all(label_files):
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
        raise BadInputError(f"{name}: reading it needs torchvision; install it with `pip install torchvision`") \
            from None
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
            where = (f"{folder / 'MNIST' / 'raw'} (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                     "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)")
        else:
            where = f"{folder} (cifar-10-python.tar.gz, or its extracted cifar-10-batches-py/)"
        raise BadInputError(
            f"{name}: not found in {folder} and downloading it failed ({_one_line(exc)}); put the files in "
            f"{where}, or set GANEVAL_DATA / pass root= to a folder that has them, or run once with network access"
        ) from None


def _check_int(what: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise BadInputError(f"{what} must be an integer >= {minimum}, got {value!r}")


def open_dataset(
    name_or_path: str, size: int, channels: int | None = None, seed: int = 0, root: str | None = None
) -> TrainingData:
    """Training images of size×size px as float32 (C, size, size) in [-1, 1]: one of DATASET_NAMES
    ("fashion-mnist", "mnist", "cifar10", "shapes"; names win over a same-named folder, write ./name for
    the folder) or a folder of images. ``channels`` defaults to 1 for (fashion-)MNIST and 3 otherwise;
    ``seed`` seeds the shapes dataset (recorded for the others); ``root`` is where the named datasets are
    looked for (see :func:`load_fashion_mnist`, :func:`load_torchvision`)."""
    _check_int("size", size, 1)
    _check_int("seed", seed, 0)
    if channels is not None and channels not in (1, 3):
        raise BadInputError(f"channels must be 1 or 3, got {channels!r}")
    text = os.fspath(name_or_path)
    key = _ALIASES.get(text.lower(), text.lower())
    if key in DATASET_NAMES:
        if channels is None:
            channels = 1 if key in ("fashion-mnist", "mnist") else 3
        if key == "shapes":
            return ShapesData(size, channels, seed)
        if key == "fashion-mnist":
            images, labels, folder = load_fashion_mnist(root)
        else:
            images, labels, folder = load_torchvision(key, root)
        return ArrayData(key, images, size, channels, str(folder), seed, labels)
    path = Path(text).expanduser()
    if not path.exists():
        raise BadInputError(
            f"{text}: no such folder and not a dataset name; "
            f"pass a folder of images or one of {', '.join(DATASET_NAMES)}"
        )
    return FolderData(path, size, 3 if channels is None else channels, name=text, seed=seed)


def dataset_images(name: str, size: int | None = None, *, limit: int | None = None,
                   root: str | None = None) -> ArraySource:
    """The first ``limit`` (default: all) images of a named dataset as uint8, an image source labelled with
    the dataset's name and size, for reference statistics (``ganeval stats --data NAME``). ``size``
    defaults to 28 for fashion-mnist and mnist, else 32."""
    if size is None:
        size = 28 if name.lower().replace("_", "-") in ("fashion-mnist", "fashionmnist", "mnist") else 32
    data = open_dataset(name, size, root=root)
    count = len(data) if limit is None else min(limit, len(data))
    images = np.stack([data.uint8(i) for i in range(count)])
    return ArraySource(images, f"{data.name} ({count} images, {size} px)")


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_TRAIN_SIZES = {"fashion-mnist": 60_000, "mnist": 60_000, "cifar10": 50_000}


def named_dataset_source(spec: str, root: str | None = None) -> ArraySource | None:
    """A labelled dataset named ``NAME`` or ``NAME:SPLIT`` (fashion-mnist, mnist or cifar10; split train,
    the default, or test) as an image source at its own size whose ``labels`` are class names, or None
    when ``spec`` names no such dataset. A named dataset whose files are missing is a BadInputError that
    says how to get them."""
    name, _, split = spec.partition(":")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _TRAIN_SIZES:
        return None
    split = split.lower() or "train"
    if split not in ("train", "test"):
        raise BadInputError(f"{spec}: unknown split {split!r}; use {key}:train or {key}:test")
    if key == "fashion-mnist":
        images, labels, _ = load_fashion_mnist(root)
        if labels is None:
            raise BadInputError("fashion-mnist: the label files (train-labels-idx1-ubyte, t10k-labels-idx1-ubyte) "
                                "are missing beside the images; reinstall dataset-fashion-mnist")
        names: tuple[str, ...] = FASHION_MNIST_CLASSES
    else:
        images, labels, _ = load_torchvision(key, root)
        names = CIFAR10_CLASSES if key == "cifar10" else tuple(str(d) for d in range(10))
    part = slice(0, _TRAIN_SIZES[key]) if split == "train" else slice(_TRAIN_SIZES[key], None)
    images, labels = images[part], np.asarray(labels[part], dtype=np.int64)
    return ArraySource(images, f"{key}:{split}", labels=np.array(names, dtype=object)[labels].astype(str),
                       classes=list(names))
