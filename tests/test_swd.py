"""SWD (Progressive GAN protocol) against obvious scipy/numpy computations written out here."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch
from PIL import Image

from conftest import smooth_images
from ganeval.errors import BadInputError
from ganeval.metrics import swd
from ganeval.extractors.swd_pixels import DescriptorSampler, laplacian_pyramid, pyramid_levels
from ganeval.metrics.swd import SWDResult, normalise_descriptors, sliced_wasserstein, sliced_wasserstein_distance

BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0])
GAUSSIAN = (np.outer(BINOMIAL, BINOMIAL) / 256.0)[np.newaxis, np.newaxis]


def reference_down(images: np.ndarray) -> np.ndarray:
    """cv2.pyrDown as in the original: mirror-border binomial filter, every second pixel."""
    return scipy.ndimage.convolve(images, GAUSSIAN, mode="mirror")[:, :, ::2, ::2]


def reference_up(images: np.ndarray) -> np.ndarray:
    """cv2.pyrUp as in the original: zeros between samples, then the filter × 4."""
    batch, channels, height, width = images.shape
    spread = np.zeros((batch, channels, 2 * height, 2 * width))
    spread[:, :, ::2, ::2] = images
    return scipy.ndimage.convolve(spread, GAUSSIAN * 4.0, mode="mirror")


def reference_pyramid(images: np.ndarray, levels: int) -> list[np.ndarray]:
    pyramid = [images.astype(np.float64)]
    for _ in range(1, levels):
        pyramid.append(reference_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - reference_up(pyramid[-1])
    return pyramid


def reference_swd(a: np.ndarray, b: np.ndarray, seed, repeats: int, directions: int) -> float:
    """The original's loop: per repeat, (D, directions) normal directions, unit columns, float32
    projections, sort each column, mean |difference|; mean over repeats."""
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(repeats):
        dirs = rng.standard_normal((a.shape[1], directions))
        dirs /= np.sqrt(np.sum(np.square(dirs), axis=0, keepdims=True))
        dirs = dirs.astype(np.float32)
        proj_a = np.sort(a @ dirs, axis=0).astype(np.float64)
        proj_b = np.sort(b @ dirs, axis=0).astype(np.float64)
        results.append(np.mean(np.abs(proj_a - proj_b)))
    return float(np.mean(results))


def uint8_images(n: int, height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, height, width, 3), dtype=np.uint8)


def sample(images, seed: int = 5, size: int | None = None, splits: list[list[int]] | None = None) -> list[np.ndarray]:
    sampler = DescriptorSampler(seed=seed, size=size)
    for part in splits or [list(range(len(images)))]:
        sampler.update([images[i] for i in part], [f"img{i}.png" for i in part], part)
    return sampler.result()


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (1, 3, 32, 64), (2, 3, 16, 16)])
def test_pyramid_matches_scipy_mirror_convolution(shape) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=shape).astype(np.float32)
    levels = pyramid_levels(shape[2], shape[3])
    ours = laplacian_pyramid(torch.from_numpy(images), levels)
    expected = reference_pyramid(images, levels)
    assert [tuple(level.shape) for level in ours] == [level.shape for level in expected]
    for got, want in zip(ours, expected):
        assert got.dtype == torch.float32
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-4)
    assert np.abs(expected[0]).max() > 10


def test_pyramid_reconstructs_the_image() -> None:
    images = smooth_images(3, 64, seed=4).transpose(0, 3, 1, 2).astype(np.float32)
    pyramid = [level.numpy().astype(np.float64) for level in laplacian_pyramid(torch.from_numpy(images), 3)]
    assert pyramid[-1].shape == (3, 3, 16, 16)
    image = pyramid[-1]
    for band in pyramid[-2::-1]:
        image = reference_up(image) + band
    np.testing.assert_allclose(image, images, rtol=0, atol=1e-3)


@pytest.mark.parametrize(
    ("size", "levels"), [((16, 16), 1), ((32, 32), 2), ((64, 64), 3), ((48, 48), 2), ((32, 64), 2), ((128, 128), 4)]
)
def test_level_counts(size, levels) -> None:
    assert pyramid_levels(*size) == levels


@pytest.mark.parametrize("size", [(15, 15), (8, 64)])
def test_too_small_for_a_pyramid(size) -> None:
    with pytest.raises(ValueError, match="at least 16"):
        pyramid_levels(*size)


def test_sides_must_halve_evenly() -> None:
    with pytest.raises(ValueError, match="divisible by 2"):
        pyramid_levels(33, 33)
    with pytest.raises(ValueError, match="divisible by 4"):
        pyramid_levels(64, 66)


def test_sliced_wasserstein_matches_direct_sorting(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3000, 147)).astype(np.float32)
    b = (rng.standard_normal((3000, 147)) * 1.3 + 0.2).astype(np.float32)
    expected = reference_swd(a, b, 11, repeats=3, directions=20)
    assert sliced_wasserstein(a, b, repeats=3, directions=20, seed=11) == pytest.approx(expected, rel=1e-6)
    monkeypatch.setattr(swd, "_PROJECTION_BYTES", 3000 * 4 * 2 * 7)
    assert sliced_wasserstein(a, b, repeats=3, directions=20, seed=11) == pytest.approx(expected, rel=1e-6)
    assert sliced_wasserstein(a, b, repeats=3, directions=20, seed=12) != pytest.approx(expected, rel=1e-6)


def test_torch_sort_path_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    """The branch used on accelerators (torch.sort), exercised on the CPU."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal((1000, 147)).astype(np.float32)
    b = rng.standard_normal((1000, 147)).astype(np.float32) ** 2
    numpy_sorted = sliced_wasserstein(a, b, seed=3)
    monkeypatch.setattr(swd, "_sorts_with_numpy", lambda device: False)
    monkeypatch.setattr(swd, "_PROJECTION_BYTES", 1000 * 4 * 2 * 50)
    assert sliced_wasserstein(a, b, seed=3) == pytest.approx(numpy_sorted, rel=1e-12)


