"""``ganeval demo``: a newcomer's first run, end to end on a CPU in a few minutes.

Trains a small DCGAN and a WGAN-GP on Fashion-MNIST (``shapes`` when it is not installed), writes the
reference images and their statistics with the Inception network in use, scores every checkpoint into a
leaderboard with curves and an HTML report. Rerunning it continues where it stopped: finished training
runs are kept, the reference features come from the cache and scored checkpoints are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .api import statistics
from .atomic import atomic_write
from .datasets import dataset_images
from .errors import BadInputError
from .evaluator import Evaluator
from .images import png_bytes
from .leaderboard.scoring import LeaderboardRun, score_checkpoints
from .stats import save_statistics
from .train.trainer import TrainConfig, Trainer

METRICS = ("fid", "kid", "pr")


@dataclass
class DemoSettings:
    """Sizes of the demo. steps: DCGAN generator updates (WGAN-GP gets a quarter: it does 5 critic steps per
    update); checkpoints: per run; samples: images per checkpoint; reference_images: real images."""

    out: str = "ganeval-demo"
    data: str = "fashion-mnist"
    steps: int = 600
    checkpoints: int = 3
    samples: int = 250
    reference_images: int = 1000
    width: int = 32
    device: str | None = None
    progress: bool | None = None


def run_demo(settings: DemoSettings, log: Callable[[str], None]) -> LeaderboardRun:
    """Train, build the reference, score; returns the leaderboard (its paths are under ``settings.out``)."""
    out = Path(settings.out)
    data, size = _dataset(settings.data, log)
    runs = out / "runs"
    for model, steps in (("dcgan", settings.steps), ("wgan-gp", max(settings.checkpoints, settings.steps // 4))):
        every = max(1, steps // settings.checkpoints)
        config = TrainConfig(
            out=str(runs / model),
            model=model,
            data=data,
            size=size,
            width=settings.width,
            steps=steps,
            checkpoint_every=every,
            sample_every=every,
            device=settings.device,
        )
        resume = (runs / model / "config.json").exists()
        log(f"training {model} for {steps} steps ({'resuming ' + str(runs / model) if resume else runs / model})")
        Trainer(config, resume=resume, log=log).run()
    reference = _write_reference(data, size, settings.reference_images, out / "reference", log)
    evaluator = Evaluator(
        reference,
        METRICS,
        num_samples=settings.samples,
        device=settings.device,
        progress=settings.progress,
        kid_subset_size=min(1000, settings.samples),
    )
    stats = statistics(reference, device=settings.device, progress=settings.progress)
    save_statistics(stats, out / "reference_stats.npz")
    log(
        f"reference statistics: {out / 'reference_stats.npz'} ({stats.n} images, weights sha256 "
        f"{str(stats.meta.get('weights_sha256'))[:12]})"
    )
    return score_checkpoints(
        [runs], evaluator, out / "leaderboard.csv", plot=out / "curves.png", report=out / "report.html", log=log
    )


def _dataset(name: str, log: Callable[[str], None]) -> tuple[str, int]:
    if name == "fashion-mnist":
        try:
            dataset_images("fashion-mnist", 28, limit=2)
        except BadInputError as exc:
            log(f"Fashion-MNIST is not available ({exc}); using the procedural shapes instead")
            return "shapes", 32
        return "fashion-mnist", 28
    return name, 28 if name in ("mnist",) else 32


def _write_reference(data: str, size: int, count: int, folder: Path, log: Callable[[str], None]) -> Path:
    """The first ``count`` images of the dataset as PNGs (kept, so later runs and the user can reuse them)."""
    source = dataset_images(data, size, limit=count)
    os.makedirs(folder, exist_ok=True)
    for index in range(len(source)):
        path = folder / f"{index:05d}.png"
        if not path.exists():
            with atomic_write(path) as handle:
                handle.write(png_bytes(source.load(index)))
    log(f"reference: {len(source)} {data} images at {size} px in {folder}")
    return folder
