"""Every input kind as a sequence of uint8 RGB images (H, W, 3) in a stable order, with a content key.

Kinds: a folder (recursive; png, jpg/jpeg, bmp, webp, tif/tiff, ppm/pgm in any letter case; sorted by
relative path), a .zip of images (same extensions, sorted by member name), a .npy/.npz of uint8 arrays
(NHWC or NCHW), or an in-memory uint8 numpy array / torch tensor.

Pixel conversions and what is refused: ``decode`` (one place for every kind).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import zipfile
from pathlib import Path

import numpy as np
import torch

from .decode import (
    IMAGE_EXTENSIONS,
    JPEG_EXTENSIONS,
    array_to_nhwc,
    decode_image,
    first_line,
    printable,
    read_regular_file,
)
from .errors import BadInputError
from .imagesource import ArraySource, ImageSource, file_digest

ARRAY_EXTENSIONS = frozenset({".npy", ".npz"})

__all__ = [
    "ARRAY_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "JPEG_EXTENSIONS",
    "ArraySource",
    "FolderSource",
    "ImageSource",
    "ZipSource",
    "array_to_nhwc",
    "class_labels",
    "decode_image",
    "jpeg_mismatch",
    "load_array_file",
    "open_source",
    "printable",
    "read_regular_file",
]


class FolderSource(ImageSource):
    """Images in a folder and its subfolders (symlinked files are read; symlinked folders are not followed
    and are counted among the ignored entries).
    The content key hashes each file's relative path, size and bytes."""

    kind = "folder"

    def __init__(self, root: Path) -> None:
        names: list[str] = []
        ignored: list[str] = []
        for folder, subfolders, files in os.walk(root, onerror=_unlistable, followlinks=False):
            linked = [d for d in subfolders if os.path.islink(os.path.join(folder, d))]
            ignored.extend(os.path.relpath(os.path.join(folder, d), root).replace(os.sep, "/") + "/" for d in linked)
            subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in linked]
            for file in files:
                rel = os.path.relpath(os.path.join(folder, file), root).replace(os.sep, "/")
                if file.startswith(".") or Path(file).suffix.lower() not in IMAGE_EXTENSIONS:
                    ignored.append(rel)
                else:
                    names.append(rel)
        super().__init__(str(root), sorted(names), sorted(ignored))
        self.root = root

    def load(self, index: int) -> np.ndarray:
        return decode_image(self.root / self.names[index], str(self.root / self.names[index]))

    def content_key(self) -> str:
        digest = hashlib.sha256(b"ganeval-folder-v1\0")
        for name in self.names:
            try:
                data = read_regular_file(self.root / name, name)
            except BadInputError:
                data = None  # decoding will report (or skip) this file
            size = -1 if data is None else len(data)
            digest.update(f"{name}\0{size}\0".encode("utf-8", "surrogateescape"))
            digest.update(hashlib.sha256(data or b"").digest())
        return digest.hexdigest()


def _unlistable(exc: OSError) -> None:
    raise BadInputError(f"{printable(str(exc.filename))}: cannot list folder ({exc.strerror or exc})")


class ZipSource(ImageSource):
    """Images inside a .zip archive, by sorted member name. The content key hashes the archive's bytes.
    A member that cannot be read (bad CRC-32, damaged compressed data, encrypted, unknown compression
    method) is a bad image named ``archive.zip:member``.

    File handle: the archive is read once for its listing and closed; ``load`` opens it again on first use and
    keeps it open (reopening it per image would parse the central directory of a 50,000-member archive for
    every image) until :meth:`close`, the end of a ``with`` block, or garbage collection. A process forked
    after it was opened (a DataLoader worker) opens its own, so no two processes share one file offset."""

    kind = "zip"

    def __init__(self, path: Path) -> None:
        try:
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
            raise BadInputError(f"{printable(path)}: not a readable zip archive ({first_line(exc)})") from None
        names, ignored = [], []
        for member in members:
            base = re.split(r"[/\\]", member.filename)[-1]  # "\\" too: archives made on Windows use it
            hidden = base.startswith(".") or member.filename.startswith("__MACOSX/")
            if hidden or Path(base).suffix.lower() not in IMAGE_EXTENSIONS:
                ignored.append(member.filename)
            else:
                names.append(member.filename)
        super().__init__(str(path), sorted(names), sorted(ignored))
        self.path = path
        self._lock = threading.Lock()
        self._archive: zipfile.ZipFile | None = None
        self._owner = 0

    def _open(self) -> zipfile.ZipFile:
        """The archive, opened by this process (call with the lock held)."""
        if self._archive is None or self._owner != os.getpid():
            self._archive, self._owner = zipfile.ZipFile(self.path), os.getpid()
        return self._archive

    def load(self, index: int) -> np.ndarray:
        name = self.names[index]
        try:
            with self._lock:
                data = self._open().read(name)
        except Exception as exc:  # noqa: BLE001 - a damaged member fails in many ways: a bad CRC-32 (BadZipFile),
            # zlib.error, lzma.LZMAError, an encrypted member (RuntimeError), an unknown method (NotImplementedError)
            raise BadInputError(
                f"{printable(self.path)}:{printable(name)}: cannot read from the archive ({first_line(exc)})"
            ) from None
        return decode_image(data, f"{self.path}:{name}")

    def close(self) -> None:
        """Close the archive's file handle (reopened by a later ``load``)."""
        with self._lock:
            archive, self._archive = self._archive, None
        if archive is not None and self._owner == os.getpid():
            archive.close()

    def content_key(self) -> str:
        return file_digest(self.path, b"ganeval-zip-v1\0")