def test_sliced_wasserstein_of_identical_sets_is_zero() -> None:
    a = np.random.default_rng(2).standard_normal((500, 147)).astype(np.float32)
    assert sliced_wasserstein(a, a.copy()) == 0.0
    assert sliced_wasserstein(a, a[::-1].copy()) == 0.0


def test_sliced_wasserstein_rejects_unequal_counts() -> None:
    with pytest.raises(ValueError, match="equal shape"):
        sliced_wasserstein(np.zeros((10, 147), np.float32), np.zeros((11, 147), np.float32))


def test_normalise_descriptors_matches_float64_numpy() -> None:
    desc = np.random.default_rng(3).standard_normal((700, 3, 7, 7)) * [[[40.0]], [[5.0]], [[1.0]]] + 90
    desc = desc.astype(np.float32)
    wide = desc.astype(np.float64)
    expected = (wide - wide.mean(axis=(0, 2, 3), keepdims=True)) / wide.std(axis=(0, 2, 3), keepdims=True)
    got = normalise_descriptors(desc)
    assert got.shape == (700, 147) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected.reshape(700, 147), rtol=0, atol=1e-6)
    assert np.isfinite(normalise_descriptors(np.full((10, 3, 7, 7), 4.0, np.float32))).all()


def test_sampler_is_seeded_and_independent_of_batching() -> None:
    images = list(uint8_images(10, 32, 32, seed=4))
    whole = sample(images)
    split = sample(images, splits=[[7, 8, 9], [0, 1, 2, 3], [4], [5, 6]])
    assert [level.shape for level in whole] == [(1280, 3, 7, 7)] * 2
    assert all(level.dtype == np.float32 for level in whole)
    for a, b in zip(whole, split):
        assert np.array_equal(a, b)
    other_seed = sample(images, seed=6)
    assert not np.array_equal(whole[0], other_seed[0])
    first_three = sample(images[:3])
    assert np.array_equal(first_three[1], whole[1][: 3 * 128])


