"""Fuzzing the input loader and the statistics loader (issue #9, part 2).

Random bytes, and valid files with random bytes changed, truncated or spliced, are written as .png/.jpg
(inside a folder), .zip, .npy and .npz files and read through ``open_source(path)`` and ``load(i)``;
random small arrays (every dtype, rank 0–5, sides 0–5, NaN/inf) go through ``open_source(array)`` and
through .npy/.npz files; random bytes and random combinations of (mu, sigma, n, meta) go through
``load_statistics``. The only documented outcomes are checked for:

- a source: every ``load(i)`` is a uint8 (H, W, 3) array with H, W >= 1; or BadInputError, one line, naming
  the file (or ``array`` for an in-memory array);
- statistics: a Statistics with mu (D,) and sigma (D, D) float64, finite, symmetric, n None or an int >= 0,
  meta a dict; or a GanevalError (BadInputError), one line, naming the file;

and nothing else: any other exception fails, and so does an example that takes longer than ``HANG_S``.

Hypothesis runs derandomized (the same examples on every run, no example database), ``deadline=None``;
the number of examples per target is ``EXAMPLES`` (``GANEVAL_FUZZ_EXAMPLES=10`` multiplies it for a long
run, ``GANEVAL_FUZZ_EXPLORE=1`` draws new random examples each run). The crashes this fuzzing found (and
that were fixed) are pinned with exact inputs in ``test_finding_pinned``.
"""

from __future__ import annotations

import contextlib
import io
import json
import lzma
import os
import re
import signal
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

hypothesis = pytest.importorskip("hypothesis", reason="pip install -e '.[test]' (hypothesis)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from ganeval.errors import BadInputError, GanevalError  # noqa: E402
from ganeval.sources import open_source  # noqa: E402
from ganeval.stats import Statistics, is_statistics_file, load_statistics  # noqa: E402

pytestmark = pytest.mark.fuzz

if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:  # its caches go to /tmp, not into the checkout
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "ganeval-hypothesis")
SCALE = float(os.environ.get("GANEVAL_FUZZ_EXAMPLES", "1"))
EXPLORE = os.environ.get("GANEVAL_FUZZ_EXPLORE") == "1"
"""Random instead of the fixed (derandomized) examples: for long exploratory runs, not for CI."""
EXAMPLES = {"image": 300, "zip": 200, "array-file": 200, "array": 300, "stats-bytes": 200, "stats-fields": 300}
HANG_S = 20.0
LOADS = 4  # images loaded per source (the first ones)
COUNTS: dict[str, int] = {}
"""Examples run per target in this session (the report quotes them)."""

_UNREADABLE_MEMBER = (RuntimeError, NotImplementedError, zlib.error, lzma.LZMAError)
"""What zipfile raises for a member it cannot read besides BadZipFile: the encryption flag set (RuntimeError),
an unknown compression method (NotImplementedError), a damaged deflate/LZMA stream."""
_BAD_NPY_HEADER = (SyntaxError, tokenize.TokenError)
"""What numpy's .npy header parser lets through for a damaged header besides ValueError."""

