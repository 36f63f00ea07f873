"""One latent scheme: `ganeval sample`, the Evaluator and the leaderboard's grids draw image i of a generator
from the same latents (seed, batch size)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import ganeval
from ganeval.cli import cli


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ganeval.train.trainer import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("gen") / "run"
    Trainer(
        TrainConfig(
            out=str(out), data="shapes", size=32, width=8, batch_size=8, sample_every=0, steps=1, checkpoint_every=1
        ),
        log=lambda line: None,
    ).run()
    return out


def test_sample_draws_the_images_the_evaluator_scores(tiny_run: Path, image_dirs, tmp_path: Path) -> None:
    from ganeval.train.trainer import load_generator

    folder = tmp_path / "pngs"
    result = CliRunner().invoke(
        cli,
        ["sample", str(tiny_run), "-n", "6", "-o", str(folder), "--seed", "7", "--batch-size", "4", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    sampled = [np.asarray(Image.open(path).convert("RGB")) for path in sorted(folder.glob("*.png"))]
    real, _ = image_dirs
    ev = ganeval.Evaluator(real, ("fid",), seed=7, batch_size=4, num_samples=6, device="cpu", progress=False)
    scored = ev.images(load_generator(tiny_run, "cpu")[0], range(6))
    assert len(sampled) == 6
    for index, image in enumerate(sampled):
        assert np.abs(image.astype(int) - scored[index].astype(int)).max() <= 1, index
