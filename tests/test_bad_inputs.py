"""Issue #9 part 1: a corpus of bad inputs, built here by the tests (nothing is committed as a binary), each
with its exact behaviour: a one-line ``error: FILE: problem`` with exit code 2, a documented conversion, or
(``--skip-bad``) a counted skip. No traceback reaches the user unless ``--debug``. docs/failure-modes.md lists
the same cases with what the user sees.

Covered elsewhere and not repeated here: a zero-byte file, a text file named .png and a truncated PNG
through the CLI, with and without --skip-bad (test_cli.py::test_bad_images_exit_2_naming_the_file); a folder
of one image, an empty folder, a missing path, a single image file given as a set
(test_cli.py::test_empty_and_missing_sources_exit_2); grayscale, palette, RGBA, 16-bit gray and animated
WebP pixels, a symlinked folder loop (test_sources.py); a truncated or bit-flipped cache entry through the
API (test_cache_and_stats.py::test_damaged_cache_entry_is_recomputed); truncated and random-bytes weights
files (test_weights.py); a malicious pickle as a foreign checkpoint for the leaderboard
(test_leaderboard.py::test_foreign_checkpoints_through_generator_and_a_malicious_pickle_is_refused).

Most cases here fail before the Inception network is built (decoding stops at the bad file; statistics,
weights and checkpoint files are checked when read); the tests that score images say so.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import smooth_images, write_images
from ganeval.cli import cli
from ganeval.errors import BadInputError
from ganeval.sources import decode_image, printable
from ganeval.stats import load_statistics

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --- helpers --------------------------------------------------------------------------------------------


def invoke(*args: object):
    """The real CLI in-process; exceptions are caught so that a traceback shows up as a failed assertion."""
    return CliRunner().invoke(cli, [os.fspath(a) if isinstance(a, Path) else str(a) for a in args])


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit code 2, nothing on stdout, exactly one non-empty stderr line starting with ``error: `` (other
    lines only ``warning: ``), no traceback, and every fragment in that line. Returns the line."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert all(line.startswith(("error: ", "warning: ")) for line in lines), result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def assert_clean_success(result) -> None:
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width: int, height: int, depth: int, colour_type: int, pixels: bytes) -> bytes:
    """A PNG written by hand, for what Pillow cannot write: a 48-bit RGB image, or a header that claims a
    size its data does not have. ``pixels``: the filtered scanlines (filter byte 0 + row bytes, per row)."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(pixels)) + _chunk(b"IEND", b"")
    )


