"""ganeval.train.data: IDX reading, Fashion-MNIST lookup, image folders, the shapes dataset, resumable
batches and the offline error path of the torchvision datasets."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganeval.datasets as datasets_module
import ganeval.train.data as data_module
from ganeval.errors import BadInputError
from ganeval.datasets import DATASET_NAMES, read_idx
from ganeval.train.data import TrainingData, open_dataset


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """An IDX file of uint8 ``array`` with the given magic number."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_pair(folder: Path, train: np.ndarray, test: np.ndarray, gz: bool, labels: bool = True) -> Path:
    """Fashion-MNIST-style images (and labels 0..N-1 mod 10) in ``folder``, gzip-compressed when ``gz``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"train-images-idx3-ubyte": idx_bytes(train, 2051), "t10k-images-idx3-ubyte": idx_bytes(test, 2051)}
    if labels:
        files["train-labels-idx1-ubyte"] = idx_bytes(np.arange(len(train)) % 10, 2049)
        files["t10k-labels-idx1-ubyte"] = idx_bytes(np.arange(len(test)) % 10, 2049)
    for name, content in files.items():
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(content))
        else:
            (folder / name).write_bytes(content)
    return folder


@pytest.fixture
def tiny_idx() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_pair_read_through_root(tmp_path: Path, tiny_idx, gz: bool) -> None:
    train, test = tiny_idx
    root = write_idx_pair(tmp_path / "fm", train, test, gz)
    data = open_dataset("fashion-mnist", 28, root=str(root))
    assert len(data) == 8 and data.channels == 1 and data.size == 28
    expected = np.concatenate([train, test])
    for i in range(8):
        assert np.array_equal(data.uint8(i)[..., 0], expected[i])
    assert np.array_equal(data.labels, np.array([0, 1, 2, 3, 4, 0, 1, 2]))
    assert data.describe() == {
        "name": "fashion-mnist",
        "source": str(root),
        "count": 8,
        "size": 28,
        "channels": 1,
        "seed": 0,
    }
    tensor = data[3]
    assert tensor.shape == (1, 28, 28) and tensor.dtype == torch.float32
    assert torch.equal(tensor, torch.from_numpy(expected[3]).float()[None] / 127.5 - 1)


def test_idx_torchvision_layout_resize_and_channels(tmp_path: Path, tiny_idx) -> None:
    train, test = tiny_idx
    write_idx_pair(tmp_path / "FashionMNIST" / "raw", train, test, gz=True, labels=False)
    data = open_dataset("fashion-mnist", 32, channels=3, root=str(tmp_path))
    assert data.labels is None
    image = data.uint8(0)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert np.array_equal(image[..., 0], image[..., 2])
    resized = np.asarray(Image.fromarray(train[0]).resize((32, 32), Image.Resampling.BICUBIC))
    assert np.array_equal(image[..., 0], resized)
    assert data.batch([0, 7]).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_damaged_magic(tmp_path: Path, tiny_idx, gz: bool) -> None:
    root = write_idx_pair(tmp_path, *tiny_idx, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    content = bytearray(idx_bytes(tiny_idx[0], 2051))
    content[3] = 0x01
    (root / name).write_bytes(gzip.compress(bytes(content)) if gz else bytes(content))
    with pytest.raises(BadInputError, match=rf"{name}: not an IDX images file \(magic number 2049"):
        open_dataset("fashion-mnist", 28, root=str(root))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path: Path, tiny_idx, gz: bool) -> None:
    root = write_idx_pair(tmp_path, *tiny_idx, gz=gz)
    name = "t10k-images-idx3-ubyte" + (".gz" if gz else "")
    content = idx_bytes(tiny_idx[1], 2051)[:-100]
    (root / name).write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(BadInputError, match=rf"{name}: truncated"):
        open_dataset("fashion-mnist", 28, root=str(root))


def test_idx_broken_gzip_and_labels(tmp_path: Path, tiny_idx) -> None:
    root = write_idx_pair(tmp_path, *tiny_idx, gz=True)
    path = root / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(BadInputError, match="train-images-idx3-ubyte.gz: cannot read the IDX file"):
        open_dataset("fashion-mnist", 28, root=str(root))
    labels = root / "labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(np.arange(4), 2049))
    assert np.array_equal(read_idx(labels, 2049), np.arange(4))
    with pytest.raises(BadInputError, match="not an IDX images file"):
        read_idx(labels, 2051)


def test_fashion_mnist_installed() -> None:
    folder = Path("/usr/share/datasets/fashion-mnist")
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("dataset-fashion-mnist not installed")
    data = open_dataset("fashion-mnist", 28)
    assert len(data) == 70_000 and data.uint8(0).shape == (28, 28, 1)
    with gzip.open(folder / "train-images-idx3-ubyte.gz") as handle:
        train = np.frombuffer(handle.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz") as handle:
        test = np.frombuffer(handle.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    assert (len(train), len(test)) == (60_000, 10_000)
    for i in (0, 1, 59_999):
        assert np.array_equal(data.uint8(i)[..., 0], train[i])
    for i in (0, 9_999):
        assert np.array_equal(data.uint8(60_000 + i)[..., 0], test[i])
    assert len(data.labels) == 70_000 and data.labels.max() == 9


def test_fashion_mnist_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "env").mkdir()
    (tmp_path / "root").mkdir()
    monkeypatch.setenv("GANEVAL_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(datasets_module, "DEBIAN_FASHION_MNIST", tmp_path / "not-there")
    with pytest.raises(BadInputError) as info:
        open_dataset("fashion-mnist", 28, root=str(tmp_path / "root"))
    message = str(info.value)
    assert "\n" not in message
    assert "apt-get install dataset-fashion-mnist" in message and "GANEVAL_DATA" in message
    assert str(tmp_path / "root") in message and str(tmp_path / "not-there") in message


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Images of mixed sizes and modes (RGBA, L, P, a 50×20 RGB), some in a subfolder, plus files to skip."""
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (40, 30, 4), dtype=np.uint8), "RGBA").save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(folder / "b.BMP")
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).convert("P").save(folder / "sub" / "c.png")
    Image.fromarray(rng.integers(0, 256, (20, 50, 3), dtype=np.uint8)).save(folder / "sub" / "d.JPEG")
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / "e.webp")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / ".skipped.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / ".hidden" / "skipped.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.mark.parametrize("channels", [1, 3])
def test_folder_mixed_images(image_folder: Path, channels: int) -> None:
    data = open_dataset(str(image_folder), 12, channels=channels)
    assert len(data) == 5
    assert data.files == ["a.png", "b.BMP", "e.webp", "sub/c.png", "sub/d.JPEG"]
    for i in range(len(data)):
        image = data.uint8(i)
        assert image.shape == (12, 12, channels) and image.dtype == np.uint8
        tensor = data[i]
        assert tensor.shape == (channels, 12, 12) and tensor.dtype == torch.float32
        assert torch.equal(tensor, torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1)
    assert data.describe()["source"] == str(image_folder.resolve())
    assert open_dataset(str(image_folder), 12).channels == 3


