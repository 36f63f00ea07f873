"""Content-keyed features cache, statistics files and their compatibility checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganeval
import ganeval.sources
from conftest import smooth_images, write_images
from ganeval.cache import cache_dir
from ganeval.errors import BadInputError, IncompatibleStatsError
from ganeval.stats import Statistics, load_statistics, save_statistics


@pytest.mark.slow
def test_second_run_decodes_nothing(image_dirs, extractor, fresh_home, decode_counter) -> None:
    real, fake = image_dirs
    first = ganeval.fid(real, fake, extractor=extractor, progress=False)
    assert len(decode_counter) == 16
    assert first.provenance["real"]["cached"] is False
    decode_counter.clear()
    second = ganeval.fid(real, fake, extractor=extractor, progress=False)
    assert decode_counter == []
    assert second.provenance["real"]["cached"] is True and second.provenance["fake"]["cached"] is True
    assert second["fid"] == first["fid"]
    assert len(list(cache_dir().glob("*.npz"))) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip"])
@pytest.mark.slow
def test_damaged_cache_entry_is_recomputed(image_dirs, extractor, fresh_home, decode_counter, damage, caplog) -> None:
    real, _ = image_dirs
    features = ganeval.compute_features(real, extractor, progress=False)
    (entry,) = cache_dir().glob("*.npz")
    data = bytearray(entry.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 3]
    else:
        # flip a byte inside the pool3 array (well past the zip/npy headers, before the end records)
        data[len(data) // 4] ^= 0xFF
    entry.write_bytes(bytes(data))
    decode_counter.clear()
    again = ganeval.compute_features(real, extractor, progress=False)
    assert len(decode_counter) == 8
    assert "damaged" in caplog.text
    np.testing.assert_array_equal(again.pool3, features.pool3)
    decode_counter.clear()
    ganeval.compute_features(real, extractor, progress=False)
    assert decode_counter == []


def test_no_cache_writes_nothing(image_dirs, extractor, fresh_home) -> None:
    real, _ = image_dirs
    ganeval.compute_features(real, extractor, cache=False, progress=False)
    assert not cache_dir().exists() or not list(cache_dir().iterdir())


@pytest.mark.slow
def test_statistics_file_round_trip_and_use(image_dirs, extractor, tmp_path) -> None:
    real, fake = image_dirs
    stats = ganeval.statistics(real, extractor=extractor, progress=False)
    path = save_statistics(stats, tmp_path / "real")
    assert path.name == "real.npz"
    loaded = load_statistics(path)
    np.testing.assert_array_equal(loaded.mu, stats.mu)
    np.testing.assert_array_equal(loaded.sigma, stats.sigma)
    assert loaded.n == 8
    for key in ("extractor", "weights_sha256", "mode", "ganeval_version", "content_sha256", "source"):
        assert loaded.meta[key] == stats.meta[key], key
    assert loaded.meta["mode"] == "tf" and loaded.meta["format"] == "ganeval-stats"
    direct = ganeval.fid(real, fake, extractor=extractor, progress=False)
    from_file = ganeval.fid(path, fake, extractor=extractor, progress=False)
    assert from_file["fid"] == pytest.approx(direct["fid"], rel=1e-12)
    assert from_file.provenance["real"]["kind"] == "statistics"
    both_files = ganeval.fid(path, path)
    assert both_files["fid"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_pytorch_fid_layout_is_read_with_a_warning(image_dirs, extractor, tmp_path) -> None:
    real, fake = image_dirs
    stats = ganeval.statistics(real, extractor=extractor, progress=False)
    np.savez(tmp_path / "ptfid.npz", mu=stats.mu, sigma=stats.sigma)
    result = ganeval.fid(tmp_path / "ptfid.npz", fake, extractor=extractor, progress=False)
    assert result["fid"] == pytest.approx(ganeval.fid(real, fake, extractor=extractor, progress=False)["fid"])
    assert any("carries no provenance" in w for w in result.warnings)


def _forged(stats: Statistics, path: Path, **meta_changes) -> Path:
    return save_statistics(Statistics(stats.mu, stats.sigma, stats.n, {**stats.meta, **meta_changes}), path)


@pytest.mark.slow
def test_mismatched_statistics_are_refused(image_dirs, extractor, tmp_path) -> None:
    real, fake = image_dirs
    stats = ganeval.statistics(real, extractor=extractor, progress=False)
    other_mode = _forged(stats, tmp_path / "mode.npz", mode="pytorch-fid")
    with pytest.raises(IncompatibleStatsError, match="preprocessing mode 'pytorch-fid' vs 'tf'"):
        ganeval.fid(other_mode, fake, extractor=extractor, progress=False)
    forced = ganeval.fid(other_mode, fake, extractor=extractor, force=True, progress=False)
    assert any("--force" in w for w in forced.warnings)
    custom = _forged(
        stats,
        tmp_path / "w.npz",
        extractor="inception-v3-custom-weights",
        weights_sha256="ab" * 32,
        weights_standard=False,
    )
    with pytest.raises(IncompatibleStatsError, match="extractor"):
        ganeval.fid(custom, fake, extractor=extractor, progress=False)
    with pytest.raises(IncompatibleStatsError):
        ganeval.fid(custom, other_mode)


@pytest.mark.parametrize(
    "mu,sigma,message",
    [
        (np.zeros(3), np.array([[1.0, 2.0, 0], [0, 1, 0], [0, 0, 1]]), "not symmetric"),
        (np.zeros(3), np.eye(4), "expected \\(D,\\) and \\(D, D\\)"),
        (np.array([0.0, np.nan, 0.0]), np.eye(3), "NaN or infinite"),
    ],
)
def test_invalid_statistics_files_are_named(tmp_path, mu, sigma, message) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, mu=mu, sigma=sigma)
    with pytest.raises(BadInputError, match=rf"bad\.npz: .*{message}"):
        load_statistics(path)
    np.savez(path, mu=np.zeros(2))
    with pytest.raises(BadInputError, match=r"bad\.npz: not a statistics file"):
        load_statistics(path)


def test_skip_bad_counts_and_cache_respects_it(tmp_path, extractor, fresh_home) -> None:
    folder = write_images(tmp_path / "mixed", smooth_images(3, 16, seed=11))
    (folder / "0001.png").write_bytes(b"")
    with pytest.raises(BadInputError, match=r"0001\.png: not a readable image"):
        ganeval.compute_features(folder, extractor, progress=False)
    features = ganeval.compute_features(folder, extractor, skip_bad=True, progress=False)
    assert features.n == 2 and features.names == ["0000.png", "0002.png"]
    assert len(features.provenance["skipped"]) == 1 and "0001.png" in features.provenance["skipped"][0]
    with pytest.raises(BadInputError, match="--skip-bad"):
        ganeval.compute_features(folder, extractor, progress=False)
    assert ganeval.compute_features(folder, extractor, skip_bad=True, progress=False).provenance["cached"] is True


def test_fewer_than_two_images_is_an_error(tmp_path, extractor) -> None:
    folder = write_images(tmp_path / "one", smooth_images(1, 16, seed=12))
    with pytest.raises(BadInputError, match="1 usable image"):
        ganeval.compute_features(folder, extractor, cache=False, progress=False)


@pytest.mark.slow
def test_mixed_sizes_and_batching_do_not_change_features(tmp_path, extractor) -> None:
    from ganeval.extractors.inception import Extractor

    images = [smooth_images(1, size, seed=size)[0] for size in (16, 40, 16, 24, 40)]
    folder = tmp_path / "sizes"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i}.png")
    together = ganeval.compute_features(folder, extractor, cache=False, progress=False)
    one_by_one = np.concatenate([extractor.forward([image])[0] for image in images])
    np.testing.assert_allclose(together.pool3, one_by_one, atol=1e-5)
    small_batches = Extractor(batch_size=2, device="cpu").extract(ganeval.sources.open_source(folder), progress=False)
    np.testing.assert_allclose(small_batches.pool3, together.pool3, atol=1e-5)
    expected_mu = together.pool3.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(together.mu, expected_mu, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        together.sigma, np.cov(together.pool3.astype(np.float64), rowvar=False), rtol=1e-6, atol=1e-9
    )
    assert json.dumps(together.provenance)  # provenance is plain JSON


def test_statistics_of_different_dimension_are_refused(tmp_path) -> None:
    np.savez(tmp_path / "a.npz", mu=np.zeros(4), sigma=np.eye(4))
    np.savez(tmp_path / "b.npz", mu=np.zeros(5), sigma=np.eye(5))
    with pytest.raises(BadInputError, match=r"4-d statistics and fake .*b\.npz\) 5-d"):
        ganeval.fid(tmp_path / "a.npz", tmp_path / "b.npz")


@pytest.mark.slow
def test_provenance_comes_from_the_side_that_has_it(image_dirs, extractor, tmp_path) -> None:
    real, fake = image_dirs
    ours = save_statistics(ganeval.statistics(fake, extractor=extractor, progress=False), tmp_path / "fake.npz")
    stats = load_statistics(ours)
    assert "cached" not in stats.meta
    np.savez(tmp_path / "ptfid.npz", mu=stats.mu + 0.1, sigma=stats.sigma)
    result = ganeval.fid(tmp_path / "ptfid.npz", ours)
    assert result.provenance["extractor"] == "inception-v3-tf-2015-12-05" and result.provenance["mode"] == "tf"
    assert result["fid"] == pytest.approx(0.01 * 2048, rel=1e-6)