class Payload:
    """Pickles as ``open(marker, "w")``: if anything ever unpickles it, the marker file appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def good_png(folder: Path, name: str, seed: int = 0, size: int = 8) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(smooth_images(1, size, seed=seed)[0]).save(folder / name)


# --- 1. image files that cannot be used: one line naming the file, exit 2; --skip-bad counts them ----------


def _truncated_jpeg(folder: Path) -> str:
    Image.fromarray(smooth_images(1, 64, seed=5)[0]).save(folder / "whole.jpg", quality=90)
    data = (folder / "whole.jpg").read_bytes()
    (folder / "whole.jpg").unlink()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    return "cut.jpg"


def _bomb(folder: Path) -> str:
    # The header claims 100,000×100,000 RGB pixels (30 GB decoded); the file is ~80 bytes. Pillow refuses it
    # from the header, at open, before allocating anything (a decoded attempt would exhaust the memory).
    (folder / "bomb.png").write_bytes(raw_png(100_000, 100_000, 8, 2, b"\x00" * 16))
    return "bomb.png"


def _float_tiff(folder: Path) -> str:
    Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(folder / "float.tif")
    return "float.tif"


def _fifo(folder: Path) -> str:
    # Not a regular file: reading it would block forever (no writer). It stands in for an unreadable file
    # when the tests run as root (chmod 000 does not stop root); both are refused by the same read step.
    os.mkfifo(folder / "pipe.png")
    return "pipe.png"


def _dangling(folder: Path) -> str:
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    return "dangling.png"


def _self_loop(folder: Path) -> str:
    (folder / "loop.png").symlink_to("loop.png")
    return "loop.png"


def _non_utf8_name(folder: Path) -> str:
    with open(os.fsencode(folder) + b"/bad-\xff\xfe.png", "wb") as handle:
        handle.write(b"just some text")
    return "bad-\\xff\\xfe.png"  # as the message prints it


LONG_NAME = "n" * 240 + ".png"


def _long_name(folder: Path) -> str:
    (folder / LONG_NAME).write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG signature and nothing after it
    return LONG_NAME


def _unreadable(folder: Path) -> str:
    good_png(folder, "locked.png", seed=9)
    (folder / "locked.png").chmod(0)
    return "locked.png"


@dataclass(frozen=True)
class BadImage:
    id: str
    build: Callable[[Path], str]  # writes the bad file into a folder; returns its name as messages show it
    problem: str
    needs_non_root: bool = False


BAD_IMAGES = [
    BadImage("truncated-jpeg", _truncated_jpeg, "cannot decode image (image file is truncated"),
    BadImage("decompression-bomb", _bomb, "refused as a possible decompression bomb (Image size (10000000000 pixels)"),
    BadImage("float-tiff", _float_tiff, "unsupported pixel mode F"),
    BadImage("fifo", _fifo, "not a regular file (a FIFO)"),
    BadImage("dangling-symlink", _dangling, "cannot read (No such file or directory)"),
    BadImage("symlink-loop", _self_loop, "cannot read (Too many levels of symbolic links)"),
    BadImage("non-utf8-name", _non_utf8_name, "not a readable image (Pillow cannot identify it; it begins b'just"),
    BadImage("very-long-name", _long_name, "not a readable image (Pillow cannot identify it; it begins b'\\x89PNG"),
    BadImage("permission-denied", _unreadable, "cannot read (Permission denied)", needs_non_root=True),
]


@pytest.mark.parametrize("case", BAD_IMAGES, ids=[case.id for case in BAD_IMAGES])
def test_bad_image_is_a_one_line_error_naming_it(case: BadImage, tmp_path: Path) -> None:
    if case.needs_non_root and IS_ROOT:
        pytest.skip("root reads files whatever their mode; the fifo case tests the same read step")
    folder = tmp_path / "set"
    good_png(folder, "a-good.png")
    shown = case.build(folder)
    result = invoke("stats", folder, "-o", tmp_path / "out.npz", "--no-cache", "-q")
    assert_one_line_error(result, f"{printable(folder)}/{shown}: {case.problem}")
    assert not (tmp_path / "out.npz").exists()


def test_skip_bad_skips_and_counts_every_bad_image(tmp_path: Path) -> None:
    """Every case above in one folder with two good images: --skip-bad scores the two (the network runs)
    and lists each bad file once in the provenance."""
    folder = tmp_path / "mixed"
    good_png(folder, "a-good.png", seed=1)
    good_png(folder, "b-good.png", seed=2)
    shown = [case.build(folder) for case in BAD_IMAGES if not (case.needs_non_root and IS_ROOT)]
    out = tmp_path / "stats.npz"
    result = invoke("stats", folder, "-o", out, "--skip-bad", "--no-cache", "-q")
    assert_clean_success(result)
    assert f"2 images, {len(shown)} skipped" in result.stdout
    skipped = load_statistics(out).meta["skipped"]
    assert len(skipped) == len(shown)
    for name in shown:
        assert sum(f"{printable(folder)}/{name}: " in message for message in skipped) == 1, name


@pytest.mark.skipif(IS_ROOT, reason="root lists folders whatever their mode")
def test_unlistable_subfolder_is_a_one_line_error(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    good_png(folder, "a.png")
    (folder / "private").mkdir()
    (folder / "private").chmod(0)
    try:
        result = invoke("stats", folder, "-o", tmp_path / "out.npz", "--no-cache", "-q")
        assert_one_line_error(result, "private: cannot list folder (Permission denied)")
    finally:
        (folder / "private").chmod(0o755)


MEMBER = b"img/1.bmp"


def _zip_of_two(path: Path, compression: int) -> bytearray:
    with zipfile.ZipFile(path, "w", compression=compression) as handle:
        for i in range(2):
            encoded = io.BytesIO()
            Image.fromarray(smooth_images(1, 8, seed=10 + i)[0]).save(encoded, "BMP")
            handle.writestr(f"img/{i}.bmp", encoded.getvalue())
    return bytearray(path.read_bytes())


def _headers(data: bytearray) -> tuple[int, int, int]:
    """Offsets of the second member's local header, its central-directory record and its data."""
    local, central = data.index(MEMBER) - 30, data.rindex(MEMBER) - 46
    extra = struct.unpack("<H", data[local + 28 : local + 30])[0]
    return local, central, local + 30 + len(MEMBER) + extra


