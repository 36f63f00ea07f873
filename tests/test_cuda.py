"""The CUDA paths against the CPU on the same small inputs: extraction, the four precisions, ``score``, torchrun
and NCCL, the Evaluator's copies and state, training with checkpoints and resume, the diagnostics' matmuls.

Every test is marked ``cuda`` and skipped without a CUDA device; benchmarks/gpu_check.py runs this subset on a
lent GPU. The network is seeded random Inception weights in the full layout (gpu_check.py's
``random_inception_weights``), so neither the real trunk nor the peers are needed: these tests compare devices,
not published numbers.

Tolerances. In fp32, cuDNN and oneDNN run the same IEEE float32 arithmetic, but with other convolution
algorithms and summation orders: each of the ~100 layers rounds differently (~1e-7 relative), which leaves
pool3 and the logits ~1e-6 to 1e-5 of the largest feature apart, so 1e-4 of the largest feature is the bound
(TF32, which cuDNN would use if ganeval left it on, moves them by ~1e-3 and fails it). Scores computed from
such features (FID, KID, SWD) agree to 1e-3 relative; precision/recall/density/coverage count points inside
radii, and a point on a border may flip, so they may move by one point (1/N). The same computation twice on
the GPU (in one process or two) agrees to 1e-5 relative. The diagnostics decide every near tie with explicit float64 differences in
NumPy, so their decisions are identical on both devices and their distances agree to 1e-12.
"""

from __future__ import annotations

import copy
import dataclasses
import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from conftest import assert_scores_close as assert_json_close
from conftest import smooth_images, write_images

import ganeval
import ganeval.distributed
from ganeval.device import NUMERICS, exact_float32, numerics_context
from ganeval.evaluator import Evaluator
from ganeval.metrics.diagnostics import (
    authenticity,
    class_coverage,
    duplicates,
    k_nearest,
    nearest_neighbours,
    support_size,
)
from ganeval.metrics.prdc import precision_recall_density_coverage
from ganeval.extractors.inception import Extractor
from ganeval.train.checkpoint import list_checkpoints, load_state
from ganeval.train.models import DCGANGenerator
from ganeval.train.trainer import TrainConfig, Trainer, load_generator

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

ROOT = Path(__file__).resolve().parents[1]
N = 16  # images per set
BATCH = 8
METRICS = ["fid", "kid", "pr", "swd"]
REL_FEATURES = 1e-4  # fp32 CUDA vs CPU features, of the largest feature
REL_SCORE = 1e-3  # FID, KID, SWD from fp32 CUDA vs CPU features
REL_SAME = 1e-5  # the same computation twice on the GPU
# a non-fp32 precision vs fp32 on CUDA: largest pool3 change / largest feature, and |ΔFID| / FID. bf16 keeps 8
# mantissa bits (about 2% of the largest feature measured on the CPU), tf32 and fp16 keep 11
FEATURE_BOUND = {"tf32": 0.02, "bf16": 0.1, "fp16": 0.02}
FID_BOUND = {"tf32": 0.02, "bf16": 0.05, "fp16": 0.02}