def test_folder_centre_crop(tmp_path: Path) -> None:
    half = np.zeros((20, 40, 3), np.uint8)
    half[:, 20:] = 255
    Image.fromarray(half).save(tmp_path / "wide.png")
    Image.fromarray(np.ascontiguousarray(half.transpose(1, 0, 2))).save(tmp_path / "zz_tall.png")
    exact = open_dataset(str(tmp_path), 20, channels=1)
    expected = np.zeros((20, 20), np.uint8)
    expected[:, 10:] = 255
    assert np.array_equal(exact.uint8(0)[..., 0], expected)
    assert np.array_equal(exact.uint8(1)[..., 0], expected.T)
    shrunk = open_dataset(str(tmp_path), 10, channels=3).uint8(0)
    assert shrunk.shape == (10, 10, 3)
    assert (shrunk[:, :4] <= 2).all() and (shrunk[:, 6:] >= 253).all()


def test_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(BadInputError, match="empty: no images found"):
        open_dataset(str(tmp_path / "empty"), 16)
    with pytest.raises(BadInputError, match="no such folder and not a dataset name"):
        open_dataset(str(tmp_path / "missing"), 16)
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(bad / "good.png")
    (bad / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    data = open_dataset(str(bad), 8)
    with pytest.raises(BadInputError, match=r"broken\.jpg: .*remove or replace it") as info:
        data.uint8(0)
    assert "\n" not in str(info.value)
    assert data.uint8(1).shape == (8, 8, 3)


def test_bad_arguments() -> None:
    with pytest.raises(BadInputError, match="channels must be 1 or 3"):
        open_dataset("shapes", 16, channels=2)
    with pytest.raises(BadInputError, match="size must be an integer"):
        open_dataset("shapes", 0)
    data = open_dataset("shapes", 8)
    with pytest.raises(BadInputError, match="batch size 20000 is larger than the dataset"):
        data.batches(20_000, seed=0)
    with pytest.raises(IndexError):
        data.uint8(len(data))


def test_shapes_deterministic() -> None:
    data = open_dataset("shapes", 32, seed=5)
    assert data.name == "shapes" and data.length == len(data) == 10_000 and data.channels == 3
    assert data.describe()["source"] == "procedural" and data.describe()["seed"] == 5
    again = open_dataset("shapes", 32, seed=5)
    other = open_dataset("shapes", 32, seed=6)
    for i in (0, 1, 9_999):
        assert np.array_equal(data.uint8(i), again.uint8(i))
        assert not np.array_equal(data.uint8(i), other.uint8(i))
    assert np.array_equal(data.uint8(1), again.uint8(1)) and not np.array_equal(data.uint8(0), data.uint8(1))
    tensors = data.batch(np.arange(16))
    assert tensors.shape == (16, 3, 32, 32) and tensors.min() >= -1 and tensors.max() <= 1
    for i in range(16):
        expected = torch.from_numpy(data.uint8(i)).permute(2, 0, 1).float() / 127.5 - 1
        assert torch.equal(data[i], expected) and torch.equal(tensors[i], expected)
    assert data.uint8(0).std() > 10


def test_shapes_gray() -> None:
    gray = open_dataset("shapes", 16, channels=1, seed=2)
    colour = open_dataset("shapes", 16, seed=2)
    image = gray.uint8(3)
    assert image.shape == (16, 16, 1)
    assert np.array_equal(image[..., 0], np.asarray(Image.fromarray(colour.uint8(3)).convert("L")))


def test_batches_resume_and_epochs() -> None:
    data = data_module.ShapesData(8, channels=1, seed=1, length=10)
    run = data.batches(batch_size=3, seed=42)
    first = [next(run) for _ in range(9)]
    assert all(batch.shape == (3, 1, 8, 8) and batch.dtype == torch.float32 for batch in first)
    again = data.batches(batch_size=3, seed=42)
    assert all(torch.equal(a, next(again)) for a in first)
    for start in (1, 3, 4, 7):
        resumed = data.batches(batch_size=3, seed=42, start_step=start)
        for step in range(start, 9):
            assert torch.equal(next(resumed), first[step])
    steps = [data.batch_indices(3, 42, step) for step in range(9)]
    for step, indices in enumerate(steps):
        assert torch.equal(data.batch(indices), first[step])
    for epoch in range(3):
        seen = np.concatenate(steps[3 * epoch : 3 * epoch + 3])
        assert len(set(seen.tolist())) == 9
        assert np.array_equal(seen, data.epoch_order(42, epoch)[:9])
    assert not np.array_equal(np.concatenate(steps[:3]), np.concatenate(steps[3:6]))
    other = data.batches(batch_size=3, seed=43)
    assert not all(torch.equal(a, next(other)) for a in first[:3])


def test_batches_cover_an_epoch_of_arrays(tmp_path: Path, tiny_idx) -> None:
    data = open_dataset("fashion-mnist", 28, root=str(write_idx_pair(tmp_path, *tiny_idx, gz=False)))
    batches = data.batches(batch_size=2, seed=0)
    epoch = torch.cat([next(batches) for _ in range(4)])
    expected = torch.from_numpy(np.concatenate(tiny_idx)).float()[:, None] / 127.5 - 1
    matched = {int(torch.nonzero((expected == image).flatten(1).all(1))[0]) for image in epoch}
    assert matched == set(range(8))


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_torchvision_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None, name: str) -> None:
    monkeypatch.setenv("GANEVAL_DATA", str(tmp_path / "env"))
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(BadInputError) as info:
        open_dataset(name, 32, root=str(root))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{name}: not found in {root} and downloading it failed")
    assert "put the files in" in message and "network" in message
    assert ("MNIST/raw" if name == "mnist" else "cifar-10-python.tar.gz") in message


def test_names() -> None:
    assert DATASET_NAMES == ("fashion-mnist", "mnist", "cifar10", "shapes")
    assert isinstance(open_dataset("SHAPES", 8), TrainingData)


def test_tiff_folder_is_training_data(tmp_path: Path) -> None:
    """Training reads the same image extensions as scoring (one list, ganeval.decode.IMAGE_EXTENSIONS): a folder
    of .tif/.tiff/.ppm files that can be scored can be trained on."""
    from PIL import Image

    from ganeval.sources import open_source

    rng = np.random.default_rng(0)
    for i, suffix in enumerate((".tif", ".TIFF", ".ppm")):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / f"{i}{suffix}")
    data = open_dataset(str(tmp_path), 8)
    source = open_source(tmp_path)
    assert len(data) == len(source) == 3
    for i in range(3):
        assert np.array_equal(data.uint8(i), source.load(i))
