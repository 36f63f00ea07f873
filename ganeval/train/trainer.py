"""The training loop of the reference GANs: D (or the critic) ``n_critic`` times, then G, per step.

Everything random comes from ``seed``: the weights (initialised under a fork of torch's RNG seeded with
it), the data order (``TrainingData.batches``, a pure function of seed and batch index) and the latents
and penalty samples (torch's global RNG, seeded at start and saved in every checkpoint). So a run resumed
from step k continues exactly as the uninterrupted run would have.

Run folder: ``config.json`` (the settings), ``log.csv`` (one row per step), ``samples/step_*.png`` (a grid
from fixed latents), ``evals.csv`` (periodic FID/KID through ``ganeval.Evaluator``), ``checkpoints/`` and,
when the tensorboard package is installed, ``tensorboard/`` with the same numbers.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write
from ..device import resolve_device
from ..errors import BadInputError
from ..images import png_bytes, tile
from . import losses
from .checkpoint import list_checkpoints, load_state, load_weights, read_meta, save_checkpoint
from .data import TrainingData, open_dataset
from .models import DCGANDiscriminator, DCGANGenerator, wgan_critic

MODEL_LOSS = {"dcgan": "ns", "wgan": "wgan", "wgan-gp": "wgan-gp"}
DEFAULT_STEPS = 2000
LOG_COLUMNS = (
    "step",
    "loss_d",
    "loss_g",
    "d_real_accuracy",
    "d_fake_accuracy",
    "grad_norm_d",
    "grad_norm_g",
    "wasserstein",
    "seconds",
)


@dataclass
class TrainConfig:
    """Settings of one run; None means the loss's paper default (printed at start)."""

    out: str
    model: str = "dcgan"
    loss: str | None = None
    data: str = "shapes"
    size: int = 32
    channels: int | None = None
    width: int = 64
    z_dim: int = 100
    batch_size: int = 64
    steps: int | None = None  # None: 2000 for a new run; a resumed run keeps its own (or extends to this)
    seed: int = 0
    lr_g: float | None = None
    lr_d: float | None = None
    n_critic: int | None = None
    spectral_norm: bool = False
    label_smoothing: float = 0.0
    instance_noise: float = 0.0
    checkpoint_every: int = 500
    sample_every: int = 500
    eval_every: int = 0
    eval_samples: int = 5000
    eval_metrics: list[str] = field(default_factory=lambda: ["fid"])
    early_stop: int = 0
    device: str | None = None
    data_root: str | None = None

    def resolved(self) -> dict[str, Any]:
        """The settings with every default filled in from the loss's paper values."""
        if self.model not in MODEL_LOSS:
            raise BadInputError(f"unknown model {self.model!r}; choose from {', '.join(MODEL_LOSS)}")
        loss = self.loss or MODEL_LOSS[self.model]
        if loss not in losses.LOSSES:
            raise BadInputError(f"unknown loss {loss!r}; choose from {', '.join(losses.LOSSES)}")
        spec = losses.LOSSES[loss]
        values = dataclasses.asdict(self)
        values.update(
            loss=loss,
            lr_g=self.lr_g or spec.lr_g,
            lr_d=self.lr_d or spec.lr_d,
            n_critic=self.n_critic or spec.n_critic,
            steps=self.steps or DEFAULT_STEPS,
        )
        return values