def _flip_stored_pixels(data: bytearray) -> None:
    data[_headers(data)[2] + 100] ^= 0xFF  # inside its pixels: its CRC-32 no longer matches


def _garble_deflate(data: bytearray) -> None:
    start = _headers(data)[2]
    data[start : start + 2] = bytes(b ^ 0xFF for b in data[start : start + 2])


def _set_encrypted(data: bytearray) -> None:
    local, central, _ = _headers(data)
    data[local + 6] |= 1  # general-purpose flag bit 0 ("encrypted"), in both headers
    data[central + 8] |= 1


def _unknown_method(data: bytearray) -> None:
    local, central, _ = _headers(data)
    data[local + 8 : local + 10] = data[central + 10 : central + 12] = struct.pack("<H", 99)


@pytest.mark.parametrize(
    "compression,damage,problem",
    [
        (zipfile.ZIP_STORED, _flip_stored_pixels, "Bad CRC-32 for file 'img/1.bmp'"),
        (zipfile.ZIP_DEFLATED, _garble_deflate, "Error -3 while decompressing data"),
        (zipfile.ZIP_STORED, _set_encrypted, "File 'img/1.bmp' is encrypted, password required"),
        (zipfile.ZIP_STORED, _unknown_method, "That compression method is not supported"),
    ],
    ids=["bad-crc", "damaged-deflate", "encrypted", "unknown-method"],
)
def test_unreadable_zip_member_is_named_with_its_archive(
    compression: int, damage, problem: str, tmp_path: Path
) -> None:
    archive = tmp_path / "set.zip"
    data = _zip_of_two(archive, compression)
    damage(data)
    archive.write_bytes(bytes(data))
    result = invoke("stats", archive, "-o", tmp_path / "out.npz", "--no-cache", "-q")
    assert_one_line_error(result, f"{archive}:img/1.bmp: cannot read from the archive ({problem}")


# --- 2. unusual but valid images: the documented conversion, then scored ------------------------------------


def _gradient(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), np.full_like(x, 77)], axis=-1).astype(
        np.uint8
    )


def _write_rgb16(path: Path) -> np.ndarray:
    values = np.array(
        [[[0x1234, 0x80FF, 0xFFFF], [0x00FF, 0x0100, 0x7F80]], [[0xFFFF, 0x0000, 0x8000], [0x0101, 0xFEFF, 0x4000]]],
        dtype=">u2",
    )
    path.write_bytes(raw_png(2, 2, 16, 2, b"".join(b"\x00" + row.tobytes() for row in values)))
    return (values.astype(np.uint32) >> 8).astype(np.uint8)  # Pillow keeps the high byte