def test_descriptors_are_neighbourhoods_of_the_pyramid() -> None:
    images = uint8_images(2, 32, 64, seed=5)
    descriptors = sample(list(images))
    pyramid = laplacian_pyramid(torch.from_numpy(images).permute(0, 3, 1, 2).float(), 2)
    for level, band in zip(descriptors, pyramid):
        band = band.numpy()
        for row in (0, 200, 255):
            patch = level[row]
            image = band[row // 128]
            hits = [
                (y, x)
                for y in range(3, image.shape[1] - 3)
                for x in range(3, image.shape[2] - 3)
                if np.array_equal(image[:, y - 3 : y + 4, x - 3 : x + 4], patch)
            ]
            assert hits


def test_centres_stay_inside_on_coordinate_images() -> None:
    """A 16 px image is a one-level pyramid, so descriptors are raw pixels: encode (y, x) in the colours and
    with a border marker, and read back every neighbourhood's position."""
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, :, 0] = np.arange(16)[:, None]
    image[:, :, 1] = np.arange(16)[None, :]
    image[:, :, 2] = 100
    image[0, :, 2] = image[-1, :, 2] = image[:, 0, 2] = image[:, -1, 2] = 200
    (level,) = sample([image] * 40)
    ys, xs = level[:, 0, 3, 3], level[:, 1, 3, 3]
    offsets = np.arange(-3, 4, dtype=np.float32)
    assert np.array_equal(level[:, 0], ys[:, None, None] + offsets[None, :, None] + 0 * offsets)
    assert np.array_equal(level[:, 1], xs[:, None, None] + offsets[None, None, :] + 0 * offsets[:, None])
    assert ys.min() == 3 and ys.max() == 12 and xs.min() == 3 and xs.max() == 12
    assert not np.array_equal(ys, xs)
    marker = level[:, 2]
    touches = (ys == 3) | (ys == 12) | (xs == 3) | (xs == 12)
    assert (marker.max(axis=(1, 2)) == 200).tolist() == touches.tolist()


def test_centres_stay_inside_at_every_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """With bands replaced by coordinate maps, every neighbourhood lies fully inside its level."""

    def coordinate_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
        bands = []
        for level in range(levels):
            height, width = images.shape[2] >> level, images.shape[3] >> level
            y = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
            x = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
            bands.append(torch.stack([y, x, y * 0 + level]).expand(images.shape[0], 3, height, width))
        return bands

    import ganeval.extractors.swd_pixels as pixels

    monkeypatch.setattr(pixels, "laplacian_pyramid", coordinate_pyramid)
    levels = sample(list(uint8_images(20, 64, 128, seed=6)))
    assert len(levels) == 3
    for level, desc in enumerate(levels):
        height, width = 64 >> level, 128 >> level
        ys, xs = desc[:, 0, 3, 3], desc[:, 1, 3, 3]
        assert ys.min() == 3 and ys.max() == height - 4
        assert xs.min() == 3 and xs.max() == width - 4
        assert np.array_equal(desc[:, 0, 0, 0], ys - 3) and np.array_equal(desc[:, 1, 6, 6], xs + 3)
        assert (desc[:, 2] == level).all()


def test_mismatched_resolution_names_both_files() -> None:
    sampler = DescriptorSampler()
    sampler.update([uint8_images(1, 32, 32, 0)[0]], ["a.png"], [0])
    with pytest.raises(BadInputError, match=r"b\.png: .*one resolution.*48x48.*a\.png is 32x32") as info:
        sampler.update([uint8_images(1, 48, 48, 0)[0]], ["b.png"], [1])
    assert "\n" not in str(info.value)
    assert sampler.n_images == 1 and sampler.resolution == (32, 32)


def test_bad_images_name_the_file() -> None:
    with pytest.raises(BadInputError, match=r"tiny\.png: .*at least 16"):
        DescriptorSampler().update([uint8_images(1, 8, 8, 0)[0]], ["tiny.png"], [0])
    with pytest.raises(BadInputError, match=r"odd\.png: .*divisible by 2"):
        DescriptorSampler().update([uint8_images(1, 33, 33, 0)[0]], ["odd.png"], [0])
    with pytest.raises(BadInputError, match=r"gray\.png: .*RGB uint8"):
        DescriptorSampler().update([np.zeros((32, 32), np.uint8)], ["gray.png"], [0])
    with pytest.raises(BadInputError, match=r"float\.png"):
        DescriptorSampler().update([np.zeros((32, 32, 3), np.float32)], ["float.png"], [0])


def test_duplicate_index_is_rejected() -> None:
    sampler = DescriptorSampler()
    sampler.update([uint8_images(1, 16, 16, 0)[0]], ["a.png"], [3])
    with pytest.raises(ValueError, match="already"):
        sampler.update([uint8_images(1, 16, 16, 1)[0]], ["b.png"], [3])