def load_array_file(path: Path) -> np.ndarray:
    """The image array in a .npy (memory-mapped) or .npz (its only array, or the one named ``images``);
    never unpickles. An .npz with only one of ``mu``/``sigma`` is reported as an incomplete statistics file,
    a .npy that is an .npz archive (or the reverse) as misnamed."""
    npy = path.suffix.lower() == ".npy"
    try:
        loaded = np.load(path, mmap_mode="r" if npy else None, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            if npy:
                return loaded
            raise BadInputError(f"{printable(path)}: holds one .npy array, not an .npz archive; name it .npy")
        with loaded as archive:
            if npy:
                raise BadInputError(f"{printable(path)}: is an .npz archive, not a .npy array; name it .npz")
            keys = list(archive.keys())
            if {"mu", "sigma"} & set(keys) and "images" not in keys:
                raise BadInputError(
                    f"{printable(path)}: a statistics file needs both 'mu' and 'sigma'; it holds {keys}"
                )
            if len(keys) == 1:
                return archive[keys[0]]
            if "images" in keys:
                return archive["images"]
    except BadInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file fails numpy's readers in many ways: ValueError,
        # OSError, EOFError, BadZipFile; a damaged .npy header (SyntaxError, tokenize.TokenError); an .npz member
        # that is encrypted, of an unknown compression method or damaged (RuntimeError, zlib.error, LZMAError)
        raise BadInputError(
            f"{printable(path)}: not a readable numpy file without pickles ({first_line(exc)})"
        ) from None
    raise BadInputError(
        f"{printable(path)}: .npz holds {keys}; expected one image array, an 'images' array, or mu/sigma statistics"
    )


def jpeg_mismatch(real: list[str], fake: list[str]) -> str | None:
    """A warning when one set's images are JPEG files and the other's are not (by their names' extensions).

    JPEG compression alone moves FID by several points although the images look the same (Parmar et al.,
    CVPR 2022, measured on FFHQ), so the two sets should be stored the same way. ``None`` when both or
    neither hold JPEG files, or when a side has no names (a statistics file)."""
    if not real or not fake:
        return None
    counts = [sum(Path(name).suffix.lower() in JPEG_EXTENSIONS for name in names) for names in (real, fake)]
    if (counts[0] > 0) == (counts[1] > 0):
        return None
    return (
        f"real has {counts[0]} of {len(real)} images as JPEG and fake {counts[1]} of {len(fake)}: JPEG "
        f"compression alone shifts FID (Parmar et al. 2022); store both sets the same way (lossless PNG for "
        f"generated images, unless the real set was JPEG-compressed at collection)"
    )


def open_source(obj: object) -> ImageSource:
    """An ImageSource for a path (folder, .zip, .npy, .npz) or a uint8 numpy array / torch tensor."""
    if isinstance(obj, ImageSource):
        return obj
    if isinstance(obj, np.ndarray):
        return ArraySource(obj, "array")
    if isinstance(obj, torch.Tensor):
        return ArraySource(obj.detach().cpu().numpy(), "tensor")
    if not isinstance(obj, (str, os.PathLike)):
        raise BadInputError(f"cannot use {type(obj).__name__} as images: give a path, a uint8 array or a tensor")
    path = Path(obj)
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise BadInputError(f"{printable(path)}: {exc.strerror or first_line(exc)}") from None
    if is_dir:
        source: ImageSource = FolderSource(path)
    elif not exists:
        from .datasets import named_dataset_source  # lazily: only a missing path can name a dataset

        named = named_dataset_source(os.fspath(obj))
        if named is None:
            raise BadInputError(f"{printable(path)}: no such file or folder")
        return named
    elif not path.is_file():
        raise BadInputError(f"{printable(path)}: not a folder or a regular file")
    elif path.suffix.lower() == ".zip":
        source = ZipSource(path)
    elif path.suffix.lower() in ARRAY_EXTENSIONS:
        source = ArraySource(load_array_file(path), str(path), file=path)
    else:
        raise BadInputError(f"{printable(path)}: not a folder, .zip, .npy or .npz (a single image is not a data set)")
    if len(source) == 0:
        extra = f"; {len(source.ignored)} non-image files ignored" if source.ignored else ""
        raise BadInputError(f"{printable(path)}: contains no images{extra}")
    return source


def class_labels(
    source: ImageSource, names: list[str], subfolders: bool = True
) -> tuple[np.ndarray, list[object], str] | None:
    """Class labels of the images ``names`` (the usable ones, in order) of ``source``: the labels it carries
    (a named dataset), else, with ``subfolders``, a folder's first-level subfolder names when every image
    lies in one and there are at least two. Returns (labels (N,), classes in display order, where they
    came from) or None."""
    if source.labels is not None:
        position = {name: i for i, name in enumerate(source.names)}
        labels = source.labels[[position[name] for name in names]]
        classes = source.classes if source.classes is not None else sorted(set(labels.tolist()))
        return labels, list(classes), f"labels of {source.label}"
    if not subfolders or not isinstance(source, FolderSource) or not names:
        return None
    parts = [name.split("/", 1) for name in names]
    if any(len(part) < 2 for part in parts):
        return None
    labels = np.array([part[0] for part in parts])
    classes = sorted(set(labels.tolist()))
    if len(classes) < 2:
        return None
    return labels, classes, f"{len(classes)} class subfolders of {source.label}"
