"""The diagnostics end to end: `score --metrics authpct,modes`, `ganeval memorization` (with its closest-pairs
grid), `ganeval modes` (class subfolders, named datasets), the Evaluator, each number checked against a
brute-force computation on the same pool3 features."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import smooth_images, write_images
from PIL import Image

import ganeval
from ganeval.cli import cli
from ganeval.pairs import CELL, closest_pairs, pairs_picture

COLOURS = {"red": (255, 40, 40), "green": (40, 255, 40), "blue": (40, 40, 255)}
PER_CLASS = 12


def tinted(n: int, seed: int, colour: tuple[int, int, int]) -> np.ndarray:
    """n 32×32 images: smooth noise blended 70% towards one colour (three clearly separate classes)."""
    base = smooth_images(n, 32, seed=seed).astype(np.float64)
    return np.round(0.3 * base + 0.7 * np.array(colour)).astype(np.uint8)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """train/<class>/ (3 classes × 12), held-out fakes of every class, 4 planted copies among 8 held-out fakes,
    and a collapsed set (one training image with ±1 noise, 30 times)."""
    root = tmp_path_factory.mktemp("diag")
    held = []
    for i, (name, colour) in enumerate(COLOURS.items()):
        write_images(root / "train" / name, tinted(PER_CLASS, 10 + i, colour))
        held.append(tinted(PER_CLASS, 20 + i, colour))
    write_images(root / "heldout", np.concatenate(held))
    (root / "copies").mkdir()
    planted = {
        "copy_a.png": "red/0003.png",
        "copy_b.png": "green/0000.png",
        "copy_c.png": "blue/0007.png",
        "copy_d.png": "blue/0011.png",
    }
    for fake_name, train_name in planted.items():
        shutil.copy(root / "train" / train_name, root / "copies" / fake_name)
    for i, image in enumerate(np.concatenate(held)[::5][:8]):
        Image.fromarray(image).save(root / "copies" / f"other_{i}.png")
    one = np.asarray(Image.open(root / "train" / "green" / "0005.png")).astype(np.int16)
    noise = np.random.default_rng(0).integers(-1, 2, size=(30, *one.shape))
    write_images(root / "collapsed", np.clip(one + noise, 0, 255).astype(np.uint8))
    (root / "planted.json").write_text(json.dumps(planted))
    return {name: root / name for name in ("train", "heldout", "copies", "collapsed", "planted.json")}


def pool3(source: object, extractor) -> np.ndarray:
    return ganeval.compute_features(source, extractor, progress=False).pool3.astype(np.float64)


def brute_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


@pytest.mark.slow
def test_memorization_matches_brute_force_and_finds_the_planted_copies(data, extractor) -> None:
    result = ganeval.score(
        data["train"], data["copies"], metrics=["fid", "authpct"], extractor=extractor, progress=False
    )
    train, fake = pool3(data["train"], extractor), pool3(data["copies"], extractor)
    d = brute_distances(fake, train)
    nn, nn_index = d.min(1), d.argmin(1)
    own = brute_distances(train, train) + np.diag(np.full(len(train), np.inf))
    loo = own.min(1)
    threshold = np.percentile(loo, 1)
    assert result["authpct"] == pytest.approx(100 * np.mean(nn >= loo[nn_index]), abs=1e-12)
    assert result["copy_threshold"] == pytest.approx(threshold, rel=1e-9)
    assert result["copy_rate"] == pytest.approx(np.mean((nn < threshold) | (nn == 0)), abs=1e-12)
    assert result["nn_distance_median"] == pytest.approx(np.median(nn), rel=1e-9)
    assert result["copies"] == 4 and result["copy_rate"] == pytest.approx(4 / 12)
    assert "fid" in result and result.provenance["authpct"]["n_train"] == 36

    planted = json.loads(data["planted.json"].read_text())
    pairs = closest_pairs(result, 4)
    assert {p.fake_name: p.train_name for p in pairs} == planted
    assert all(p.distance == 0.0 for p in pairs)


def test_pairs_grid_shows_each_fake_beside_its_training_file(data, extractor, tmp_path) -> None:
    result = ganeval.memorization(data["train"], data["copies"], extractor=extractor, progress=False)
    path = tmp_path / "closest.png"
    shown = ganeval.write_pairs_grid(path, result, data["train"], data["copies"], 6)
    assert [p.distance for p in shown] == sorted(p.distance for p in shown) and len(shown) == 6
    grid = np.asarray(Image.open(path).convert("RGB"))
    expected = np.asarray(
        pairs_picture(
            shown,
            [np.asarray(Image.open(data["copies"] / p.fake_name)) for p in shown],
            [np.asarray(Image.open(data["train"] / p.train_name)) for p in shown],
        )
    )
    assert np.array_equal(grid, expected)
    # first pair, top-left: fake at (4, 4), its training image one cell (+ gap) to the right; 32 px ×3 nearest
    fake = np.asarray(Image.open(data["copies"] / shown[0].fake_name)).repeat(3, 0).repeat(3, 1)
    train = np.asarray(Image.open(data["train"] / shown[0].train_name)).repeat(3, 0).repeat(3, 1)
    assert np.array_equal(grid[4 : 4 + CELL, 4 : 4 + CELL], fake)
    assert np.array_equal(grid[4 : 4 + CELL, 8 + CELL : 8 + 2 * CELL], train)
    assert not np.array_equal(
        fake, np.asarray(Image.open(data["train"] / shown[5].train_name)).repeat(3, 0).repeat(3, 1)
    )


@pytest.mark.slow
def test_modes_collapsed_vs_heldout(data, extractor) -> None:
    collapsed = ganeval.modes(data["train"], data["collapsed"], extractor=extractor, progress=False)
    healthy = ganeval.modes(data["train"], data["heldout"], extractor=extractor, progress=False)
    assert collapsed["duplicate_rate"] > 0.5 and collapsed["duplicate_rate"] > 20 * max(
        collapsed["duplicate_rate_real"], 0.01
    )
    assert collapsed["classes_covered"] == 1 and collapsed["classes_total"] == 3
    assert collapsed["class_histogram"] == {"blue": 0.0, "green": 1.0, "red": 0.0}
    assert collapsed["support_estimate"] is not None and collapsed["support_estimate"] <= 9
    assert healthy["classes_covered"] == 3 and healthy["class_kl"] < 1e-4
    assert healthy["real_class_histogram"] == pytest.approx({"blue": 1 / 3, "green": 1 / 3, "red": 1 / 3})
    assert healthy["duplicate_rate"] < collapsed["duplicate_rate"] / 10
    assert healthy["class_fid"] == {"blue": None, "green": None, "red": None}  # < 100 images per class
    assert any("per-class FID" in w for w in healthy.warnings)
    assert collapsed.provenance["modes"]["classes"].startswith("3 class subfolders of ")


def test_modes_numbers_match_brute_force(data, extractor) -> None:
    result = ganeval.score(data["train"], data["heldout"], metrics=["modes"], extractor=extractor, progress=False)
    real, fake = pool3(data["train"], extractor), pool3(data["heldout"], extractor)
    pairs = brute_distances(real, real)[np.triu_indices(len(real), 1)]
    threshold = np.percentile(pairs, 1)
    fake_pairs = brute_distances(fake, fake)[np.triu_indices(len(fake), 1)]
    assert result["duplicate_threshold"] == pytest.approx(threshold, rel=1e-9)
    assert result["duplicate_rate"] == pytest.approx(np.mean(fake_pairs < threshold), abs=1e-12)
    labels = np.repeat(sorted(COLOURS), PER_CLASS)  # the folder order: blue/, green/, red/
    order = np.argsort(brute_distances(fake, real), axis=1, kind="stable")[:, :5]
    votes = [max(sorted(set(labels[row])), key=lambda c: list(labels[row]).count(c)) for row in order]
    counts = {c: votes.count(c) / len(votes) for c in sorted(COLOURS)}
    assert result["class_histogram"] == pytest.approx(counts)
    assert np.array_equal(result.arrays["fake_labels"], np.array(votes))


def test_real_labels_and_class_fid(extractor) -> None:
    """Labels given by the caller; per-class FID where both sides have >= 100 images equals FID of the rows."""
    from ganeval.metrics.fid import fid_of_rows as _fid_of_rows

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(6, 16, 16, 3), dtype=np.uint8)
    labels = ["x", "y", "x", "y", "x", "y"]
    result = ganeval.modes(images, images[::-1].copy(), real_labels=labels, extractor=extractor, progress=False)
    assert result["classes_total"] == 2 and result["real_class_histogram"] == {"x": 0.5, "y": 0.5}
    with pytest.raises(ganeval.GanevalError, match="3 labels for 6 images"):
        ganeval.modes(images, images, real_labels=labels[:3], extractor=extractor, progress=False)
    x, y = rng.normal(size=(120, 8)), rng.normal(size=(130, 8)) + 1
    mu_x, mu_y = x.mean(0), y.mean(0)
    from scipy import linalg

    s_x, s_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    brute = ((mu_x - mu_y) ** 2).sum() + np.trace(s_x + s_y - 2 * linalg.sqrtm(s_x @ s_y).real)
    assert _fid_of_rows(x, y) == pytest.approx(brute, rel=1e-6)


def test_cli_memorization_and_modes(data, extractor, tmp_path) -> None:
    runner = CliRunner()
    grid = tmp_path / "closest.png"
    out = runner.invoke(
        cli,
        [
            "memorization",
            str(data["train"]),
            str(data["copies"]),
            "--grid",
            str(grid),
            "--pairs",
            "4",
            "--json",
            "--device",
            "cpu",
        ],
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["copies"] == 4 and set(doc) >= {
        "authpct",
        "copy_rate",
        "copy_threshold",
        "nn_distance_median",
        "provenance",
        "n_real",
        "n_fake",
    }
    assert Image.open(grid).size == (4 * (2 * CELL + 4 + 12) + 4, CELL + 14 + 12)

    out = runner.invoke(cli, ["modes", str(data["train"]), str(data["heldout"]), "--device", "cpu", "-q"])
    assert out.exit_code == 0, out.output
    assert "classes covered:      3/3" in out.stdout and "red" in out.stdout and "support size:" in out.stdout
    out = runner.invoke(cli, ["modes", str(data["train"]), str(data["heldout"]), "--no-classes", "--json", "-q"])
    doc = json.loads(out.stdout)
    assert "duplicate_rate" in doc and "support_estimate" in doc and "classes_covered" not in doc

    out = runner.invoke(
        cli,
        [
            "score",
            str(data["train"]),
            str(data["copies"]),
            "--metrics",
            "fid,kid,authpct,modes",
            "--kid-subset-size",
            "10",
            "--json",
            "-q",
        ],
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    keys = [
        "authpct",
        "copy_rate",
        "nn_distance_median",
        "duplicate_rate",
        "duplicate_rate_real",
        "support_estimate",
        "classes_covered",
        "classes_total",
        "class_kl",
        "class_histogram",
    ]
    assert set(keys) <= set(doc) and doc["copies"] == 4 and "fid" in doc and "kid" in doc

    csv_path = tmp_path / "scores.csv"
    out = runner.invoke(cli, ["modes", str(data["train"]), str(data["heldout"]), "--csv", str(csv_path), "-q"])
    assert out.exit_code == 0 and "classes_covered" in csv_path.read_text().splitlines()[0]


def test_cli_diagnostic_errors(data, extractor, tmp_path) -> None:
    runner = CliRunner()
    stats = tmp_path / "train_stats.npz"
    assert runner.invoke(cli, ["stats", str(data["train"]), "-o", str(stats), "-q"]).exit_code == 0
    out = runner.invoke(cli, ["modes", str(stats), str(data["heldout"]), "-q"])
    assert out.exit_code == 2 and "holds only statistics" in out.stderr and "Traceback" not in out.output
    out = runner.invoke(
        cli, ["memorization", str(data["train"]), str(data["copies"]), "--grid", str(tmp_path / "g.txt")]
    )
    assert out.exit_code == 2 and "*.png" in out.output
    out = runner.invoke(cli, ["score", str(data["train"]), str(data["copies"]), "--metrics", "fid,memo", "-q"])
    assert out.exit_code == 2 and "unknown metric(s) memo" in out.stderr


def test_grid_refuses_a_training_file_that_is_gone(data, extractor, tmp_path) -> None:
    train = tmp_path / "train"
    shutil.copytree(data["train"], train)
    result = ganeval.memorization(train, data["copies"], extractor=extractor, progress=False)
    first = closest_pairs(result, 1)[0]
    (train / first.train_name).unlink()
    with pytest.raises(ganeval.GanevalError, match=f"{first.train_name} is no longer there"):
        ganeval.write_pairs_grid(tmp_path / "g.png", result, train, data["copies"], 3)


@pytest.mark.slow
def test_evaluator_diagnostics_equal_score_and_images_replay(data, extractor) -> None:
    def generator(n: int) -> torch.Tensor:
        return (torch.rand(n, 3, 32, 32) * 255).to(torch.uint8)

    ev = ganeval.Evaluator(
        data["train"], metrics=("authpct", "modes"), num_samples=20, device="cpu", batch_size=8, progress=False
    )
    result = ev.score(generator)
    from ganeval.evaluator import batch_seed

    drawn = []
    for start, count in ((0, 8), (8, 8), (16, 4)):  # each batch seeded from (seed, its first image)
        torch.manual_seed(batch_seed(ev.seed, start))
        drawn.append(generator(count))
    drawn = torch.cat(drawn).permute(0, 2, 3, 1).numpy()
    direct = ganeval.score(data["train"], drawn, metrics=["authpct", "modes"], extractor=extractor, progress=False)
    for key in (
        "authpct",
        "copy_rate",
        "nn_distance_median",
        "duplicate_rate",
        "support_estimate",
        "classes_covered",
        "class_histogram",
    ):
        assert result[key] == (None if direct[key] is None else pytest.approx(direct[key], rel=1e-5)), key
    replay = ev.images(generator, [19, 0, 9])
    assert sorted(replay) == [0, 9, 19]
    for index, image in replay.items():
        assert np.array_equal(image, drawn[index])
    with pytest.raises(ganeval.GanevalError, match="indices"):
        ev.images(generator, [20])


def test_named_dataset_labels() -> None:
    from ganeval.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist, named_dataset_source

    try:
        images, labels, _ = load_fashion_mnist()
    except ganeval.GanevalError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    test = named_dataset_source("fashion-mnist:test")
    assert len(test) == 10_000 and test.label == "fashion-mnist:test"
    assert np.array_equal(test.images[5, ..., 0], images[60_005])
    assert test.labels[5] == FASHION_MNIST_CLASSES[labels[60_005]] and test.classes == list(FASHION_MNIST_CLASSES)
    assert named_dataset_source("no-such-set") is None
    with pytest.raises(ganeval.GanevalError, match="unknown split 'val'"):
        named_dataset_source("fashion-mnist:val")


def _per_class(source, count: int, offset: int = 0):
    from ganeval.sources import ArraySource

    index = np.concatenate([np.flatnonzero(source.labels == c)[offset : offset + count] for c in source.classes])
    return ArraySource(source.images[index], source.label, labels=source.labels[index], classes=source.classes)


@pytest.mark.slow
def test_fashion_mnist_test_split_covers_every_class_with_the_real_trunk(extractor) -> None:
    """The real Inception trunk, real data: the test split as "fakes" against training images, labelled
    from the IDX files, covers all ten classes. Sizes: 100 training images per class (1,000) and 20 test
    images per class (200), about 2 minutes of extraction. With 30 per class the kNN vote labels too few
    shirts as shirts (3% < the 5% half-share); at 100 per class 7.5% (measured), so the test has margin."""
    from ganeval.datasets import named_dataset_source

    try:
        train, test = named_dataset_source("fashion-mnist"), named_dataset_source("fashion-mnist:test")
    except ganeval.GanevalError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    assert extractor.weights.standard
    result = ganeval.modes(_per_class(train, 100), _per_class(test, 20).images, extractor=extractor, progress=False)
    assert result["classes_total"] == 10 and result["classes_covered"] == 10, result["class_histogram"]
    assert result["class_kl"] < 0.05
    assert result["real_class_histogram"] == pytest.approx(dict.fromkeys(train.classes, 0.1))
