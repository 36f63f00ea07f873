"""benchmarks/gpu_check.py without a GPU: its dry run prints and skips every step, checks that each step's
command would start (pytest collects the CUDA tests, the benchmarks accept every option passed), prints the
summary and writes $OUT/gpu_check.txt; without CUDA and without --dry-run it exits 2 with one line. Its seeded
random weights load through ganeval and give finite, unit-scale features."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import smooth_images

from ganeval.extractors.inception import Extractor
from ganeval.weights import locate_weights

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
STEPS = ["environment", "cuda tests", "speed benchmark", "vit benchmark", "training benchmark"]


def gpu_check(*args: str, out: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "OUT"}
    if out is not None:
        env["OUT"] = str(out)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


@pytest.mark.subprocess
@pytest.mark.slow
def test_dry_run_skips_every_step_prints_the_summary_and_writes_out(tmp_path: Path) -> None:
    run = gpu_check("--dry-run", out=tmp_path / "out")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    for number, step in enumerate(STEPS, 1):
        assert f"--- [{number}/{len(STEPS)}] {step}: skipped (dry run)" in lines
    assert "$ python -m pytest -m cuda -q -p no:cacheprovider" in run.stdout
    assert "tests/test_cuda.py" in run.stdout and "CUDA tests collected" in run.stdout
    assert "$ python benchmarks/bench_speed.py --device cuda --precisions fp32,tf32,bf16,fp16" in run.stdout
    assert "$ python benchmarks/bench_train.py --device cuda" in run.stdout
    assert "$ python benchmarks/bench_vit.py --device cuda --precisions fp32,tf32,bf16,fp16" in run.stdout
    summary = lines[lines.index("=== summary") :]
    assert all(any(step in line and "skipped (dry run)" in line for line in summary) for step in STEPS)
    assert summary[-1] == "gpu_check: dry run, nothing measured"
    assert (tmp_path / "out" / "gpu_check.txt").read_text(encoding="utf-8") == run.stdout


@pytest.mark.subprocess
@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here: the check would run")
def test_without_cuda_it_exits_2_with_one_line(tmp_path: Path) -> None:
    run = gpu_check(out=tmp_path)
    assert run.returncode == 2
    output = (run.stdout + run.stderr).strip().splitlines()
    assert len(output) == 1 and "needs a CUDA device" in output[0], output
    assert not (tmp_path / "gpu_check.txt").exists()


def load_gpu_check():
    """benchmarks/gpu_check.py as a module (registered first: its dataclasses look themselves up there)."""
    if "gpu_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_check"] = module
        spec.loader.exec_module(module)
    return sys.modules["gpu_check"]


def test_random_weights_load_and_give_unit_scale_features(tmp_path: Path) -> None:
    path = load_gpu_check().random_inception_weights(tmp_path / "random.pth")
    info = locate_weights(path)
    assert info.has_classifier and not info.standard
    pool3, logits = Extractor(weights=path, device="cpu", batch_size=2).forward(list(smooth_images(2, 32, seed=1)))
    assert np.isfinite(pool3).all() and np.isfinite(logits).all()
    assert 0.1 < np.abs(pool3).max() < 1000 and pool3.std() > 0.01  # neither vanished nor exploded


def test_a_module_importing_a_missing_package_is_found_out(tmp_path: Path) -> None:
    """gpu_check leaves such a CUDA test module out (with a note) instead of failing on its collection error,
    e.g. one that imports a peer, which the GPU machine lacks."""
    module = tmp_path / "test_example.py"
    module.write_text(
        "import os\nimport surely_not_installed_xyz.sub\nfrom conftest import smooth_images\n"
        "from ganeval import fid\ntry:\n    import also_not_installed_xyz\nexcept ImportError:\n"
        "    pass\n\n\ndef test_nothing():\n    import not_at_module_level_xyz\n"
    )
    assert load_gpu_check().missing_imports(module) == ["surely_not_installed_xyz"]
