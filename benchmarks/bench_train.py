#!/usr/bin/env python
"""Training speed of the reference GANs and the cost of periodic evaluation, on the procedural shapes data.

    python benchmarks/bench_train.py            # 30 steps per model, eval runs of 40 steps (~100 s, 2 cores)
    python benchmarks/bench_train.py --quick    # smoke run, tiny sizes, numbers meaningless
    python benchmarks/bench_train.py --device cuda   # [1] and [2] on the GPU only

Everything runs in one process through ``Trainer(TrainConfig(out=tmp, ..., checkpoint_every=0,
sample_every=0), log=...).run()`` on ``shapes`` at 32 px (drawn on the fly, nothing downloaded).

[1] Training speed: DCGAN (1 D step per step) and WGAN-GP (``n_critic`` = 5 critic steps per step), width
``--width`` (64, the paper width), batch ``--batch-size`` (64), for ``--warmup`` + ``--steps`` steps; the
first ``--warmup`` steps are left out. The time of a step is the trainer's own (column ``seconds`` of
``log.csv``: data, the D/critic updates and the G update, without the CSV write and the final checkpoint).

- ``s/step``, ``steps/s``: mean seconds of a measured step and its inverse;
- ``G img/s``: ``batch × steps/s``, fakes through the generator update;
- ``D real img/s``: ``batch × n_critic × steps/s``, real images consumed by D (each D step also sees as
  many fakes);
- ``data``: the share of a step spent drawing the ``n_critic`` real batches (shapes are rendered with PIL on
  the CPU, in the training thread), timed separately on batches the run did not use.

Repeated with ``device="cuda"`` when ``torch.cuda.is_available()``; otherwise a line says it was not. With
``--device D`` only D is measured, and [2] runs on D too (by default [2] runs on the CPU). The weights come
from ganeval's usual search (``$GANEVAL_INCEPTION_WEIGHTS`` first).

[2] Evaluation overhead: the same DCGAN run of ``--eval-steps`` steps (40), once without evaluation and once
with ``eval_every=K`` (``--eval-every``, 20) on ``E`` samples (``--eval-samples``, 100; FID only), both
timed as a whole ``run()`` (each includes its first, slower steps and one final checkpoint). ``vs no eval``
= (with − without) / without; for an evaluation row, its seconds / without. Each evaluation is timed on its
own: the first one also builds the ``Evaluator`` (Inception network, rendering and extracting the E reference
images, uncached: the run uses a temporary ``$GANEVAL_HOME`` whose ``weights/`` links to the real one), so it
costs about twice a later one.
The ``steady`` line is the overhead once the reference exists: later evaluation / (K × s/step).

How it scales: an evaluation costs about E / r seconds (r ≈ 10 Inception images/s on this 2-core CPU) and
happens every K steps, so the steady overhead ≈ (E / r) / (K × s/step), proportional to E / K; the first
evaluation adds E / r once more for the reference. E.g. E = 10,000 every K = 1,000 DCGAN steps of ~0.22 s:
~930 s of evaluation per ~220 s of training on this CPU (+420%); a GPU shrinks both sides.

``other load``: CPU used by other processes during a timing, in cores on average (``/proc/stat`` minus this
process); on 2 cores one busy neighbour slows 2-thread torch many times over, so before each timing the
benchmark waits up to ``--wait-quiet`` seconds (60) for a quiet machine, and ``!`` marks more than 0.15.

Tables go to stdout, notes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_foundation import cpu_model  # the CPU model and its vector extensions, as every benchmark prints

QUICK = {
    "steps": 2,
    "warmup": 1,
    "width": 8,
    "batch_size": 8,
    "eval_samples": 4,
    "eval_every": 2,
    "eval_steps": 4,
    "wait_quiet": 0,
}
DEFAULT = {
    "steps": 30,
    "warmup": 2,
    "width": 64,
    "batch_size": 64,
    "eval_samples": 100,
    "eval_every": 20,
    "eval_steps": 40,
    "wait_quiet": 60,
}


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Load:
    """Cores used by other processes between ``start()`` and ``stop()`` (None where /proc is missing)."""

    HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    @staticmethod
    def counters() -> tuple[int, int] | None:
        try:
            cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
            own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            return None
        busy = sum(cpu) - cpu[3] - cpu[4]  # all but idle and iowait (steal included)
        return busy, sum(int(v) for v in own[11:15])  # utime, stime, cutime, cstime

    def start(self) -> None:
        self.began, self.first = time.perf_counter(), self.counters()

    def stop(self) -> float | None:
        last, elapsed = self.counters(), time.perf_counter() - self.began
        if self.first is None or last is None or elapsed <= 0:
            return None
        return max(0.0, ((last[0] - self.first[0]) - (last[1] - self.first[1])) / self.HZ / elapsed)


def wait_quiet(seconds: float) -> None:
    """Wait until other processes use under 0.15 cores over one second, at most ``seconds``."""
    deadline, load = time.perf_counter() + seconds, Load()
    while time.perf_counter() < deadline:
        load.start()
        time.sleep(1.0)
        other = load.stop()
        if other is None or other < 0.15:
            return
    if seconds > 0:
        note(f"machine still busy after {seconds:.0f} s of waiting (other processes); timing anyway")


BUSY: list[float] = []  # other loads above 0.15 cores seen in a timing


def show_load(other: float | None) -> str:
    if other is not None and other > 0.15:
        BUSY.append(other)
    return "n/a" if other is None else f"{other:.2f}" + ("!" if other > 0.15 else "")


def make_trainer(out: Path, args: argparse.Namespace, model: str, steps: int, device: str, **extra):
    from ganeval.train.trainer import Trainer, TrainConfig

    config = TrainConfig(
        out=str(out),
        model=model,
        data="shapes",
        size=32,
        width=args.width,
        batch_size=args.batch_size,
        steps=steps,
        device=device,
        checkpoint_every=0,
        sample_every=0,
        **extra,
    )
    return Trainer(config, log=lambda line: None)


def step_seconds(out: Path) -> list[float]:
    with open(out / "log.csv", newline="") as handle:
        return [float(row["seconds"]) for row in csv.DictReader(handle)]


def data_seconds(trainer, batches: int) -> float:
    """Mean seconds to draw one real batch, on batches of another seed than the run's."""
    iterator = trainer.data.batches(trainer.settings["batch_size"], trainer.settings["seed"] + 1)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return (time.perf_counter() - start) / batches


