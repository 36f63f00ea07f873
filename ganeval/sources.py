"""Every input kind as a sequence of uint8 RGB images (H, W, 3) in a stable order, with a content key.

Kinds: a folder (recursive; png, jpg/jpeg, bmp, webp, tif/tiff, ppm/pgm in any letter case; sorted by
relative path), a .zip of images (same extensions, sorted by member name), a .npy/.npz of uint8 arrays
(NHWC or NCHW), or an in-memory uint8 numpy array / torch tensor.

Pixel conversions (documented, the same for every kind): grayscale and palette images become RGB by
repeating/looking up the colour; RGBA/LA lose their alpha channel without compositing (as PIL's
``convert("RGB")``, which pytorch-fid, torch-fidelity and clean-fid use); 16-bit images are scaled to
8 bits (value / 257, rounded) when grayscale, while
Pillow itself reduces 16-bit colour PNGs to their high byte; CMYK and YCbCr are converted by PIL; animated files give their first
frame. Files whose extension is not an image extension, and hidden files, are ignored and counted.

Refused (BadInputError naming the file, or a counted skip with ``skip_bad``): a file that cannot be read
(permissions, a dangling or looping symlink) or is not a regular file (a FIFO, a socket, a device), one
Pillow cannot identify or decode (empty, not an image, truncated), one larger than Pillow's
decompression-bomb limit (``2 × PIL.Image.MAX_IMAGE_PIXELS``, refused from its header before any pixel
is decoded), and 32-bit integer/float images. Names in messages are printable on one line: bytes of a
non-UTF-8 file name appear as ``\\xNN``, control characters escaped (``\\n``).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import threading
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import BadInputError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
ARRAY_EXTENSIONS = frozenset({".npy", ".npz"})
JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg"})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(name: str | os.PathLike[str]) -> str:
    """``name`` safe to print on one line and encode as UTF-8: the undecodable bytes of a non-UTF-8 file
    name (which Python keeps as lone surrogates) become ``\\xNN``, control characters (a newline in a file
    or member name) their escapes (``\\n``, ``\\x1b``)."""
    text = os.fspath(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def read_regular_file(path: str | os.PathLike[str], name: str) -> bytes:
    """The bytes of ``path``, a regular file (symlinks followed). A FIFO or device is refused without
    blocking on it; BadInputError naming ``name`` when the file cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                kind = next((what for test, what in _FILE_KINDS if test(mode)), "a special file")
                raise BadInputError(f"{printable(name)}: not a regular file ({kind})")
            return handle.read()
    except OSError as exc:
        raise BadInputError(f"{printable(name)}: cannot read ({exc.strerror or _first_line(exc)})") from None


