"""Training data for the reference GAN trainers: images of a fixed size and channel count, as float32
tensors (C, size, size) in [-1, 1] (``x / 127.5 - 1`` of the uint8 pixel values).

Sources (see :func:`open_dataset`): a folder of images (decoded lazily) or one of the named datasets of
:mod:`ganeval.datasets` (Fashion-MNIST, MNIST, CIFAR-10, and ``shapes``, procedural, drawn on the fly).

Batches (:meth:`TrainingData.batches`) follow an epoch scheme that is a pure function of (seed, step): epoch
``e`` visits the images in the order ``np.random.default_rng([seed, e]).permutation(n)``, cut into
``n // batch_size`` batches (the last ``n % batch_size`` images of each epoch's order are left out, as with
``drop_last``). Batch ``k`` is batch ``k % (n // batch_size)`` of epoch ``k // (n // batch_size)``, so a run
resumed at step ``k`` sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..datasets import DATASET_NAMES, SHAPES_LENGTH, dataset_arrays, dataset_key, default_channels, render_shapes
from ..decode import IMAGE_EXTENSIONS, decode_image
from ..errors import BadInputError
from ..images import conform, hwc

FOLDER_CACHE_BYTES = 256 * 2**20


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
        return self.epoch_order(seed, epoch)[within * batch_size : (within + 1) * batch_size]

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
            yield self._to_float(self._load_many(order[within * batch_size : (within + 1) * batch_size]))
            step += 1


class ArrayData(TrainingData):
    """Images held in memory as uint8 (N, H, W) (grayscale) or (N, H, W, 3) (RGB), converted per image to
    the wanted channels (gray → RGB repeats the channel; RGB → gray is PIL's ``convert("L")``) and fitted
    to size×size with :func:`ganeval.images.fit_square` when H, W differ from ``size`` (see
    :func:`ganeval.images.conform`)."""

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
            raise BadInputError(
                f"{name}: expected uint8 images (N, H, W) or (N, H, W, 3), got {images.dtype} {images.shape}"
            )
        if len(images) == 0:
            raise BadInputError(f"{name}: {source} holds no images")
        super().__init__(name, size, channels, len(images), source, seed)
        self.images = images
        self.labels = labels
        self._native_channels = 1 if images.ndim == 3 else 3
        self._as_is = images.shape[1:3] == (size, size)

    def _load(self, index: int) -> np.ndarray:
        return conform(self.images[index], self.size, self.channels)

    def _load_many(self, indices: np.ndarray) -> np.ndarray:
        if self._as_is and self._native_channels == self.channels:
            picked = self.images[indices]
            return picked[..., None] if self._native_channels == 1 else picked
        return super()._load_many(indices)


class FolderData(TrainingData):
    """Every image in a folder and its subfolders (the extensions of :data:`ganeval.decode.IMAGE_EXTENSIONS`,
    the same as scoring reads, in any letter case; hidden files and folders skipped; symlinked folders not
    followed), sorted by relative path. Decoded lazily with :func:`ganeval.decode.decode_image` (RGB),
    converted to L for one channel, and fitted with :func:`ganeval.images.fit_square`. Up to ``cache_bytes``
    of fitted images are kept in memory."""

    def __init__(
        self,
        path: Path,
        size: int,
        channels: int,
        name: str | None = None,
        seed: int = 0,
        cache_bytes: int = FOLDER_CACHE_BYTES,
    ) -> None:
        root = Path(path).resolve()
        if not root.is_dir():
            raise BadInputError(f"{path}: not a folder; pass a folder of images or one of {', '.join(DATASET_NAMES)}")
        self.root = root
        self.files = _list_images(root)
        if not self.files:
            raise BadInputError(
                f"{root}: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} files, recursively); "
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
        out = conform(rgb, self.size, self.channels)
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
            if not file.startswith(".") and Path(file).suffix.lower() in IMAGE_EXTENSIONS:
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
        return hwc(np.array(image, dtype=np.uint8))


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
    looked for (see :func:`ganeval.datasets.load_fashion_mnist`, :func:`ganeval.datasets.load_torchvision`)."""
    _check_int("size", size, 1)
    _check_int("seed", seed, 0)
    if channels is not None and channels not in (1, 3):
        raise BadInputError(f"channels must be 1 or 3, got {channels!r}")
    text = os.fspath(name_or_path)
    key = dataset_key(text)
    if key in DATASET_NAMES:
        if channels is None:
            channels = default_channels(key)
        if key == "shapes":
            return ShapesData(size, channels, seed)
        images, labels, folder = dataset_arrays(key, root)
        return ArrayData(key, images, size, channels, str(folder), seed, labels)
    path = Path(text).expanduser()
    if not path.exists():
        raise BadInputError(
            f"{text}: no such folder and not a dataset name; "
            f"pass a folder of images or one of {', '.join(DATASET_NAMES)}"
        )
    return FolderData(path, size, 3 if channels is None else channels, name=text, seed=seed)
