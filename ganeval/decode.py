"""Decoding one image or an image array to uint8 RGB pixels, the file-reading and naming primitives under it,
and the one list of image file extensions that every folder and archive reader (scoring and training) uses.

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

import io
import os
import re
import stat
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import BadInputError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
"""File name extensions (lower case) of the images that folders and .zip archives are read for, when scoring and
when training alike."""
JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg"})


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), else its type's name."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(name: str | os.PathLike[str]) -> str:
    """``name`` safe to print on one line and encode as UTF-8: the undecodable bytes of a non-UTF-8 file
    name (which Python keeps as lone surrogates) become ``\\xNN``, control characters (a newline in a file
    or member name) their escapes (``\\n``, ``\\x1b``)."""
    text = os.fspath(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


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
        raise BadInputError(f"{printable(name)}: cannot read ({exc.strerror or first_line(exc)})") from None


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
        raise BadInputError(
            f"{printable(name)}: refused as a possible decompression bomb ({first_line(exc)})"
        ) from None
    except UnidentifiedImageError:
        what = "empty file" if not data else f"Pillow cannot identify it; it begins {data[:16]!r}"
        raise BadInputError(f"{printable(name)}: not a readable image ({what})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or first_line(exc)
        raise BadInputError(f"{printable(name)}: cannot decode image ({reason})") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise anything on hostile data (TypeError, IndexError, ...)
        raise BadInputError(
            f"{printable(name)}: cannot decode image ({type(exc).__name__}: {first_line(exc)})"
        ) from None


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
        raise BadInputError(
            f"{printable(name)}: shape {array.shape} is one H×W×C image, not a set of images; give "
            f"(N, H, W, C), e.g. np.stack(images) (NHW grayscale sets must be wider than 4 pixels)"
        )
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise BadInputError(
            f"{printable(name)}: expected an image array of shape (N, H, W, C) or (N, C, H, W), got {array.shape}"
        )
    if array.shape[-1] not in (1, 3, 4) and array.shape[1] in (1, 3):
        array = array.transpose(0, 2, 3, 1)
    if array.shape[-1] not in (1, 3, 4):
        raise BadInputError(
            f"{printable(name)}: cannot find the channel axis in shape {array.shape} (want 1, 3 or 4 channels)"
        )
    if array.shape[1] < 1 or array.shape[2] < 1:
        raise BadInputError(f"{printable(name)}: images of size {array.shape[1]}×{array.shape[2]} are empty")
    if array.shape[-1] == 1:
        return np.repeat(array, 3, axis=-1) if array.shape[0] else array
    return array[..., :3]