def decode_image(data: bytes | Path, name: str) -> np.ndarray:
    """Decode an encoded image (bytes or a path) to uint8 RGB (H, W, 3), converting as the module says.
    Raises BadInputError naming ``name`` when it is not a readable image."""
    if not isinstance(data, bytes):
        data = read_regular_file(data, name)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return _to_rgb(image, name)
    except BadInputError:
        raise
    except Image.DecompressionBombError as exc:
        raise BadInputError(f"{printable(name)}: refused as a possible decompression bomb "
                            f"({_first_line(exc)})") from None
    except UnidentifiedImageError:
        what = "empty file" if not data else f"Pillow cannot identify it; it begins {data[:16]!r}"
        raise BadInputError(f"{printable(name)}: not a readable image ({what})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or _first_line(exc)
        raise BadInputError(f"{printable(name)}: cannot decode image ({reason})") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise anything on hostile data (TypeError, IndexError, ...)
        raise BadInputError(f"{printable(name)}: cannot decode image ({type(exc).__name__}: "
                            f"{_first_line(exc)})") from None


def _to_rgb(image: Image.Image, name: str) -> np.ndarray:
    if image.mode == "RGB":
        return np.array(image, dtype=np.uint8)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        gray = np.asarray(image, dtype=np.float64)
        return np.repeat(np.round(gray / 257.0).astype(np.uint8)[..., None], 3, axis=2)
    if image.mode in ("I", "F"):
        raise BadInputError(f"{printable(name)}: unsupported pixel mode {image.mode} (32-bit integer/float image)")
    return np.array(image.convert("RGB"), dtype=np.uint8)


_FINITE_CHECK_LIMIT = 1 << 24  # elements: beyond this a refused float array is not scanned for NaN/inf


def array_to_nhwc(array: np.ndarray, name: str) -> np.ndarray:
    """Check a uint8 image array and return it as (N, H, W, 3). Accepts NHWC with 1, 3 or 4 channels,
    NCHW with 1 or 3 channels, or NHW grayscale; the alpha channel of 4-channel arrays is dropped.
    A rank-3 array whose last axis has 3 or 4 entries is one (H, W, C) image, not a set: refused."""
    if array.dtype != np.uint8:
        hint = "convert with (x * 255).round().clip(0, 255).astype(np.uint8)"  # floats in [0, 1]
        if array.dtype.kind in "iub":
            hint = "convert integers in [0, 255] with x.astype(np.uint8)"
        elif array.dtype.kind in "fc" and array.size <= _FINITE_CHECK_LIMIT and not np.isfinite(array).all():
            hint = "it also holds NaN or infinite values, which no conversion makes into pixels"
        raise BadInputError(f"{printable(name)}: images must be uint8 in [0, 255], got {array.dtype} ({hint})")
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        raise BadInputError(f"{printable(name)}: shape {array.shape} is one H×W×C image, not a set of images; give "
                            f"(N, H, W, C), e.g. np.stack(images) (NHW grayscale sets must be wider than 4 pixels)")
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise BadInputError(f"{printable(name)}: expected an image array of shape (N, H, W, C) or (N, C, H, W), "
                            f"got {array.shape}")
    if array.shape[-1] not in (1, 3, 4) and array.shape[1] in (1, 3):
        array = array.transpose(0, 2, 3, 1)
    if array.shape[-1] not in (1, 3, 4):
        raise BadInputError(f"{printable(name)}: cannot find the channel axis in shape {array.shape} "
                            f"(want 1, 3 or 4 channels)")
    if array.shape[1] < 1 or array.shape[2] < 1:
        raise BadInputError(f"{printable(name)}: images of size {array.shape[1]}×{array.shape[2]} are empty")
    if array.shape[-1] == 1:
        return np.repeat(array, 3, axis=-1) if array.shape[0] else array
    return array[..., :3]


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


class FolderSource(ImageSource):
    """Images in a folder and its subfolders (symlinked files are read; symlinked folders are not followed
    and are counted among the ignored entries).
    The content key hashes each file's relative path, size and bytes."""

    kind = "folder"

    def __init__(self, root: Path) -> None:
        names, ignored = [], []
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
    method) is a bad image named ``archive.zip:member``."""

    kind = "zip"

    def __init__(self, path: Path) -> None:
        try:
            self.archive = zipfile.ZipFile(path)
            members = [m for m in self.archive.infolist() if not m.is_dir()]
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
            raise BadInputError(f"{printable(path)}: not a readable zip archive ({_first_line(exc)})") from None
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

    def load(self, index: int) -> np.ndarray:
        name = self.names[index]
        try:
            with self._lock:
                data = self.archive.read(name)
        except Exception as exc:  # noqa: BLE001 - a damaged member fails in many ways: a bad CRC-32 (BadZipFile),
            # zlib.error, lzma.LZMAError, an encrypted member (RuntimeError), an unknown method (NotImplementedError)
            raise BadInputError(f"{printable(self.path)}:{printable(name)}: cannot read from the archive "
                                f"({_first_line(exc)})") from None
        return decode_image(data, f"{self.path}:{name}")

    def content_key(self) -> str:
        return _file_digest(self.path, b"ganeval-zip-v1\0")


class ArraySource(ImageSource):
    """Images from a uint8 array, in memory or from a .npy/.npz file."""

    kind = "array"

    def __init__(self, array: np.ndarray, label: str, file: Path | None = None, labels: np.ndarray | None = None,
                 classes: list[object] | None = None) -> None:
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
            return _file_digest(self.file, b"ganeval-arrayfile-v1\0")
        digest = hashlib.sha256(f"ganeval-array-v1\0{self.images.shape}\0".encode())
        digest.update(np.ascontiguousarray(self.images).data)
        return digest.hexdigest()


def _file_digest(path: Path, prefix: bytes) -> str:
    digest = hashlib.sha256(prefix)
    try:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise BadInputError(f"{printable(path)}: cannot read ({exc.strerror or exc})") from None
    return digest.hexdigest()


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
                raise BadInputError(f"{printable(path)}: a statistics file needs both 'mu' and 'sigma'; "
                                    f"it holds {keys}")
            if len(keys) == 1:
                return archive[keys[0]]
            if "images" in keys:
                return archive["images"]
    except BadInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file fails numpy's readers in many ways: ValueError,
        # OSError, EOFError, BadZipFile; a damaged .npy header (SyntaxError, tokenize.TokenError); an .npz member
        # that is encrypted, of an unknown compression method or damaged (RuntimeError, zlib.error, LZMAError)
        raise BadInputError(f"{printable(path)}: not a readable numpy file without pickles "
                            f"({_first_line(exc)})") from None
    raise BadInputError(f"{printable(path)}: .npz holds {keys}; expected one image array, an 'images' array, "
                        f"or mu/sigma statistics")


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
    return (f"real has {counts[0]} of {len(real)} images as JPEG and fake {counts[1]} of {len(fake)}: JPEG "
            f"compression alone shifts FID (Parmar et al. 2022); store both sets the same way (lossless PNG for "
            f"generated images, unless the real set was JPEG-compressed at collection)")


def open_source(obj: object) -> ImageSource:
    """An ImageSource for a path (folder, .zip, .npy, .npz) or a uint8 numpy array / torch tensor."""
    if isinstance(obj, ImageSource):
        return obj
    if isinstance(obj, np.ndarray):
        return ArraySource(obj, "array")
    if type(obj).__module__.startswith("torch"):
        return ArraySource(obj.detach().cpu().numpy(), "tensor")  # type: ignore[attr-defined]
    if not isinstance(obj, (str, os.PathLike)):
        raise BadInputError(f"cannot use {type(obj).__name__} as images: give a path, a uint8 array or a tensor")
    path = Path(obj)
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise BadInputError(f"{printable(path)}: {exc.strerror or _first_line(exc)}") from None
    if is_dir:
        source: ImageSource = FolderSource(path)
    elif not exists:
        from .train.data import named_dataset_source  # lazily: train.data builds on this module

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
        raise BadInputError(f"{printable(path)}: not a folder, .zip, .npy or .npz (a single image is not a "
                            f"data set)")
    if len(source) == 0:
        extra = f"; {len(source.ignored)} non-image files ignored" if source.ignored else ""
        raise BadInputError(f"{printable(path)}: contains no images{extra}")
    return source


def class_labels(source: ImageSource, names: list[str], subfolders: bool = True
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