def bench_speed(tmp: Path, args: argparse.Namespace, device: str) -> list[dict]:
    rows = []
    for model in ("dcgan", "wgan-gp"):
        out = tmp / f"speed-{model}-{device}"
        trainer = make_trainer(out, args, model, args.warmup + args.steps, device)
        n_critic = trainer.settings["n_critic"]
        note(f"[1] {trainer.describe()}: {args.warmup} warm-up + {args.steps} steps")
        wait_quiet(args.wait_quiet)
        load = Load()
        load.start()
        start = time.perf_counter()
        trainer.run()
        wall = time.perf_counter() - start
        other = load.stop()
        seconds = step_seconds(out)[args.warmup :]
        per_step = sum(seconds) / len(seconds)
        data = data_seconds(trainer, n_critic * min(args.steps, 4)) * n_critic
        note(f"    run() {wall:.1f} s in all; step {per_step:.3f} s, data {data:.3f} s of it")
        rows.append(
            {"model": model, "device": device, "n_critic": n_critic, "per_step": per_step, "data": data, "other": other}
        )
    return rows


def print_speed(rows: list[dict], args: argparse.Namespace) -> None:
    print(
        f"{'model':<8} {'device':<6} {'n_critic':>8} {'s/step':>7} {'steps/s':>8} {'G img/s':>8} "
        f"{'D real img/s':>12} {'data':>6} {'other load':>10}"
    )
    for row in rows:
        rate = 1.0 / row["per_step"]
        print(
            f"{row['model']:<8} {row['device']:<6} {row['n_critic']:>8} {row['per_step']:>7.3f} {rate:>8.2f} "
            f"{args.batch_size * rate:>8.1f} {args.batch_size * row['n_critic'] * rate:>12.1f} "
            f"{row['data'] / row['per_step']:>6.0%} {show_load(row['other']):>10}"
        )


