"""The image-source interface (a sequence of uint8 RGB images with names and a content key) and its in-memory
kind, :class:`ArraySource`; the file-backed kinds are in :mod:`ganeval.sources`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .decode import array_to_nhwc, printable
from .errors import BadInputError


class ImageSource:
    """A sequence of images. ``names[i]`` identifies image ``i`` in messages; ``load(i)`` decodes it.
    ``labels``: class labels (one per image) and ``classes`` (their order) when the source comes with them."""

    kind = "images"
    labels: np.ndarray | None = None
    classes: list[object] | None = None

    def __init__(self, label: str, names: list[str], ignored: list[str] | None = None) -> None:
        self.label = label
        self.names = names
        self.ignored = ignored or []

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def content_key(self) -> str:
        """sha256 hex digest of everything that determines the decoded images and their order."""
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        return {"source": self.label, "kind": self.kind, "ignored_files": len(self.ignored)}

    def close(self) -> None:
        """Release the files this source holds open (none for most kinds); it can still be read afterwards."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ArraySource(ImageSource):
    """Images from a uint8 array, in memory or from a .npy/.npz file."""

    kind = "array"

    def __init__(
        self,
        array: np.ndarray,
        label: str,
        file: Path | None = None,
        labels: np.ndarray | None = None,
        classes: list[object] | None = None,
    ) -> None:
        self.images = array_to_nhwc(array, label)
        super().__init__(label, [f"{label}[{i}]" for i in range(len(self.images))])
        self.file = file
        if labels is not None:
            if len(labels) != len(self.images):
                raise BadInputError(f"{printable(label)}: {len(labels)} labels for {len(self.images)} images")
            self.labels, self.classes = np.asarray(labels), classes

    def load(self, index: int) -> np.ndarray:
        return np.ascontiguousarray(self.images[index])

    def content_key(self) -> str:
        if self.file is not None:
            return file_digest(self.file, b"ganeval-arrayfile-v1\0")
        digest = hashlib.sha256(f"ganeval-array-v1\0{self.images.shape}\0".encode())
        digest.update(np.ascontiguousarray(self.images).data)
        return digest.hexdigest()


def file_digest(path: Path, prefix: bytes) -> str:
    """sha256 hex digest of ``prefix`` followed by the bytes of ``path``; BadInputError when unreadable."""
    digest = hashlib.sha256(prefix)
    try:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise BadInputError(f"{printable(path)}: cannot read ({exc.strerror or exc})") from None
    return digest.hexdigest()