KNOWN_FINDINGS = {
    # id: (file, function where the exception leaves ganeval, exception types, what triggers it)
    "npy-holding-npz": (
        "sources.py",
        "array_to_nhwc",
        (AttributeError,),
        "a .npy file whose bytes are an .npz (zip) archive: np.load returns an NpzFile",
    ),
    "npz-holding-npy": (
        "sources.py",
        "load_array_file",
        (TypeError,),
        "an .npz file whose bytes are a .npy array: np.load returns an ndarray, used as a context manager",
    ),
    "npz-member-unreadable": (
        "sources.py",
        "load_array_file",
        _UNREADABLE_MEMBER,
        "an .npz member with the encryption flag, an unknown compression method or a damaged stream",
    ),
    "npy-bad-header": (
        "sources.py",
        "load_array_file",
        _BAD_NPY_HEADER,
        "a .npy (or an .npz member) whose header numpy cannot tokenize or parse",
    ),
    "stats-member-unreadable": (
        "stats.py",
        "load_statistics",
        _UNREADABLE_MEMBER,
        "a statistics .npz member with the encryption flag, an unknown compression method or a damaged stream",
    ),
    "stats-bad-header": (
        "stats.py",
        "load_statistics",
        _BAD_NPY_HEADER,
        "a statistics .npz member whose .npy header numpy cannot tokenize or parse",
    ),
    "stats-n-infinite": ("stats.py", "load_statistics", (OverflowError,), "n stored as float ±inf"),
    "stats-empty": ("stats.py", "validate_statistics", (ValueError,), "mu of shape (0,) and sigma (0, 0)"),
    "tiff-strip-offsets-type": (
        "sources.py",
        "decode_image",
        (TypeError,),
        "a TIFF whose StripOffsets tag has type ASCII/RATIONAL/FLOAT/DOUBLE: Pillow seeks to a "
        "str/float offset (TypeError)",
    ),
    "name-with-control-characters": (
        "",
        "",
        (),
        "a file or member name with a newline (or another control "
        "character) is printed raw: the message is not one line",
    ),
}
"""The crash classes this fuzzing found in ganeval/sources.py and stats.py (all fixed), each pinned with an
exact input in ``test_finding_pinned``."""