def _gpu_check():
    """benchmarks/gpu_check.py as a module (registered first: its dataclasses look themselves up there)."""
    if "gpu_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_check"] = module
        spec.loader.exec_module(module)
    return sys.modules["gpu_check"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeded random full-layout Inception weights (with the classifier)."""
    return _gpu_check().random_inception_weights(tmp_path_factory.mktemp("weights") / "random.pth")


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two PNG folders of N 32×32 images from different distributions."""
    root = tmp_path_factory.mktemp("cuda-sets")
    return (
        write_images(root / "real", smooth_images(N, 32, seed=51)),
        write_images(root / "fake", smooth_images(N, 32, seed=52, shift=40)),
    )


def score(sets: tuple[Path, Path], weights: Path, device: str) -> ganeval.Result:
    return ganeval.score(
        *sets, metrics=METRICS, weights=weights, device=device, cache=False, batch_size=BATCH, progress=False
    )


@pytest.fixture(scope="module")
def cpu_score(sets, weights) -> ganeval.Result:
    return score(sets, weights, "cpu")


@pytest.fixture(scope="module")
def cuda_score(sets, weights) -> ganeval.Result:
    return score(sets, weights, "cuda")


@pytest.fixture(scope="module")
def generator() -> DCGANGenerator:
    """A small seeded DCGAN generator on the CPU (BatchNorm inside, so train/eval mode matters)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return DCGANGenerator(32, 3, z_dim=16, width=8)


def assert_rows_close(actual: np.ndarray, expected: np.ndarray, rel: float = REL_FEATURES) -> None:
    assert actual.shape == expected.shape
    scale = float(np.abs(expected).max())
    diff = float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max())
    assert diff <= rel * scale, f"max |difference| {diff:.3g} > {rel:g} × largest feature {scale:.3g}"


def assert_scores_close(actual: ganeval.Result | dict, expected: ganeval.Result, rel: float) -> None:
    """FID, KID and SWD within ``rel``; precision, recall, density and coverage within one point of N."""
    for key in ("fid", "kid", "swd"):
        if key in expected.scores:
            assert math.isclose(actual[key], expected[key], rel_tol=rel, abs_tol=1e-9), (
                key,
                actual[key],
                expected[key],
            )
    for key in ("precision", "recall", "density", "coverage"):
        if key in expected.scores:
            assert abs(actual[key] - expected[key]) <= 1.0 / N + 1e-12, (key, actual[key], expected[key])


def _fp32_precision_api() -> bool:
    """Whether this torch sets TF32 through ``fp32_precision`` (as ganeval.device then does) or ``allow_tf32``."""
    return hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision")


def tf32_settings() -> tuple[object, object]:
    """The raw TF32 settings of cuDNN convolutions and CUDA matmuls, in the API ganeval.device uses."""
    if _fp32_precision_api():
        return torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32


def set_tf32_settings(conv: object, matmul: object) -> None:
    if _fp32_precision_api():
        torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = conv, matmul
    else:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, matmul


def tf32_flags() -> tuple[bool, bool]:
    """Whether cuDNN convolutions and CUDA matmuls may use TF32 now."""
    conv, matmul = tf32_settings()
    return (conv == "tf32", matmul == "tf32") if _fp32_precision_api() else (bool(conv), bool(matmul))


def allow_tf32(on: bool) -> None:
    set_tf32_settings(*(("tf32" if on else "ieee",) * 2 if _fp32_precision_api() else (on, on)))


@pytest.mark.parametrize("mode", ["tf", "clean", "pytorch-fid"])
def test_extraction_on_cuda_matches_the_cpu(mode: str, sets, weights) -> None:
    real, _ = sets
    cpu = ganeval.compute_features(
        real, Extractor(weights=weights, mode=mode, device="cpu", batch_size=BATCH), cache=False, progress=False
    )
    gpu = ganeval.compute_features(
        real, Extractor(weights=weights, mode=mode, device="cuda", batch_size=BATCH), cache=False, progress=False
    )
    assert str(gpu.provenance["device"]).startswith("cuda") and str(cpu.provenance["device"]).startswith("cpu")
    assert gpu.names == cpu.names
    assert_rows_close(gpu.pool3, cpu.pool3)
    assert_rows_close(gpu.logits_unbiased, cpu.logits_unbiased)
    assert_rows_close(gpu.mu, cpu.mu)


def test_fp32_is_ieee_inside_and_the_callers_tf32_setting_is_restored() -> None:
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(1024, 1024, generator=generator, dtype=torch.float64) for _ in range(2))
    exact = a @ b
    a32, b32 = a.float().cuda(), b.float().cuda()

    def error() -> float:
        product = (a32 @ b32).double().cpu()
        return float((product - exact).abs().max() / exact.abs().max())

    device = torch.device("cuda")
    saved = tf32_settings()
    try:
        allow_tf32(True)  # a training loop that wants TF32
        with numerics_context("fp32", device):
            assert tf32_flags() == (False, False)
            ieee = error()
        assert tf32_flags() == (True, True)
        with exact_float32():
            assert tf32_flags() == (False, False)
        assert tf32_flags() == (True, True)
        allow_tf32(False)
        with numerics_context("tf32", device):
            assert tf32_flags() == (True, True)
            tf32 = error()
        assert tf32_flags() == (False, False)
    finally:
        set_tf32_settings(*saved)
    # IEEE float32 over 1024 products: ~1e-7 of the largest entry; TF32's 10-bit mantissa: ~1e-4 and more
    assert ieee < 1e-5, f"fp32 matmul error {ieee:.2g}: not IEEE float32"
    assert tf32 > 10 * ieee, f"tf32 matmul error {tf32:.2g} vs fp32 {ieee:.2g}: TF32 does not seem to be used"


def test_every_precision_runs_on_cuda_within_its_bound(sets, weights) -> None:
    real, fake = sets
    images = list(smooth_images(BATCH, 32, seed=51))
    pool3, fids = {}, {}
    for precision in NUMERICS:
        extractor = Extractor(weights=weights, device="cuda", batch_size=BATCH, precision=precision)
        pool3[precision] = extractor.forward(images)[0]
        result = ganeval.fid(
            real,
            fake,
            weights=weights,
            device="cuda",
            precision=precision,
            cache=False,
            batch_size=BATCH,
            progress=False,
        )
        assert result.provenance["precision"] == precision
        fids[precision] = result["fid"]
        assert np.isfinite(pool3[precision]).all() and math.isfinite(fids[precision]), precision
    scale = float(np.abs(pool3["fp32"]).max())
    for precision in (p for p in NUMERICS if p != "fp32"):
        moved = float(np.abs(pool3[precision] - pool3["fp32"]).max()) / scale
        deviation = abs(fids[precision] - fids["fp32"]) / fids["fp32"]
        assert moved <= FEATURE_BOUND[precision], f"{precision}: pool3 moved by {moved:.3g} of the largest feature"
        assert deviation <= FID_BOUND[precision], f"{precision}: |ΔFID|/FID {deviation:.3g}"


def test_score_on_cuda_matches_the_cpu(cpu_score, cuda_score) -> None:
    assert str(cuda_score.provenance["device"]).startswith("cuda")
    assert_scores_close(cuda_score, cpu_score, REL_SCORE)
    assert len(cuda_score["swd_levels"]) == len(cpu_score["swd_levels"])


@pytest.mark.subprocess
def test_torchrun_with_one_gpu_equals_one_process(sets, weights, cuda_score, tmp_path: Path) -> None:
    """torchrun --nproc_per_node=1 --device cuda: the process takes cuda:LOCAL_RANK and prints the one result.
    With a world size of 1 ganeval joins no process group (see the NCCL test below for the collectives)."""
    real, fake = sets
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONWARNINGS": "ignore",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=1",
            "-m",
            "ganeval",
            "score",
            str(real),
            str(fake),
            "--metrics",
            ",".join(METRICS),
            "--weights",
            str(weights),
            "--device",
            "cuda",
            "--batch-size",
            str(BATCH),
            "--no-cache",
            "--json",
            "-q",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    together = json.loads(run.stdout)
    assert str(together["provenance"]["device"]).startswith("cuda:0")
    assert together["n_real"] == N and together["n_fake"] == N
    assert_scores_close(together, cuda_score, REL_SAME)


def test_nccl_collectives_in_a_group_of_one(sets, weights, cuda_score, generator, monkeypatch) -> None:
    """ganeval's process-group code (object gather/broadcast on rank 0) over NCCL. One GPU cannot hold two
    NCCL ranks, so this makes a group of one in this process and has ganeval treat it as a group."""
    real, _ = sets
    options = {
        "metrics": ("fid", "kid"),
        "num_samples": 20,
        "batch_size": BATCH,
        "weights": weights,
        "cache": False,
        "progress": False,
        "device": "cuda",
    }
    alone = Evaluator(real, **options).score(generator)
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", store=dist.HashStore(), rank=0, world_size=1)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(ganeval.distributed, "active", lambda: True)
            together = score(sets, weights, "cuda")
            grouped = Evaluator(real, **options).score(generator)
    finally:
        dist.destroy_process_group()
    assert together.provenance["world_size"] == 1 and "world_size" not in cuda_score.provenance
    assert_scores_close(together, cuda_score, REL_SAME)
    assert_scores_close(grouped, alone, REL_SAME)


def test_evaluator_on_cuda_matches_the_cpu_and_restores_rng_and_modes(sets, weights, generator) -> None:
    real, _ = sets
    options = {
        "metrics": ("fid", "kid"),
        "num_samples": 20,
        "batch_size": BATCH,
        "weights": weights,
        "cache": False,
        "progress": False,
    }
    # score() restores torch's RNG; building an Evaluator does not promise it (folding BatchNorm into new
    # nn.Conv2d layers draws their throwaway initialisation from torch's global RNG), so both are built first
    on_cpu_evaluator = Evaluator(real, device="cpu", **options)
    evaluator = Evaluator(real, device="cuda", **options)
    generator.train()
    cpu_rng = torch.get_rng_state()
    on_cpu = on_cpu_evaluator.score(generator)
    # the same CPU generator, its images copied to the GPU through pinned memory, non-blocking (device.to_device)
    on_cuda = evaluator.score(generator)
    assert torch.equal(torch.get_rng_state(), cpu_rng)
    assert all(module.training for module in generator.modules())
    assert str(on_cuda.provenance["device"]).startswith("cuda")
    assert_scores_close(on_cuda, on_cpu, REL_SCORE)

    # a generator on the GPU: latents drawn there from the seed; torch's CUDA RNG and the modes restored
    gpu_generator = copy.deepcopy(generator).to("cuda").train()
    cuda_rng = torch.cuda.get_rng_state()
    first = evaluator.score(gpu_generator)
    second = evaluator.score(gpu_generator)
    assert torch.equal(torch.cuda.get_rng_state(), cuda_rng)
    assert torch.equal(torch.get_rng_state(), cpu_rng)
    assert all(module.training for module in gpu_generator.modules())
    assert_scores_close(second, first, REL_SAME)
    assert math.isfinite(first["fid"])


def losses_of(run: Path) -> np.ndarray:
    with open(run / "log.csv", newline="") as handle:
        return np.array([[float(row["loss_d"]), float(row["loss_g"])] for row in csv.DictReader(handle)])


@pytest.mark.parametrize("model", ["dcgan", "wgan-gp"])
def test_training_on_cuda_checkpoints_and_resumes(model: str, tmp_path: Path) -> None:
    def quiet(line: str) -> None:
        pass

    settings = {
        "model": model,
        "data": "shapes",
        "size": 32,
        "width": 8,
        "batch_size": 8,
        "sample_every": 2,
        "device": "cuda",
    }
    whole = Trainer(TrainConfig(out=str(tmp_path / "whole"), steps=4, checkpoint_every=2, **settings), log=quiet).run()
    part = Trainer(TrainConfig(out=str(tmp_path / "part"), steps=2, checkpoint_every=2, **settings), log=quiet)
    assert next(part.generator.parameters()).is_cuda and next(part.discriminator.parameters()).is_cuda
    part.run()
    resumed = Trainer(TrainConfig(out=str(tmp_path / "part"), steps=4), resume=True, log=quiet)
    assert resumed.step == 2 and resumed.device.type == "cuda"
    run = resumed.run()
    assert [p.name for p in list_checkpoints(run)] == ["step_000002", "step_000004"]
    assert load_state(list_checkpoints(run)[-1])["cuda_rng"] is not None
    assert (run / "samples" / "step_000004.png").is_file()
    # cuDNN's backward kernels may add up in another order from run to run, so the losses of the resumed run
    # agree with the uninterrupted one's closely, not bit for bit; without the CUDA RNG restored the latents,
    # and so the losses, would differ by far more
    assert np.allclose(losses_of(run), losses_of(whole), rtol=1e-2, atol=1e-3)
    loaded, _ = load_generator(run, device="cuda")
    with torch.no_grad():
        images = loaded(torch.randn(4, 100, device="cuda"))
    assert images.is_cuda and images.shape == (4, 3, 32, 32) and torch.isfinite(images).all()


def test_diagnostics_on_cuda_equal_the_cpu() -> None:
    rng = np.random.default_rng(5)
    real = rng.normal(size=(300, 64))
    fake = rng.normal(size=(200, 64))
    fake[:10] = real[:10]  # exact copies
    fake[10:20] = real[10:20] + rng.normal(scale=1e-3, size=(10, 64))  # near copies
    fake[150:] = fake[20]  # a collapsed mode
    labels = rng.integers(0, 5, size=300)

    def run(device: str | None) -> dict[str, object]:
        knn = k_nearest(fake, real, 3, block_size=64, device=device)
        loo = nearest_neighbours(real, real, exclude_self=True, block_size=64, device=device)
        dup = duplicates(fake, real, seed=1, block_size=64, device=device)
        return {
            "knn": [array.tolist() for array in (*knn, *loo)],
            "authenticity": authenticity(real, fake, block_size=64, device=device).to_dict(arrays=True),
            "duplicates": dup.to_dict(),
            "support": support_size(fake, dup.threshold, seed=1, block_size=64, device=device).to_dict(),
            "coverage": class_coverage(real, labels, fake, k=5, block_size=64, device=device).to_dict(arrays=True),
            "prdc": dataclasses.asdict(precision_recall_density_coverage(real, fake, block_size=64, device=device)),
        }

    # indices, counts and decisions equal; distances to 1e-12 (they cross a device boundary)
    assert_json_close(run("cuda"), run(None))


def _seeded(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """Random weights of ``shapes``: N(0, 1/fan_in) matrices, norms 1 ± 0.1, small vectors."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("gamma") or ("ln" in key or "norm" in key) and key.endswith("weight"):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=generator)
        elif len(shape) >= 2:
            state[key] = torch.randn(shape, generator=generator) / math.prod(shape[1:]) ** 0.5
        else:
            state[key] = 0.1 * torch.randn(shape, generator=generator)
    return state


@pytest.mark.parametrize("space", ["dinov2", "clip-vit-b-32", "clip-vit-l-14-336"])
def test_dinov2_and_clip_on_cuda_match_the_cpu(space: str, tmp_path: Path) -> None:
    """The DINOv2 (ViT-S/14 layout) and CLIP (small towers in OpenAI's layout) extractors: fp32 CUDA features
    within REL_FEATURES of the CPU's, for images of mixed sizes through each protocol's preprocessing."""
    from ganeval.extractors.base import Batch
    from ganeval.extractors.build import build_extractor
    from ganeval.extractors.clip_network import VisionConfig, visual_keys
    from ganeval.extractors.dinov2_network import CONFIGS, expected_shapes
    from ganeval.options import Options

    if space == "dinov2":
        shapes = expected_shapes(CONFIGS["vits14"])
    else:
        patch, resolution = (32, 224) if space == "clip-vit-b-32" else (56, 336)
        shapes = visual_keys(VisionConfig(128, 2, patch, resolution, 64))
    path = tmp_path / f"{space}.pth"
    torch.save(_seeded(shapes, 3), path)
    images = [smooth_images(1, size, seed=size)[0][:, : size - 7] for size in (40, 64, 96)]
    batch = Batch(indices=[0, 1, 2], names=["a", "b", "c"], images=images)
    part = "cls" if space == "dinov2" else "embedding"
    features = {}
    for device in ("cpu", "cuda"):
        options = Options.build(features=space, features_weights=str(path), device=device)
        extractor = build_extractor(space, options, torch.device(device))
        stage = extractor.per_image({part: {}})
        prepared = Batch(batch.indices, batch.names, images=images)
        if stage is not None:
            prepared.prepared[space] = [stage(image) for image in images]
        features[device] = extractor.run(prepared, {part: {}})[part]
    scale = np.abs(features["cpu"]).max()
    assert np.abs(features["cuda"] - features["cpu"]).max() <= REL_FEATURES * scale