def test_size_resizes_with_box_when_shrinking_and_bicubic_when_enlarging() -> None:
    large, small = uint8_images(1, 64, 64, 7)[0], uint8_images(1, 20, 20, 8)[0]
    sampler = DescriptorSampler(size=32)
    sampler.update([large, small], ["large.png", "small.png"], [0, 1])
    assert sampler.resolution == (32, 32) and sampler.level_resolutions == [32, 16]
    got = sampler.result()
    by_hand = [
        np.asarray(Image.fromarray(large).resize((32, 32), Image.BOX)),
        np.asarray(Image.fromarray(small).resize((32, 32), Image.BICUBIC)),
    ]
    expected = sample(by_hand, seed=swd.DEFAULT_SEED)
    for a, b in zip(got, expected):
        assert np.array_equal(a, b)


def textured_images(n: int, seed: int) -> list[np.ndarray]:
    """Smooth images plus pixel noise, kept within [0, 200] so that a +40 shift does not clip."""
    noise = np.random.default_rng(seed + 100).normal(0, 30, size=(n, 32, 32, 3))
    return list(np.clip(smooth_images(n, 32, seed) * 0.5 + noise + 60, 0, 200).astype(np.uint8))


def test_swd_orders_sets_by_similarity() -> None:
    real = sample(textured_images(24, seed=1))
    same = sample(textured_images(24, seed=2))
    blurred = sample([scipy.ndimage.uniform_filter(image, size=(3, 3, 1)) for image in textured_images(24, seed=2)])
    brighter = sample([image + np.uint8(40) for image in textured_images(24, seed=2)])
    identical = sliced_wasserstein_distance(real, real, resolutions=[32, 16])
    near = sliced_wasserstein_distance(real, same, resolutions=[32, 16])
    blur = sliced_wasserstein_distance(real, blurred)
    shift = sliced_wasserstein_distance(real, brighter)
    assert isinstance(near, SWDResult)
    assert identical.levels == [0.0, 0.0] and identical.mean == 0.0
    assert near.resolutions == [32, 16] and near.n_descriptors == 24 * 128 and near.subsampled is None
    assert near.mean == pytest.approx(np.mean(near.levels))
    assert blur.levels[0] > 1.5 * near.levels[0] and blur.mean > near.mean
    assert shift.levels == pytest.approx(near.levels, rel=1e-4), "a uniform brightness shift is normalised away"
    assert sliced_wasserstein_distance(real, same) == SWDResult(**{**near.__dict__, "resolutions": []})


def test_swd_levels_use_the_documented_seeds() -> None:
    real = sample(list(uint8_images(4, 16, 16, seed=1)))
    fake = sample(list(uint8_images(4, 16, 16, seed=2)))
    result = sliced_wasserstein_distance(real, fake, seed=9)
    a, b = normalise_descriptors(real[0]), normalise_descriptors(fake[0])
    expected = reference_swd(a, b, [9, 2, 0], swd.DIR_REPEATS, swd.DIRS_PER_REPEAT) * 1e3
    assert result.levels[0] == pytest.approx(expected, rel=1e-6)
    assert result.seed == 9


def test_swd_subsamples_the_larger_set() -> None:
    real = sample(list(uint8_images(3, 16, 16, seed=1)))
    fake = sample(list(uint8_images(2, 16, 16, seed=2)))
    result = sliced_wasserstein_distance(real, fake)
    assert result.subsampled == "real" and result.n_descriptors == 256
    assert sliced_wasserstein_distance(real, fake) == result
    assert sliced_wasserstein_distance(fake, real).subsampled == "fake"


def test_swd_rejects_different_resolutions() -> None:
    coarse = sample(list(uint8_images(1, 16, 16, seed=1)))
    fine = sample(list(uint8_images(1, 32, 32, seed=1)))
    with pytest.raises(ValueError, match="different resolutions"):
        sliced_wasserstein_distance(coarse, fine)


def test_progress_reports_each_level() -> None:
    rng = np.random.default_rng(0)
    levels = [rng.normal(size=(300, 3, 7, 7)).astype(np.float32) for _ in range(3)]
    other = [rng.normal(size=(300, 3, 7, 7)).astype(np.float32) for _ in range(3)]
    calls: list[tuple[int, int]] = []
    sliced_wasserstein_distance(levels, other, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