class Trainer:
    """One run: build or resume, then ``run()``. ``log`` receives progress lines (default: stderr)."""

    def __init__(self, config: TrainConfig, resume: bool = False, log: Callable[[str], None] | None = None) -> None:
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.out = Path(config.out)
        if resume:
            try:
                saved = json.loads((self.out / "config.json").read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise BadInputError(f"{self.out}: not a run folder to resume (config.json: {exc})") from None
            saved["steps"] = max(config.steps, int(saved["steps"])) if config.steps else saved["steps"]
            saved["device"] = config.device or saved.get("device")
            known = {f.name for f in dataclasses.fields(TrainConfig)}
            config = TrainConfig(**{k: v for k, v in saved.items() if k in known})
        elif (self.out / "config.json").exists():
            raise BadInputError(f"{self.out} already holds a run; resume it with --resume, or choose another --out")
        self.settings = config.resolved()
        config.steps = self.settings["steps"]
        self.config = config
        self.spec = losses.LOSSES[self.settings["loss"]]
        self.device = resolve_device(config.device)
        self.data: TrainingData = open_dataset(
            config.data, config.size, config.channels, seed=config.seed, root=config.data_root
        )
        channels = self.data.channels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.generator = DCGANGenerator(config.size, channels, config.z_dim, config.width).to(self.device)
            if config.model == "dcgan":
                self.discriminator: torch.nn.Module = DCGANDiscriminator(
                    config.size, channels, config.width, spectral_norm=config.spectral_norm
                )
            else:
                self.discriminator = wgan_critic(
                    config.size,
                    channels,
                    config.width,
                    gradient_penalty=config.model == "wgan-gp",
                    spectral_norm=config.spectral_norm,
                )
            self.discriminator.to(self.device)
            self.fixed_latents = torch.randn(64, config.z_dim)
        self.opt_g, self.opt_d = self._optimisers()
        self.step = 0
        self.best_fid = math.inf
        self.evals_without_improvement = 0
        torch.manual_seed(config.seed)  # the latents and penalty samples (CPU, and CUDA when training there)
        if resume:
            self._resume()
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            with atomic_write(self.out / "config.json") as handle:
                handle.write(json.dumps(dataclasses.asdict(config), indent=2).encode())
        self.evaluator: Any = None
        self.board: Any = None

    def _optimisers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        s = self.settings
        optimiser = getattr(torch.optim, self.spec.optimizer)  # "Adam" or "RMSprop"
        extra = {"betas": self.spec.betas} if optimiser is torch.optim.Adam else {}
        return (
            optimiser(self.generator.parameters(), lr=s["lr_g"], **extra),
            optimiser(self.discriminator.parameters(), lr=s["lr_d"], **extra),
        )

    def _resume(self) -> None:
        found = list_checkpoints(self.out)
        if not found:
            self.log(f"{self.out}: no complete checkpoint yet; starting from step 0")
            _truncate_csv(self.out / "log.csv", 0)
            _truncate_csv(self.out / "evals.csv", 0)
            return
        folder = found[-1]
        load_weights(self.generator, folder / "generator.safetensors")
        load_weights(self.discriminator, folder / "discriminator.safetensors")
        state = load_state(folder)
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        torch.set_rng_state(state["rng"])
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.step = int(state["step"])
        self.best_fid = float(state.get("best_fid", math.inf))
        self.evals_without_improvement = int(state.get("evals_without_improvement", 0))
        _truncate_csv(self.out / "log.csv", self.step)
        _truncate_csv(self.out / "evals.csv", self.step)
        self.log(f"resumed {self.out} from {folder.name} (step {self.step})")

    def describe(self) -> str:
        s = self.settings
        return (
            f"{s['model']} on {self.data.name} ({len(self.data)} images, {s['size']} px, {self.data.channels} "
            f"channel(s)); loss {losses.describe(self.spec)}; used: lr_g={s['lr_g']:g} lr_d={s['lr_d']:g} "
            f"n_critic={s['n_critic']} batch {s['batch_size']}, seed {s['seed']}, device {self.device}"
        )

    def run(self) -> Path:
        """Train up to ``steps``; returns the run folder."""
        s = self.settings
        self.log(self.describe())
        batches = self.data.batches(s["batch_size"], s["seed"], start_step=self.step * s["n_critic"])
        log_file = self.out / "log.csv"
        new_log = not log_file.exists()
        self.board = _tensorboard(self.out / "tensorboard")
        try:
            with open(log_file, "a", newline="") as handle:
                writer = csv.writer(handle)
                if new_log:
                    writer.writerow(LOG_COLUMNS)
                while self.step < s["steps"]:
                    started = time.perf_counter()
                    row = self._train_step(batches)
                    self.step += 1
                    writer.writerow([self.step, *(_format(v) for v in row), f"{time.perf_counter() - started:.4f}"])
                    handle.flush()
                    self._board({name: value for name, value in zip(LOG_COLUMNS[1:], row) if value is not None})
                    if self._periodic():
                        self.log(
                            f"early stop at step {self.step}: FID has not improved for {s['early_stop']} evaluations"
                        )
                        break
        finally:
            if self.board is not None:
                self.board.close()
        return self.out

    def _board(self, values: dict[str, object]) -> None:
        if self.board is not None:
            for name, value in values.items():
                if isinstance(value, float):
                    self.board.add_scalar(name, value, self.step)

    def _train_step(self, batches: Any) -> list[float | None]:
        s, spec = self.settings, self.spec
        G, D = self.generator, self.discriminator
        G.train()
        D.train()
        for _ in range(s["n_critic"]):
            real = next(batches).to(self.device)
            with torch.no_grad():
                fake = G(torch.randn(len(real), s["z_dim"], device=self.device))
            real_in = losses.instance_noise(real, s["instance_noise"])
            fake_in = losses.instance_noise(fake, s["instance_noise"])
            d_real, d_fake = D(real_in), D(fake_in)
            if spec.name in ("ns", "minimax"):
                loss_d = spec.d_loss(d_real, d_fake, real_label=1.0 - s["label_smoothing"])
            else:
                loss_d = spec.d_loss(d_real, d_fake)
            if spec.gp_weight:
                loss_d = loss_d + spec.gp_weight * losses.gradient_penalty(D, real_in, fake_in)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            grad_d = _grad_norm(D)
            self.opt_d.step()
            if spec.clip:
                losses.clip_weights(D, spec.clip)
        fake = G(torch.randn(s["batch_size"], s["z_dim"], device=self.device))
        loss_g = spec.g_loss(D(losses.instance_noise(fake, s["instance_noise"])))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        grad_g = _grad_norm(G)
        self.opt_g.step()
        wasserstein = losses.wasserstein_estimate(d_real, d_fake) if spec.name.startswith("wgan") else None
        threshold = 0.0  # logits (NS, minimax, hinge) and critics: the sign; LSGAN targets 0/1: the midpoint
        if spec.name == "lsgan":
            threshold = 0.5
        return [
            float(loss_d.detach()),
            float(loss_g.detach()),
            float((d_real.detach() > threshold).float().mean()),
            float((d_fake.detach() <= threshold).float().mean()),
            grad_d,
            grad_g,
            wasserstein,
        ]

    def _periodic(self) -> bool:
        s = self.settings
        last = self.step == s["steps"]
        if s["sample_every"] and (self.step % s["sample_every"] == 0 or last):
            self.save_samples()
        stop = False
        if s["eval_every"] and (self.step % s["eval_every"] == 0 or last):
            stop = self._evaluate()
        if (s["checkpoint_every"] and self.step % s["checkpoint_every"] == 0) or last or stop:
            self.save()
        return stop

    def save_samples(self) -> Path:
        with torch.no_grad():
            was_training = self.generator.training
            self.generator.eval()
            images = self.generator(self.fixed_latents.to(self.device))
            self.generator.train(was_training)
        path = self.out / "samples" / f"step_{self.step:06d}.png"
        save_grid(images, path)
        return path

    def _evaluate(self) -> bool:
        from ..evaluator import Evaluator

        s = self.settings
        if self.evaluator is None:
            reference = np.stack([self.data.uint8(i) for i in range(min(len(self.data), s["eval_samples"]))])
            self.evaluator = Evaluator(
                reference,
                metrics=s["eval_metrics"],
                num_samples=s["eval_samples"],
                device=self.device,
                seed=s["seed"],
                progress=False,
            )
        result = self.evaluator.score(self.generator)
        path = self.out / "evals.csv"
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["step", *result.keys()])
            writer.writerow([self.step, *(_format(v) for v in result.values())])
        self._board({f"eval/{key}": value for key, value in result.items()})
        self.log(f"step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.items() if isinstance(v, float)))
        if "fid" not in result or not s["early_stop"]:
            return False
        if result["fid"] < self.best_fid:
            self.best_fid, self.evals_without_improvement = result["fid"], 0
            return False
        self.evals_without_improvement += 1
        return self.evals_without_improvement >= s["early_stop"]

    def save(self) -> Path:
        s = self.settings
        meta = {
            "model": s["model"],
            "loss": s["loss"],
            "data": self.data.describe(),
            "seed": s["seed"],
            "generator": {"size": s["size"], "channels": self.data.channels, "z_dim": s["z_dim"], "width": s["width"]},
            "discriminator": {"model": s["model"], "spectral_norm": s["spectral_norm"]},
            "settings": s,
        }
        state = {
            "step": self.step,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": torch.get_rng_state(),
            "best_fid": self.best_fid,
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "evals_without_improvement": self.evals_without_improvement,
        }
        return save_checkpoint(self.out, self.step, self.generator, self.discriminator, meta, state)


def load_generator(
    folder: str | os.PathLike[str], device: str | torch.device | None = None
) -> tuple[DCGANGenerator, dict[str, Any]]:
    """The generator of a checkpoint folder (or of a run folder: its latest checkpoint), in eval mode."""
    folder = Path(folder)
    if not (folder / "checkpoint.json").exists() and list_checkpoints(folder):
        folder = list_checkpoints(folder)[-1]
    meta = read_meta(folder)
    g = meta.get("generator") or {}
    try:
        generator = DCGANGenerator(int(g["size"]), int(g["channels"]), int(g["z_dim"]), int(g["width"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"{folder}/checkpoint.json: bad generator description ({exc})") from None
    load_weights(generator, folder / "generator.safetensors")
    return generator.to(resolve_device(device)).eval(), meta


def _pixels(images: torch.Tensor) -> np.ndarray:
    """tanh images (B, C, H, W) in [-1, 1] → uint8 (B, H, W, C), quantised as save_image does."""
    from ..batches import quantise

    return quantise(images.detach().cpu(), (-1.0, 1.0)).permute(0, 2, 3, 1).numpy()


def _write_png(array: np.ndarray, path: str | os.PathLike[str]) -> None:
    with atomic_write(path) as handle:
        handle.write(png_bytes(array))


def save_pngs(images: torch.Tensor, folder: str | os.PathLike[str]) -> Path:
    """One PNG per tanh image (B, C, H, W), named 000000.png, 000001.png, …, each written atomically."""
    for index, image in enumerate(_pixels(images)):
        _write_png(image, Path(folder) / f"{index:06d}.png")
    return Path(folder)


def save_grid(images: torch.Tensor, path: str | os.PathLike[str], columns: int | None = None) -> Path:
    """A PNG grid of tanh images (B, C, H, W) in [-1, 1], 2-px gaps, written atomically."""
    _write_png(tile(_pixels(images), columns), path)
    return Path(path)


def _tensorboard(folder: Path) -> Any:
    """A TensorBoard SummaryWriter on ``folder`` when the tensorboard package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(folder))


def _grad_norm(module: torch.nn.Module) -> float:
    norms = [p.grad.detach().norm() for p in module.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def _format(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _truncate_csv(path: Path, step: int) -> None:
    """Keep the header and the rows of steps ≤ ``step`` (a resumed run rewrites the rest), atomically."""
    if not path.exists():
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    kept = rows[:1] + [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) <= step]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(kept)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue().encode())