def fuzz_settings(target: str) -> settings:
    return settings(
        max_examples=max(1, int(EXAMPLES[target] * SCALE)),
        deadline=None,
        derandomize=not EXPLORE,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail an example that runs longer than ``seconds`` (a hang) instead of waiting for it."""

    def expire(signum, frame):
        raise TimeoutError(f"an example ran longer than {seconds} s")

    if not hasattr(signal, "setitimer"):  # not POSIX: no limit
        yield
        return
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- seeds: small valid files of every kind, to be damaged -------------------------------------------------


def _encoded(mode: str, fmt: str, size: tuple[int, int] = (6, 5), **options) -> bytes:
    rng = np.random.default_rng(len(mode) + len(fmt))
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


IMAGE_SEEDS = [
    _encoded("RGB", "PNG"),
    _encoded("L", "PNG"),
    _encoded("P", "PNG"),
    _encoded("RGBA", "PNG"),
    _encoded("I;16", "PNG"),
    _encoded("RGB", "JPEG", quality=90),
    _encoded("L", "JPEG"),
    _encoded("RGB", "JPEG", progressive=True),
    _encoded("RGB", "BMP"),
    _encoded("RGB", "TIFF"),
    _encoded("RGB", "TIFF", compression="tiff_deflate"),
    _encoded("RGB", "PPM"),
    _encoded("RGB", "WEBP"),
    _encoded("RGB", "GIF"),
]


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npz(compressed: bool = False, **arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


_PIXELS = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
ZIP_SEEDS = [
    _zip({"a.png": IMAGE_SEEDS[0], "b/c.jpg": IMAGE_SEEDS[5]}),
    _zip({"a.png": IMAGE_SEEDS[0], "notes.txt": b"hello", "__MACOSX/._a.png": b"x"}, zipfile.ZIP_DEFLATED),
    _zip({"x.bmp": IMAGE_SEEDS[8]}, zipfile.ZIP_BZIP2),
    _zip({"x.ppm": IMAGE_SEEDS[11]}, zipfile.ZIP_LZMA),
]
ARRAY_FILE_SEEDS = [
    _npy(_PIXELS),
    _npy(_PIXELS.transpose(0, 3, 1, 2)),
    _npy(_PIXELS[..., 0]),
    _npz(images=_PIXELS),
    _npz(compressed=True, images=_PIXELS),
    _npz(x=_PIXELS[:, :, :, :1]),
    _npz(images=_PIXELS, labels=np.arange(2)),
]
_MU = np.random.default_rng(1).standard_normal(4)
_SIGMA = np.cov(np.random.default_rng(2).standard_normal((9, 4)), rowvar=False)
_META = json.dumps({"format": "ganeval-stats", "format_version": 1, "extractor": "x", "mode": "tf"})
STATS_SEEDS = [
    _npz(mu=_MU, sigma=_SIGMA, n=np.int64(9), meta=np.array(_META)),
    _npz(mu=_MU, sigma=_SIGMA),
    _npz(compressed=True, mu=_MU, sigma=_SIGMA, n=np.int64(9), meta=np.array(_META)),
]


@st.composite
def damaged(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Random bytes, or a valid seed with bytes overwritten, a range deleted or duplicated, or its end cut."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=512))
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        what = draw(st.sampled_from(["set", "set", "set", "xor", "delete", "repeat", "truncate"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if what == "set":
            data[at] = draw(st.integers(0, 255))
        elif what == "xor":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif what == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif what == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


# --- the documented outcomes ---------------------------------------------------------------------------------


def _one_line_naming(exc: BaseException, name: str) -> None:
    message = str(exc)
    assert name in message, f"the message does not name {name}: {message!r}"
    assert "\n" not in message, f"not one line: {message!r}"


def expect_source_outcome(target: object, name: str, count: str) -> None:
    """Open ``target`` and load its first images: each a uint8 (H, W, 3) array, or BadInputError naming
    ``name``; anything else fails."""
    COUNTS[count] = COUNTS.get(count, 0) + 1
    with time_limit(HANG_S):
        try:
            source = open_source(target)
            for index in range(min(len(source), LOADS)):
                image = source.load(index)
                assert isinstance(image, np.ndarray) and image.dtype == np.uint8, (type(image), image.dtype)
                assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 1, image.shape
        except BadInputError as exc:
            _one_line_naming(exc, name)


def expect_stats_outcome(path: Path, count: str) -> Statistics | None:
    """``is_statistics_file`` answers a bool; ``load_statistics`` gives valid statistics or a one-line
    GanevalError naming the file."""
    COUNTS[count] = COUNTS.get(count, 0) + 1
    with time_limit(HANG_S):
        assert isinstance(is_statistics_file(path), bool)
        try:
            stats = load_statistics(path)
        except GanevalError as exc:
            _one_line_naming(exc, str(path))
            return None
    dim = stats.mu.shape[0] if stats.mu.ndim == 1 else -1
    assert stats.mu.shape == (dim,) and stats.sigma.shape == (dim, dim), (stats.mu.shape, stats.sigma.shape)
    assert stats.mu.dtype == np.float64 and stats.sigma.dtype == np.float64
    assert np.isfinite(stats.mu).all() and np.isfinite(stats.sigma).all()
    assert np.allclose(stats.sigma, stats.sigma.T, rtol=0, atol=1e-6 * max(np.abs(stats.sigma).max(initial=0), 1e-300))
    assert stats.n is None or (isinstance(stats.n, int) and stats.n >= 0), stats.n
    assert isinstance(stats.meta, dict)
    return stats


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ganeval-fuzz-") as folder:
        yield Path(folder)


# --- the input loader ------------------------------------------------------------------------------------------


@fuzz_settings("image")
@given(data=damaged(IMAGE_SEEDS), ext=st.sampled_from([".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".ppm"]))
def test_fuzz_image_files_in_a_folder(data: bytes, ext: str) -> None:
    with scratch() as root:
        folder = root / "images"
        folder.mkdir()
        (folder / f"x{ext}").write_bytes(data)
        expect_source_outcome(folder, str(folder), "image")
        # the same bytes as a zip member
        (root / "one.zip").write_bytes(_zip({f"x{ext}": data}))
        expect_source_outcome(root / "one.zip", str(root / "one.zip"), "image")


@fuzz_settings("zip")
@given(data=damaged(ZIP_SEEDS))
def test_fuzz_zip_archives(data: bytes) -> None:
    with scratch() as root:
        (root / "set.zip").write_bytes(data)
        expect_source_outcome(root / "set.zip", str(root / "set.zip"), "zip")


@fuzz_settings("array-file")
@given(data=damaged(ARRAY_FILE_SEEDS), ext=st.sampled_from([".npy", ".npz"]))
def test_fuzz_array_files(data: bytes, ext: str) -> None:
    with scratch() as root:
        path = root / f"images{ext}"
        path.write_bytes(data)
        expect_source_outcome(path, str(path), "array-file")


DTYPES = [np.uint8, np.int8, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_, np.complex64]


def small_arrays() -> st.SearchStrategy[np.ndarray]:
    shapes = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5)
    return st.sampled_from(DTYPES).flatmap(lambda dtype: hnp.arrays(np.dtype(dtype), shapes))


@fuzz_settings("array")
@given(array=small_arrays(), via=st.sampled_from(["memory", "npy", "npz", "npz-images"]))
def test_fuzz_small_arrays(array: np.ndarray, via: str) -> None:
    if via == "memory":
        expect_source_outcome(array, "array", "array")
        return
    with scratch() as root:
        path = root / f"images.{via[:3]}"
        if via == "npy":
            np.save(path, array)
        elif via == "npz":
            np.savez(path, array)
        else:
            np.savez(path, images=array, labels=np.arange(3))
        expect_source_outcome(path, str(path), "array")
    if array.dtype == np.uint8 and array.size:
        # a uint8 array's images hold its own values (channels repeated or dropped, never invented)
        with contextlib.suppress(BadInputError):
            source = open_source(array)
            for index in range(min(len(source), LOADS)):
                assert set(np.unique(source.load(index))) <= set(np.unique(array))


# --- the statistics loader ----------------------------------------------------------------------------------


@fuzz_settings("stats-bytes")
@given(data=damaged(STATS_SEEDS))
def test_fuzz_statistics_bytes(data: bytes) -> None:
    with scratch() as root:
        path = root / "ref.npz"
        path.write_bytes(data)
        expect_stats_outcome(path, "stats-bytes")


_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([2**70, -(2**70)]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "1", "v1", "ü", "x" * 40]),
    st.lists(st.integers(0, 2), max_size=2),
    st.just({"a": 1}),
)


@st.composite
def stats_fields(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """Arrays for mu, sigma, n and meta: each valid, missing, or wrong in dtype, shape or value."""
    dim = draw(st.integers(0, 4))
    rows = np.random.default_rng(draw(st.integers(0, 3))).standard_normal((dim + 2, dim))
    mu = np.asarray(rows.mean(axis=0), dtype=np.float64)
    sigma = np.cov(rows, rowvar=False).reshape(dim, dim) if dim else np.zeros((0, 0))
    fields: dict[str, np.ndarray] = {}
    how = draw(st.sampled_from(["valid", "valid", "missing", "dtype", "shape", "value"]))
    if how != "missing":
        fields["mu"] = mu
    how_sigma = draw(
        st.sampled_from(["valid", "valid", "missing", "dtype", "shape", "value", "asymmetric", "negative"])
    )
    if how_sigma != "missing":
        fields["sigma"] = sigma
    dtype = st.sampled_from([np.float16, np.float32, np.int64, np.uint8, np.bool_, np.complex128, "U3", "S2"])
    for key, how_key in (("mu", how), ("sigma", how_sigma)):
        if key not in fields:
            continue
        if how_key == "dtype":
            with np.errstate(all="ignore"):
                fields[key] = fields[key].astype(draw(dtype))
        elif how_key == "shape":
            fields[key] = draw(
                hnp.arrays(
                    np.float64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), elements=_FLOATS
                )
            )
        elif how_key == "value" and fields[key].size:
            flat = fields[key].reshape(-1).copy()
            flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e308]))
            fields[key] = flat.reshape(fields[key].shape)
        elif how_key == "asymmetric" and dim > 1:
            fields[key] = fields[key] + np.triu(np.ones((dim, dim)), 1)
        elif how_key == "negative" and dim:
            fields[key] = fields[key] - 10 * np.eye(dim) * (1 + np.abs(sigma).max())
    n = draw(
        st.one_of(
            st.none(),
            st.integers(-2, 10**6),
            st.sampled_from([2**63 - 1]),
            _FLOATS,
            st.sampled_from(["12", "x", b"7"]),
            st.just([1, 2]),
            st.just([3]),
        )
    )
    if n is not None:
        fields["n"] = np.array(n)
    meta = draw(
        st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "format": st.sampled_from(["ganeval-stats", "other", None, 1]),
                    "format_version": _JSON_VALUES,
                    "extractor": _JSON_VALUES,
                    "mode": _JSON_VALUES,
                },
            ).map(json.dumps),
            st.sampled_from(
                [
                    '{"format_version": NaN}',
                    '{"format_version": Infinity}',
                    "[1, 2]",
                    '"text"',
                    "7",
                    "{",
                    "",
                    "null",
                    '{"format": "ganeval-stats", "format_version": 1e400}',
                ]
            ),
            st.just(np.arange(3)),
        )
    )
    if meta is not None:
        fields["meta"] = np.array(meta)
    return fields


@fuzz_settings("stats-fields")
@given(fields=stats_fields(), compressed=st.booleans())
def test_fuzz_statistics_fields(fields: dict[str, np.ndarray], compressed: bool) -> None:
    with scratch() as root:
        path = root / "ref.npz"
        (np.savez_compressed if compressed else np.savez)(path, **fields)
        stats = expect_stats_outcome(path, "stats-fields")
    if stats is not None:  # what was accepted is what was written
        np.testing.assert_array_equal(stats.mu, fields["mu"].astype(np.float64))
        np.testing.assert_array_equal(stats.sigma, fields["sigma"].astype(np.float64))


def test_report_fuzz_counts(record_testsuite_property: Callable[[str, object], None]) -> None:
    """Records how many examples each target ran in this session (shown with ``-rA``/in JUnit XML)."""
    for target, count in sorted(COUNTS.items()):
        record_testsuite_property(f"fuzz_examples_{target}", count)
    print("fuzz examples run:", dict(sorted(COUNTS.items())))


# --- the crashes found, pinned with exact inputs ----------------------------------------------------------


def _headers(data: bytes) -> tuple[bytearray, list[int], list[int]]:
    """The bytes, the offsets of every local file header and of every central directory header."""
    buffer = bytearray(data)
    local = [m.start() for m in re.finditer(b"PK\x03\x04", buffer)]
    central = [m.start() for m in re.finditer(b"PK\x01\x02", buffer)]
    return buffer, local, central


def encrypted_flag(data: bytes) -> bytes:
    """A zip/npz with bit 0 (encrypted) of every member's general-purpose flags set."""
    buffer, local, central = _headers(data)
    for at in local:
        buffer[at + 6] |= 1
    for at in central:
        buffer[at + 8] |= 1
    return bytes(buffer)


def compression_method(data: bytes, method: int) -> bytes:
    """A zip/npz whose members all claim compression ``method`` (99: none that zipfile knows)."""
    buffer, local, central = _headers(data)
    for at in local:
        buffer[at + 8 : at + 10] = method.to_bytes(2, "little")
    for at in central:
        buffer[at + 10 : at + 12] = method.to_bytes(2, "little")
    return bytes(buffer)


def broken_deflate(data: bytes) -> bytes:
    """A deflated zip/npz whose first member's stream starts with a stored block of inconsistent lengths."""
    buffer, (first, *_), _ = _headers(data)
    name_length, extra_length = (
        int.from_bytes(buffer[first + 26 : first + 28], "little"),
        int.from_bytes(buffer[first + 28 : first + 30], "little"),
    )
    buffer[first + 30 + name_length + extra_length] = 0x00
    return bytes(buffer)


def tiff_tag_type(data: bytes, tag: int, kind: int) -> bytes:
    """A little-endian TIFF with the field type of ``tag`` in its first IFD replaced by ``kind``."""
    buffer = bytearray(data)
    assert buffer[:4] == b"II*\x00"
    ifd = int.from_bytes(buffer[4:8], "little")
    for i in range(int.from_bytes(buffer[ifd : ifd + 2], "little")):
        entry = ifd + 2 + 12 * i
        if int.from_bytes(buffer[entry : entry + 2], "little") == tag:
            buffer[entry + 2 : entry + 4] = kind.to_bytes(2, "little")
            return bytes(buffer)
    raise AssertionError(f"no tag {tag}")


_UNCLOSED_HEADER = (
    b"\x93NUMPY\x01\x00v\x00"
    + b"{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4, 5, 3".ljust(117, b" ")
    + b"\n"
    + bytes(120)
)


def _npz_member(name: str, payload: bytes, **arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, value in arrays.items():
            archive.writestr(f"{key}.npy", _npy(value))
        archive.writestr(name, payload)
    return buffer.getvalue()


FINDING_CASES: dict[str, tuple[str, Callable[[], bytes], str]] = {
    # "id/variant": (file name, its exact bytes, which loader)
    "npy-holding-npz": ("images.npy", lambda: _npz(images=_PIXELS), "source"),
    "npz-holding-npy": ("images.npz", lambda: _npy(_PIXELS), "source"),
    "npz-member-unreadable/encrypted-flag": ("images.npz", lambda: encrypted_flag(_npz(images=_PIXELS)), "source"),
    "npz-member-unreadable/method-99": ("images.npz", lambda: compression_method(_npz(images=_PIXELS), 99), "source"),
    "npz-member-unreadable/broken-deflate": (
        "images.npz",
        lambda: broken_deflate(_npz(compressed=True, images=_PIXELS)),
        "source",
    ),
    "npy-bad-header": ("images.npy", lambda: _UNCLOSED_HEADER, "source"),
    "stats-member-unreadable/encrypted-flag": ("ref.npz", lambda: encrypted_flag(_npz(mu=_MU, sigma=_SIGMA)), "stats"),
    "stats-member-unreadable/method-99": (
        "ref.npz",
        lambda: compression_method(_npz(mu=_MU, sigma=_SIGMA), 99),
        "stats",
    ),
    "stats-member-unreadable/broken-deflate": (
        "ref.npz",
        lambda: broken_deflate(_npz(compressed=True, mu=_MU, sigma=_SIGMA)),
        "stats",
    ),
    "stats-bad-header": ("ref.npz", lambda: _npz_member("mu.npy", _UNCLOSED_HEADER, sigma=_SIGMA), "stats"),
    "stats-n-infinite": ("ref.npz", lambda: _npz(mu=_MU, sigma=_SIGMA, n=np.float64(np.inf)), "stats"),
    "stats-empty": ("ref.npz", lambda: _npz(mu=np.zeros(0), sigma=np.zeros((0, 0))), "stats"),
    "tiff-strip-offsets-type": ("x.tif", lambda: tiff_tag_type(IMAGE_SEEDS[9], 0x0111, 12), "folder"),
    "name-with-control-characters": ("set.zip", lambda: _zip({"a\nb.png": b"not an image"}), "source"),
}


@pytest.mark.parametrize("finding", sorted(FINDING_CASES))
def test_finding_pinned(finding: str, tmp_path: Path) -> None:
    """Each crash class the fuzzing found (KNOWN_FINDINGS), with one exact input, against the documented
    outcome: regression tests."""
    assert finding.split("/")[0] in KNOWN_FINDINGS
    name, content, loader = FINDING_CASES[finding]
    path = tmp_path / name
    if loader == "folder":
        (tmp_path / "images").mkdir()
        (tmp_path / "images" / name).write_bytes(content())
        path, loader = tmp_path / "images", "source"
    else:
        path.write_bytes(content())
    try:
        if loader == "source":
            source = open_source(path)
            images = [source.load(i) for i in range(len(source))]
            assert all(image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 for image in images)
        else:
            assert isinstance(is_statistics_file(path), bool)
            load_statistics(path)
    except BadInputError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc), str(exc)