def _write_gray16(path: Path) -> np.ndarray:
    values = np.array([[0, 128, 255, 257], [32767, 32896, 65278, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(path)
    return np.repeat(np.round(values / 257).astype(np.uint8)[..., None], 3, axis=2)


def _write_cmyk(path: Path) -> np.ndarray:
    Image.new("CMYK", (6, 6), (0, 255, 255, 0)).save(path, quality=95)  # pure red in CMYK
    return np.broadcast_to(np.array([255, 0, 0], np.uint8), (6, 6, 3))


def _write_la(path: Path) -> np.ndarray:
    Image.new("LA", (4, 4), (90, 0)).save(path)
    return np.full((4, 4, 3), 90, np.uint8)  # fully transparent: the gray under it is kept, not composited


def _write_palette_transparency(path: Path) -> np.ndarray:
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 10, 20, 30] + [0, 0, 0] * 254)
    image.save(path, transparency=1)
    return np.broadcast_to(np.array([10, 20, 30], np.uint8), (4, 4, 3))


def _write_bilevel(path: Path) -> np.ndarray:
    bits = np.array([[0, 1, 1, 0]] * 4, dtype=bool)
    Image.fromarray(bits).save(path)
    return np.repeat((bits * 255).astype(np.uint8)[..., None], 3, axis=2)


def _write_apng(path: Path) -> np.ndarray:
    frames = [Image.new("RGB", (5, 5), (v, 2 * v % 256, 7)) for v in (30, 200, 90)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    return np.broadcast_to(np.array([30, 60, 7], np.uint8), (5, 5, 3))


def _write_multipage_tiff(path: Path) -> np.ndarray:
    pages = [Image.new("RGB", (3, 3), (v, v, v)) for v in (11, 99)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return np.full((3, 3, 3), 11, np.uint8)


def _write_tiny(path: Path) -> np.ndarray:
    pixel = np.array([[[200, 100, 50]]], np.uint8)
    Image.fromarray(pixel).save(path)
    return pixel


def _write_huge(path: Path) -> np.ndarray:
    image = _gradient(3000, 4000)
    Image.fromarray(image).save(path, compress_level=1)
    return image


def _write_plain(path: Path) -> np.ndarray:
    image = smooth_images(1, 12, seed=4)[0]
    Image.fromarray(image).save(path)
    return image


@dataclass(frozen=True)
class Converted:
    id: str
    name: bytes  # the file name's bytes (some are not UTF-8)
    write: Callable[[Path], np.ndarray]  # writes the file, returns the RGB uint8 pixels it must decode to
    tolerance: int = 0  # JPEG is lossy


CONVERTED = [
    Converted("rgb-16-bit-png", b"rgb16.png", _write_rgb16),
    Converted("gray-16-bit-png", b"gray16.png", _write_gray16),
    Converted("cmyk-jpeg", b"cmyk.jpg", _write_cmyk, tolerance=2),
    Converted("gray-alpha", b"la.png", _write_la),
    Converted("palette-with-transparency", b"ptrans.png", _write_palette_transparency),
    Converted("one-bit", b"bilevel.png", _write_bilevel),
    Converted("animated-png", b"anim.png", _write_apng),
    Converted("multi-page-tiff", b"pages.tiff", _write_multipage_tiff),
    Converted("one-pixel", b"tiny.png", _write_tiny),
    Converted("4000x3000", b"huge.png", _write_huge),
    Converted("non-utf8-name", b"ok-\xe9t\xe9.png", _write_plain),  # Latin-1 bytes
    Converted("very-long-name", LONG_NAME.encode(), _write_plain),
]


def _path(folder: Path, name: bytes) -> Path:
    return Path(os.fsdecode(os.fsencode(folder) + b"/" + name))


@pytest.mark.parametrize(
    "case", [c for c in CONVERTED if c.id != "4000x3000"], ids=[c.id for c in CONVERTED if c.id != "4000x3000"]
)
def test_valid_image_decodes_to_the_documented_pixels(case: Converted, tmp_path: Path) -> None:
    path = _path(tmp_path, case.name)
    expected = case.write(path)
    got = decode_image(path, str(path))
    assert got.dtype == np.uint8 and got.shape == expected.shape
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= case.tolerance


@pytest.mark.slow
def test_odd_valid_images_are_scored_end_to_end(tmp_path: Path, extractor) -> None:
    """Every valid case in one folder, plus an animated GIF (not an accepted extension: ignored and counted),
    through ``ganeval stats``: all are used, and μ equals the network's mean over the expected pixels, so the
    4000×3000 image was decoded exactly and resized like any other (the network runs)."""
    folder = tmp_path / "odd"
    folder.mkdir()
    expected = []
    for case in CONVERTED:
        pixels = case.write(_path(folder, case.name))
        if case.tolerance:  # lossy: the test above bounds the error; here the exact decoded pixels are needed
            pixels = decode_image(_path(folder, case.name), case.id)
        expected.append(pixels)
    assert decode_image(folder / "huge.png", "huge.png").shape == (3000, 4000, 3)
    frames = [Image.new("RGB", (4, 4), (v, v, v)) for v in (10, 200)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    out = tmp_path / "odd.npz"
    result = invoke("stats", folder, "-o", out, "--no-cache", "-q")
    assert_clean_success(result)
    assert f": {len(CONVERTED)} images," in result.stdout and "skipped" not in result.stdout
    stats = load_statistics(out)
    assert stats.n == len(CONVERTED) and stats.meta["ignored_files"] == 1
    pool3, _ = extractor.forward([np.ascontiguousarray(image) for image in expected])
    np.testing.assert_allclose(stats.mu, pool3.astype(np.float64).mean(axis=0), atol=1e-4)


# --- 3. image arrays (.npy/.npz) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadArray:
    id: str
    name: str
    build: Callable[[Path], None]
    problem: str


def _npy(array: np.ndarray) -> Callable[[Path], None]:
    return lambda path: np.save(path, array)


def _npz(**arrays: np.ndarray) -> Callable[[Path], None]:
    return lambda path: np.savez(path, **arrays)


def _truncated_npy(path: Path) -> None:
    np.save(path, np.zeros((4, 16, 16, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:500])


_NAN = np.zeros((2, 8, 8, 3), np.float32)
_NAN[1, 2, 3, 0] = np.nan
_INF = np.zeros((2, 3, 8, 8), np.float64)
_INF[0, 0, 0, 0] = np.inf

_UINT8 = "images must be uint8 in [0, 255], got"

BAD_ARRAYS = [
    BadArray("rank-5", "r5.npy", _npy(np.zeros((2, 2, 8, 8, 3), np.uint8)), "expected an image array of shape"),
    BadArray(
        "rank-2",
        "r2.npy",
        _npy(np.zeros((8, 8), np.uint8)),
        "expected an image array of shape (N, H, W, C) or (N, C, H, W), got (8, 8)",
    ),
    BadArray(
        "one-hwc-image",
        "one.npy",
        _npy(np.zeros((16, 16, 3), np.uint8)),
        "shape (16, 16, 3) is one H×W×C image, not a set of images",
    ),
    BadArray(
        "floats-in-0-1",
        "f.npy",
        _npy(np.full((2, 8, 8, 3), 0.5, np.float32)),
        f"{_UINT8} float32 (convert with (x * 255).round().clip(0, 255)",
    ),
    BadArray("nan-floats", "nan.npy", _npy(_NAN), f"{_UINT8} float32 (it also holds NaN or infinite values"),
    BadArray("inf-floats", "inf.npz", _npz(images=_INF), f"{_UINT8} float64 (it also holds NaN or infinite values"),
    BadArray(
        "int64",
        "i.npy",
        _npy(np.zeros((2, 8, 8, 3), np.int64)),
        f"{_UINT8} int64 (convert integers in [0, 255] with x.astype(np.uint8))",
    ),
    BadArray("two-channels", "c2.npy", _npy(np.zeros((2, 8, 8, 2), np.uint8)), "cannot find the channel axis"),
    BadArray("nchw-four-channels", "c4.npy", _npy(np.zeros((2, 4, 8, 8), np.uint8)), "cannot find the channel axis"),
    BadArray("zero-images", "empty.npy", _npy(np.zeros((0, 8, 8, 3), np.uint8)), "contains no images"),
    BadArray("truncated-npy", "cut.npy", _truncated_npy, "not a readable numpy file without pickles"),
    BadArray("stats-without-sigma", "half.npz", _npz(mu=np.zeros(8)), "a statistics file needs both 'mu' and 'sigma'"),
]


@pytest.mark.parametrize("case", BAD_ARRAYS, ids=[case.id for case in BAD_ARRAYS])
def test_bad_array_file_is_a_one_line_error(case: BadArray, tmp_path: Path) -> None:
    path = tmp_path / case.name
    case.build(path)
    result = invoke("stats", path, "-o", tmp_path / "out.npz", "--no-cache", "-q")
    assert_one_line_error(result, f"{path}: {case.problem}")


@pytest.mark.parametrize(
    "name,reason",
    [
        ("objects.npy", "Array can't be memory-mapped: Python objects in dtype"),
        ("objects.npz", "Object arrays cannot be loaded when allow_pickle=False"),
    ],
)
def test_pickled_object_array_is_refused_without_unpickling(name: str, reason: str, tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    objects = np.array([Payload(marker), None], dtype=object)
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, objects, allow_pickle=True)
    else:
        np.savez(path, images=objects)
    result = invoke("stats", path, "-o", tmp_path / "out.npz", "--no-cache", "-q")
    assert_one_line_error(result, f"{path}: not a readable numpy file without pickles ({reason}")
    assert not marker.exists()
    if name.endswith(".npy"):  # the payload is live: an unpickling load runs it
        np.load(path, allow_pickle=True)
        assert marker.exists()


# --- 4. statistics files ------------------------------------------------------------------------------------

DIM = 16
_rng = np.random.default_rng(3)
_SAMPLES = _rng.standard_normal((10, DIM))  # 10 samples in 16-d: a rank-deficient (singular) covariance
MU, SIGMA = _SAMPLES.mean(0), np.cov(_SAMPLES, rowvar=False)
META = {
    "format": "ganeval-stats",
    "format_version": 1,
    "extractor": "inception-v3-tf-2015-12-05",
    "weights_sha256": "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
    "weights_standard": True,
    "mode": "tf",
}


def _stats(mu=MU, sigma=SIGMA, meta: dict | None = META, **extra) -> Callable[[Path], None]:
    arrays = {"mu": mu, "sigma": sigma, **extra}
    if meta is not None:
        arrays["meta"] = np.array(json.dumps(meta))
    return lambda path: np.savez(path, **arrays)


def _not_psd() -> np.ndarray:
    null_direction = np.linalg.eigh(SIGMA)[1][:, 0]  # an eigenvector of a zero eigenvalue
    return SIGMA - 1e-3 * np.trace(SIGMA) * np.outer(null_direction, null_direction)


def _asymmetric() -> np.ndarray:
    sigma = SIGMA.copy()
    sigma[0, 1] += 1.0
    return sigma


def _with_nan() -> np.ndarray:
    sigma = SIGMA.copy()
    sigma[2, 2] = np.nan
    return sigma


def _truncated_stats(path: Path) -> None:
    _stats()(path)
    path.write_bytes(path.read_bytes()[:300])


@dataclass(frozen=True)
class BadStats:
    id: str
    build: Callable[[Path], None]
    problem: str


BAD_STATS = [
    BadStats("asymmetric-sigma", _stats(sigma=_asymmetric()), "sigma is not symmetric"),
    BadStats("sigma-not-psd", _stats(sigma=_not_psd()), "sigma is not positive semi-definite (smallest eigenvalue"),
    BadStats("negative-variance", _stats(sigma=np.diag([-1.0] + [1.0] * (DIM - 1))), "not positive semi-definite"),
    BadStats("nan-in-sigma", _stats(sigma=_with_nan()), "mu or sigma contains NaN or infinite values"),
    BadStats("sigma-wrong-shape", _stats(sigma=np.eye(DIM + 1)), "expected (D,) and (D, D)"),
    BadStats("complex", _stats(sigma=SIGMA.astype(np.complex128)), "mu/sigma must be real numbers"),
    BadStats(
        "meta-not-json",
        lambda path: np.savez(path, mu=MU, sigma=SIGMA, meta=np.array("{oops")),
        "cannot read statistics",
    ),
    BadStats("newer-format", _stats(meta={**META, "format_version": 99}), "unsupported statistics format"),
    BadStats("format-version-text", _stats(meta={**META, "format_version": "one"}), "unsupported statistics format"),
    BadStats(
        "other-weights",
        _stats(
            meta={
                **META,
                "extractor": "inception-v3-custom-weights",
                "weights_sha256": "ab" * 32,
                "weights_standard": False,
            }
        ),
        "were made differently (extractor",
    ),
    BadStats("other-mode", _stats(meta={**META, "mode": "clean"}), "preprocessing mode 'tf' vs 'clean'"),
    BadStats("other-dimension", _stats(mu=np.zeros(DIM + 4), sigma=np.eye(DIM + 4)), f"{DIM}-d statistics and fake"),
    BadStats("truncated", _truncated_stats, "not a readable numpy file without pickles"),
]


@pytest.mark.parametrize("case", BAD_STATS, ids=[case.id for case in BAD_STATS])
def test_bad_statistics_file_is_a_one_line_error(case: BadStats, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    _stats()(good)
    case.build(bad)
    line = assert_one_line_error(invoke("fid", good, bad, "-q"), case.problem)
    assert str(bad) in line


def test_rank_deficient_float32_statistics_are_accepted(tmp_path: Path) -> None:
    """The PSD check's tolerance: a singular covariance stored in float32 (round-off makes some eigenvalues
    slightly negative) is a valid statistics file; both sides the same gives FID 0."""
    rounded = SIGMA.astype(np.float32)
    assert np.linalg.eigvalsh(rounded.astype(np.float64)).min() < 0
    _stats(mu=MU.astype(np.float32), sigma=rounded)(tmp_path / "a.npz")
    _stats(mu=MU.astype(np.float32), sigma=rounded)(tmp_path / "b.npz")
    result = invoke("fid", tmp_path / "a.npz", tmp_path / "b.npz", "--json", "-q")
    assert_clean_success(result)
    assert json.loads(result.stdout)["fid"] == pytest.approx(0.0, abs=1e-6)


# --- 5. the features cache ----------------------------------------------------------------------------------


def test_corrupted_cache_entry_is_one_warning_and_recomputed(tmp_path: Path, ganeval_home: Path) -> None:
    """A damaged entry is not an error: one ``warning:`` line, the entry is recomputed, same numbers (the
    network runs twice)."""
    folder = write_images(tmp_path / "set", smooth_images(2, 8, seed=6))
    before = set((ganeval_home / "features").glob("*.npz"))
    first = invoke("stats", folder, "-o", tmp_path / "a.npz", "-q")
    assert_clean_success(first)
    (entry,) = set((ganeval_home / "features").glob("*.npz")) - before
    entry.write_bytes(entry.read_bytes()[:200])
    second = invoke("stats", folder, "-o", tmp_path / "b.npz", "-q")
    assert_clean_success(second)
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: cache entry ") and "is damaged" in lines[0], lines
    np.testing.assert_array_equal(load_statistics(tmp_path / "a.npz").mu, load_statistics(tmp_path / "b.npz").mu)


# --- 6. Inception weights -----------------------------------------------------------------------------------


def _weights_evil(path: Path) -> None:
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1), "extra": Payload(path.parent / "payload-ran")}, path)


def _weights_truncated_safetensors(path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)}, str(path))
    path.write_bytes(path.read_bytes()[:60])


@dataclass(frozen=True)
class BadWeights:
    id: str
    name: str
    build: Callable[[Path], None]
    problem: str


BAD_WEIGHTS = [
    BadWeights(
        "malicious-pickle",
        "evil.pth",
        _weights_evil,
        "not a readable weights-only state dict: refused: reading it would unpickle arbitrary Python objects",
    ),
    BadWeights("empty", "empty.pth", lambda path: path.write_bytes(b""), "(EOFError: empty or truncated file)"),
    BadWeights(
        "truncated-safetensors",
        "cut.safetensors",
        _weights_truncated_safetensors,
        "not a readable weights-only state dict (Error while deserializing header",
    ),
    BadWeights(
        "damaged-standard-name",
        "pt_inception-2015-12-05-6726825d.pth",
        lambda path: path.write_bytes(b"partial download"),
        "but a file of this name must be the standard 6726825d0af5f729…",
    ),
]


@pytest.mark.parametrize("case", BAD_WEIGHTS, ids=[case.id for case in BAD_WEIGHTS])
def test_bad_weights_file_is_a_one_line_error(case: BadWeights, tmp_path: Path) -> None:
    path = tmp_path / case.name
    case.build(path)
    assert_one_line_error(invoke("weights", "--weights", path), f"{path}: ", case.problem)
    assert not (tmp_path / "payload-ran").exists()


def test_damaged_standard_file_in_the_home_is_a_one_line_error(fresh_home: Path) -> None:
    fresh_home.mkdir(parents=True)
    damaged = fresh_home / "pt_inception-2015-12-05-6726825d.pth"
    damaged.write_bytes(b"the first bytes of an interrupted download")
    assert_one_line_error(invoke("weights"), f"{damaged}: sha256 ", "corrupted or partial download?")


# --- 7. training checkpoints --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real one-step run (a tiny DCGAN on procedural shapes) with one complete checkpoint."""
    from ganeval.train.trainer import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("train") / "run"
    config = TrainConfig(
        out=str(out), data="shapes", size=32, width=8, batch_size=8, sample_every=0, steps=1, checkpoint_every=1
    )
    Trainer(config, log=lambda line: None).run()
    return out


def _evil_pickle(name: str) -> Callable[[Path], None]:
    return lambda folder: torch.save({"step": Payload(folder / "payload-ran")}, folder / name)


def _truncate(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes((folder / name).read_bytes()[:100])


def _meta(text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / "checkpoint.json").write_text(text)


@dataclass(frozen=True)
class BadCheckpoint:
    id: str
    damage: Callable[[Path], None]  # applied to the checkpoint folder
    command: str  # "resume" or "sample"
    problem: str


BAD_CHECKPOINTS = [
    BadCheckpoint(
        "malicious-state-pt",
        _evil_pickle("state.pt"),
        "resume",
        "state.pt: cannot read the training state: refused: reading it would unpickle arbitrary",
    ),
    BadCheckpoint("truncated-state-pt", _truncate("state.pt"), "resume", "state.pt: cannot read the training state ("),
    BadCheckpoint(
        "pickle-as-safetensors",
        _evil_pickle("generator.safetensors"),
        "sample",
        "generator.safetensors: cannot load the weights (Error while deserializing header",
    ),
    BadCheckpoint(
        "truncated-safetensors",
        _truncate("generator.safetensors"),
        "sample",
        "generator.safetensors: cannot load the weights (",
    ),
    BadCheckpoint("meta-not-json", _meta("{not json"), "sample", "checkpoint.json: not valid JSON"),
    BadCheckpoint(
        "meta-version-text",
        _meta('{"format": "ganeval-checkpoint", "format_version": "2"}'),
        "sample",
        "checkpoint.json: format_version '2' is not a number",
    ),
]


@pytest.mark.parametrize("case", BAD_CHECKPOINTS, ids=[case.id for case in BAD_CHECKPOINTS])
def test_bad_checkpoint_is_a_one_line_error(case: BadCheckpoint, tiny_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    (checkpoint,) = (run / "checkpoints").iterdir()
    case.damage(checkpoint)
    if case.command == "resume":
        result = invoke("train", "--resume", run, "--device", "cpu")
    else:
        result = invoke("sample", run, "-o", tmp_path / "grid.png", "-n", "2", "--device", "cpu")
    assert_one_line_error(result, f"{checkpoint}/{case.problem}")
    assert not (checkpoint / "payload-ran").exists()
    assert not (tmp_path / "grid.png").exists()


# --- 8. the command line itself -----------------------------------------------------------------------------


def test_debug_shows_the_traceback_instead(tmp_path: Path) -> None:
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    result = invoke("stats", tmp_path / "bad.npy", "-o", tmp_path / "out.npz", "--debug")
    assert result.exit_code == 1 and isinstance(result.exception, BadInputError)
    assert "bad.npy: not a readable numpy file" in str(result.exception)


def _internal_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, message: str):
    import ganeval.api

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(message)

    monkeypatch.setattr(ganeval.api, "statistics", broken)
    folder = write_images(tmp_path / "set", smooth_images(2, 8, seed=7))
    return invoke("stats", folder, "-o", tmp_path / "out.npz")


def test_internal_error_is_one_line_with_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _internal_error(monkeypatch, tmp_path, "something unforeseen")
    assert result.exit_code == 1 and "Traceback" not in result.output and result.stdout == ""
    assert result.stderr == (
        "error: internal error: RuntimeError: something unforeseen (run again with --debug for the traceback)\n"
    )


def test_internal_error_with_a_multi_line_message_is_still_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _internal_error(monkeypatch, tmp_path, "something unforeseen\nwith a second line")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_paths_that_cannot_be_opened_as_sources(tmp_path: Path) -> None:
    too_long = tmp_path / ("x" * 300)
    assert_one_line_error(invoke("stats", too_long, "-o", tmp_path / "o.npz"), f"{too_long}: File name too long")
    fifo = tmp_path / "set.zip"
    os.mkfifo(fifo)  # would block a reader forever
    assert_one_line_error(invoke("stats", fifo, "-o", tmp_path / "o.npz"), f"{fifo}: not a folder or a regular file")
    long_npz = tmp_path / ("y" * 300 + ".npz")
    assert_one_line_error(invoke("fid", long_npz, long_npz), f"{long_npz}: File name too long")
    assert_one_line_error(invoke("weights", "--weights", too_long), f"{too_long}: File name too long")


@pytest.mark.parametrize(
    "options, fragment",
    [
        ("{not json", "is not a JSON object"),
        ("[1, 2]", "is not a JSON object"),
        ('{"batch_size": -5}', "batch_size -5 is not valid"),
    ],
)
def test_hostile_leaderboard_options_cell(tmp_path: Path, options: str, fragment: str) -> None:
    """A rerun inherits the CSV's latest setup; an edited ``options`` cell is refused naming the CSV, before
    anything is loaded, and never reaches the command unchecked."""
    import pandas as pd

    from ganeval.leaderboard.store import empty_table, write_table

    row = {
        "run": "r",
        "checkpoint": "c",
        "checkpoint_sha256": "ab" * 32,
        "setup": "0123456789ab",
        "metrics": "fid",
        "samples": 10,
        "seed": 0,
        "mode": "tf",
        "input_range": "-1,1",
        "options": options,
        "scored_at": "2026-11-25T00:00:00",
    }
    out = tmp_path / "board.csv"
    write_table(out, pd.concat([empty_table(), pd.DataFrame([row])], ignore_index=True))
    assert_one_line_error(invoke("leaderboard", "score", tmp_path / "runs", "--out", out), str(out), fragment)