def bench_eval(tmp: Path, args: argparse.Namespace, device: str = "cpu") -> None:
    from ganeval.extractors.inception import Extractor

    note("[2] building the Inception network once before timing (weights resolved/converted outside the timing)")
    Extractor(device=device).model  # noqa: B018

    out = tmp / "eval-off"
    trainer = make_trainer(out, args, "dcgan", args.eval_steps, device)
    note(f"[2] dcgan, {args.eval_steps} steps, no evaluation")
    wait_quiet(args.wait_quiet)
    load = Load()
    load.start()
    start = time.perf_counter()
    trainer.run()
    without = time.perf_counter() - start
    other_without = load.stop()
    per_step = sum(step_seconds(out)[args.warmup :]) / max(1, args.eval_steps - args.warmup)

    trainer = make_trainer(
        tmp / "eval-on",
        args,
        "dcgan",
        args.eval_steps,
        device,
        eval_every=args.eval_every,
        eval_samples=args.eval_samples,
        eval_metrics=["fid"],
    )
    evaluations: list[float] = []
    evaluate = trainer._evaluate

    def timed_evaluate() -> bool:
        begun = time.perf_counter()
        try:
            return evaluate()
        finally:
            evaluations.append(time.perf_counter() - begun)
            note(f"    evaluation at step {trainer.step}: {evaluations[-1]:.1f} s")

    trainer._evaluate = timed_evaluate
    note(f"[2] dcgan, {args.eval_steps} steps, eval every {args.eval_every} steps on {args.eval_samples} samples")
    wait_quiet(args.wait_quiet)
    load.start()
    start = time.perf_counter()
    trainer.run()
    with_eval = time.perf_counter() - start
    other_with = load.stop()

    steps = args.eval_steps
    print(
        f"\n[2] periodic evaluation: dcgan, {steps} steps, eval_every={args.eval_every}, "
        f"eval_samples={args.eval_samples} (fid), {device}; {len(evaluations)} evaluation(s)"
    )
    print(f"{'run':<40} {'seconds':>8} {'s/step':>7} {'vs no eval':>10} {'other load':>10}")
    print(
        f"{'run() without evaluation':<40} {without:>8.2f} {without / steps:>7.3f} {'':>10} "
        f"{show_load(other_without):>10}"
    )
    print(
        f"{'run() with evaluation':<40} {with_eval:>8.2f} {with_eval / steps:>7.3f} "
        f"{(with_eval - without) / without:>+10.0%} {show_load(other_with):>10}"
    )
    if evaluations:
        print(
            f"{'  first evaluation (builds the reference)':<40} {evaluations[0]:>8.2f} {'':>7} "
            f"{evaluations[0] / without:>+10.0%}"
        )
    later = evaluations[1:]
    if later:
        mean = sum(later) / len(later)
        label = f"  later evaluation (mean of {len(later)})"
        print(f"{label:<40} {mean:>8.2f} {'':>7} {mean / without:>+10.0%}")
        print(
            f"steady: later evaluation / (eval_every × s/step) = {mean:.2f} / ({args.eval_every} × "
            f"{per_step:.3f}) = {mean / (args.eval_every * per_step):+.0%} "
            f"({mean / args.eval_samples * 1000:.0f} ms per evaluated image)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="measured steps per model in [1] (default 30)")
    parser.add_argument("--warmup", type=int, help="warm-up steps left out of [1] (default 2)")
    parser.add_argument("--width", type=int, help="network width (default 64, the paper width)")
    parser.add_argument("--batch-size", type=int, help="batch size (default 64)")
    parser.add_argument("--eval-samples", type=int, help="samples per evaluation in [2] (default 100)")
    parser.add_argument("--eval-every", type=int, help="steps between evaluations in [2] (default 20)")
    parser.add_argument("--eval-steps", type=int, help="steps of each run in [2] (default 40)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        help="seconds to wait for a quiet machine before each timing (default 60, 0 with --quick)",
    )
    parser.add_argument(
        "--device",
        help="measure [1] and run [2] on this device only, e.g. cuda (default: [1] on "
        "the CPU and, when available, on CUDA; [2] on the CPU)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes everywhere (smoke run)")
    args = parser.parse_args()
    for key, value in (QUICK if args.quick else DEFAULT).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.steps < 1 or args.warmup < 0 or args.eval_steps <= args.warmup:
        parser.error("need --steps ≥ 1, --warmup ≥ 0 and --eval-steps > --warmup")

    import ganeval
    from ganeval.paths import ganeval_home

    began = time.perf_counter()
    print(
        f"ganeval {ganeval.__version__} · torch {torch.__version__} ({torch.get_num_threads()} threads) · "
        f"{cpu_model()} · {time.strftime('%Y-%m-%d')} · shapes 32 px, width {args.width}, batch {args.batch_size}"
    )
    with tempfile.TemporaryDirectory(prefix="ganeval-bench-train-") as name:
        tmp = Path(name)
        home = tmp / "home"
        home.mkdir()
        real_weights = ganeval_home() / "weights"
        if real_weights.is_dir():
            (home / "weights").symlink_to(real_weights.resolve(), target_is_directory=True)
        os.environ["GANEVAL_HOME"] = str(home)  # reference features uncached, and the user's cache untouched

        cuda = torch.cuda.is_available()
        devices = [args.device] if args.device else ["cpu", *(["cuda"] if cuda else [])]
        rows = [row for device in devices for row in bench_speed(tmp, args, device)]
        print(
            f"\n[1] training speed: {args.steps} steps after {args.warmup} warm-up, trainer's step time "
            f"(log.csv), data = share drawing the real batches"
        )
        print_speed(rows, args)
        if not args.device and not cuda:
            print("GPU rows not measured (no CUDA device: torch.cuda.is_available() is False)")

        bench_eval(tmp, args, args.device or "cpu")
    if BUSY:
        print(
            f"\nwarning: other processes used up to {max(BUSY):.2f} cores during the timings marked !; "
            f"those numbers are unreliable (run again on a quiet machine)"
        )
    note(f"total benchmark time: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
