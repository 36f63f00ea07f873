"""Inputs: folders, archives and arrays decode to the same uint8 RGB images; bad files are named."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_images, write_images
from ganeval.errors import BadInputError
from ganeval.sources import ArraySource, FolderSource, ZipSource, decode_image, open_source


def all_images(source) -> list[np.ndarray]:
    return [source.load(i) for i in range(len(source))]


def test_folder_is_recursive_sorted_and_counts_ignored_files(tmp_path: Path) -> None:
    images = smooth_images(4, 16, seed=0)
    Image.fromarray(images[0]).save(tmp_path / "b.png")
    (tmp_path / "a" / "deep").mkdir(parents=True)
    Image.fromarray(images[1]).save(tmp_path / "a" / "deep" / "z.bmp")
    Image.fromarray(images[2]).save(tmp_path / "a" / "y.TIFF")
    Image.fromarray(images[3]).save(tmp_path / "c.webp", lossless=True)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"junk")
    source = open_source(tmp_path)
    assert isinstance(source, FolderSource)
    assert source.names == ["a/deep/z.bmp", "a/y.TIFF", "b.png", "c.webp"]
    assert source.ignored == [".hidden.png", "notes.txt"]
    loaded = all_images(source)
    for got, want in zip(loaded, [images[1], images[2], images[0], images[3]]):
        np.testing.assert_array_equal(got, want)


def test_zip_and_arrays_give_the_same_images(tmp_path: Path) -> None:
    images = smooth_images(3, 20, seed=1)
    folder = write_images(tmp_path / "f", images)
    with zipfile.ZipFile(tmp_path / "set.zip", "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, f"imgs/{file.name}")
        archive.writestr("imgs/readme.md", "text")
    np.save(tmp_path / "nhwc.npy", images)
    np.savez(tmp_path / "nchw.npz", images=images.transpose(0, 3, 1, 2), labels=np.arange(3))
    for path in (folder, tmp_path / "set.zip", tmp_path / "nhwc.npy", tmp_path / "nchw.npz"):
        source = open_source(path)
        assert len(source) == 3
        for got, want in zip(all_images(source), images):
            np.testing.assert_array_equal(got, want)
    assert isinstance(open_source(tmp_path / "set.zip"), ZipSource)
    assert open_source(tmp_path / "set.zip").ignored == ["imgs/readme.md"]


def test_pixel_conversions(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0  # fully transparent red: alpha is dropped, not composited
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "rgba.png", "rgba.png")[..., 0], 200)

    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    out = decode_image(tmp_path / "gray.png", "gray.png")
    assert out.shape == (4, 4, 3) and all(np.array_equal(out[..., c], gray) for c in range(3))

    deep = np.arange(16, dtype=np.uint16).reshape(4, 4) * 4369  # 0 … 65535
    Image.fromarray(deep).save(tmp_path / "deep.png")
    out = decode_image(tmp_path / "deep.png", "deep.png")
    np.testing.assert_array_equal(out[..., 0], np.round(deep / 257).astype(np.uint8))

    palette = Image.fromarray(smooth_images(1, 8, seed=2)[0]).convert("P", palette=Image.ADAPTIVE, colors=8)
    palette.save(tmp_path / "pal.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "pal.png", "pal.png"), np.asarray(palette.convert("RGB")))

    frames = [Image.fromarray(np.full((4, 4, 3), v, np.uint8)) for v in (10, 200)]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], lossless=True)
    assert decode_image(tmp_path / "anim.webp", "anim.webp").mean() == pytest.approx(10, abs=1)

    gray_array = ArraySource(np.zeros((2, 5, 6), np.uint8), "g")
    assert gray_array.load(0).shape == (5, 6, 3)


@pytest.mark.parametrize(
    "content,reason", [(b"", "not a readable image"), (b"hello, I am text", "not a readable image")]
)
def test_non_images_are_named(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(BadInputError, match=rf"bad\.png: {reason}"):
        decode_image(path, str(path))


def test_truncated_png_is_named(tmp_path: Path) -> None:
    Image.fromarray(smooth_images(1, 64, seed=3)[0]).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match=r"cut\.png: "):
        decode_image(tmp_path / "cut.png", str(tmp_path / "cut.png"))


def test_bad_arrays_and_paths(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="must be uint8"):
        open_source(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(BadInputError, match="channel axis"):
        open_source(np.zeros((2, 8, 8, 7), np.uint8))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BadInputError, match=r"objects\.npy: not a readable numpy file"):
        open_source(tmp_path / "objects.npy")
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 4, 4, 3), np.uint8), b=np.zeros(3))
    with pytest.raises(BadInputError, match=r"two\.npz: \.npz holds"):
        open_source(tmp_path / "two.npz")
    with pytest.raises(BadInputError, match="no such file or folder"):
        open_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(BadInputError, match=r"empty: contains no images; 1 non-image files ignored"):
        open_source(tmp_path / "empty")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(BadInputError, match=r"broken\.zip: not a readable zip archive"):
        open_source(tmp_path / "broken.zip")


def test_content_key_follows_bytes_and_names(tmp_path: Path) -> None:
    images = smooth_images(2, 8, seed=4)
    folder = write_images(tmp_path / "a", images)
    key = open_source(folder).content_key()
    assert key == open_source(folder).content_key()
    (folder / "0000.png").rename(folder / "0002.png")
    assert open_source(folder).content_key() != key
    assert ArraySource(images, "x").content_key() != ArraySource(images[::-1].copy(), "x").content_key()


def test_symlinks_loops_and_dangling_links(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "f", smooth_images(2, 8, seed=5))
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "dangling.png").symlink_to(tmp_path / "gone.png")
    source = open_source(folder)
    assert source.names == ["0000.png", "0001.png", "dangling.png"]
    assert source.ignored == ["loop/"]
    with pytest.raises(BadInputError, match=r"dangling\.png: "):
        source.load(2)
    assert source.content_key()  # an unreadable file does not stop hashing; decoding reports it


def _open_handles(path: Path) -> int:
    """How many of this process's file descriptors point at ``path`` (Linux /proc)."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += Path(fd).readlink() == path.resolve()
        except OSError:
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc/self/fd")
def test_zip_source_releases_its_file_handle(tmp_path: Path) -> None:
    """A ZipSource holds no handle after listing the archive, opens one to read, and releases it on close() and
    at the end of a ``with`` block; it can still be read after close()."""
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for i, image in enumerate(smooth_images(3, 16, seed=4)):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            handle.writestr(f"{i}.png", buffer.getvalue())
    source = open_source(archive)
    assert _open_handles(archive) == 0
    first = source.load(0)
    assert _open_handles(archive) == 1
    source.close()
    assert _open_handles(archive) == 0
    with open_source(archive) as again:
        assert np.array_equal(again.load(0), first)
    assert _open_handles(archive) == 0
    assert np.array_equal(source.load(0), first)
    source.close()
    assert _open_handles(archive) == 0
