#!/usr/bin/env python
"""Foundation benchmark for ganeval: extraction throughput against pytorch-fid and torch-fidelity, the
FID formula against the sqrtm/eigvals formulas, and memory while extracting. Everything in one run, on
this machine, with the same weights for every tool.

    python benchmarks/bench_foundation.py            # default run (a few minutes on 2 CPU cores)
    python benchmarks/bench_foundation.py --quick    # smoke run with tiny sizes
    python benchmarks/bench_foundation.py --skip-peers --n 128 --batch-size 64

Tables go to stdout, progress and notes to stderr. See benchmarks/README.md for what each line means.
Network access is blocked inside this process (and its DataLoader workers), so nothing is downloaded:
the peers load a weights file built here from ganeval's own trunk plus a seeded random classifier.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

PYTORCH_FID_FILENAME = "pt_inception-2015-12-05-6726825d.pth"  # the name pytorch-fid looks for in torch hub
FC_SEED = 2015
IMAGE_SEED = 7
STATS_SEED = 11
MIB = 1024.0 * 1024.0


# --- small helpers -----------------------------------------------------------------------------


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def block_network() -> None:
    """Internet sockets refuse to connect and names do not resolve (Unix sockets still work)."""
    original_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"network access is blocked in this benchmark ({address})")
        return original_connect(self, address)

    def guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
        raise OSError(f"network access is blocked in this benchmark (lookup of {host})")

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo  # type: ignore[assignment]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_model() -> str:
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown CPU":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        model = platform.processor() or model
    extensions = [
        name for name, flag in (("AVX2", "avx2"), ("AVX-512", "avx512f"), ("AMX", "amx_tile")) if flag in flags
    ]
    return f"{model} ({', '.join(extensions) or 'no AVX2'})"


def best_of(repeats: int, fn):
    """(best seconds, last result) over ``repeats`` calls."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right or set()
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule, *(fmt(r) for r in rows)])


def emit(text: str = "") -> None:
    print(text, flush=True)


class OtherLoad:
    """CPU time used by everything except this process and its (reaped) children while the block runs,
    in cores on average, from /proc/stat and os.times(). On 2 cores a little foreign load slows
    multi-threaded torch/BLAS code far more than its share (threads wait on each other), so every section
    reports it."""

    WARN_CORES = 0.15

    def __init__(self) -> None:
        self.cores: float | None = None
        self.steal: float | None = None

    @staticmethod
    def _sample() -> tuple[float, float, float, float] | None:
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                values = [int(v) for v in handle.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        user, nice, system, _idle, _iowait, irq, softirq, steal = values
        times = os.times()
        own = times.user + times.system + times.children_user + times.children_system
        return time.perf_counter(), (user + nice + system + irq + softirq) / ticks, steal / ticks, own

    def __enter__(self) -> "OtherLoad":
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        if self._start is None or end is None or end[0] <= self._start[0]:
            return
        wall = end[0] - self._start[0]
        self.cores = max(0.0, (end[1] - self._start[1]) - (end[3] - self._start[3])) / wall
        self.steal = (end[2] - self._start[2]) / wall

    @property
    def busy(self) -> bool:
        return self.cores is not None and self.cores + (self.steal or 0.0) > self.WARN_CORES

    def short(self) -> str:
        if self.cores is None:
            return "?"
        return f"{self.cores + (self.steal or 0.0):.2f}" + (" !" if self.busy else "")


def load_legend(loads: list[OtherLoad]) -> str:
    text = (
        f"other load: cores used by other processes during each measurement (from /proc/stat); "
        f"! marks more than {OtherLoad.WARN_CORES}"
    )
    if any(load.busy for load in loads):
        text += ".  WARNING: some timings were disturbed by other work; rerun on a quiet machine"
    return text


QUIET = {"wait": 0.0, "retries": 0}  # set from --wait-quiet / --retries


def wait_quiet(max_wait: float) -> None:
    """Wait (up to ``max_wait`` s) until other processes use under OtherLoad.WARN_CORES for 2 s in a row."""
    deadline = time.monotonic() + max_wait
    quiet_for = 0
    warned = False
    while time.monotonic() < deadline and quiet_for < 2:
        with OtherLoad() as probe:
            time.sleep(1.0)
        if probe.busy:
            quiet_for = 0
            if not warned:
                note(f"other processes are using {probe.short()} cores; waiting up to {max_wait:.0f} s for quiet ...")
                warned = True
        else:
            quiet_for += 1


def measured(fn, repeats: int = 1):
    """(best seconds, result, OtherLoad) of ``fn`` over ``repeats`` calls, after waiting for a quiet
    machine; measured again (up to --retries times) when other processes were busy meanwhile."""
    attempt = 0
    while True:
        if QUIET["wait"] > 0:
            wait_quiet(QUIET["wait"])
        with OtherLoad() as load:
            seconds, result = best_of(repeats, fn)
        if not load.busy or attempt >= QUIET["retries"]:
            return seconds, result, load
        attempt += 1
        note(f"other processes used {load.short()} cores during the measurement; measuring again")


# --- generated inputs ----------------------------------------------------------------------------


def write_png_folder(folder: Path, count: int, size: int, seed: int) -> Path:
    """``count`` smooth random RGB PNGs of ``size``×``size`` (coarse noise upsampled, plus fine noise), so
    that they compress and decode like generated images rather than like pure noise."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    coarse = max(2, size // 8)
    for index in range(count):
        base = rng.integers(0, 256, (coarse, coarse, 3), dtype=np.uint8)
        image = np.asarray(Image.fromarray(base).resize((size, size), Image.BICUBIC), dtype=np.int16)
        image = np.clip(image + rng.integers(-12, 13, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"img_{index:05d}.png")
    return folder


def tensor_digest(state: dict) -> tuple[int, str]:
    """(count, digest) of a model's trunk tensors as a multiset of (shape, bytes): independent of the key
    names, which differ between the tools. Classifier and BatchNorm counters are left out."""
    hashes = []
    for key, value in state.items():
        if key.startswith("fc.") or ".fc." in key or key.endswith("num_batches_tracked"):
            continue
        data = value.detach().to("cpu").contiguous().float().numpy()
        hashes.append(hashlib.sha256(repr(tuple(data.shape)).encode() + data.tobytes()).hexdigest())
    return len(hashes), hashlib.sha256("".join(sorted(hashes)).encode()).hexdigest()


# --- section 1: extraction throughput -------------------------------------------------------------


class Tool:
    """One extractor: name, how it runs, its warm-up and its end-to-end extraction of a folder."""

    name = ""
    parallelism = ""

    def warm_up(self) -> None:
        raise NotImplementedError

    def extract(self, folder: Path) -> np.ndarray:
        """pool3 features (N, 2048) of the folder, plus the mean/covariance each tool computes."""
        raise NotImplementedError

    def state(self) -> dict:
        raise NotImplementedError


class GanevalTool(Tool):
    def __init__(self, batch_size: int, device: str = "cpu", precision: str = "fp32") -> None:
        import ganeval
        from ganeval.extractors.inception import Extractor

        self.extractor = Extractor(device=device, batch_size=batch_size, precision=precision)
        self.batch_size = batch_size
        self.name = f"ganeval {ganeval.__version__} (tf" + ("" if precision == "fp32" else f", {precision}") + ")"
        self.parallelism = f"{self.extractor.workers} decode threads"
        self.network_seconds: float | None = None

    def warm_up(self) -> None:
        import torch

        images = [np.full((32, 32, 3), 127, np.uint8)] * self.batch_size
        self.extractor.forward(images)  # builds the network, first oneDNN primitives
        # network only, on an already preprocessed batch, through the extractor's own forward (its chunking
        # and precision; the features come back to the host): the bound for end-to-end throughput
        x = self.extractor.preprocess(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)).contiguous()
        start = time.perf_counter()
        self.extractor._run(x)
        self.network_seconds = time.perf_counter() - start

    def extract(self, folder: Path) -> np.ndarray:
        from ganeval.sources import open_source

        features = self.extractor.extract(open_source(folder), progress=False)
        return features.pool3

    def state(self) -> dict:
        # the weights as loaded, before the extractor folds BatchNorm into its convolutions for speed
        from ganeval.weights import load_state_dict

        return dict(load_state_dict(self.extractor.weights))


class PytorchFidTool(Tool):
    def __init__(self, batch_size: int, workers: int | None, torch_home: Path, device: str = "cpu") -> None:
        import pytorch_fid
        from pytorch_fid import fid_score
        from pytorch_fid.inception import InceptionV3

        fid_score.tqdm = lambda iterable, *args, **kwargs: iterable  # its progress bar, silenced
        self.fid_score = fid_score
        saved = os.environ.get("TORCH_HOME")
        os.environ["TORCH_HOME"] = str(torch_home)  # only while it loads its checkpoint from the hub folder
        try:
            self.model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval().to(device)
        finally:
            if saved is None:
                os.environ.pop("TORCH_HOME", None)
            else:
                os.environ["TORCH_HOME"] = saved
        self.batch_size = batch_size
        self.device = device
        # its CLI default: min(usable cores, 8) DataLoader worker processes
        self.workers = min(usable_cores(), 8) if workers is None else workers
        self.name = f"pytorch-fid {getattr(pytorch_fid, '__version__', '?')}"
        self.parallelism = f"{self.workers} DataLoader procs" + (" (its CLI default)" if workers is None else "")

    def warm_up(self) -> None:
        import torch

        with torch.no_grad():
            self.model(torch.rand(self.batch_size, 3, 32, 32, device=self.device))

    def extract(self, folder: Path) -> np.ndarray:
        # what its compute_statistics_of_path does for a folder, keeping the activations
        files = sorted(p for ext in self.fid_score.IMAGE_EXTENSIONS for p in folder.glob(f"*.{ext}"))
        with contextlib.redirect_stdout(sys.stderr):
            activations = self.fid_score.get_activations(
                files, self.model, self.batch_size, 2048, self.device, self.workers
            )
        np.mean(activations, axis=0), np.cov(activations, rowvar=False)
        return activations

    def state(self) -> dict:
        return self.model.state_dict()


class TorchFidelityTool(Tool):
    def __init__(self, batch_size: int, workers: int | None, weights_path: Path, device: str = "cpu") -> None:
        import torch_fidelity
        from torch_fidelity import utils

        self.utils = utils
        self.cuda = device.startswith("cuda")
        if self.cuda and device != "cuda":
            import torch

            torch.cuda.set_device(device)  # torch-fidelity moves its model with .cuda(): the current device
        self.extractor = utils.create_feature_extractor(
            "inception-v3-compat",
            ["2048"],
            cuda=self.cuda,
            verbose=False,
            feature_extractor_weights_path=str(weights_path),
        )
        self.batch_size = batch_size
        # its default (save_cpu_ram=False): min(4, 2 × cores) DataLoader worker processes; 0 with save_cpu_ram
        if workers is None:
            self.save_cpu_ram = False
            count = min(4, 2 * (os.cpu_count() or 1))
            self.parallelism = f"{count} DataLoader procs (its default)"
        else:
            self.save_cpu_ram = workers == 0
            self.parallelism = (
                "0 DataLoader procs (save_cpu_ram)"
                if workers == 0
                else f"{min(4, 2 * (os.cpu_count() or 1))} DataLoader procs (its default; only 0 can be chosen)"
            )
        self.name = f"torch-fidelity {torch_fidelity.__version__}"

    def warm_up(self) -> None:
        import torch

        with torch.no_grad():
            batch = torch.full((self.batch_size, 3, 32, 32), 127, dtype=torch.uint8)
            self.extractor(batch.cuda() if self.cuda else batch)

    def extract(self, folder: Path) -> np.ndarray:
        dataset = self.utils.prepare_input_from_id(1, input1=str(folder), verbose=False)
        features = (
            self.utils.get_featuresdict_from_dataset(
                dataset, self.extractor, self.batch_size, self.cuda, self.save_cpu_ram, False
            )["2048"]
            .cpu()
            .numpy()
        )
        np.mean(features, axis=0), np.cov(features, rowvar=False)  # as its fid_features_to_statistics
        return features

    def state(self) -> dict:
        return self.extractor.state_dict()


def peer_weights_file(work: Path) -> tuple[Path, Path, str]:
    """ganeval's trunk plus a seeded random classifier in the full pytorch-fid layout, saved once for
    torch-fidelity and once in a torch hub folder for pytorch-fid. Returns (file, torch home, sha256)."""
    import torch

    from ganeval.weights import load_state_dict, locate_weights

    state = dict(load_state_dict(locate_weights(download=False)))
    generator = torch.Generator().manual_seed(FC_SEED)
    state["fc.weight"] = torch.randn(1008, 2048, generator=generator) * 0.05
    state["fc.bias"] = torch.randn(1008, generator=generator) * 0.1
    path = work / "weights" / "full-trunk-seeded-fc.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    torch_home = work / "torch-home-pytorch-fid"
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, checkpoints / PYTORCH_FID_FILENAME)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return path, torch_home, digest


def load_peers(
    batch_size: int, peer_workers: int | None, work: Path, device: str = "cpu"
) -> tuple[list[Tool], list[str], str]:
    """(loaded peer tools, labels of the peers not installed, the weights note for the peers), all peers
    reading the same full-layout weights file built from ganeval's trunk (``peer_weights_file``)."""
    weights_file, torch_home, digest = peer_weights_file(work)
    peers_line = (
        f"; peers: the same trunk + seeded random fc (seed {FC_SEED}, unused for pool3) "
        f"in {weights_file.name} (sha256 {digest[:16]}…)"
    )
    tools: list[Tool] = []
    missing: list[str] = []
    for label, build in (
        ("pytorch-fid", lambda: PytorchFidTool(batch_size, peer_workers, torch_home, device)),
        ("torch-fidelity", lambda: TorchFidelityTool(batch_size, peer_workers, weights_file, device)),
    ):
        try:
            note(f"loading {label} ...")
            tools.append(build())
        except ImportError:
            missing.append(label)
            note(f"{label}: not installed, skipped")
    return tools, missing, peers_line


def ganeval_weights_line(tool: GanevalTool) -> str:
    weights = tool.extractor.weights
    return f"ganeval: {weights.extractor}, {weights.source} (sha256 {weights.sha256[:16]}…)"


def section_throughput(args: argparse.Namespace, work: Path) -> None:
    sizes = (32, 256)
    note(f"writing {args.n} PNGs of each size {sizes} ...")
    folders = {size: write_png_folder(work / f"png{size}", args.n, size, IMAGE_SEED + size) for size in sizes}

    tools: list[Tool] = []
    missing: list[str] = []
    note("loading ganeval's extractor (converting the packaged trunk into the temporary GANEVAL_HOME) ...")
    tools.append(GanevalTool(args.batch_size))
    weights_line = ganeval_weights_line(tools[0])
    if not args.skip_peers:
        peers, missing, peers_line = load_peers(args.batch_size, args.peer_workers, work)
        tools.extend(peers)
        if len(tools) > 1:
            weights_line += peers_line

    results: dict[tuple[int, str], tuple[float, np.ndarray, OtherLoad]] = {}
    for tool in tools:
        note(f"warm-up batch: {tool.name}")
        tool.warm_up()
    for size in sizes:
        for tool in tools:
            note(f"extracting {args.n} images {size}×{size}: {tool.name}")
            gc.collect()
            results[(size, tool.name)] = measured(lambda: tool.extract(folders[size]))

    ours = tools[0].name
    rows = []
    for size in sizes:
        ours_rate = args.n / results[(size, ours)][0]
        for index, tool in enumerate(tools):
            seconds, _, row_load = results[(size, tool.name)]
            rate = args.n / seconds
            rows.append(
                [
                    f"PNG {size}×{size}" if index == 0 else "",
                    str(args.n) if index == 0 else "",
                    tool.name,
                    tool.parallelism,
                    f"{seconds:.2f}",
                    f"{rate:.2f}",
                    "" if index == 0 else f"{ours_rate / rate:.2f}×",
                    row_load.short(),
                ]
            )
        for label in missing:
            rows.append(["", "", label, "not installed", "", "", "", ""])
    emit(
        f"[1] Extraction throughput, end to end (list + decode + resize to 299 + Inception forward + mean/cov), "
        f"batch size {args.batch_size}, after one warm-up batch per tool, torch threads {_threads()}"
    )
    emit(
        table(
            ["images", "n", "tool", "parallelism", "seconds", "images/s", "ganeval/peer", "other load"],
            rows,
            right={1, 4, 5, 6, 7},
        )
    )

    network = tools[0].network_seconds
    if network:
        emit(
            f"ganeval network only (one preprocessed batch of {args.batch_size}, no decode/resize): "
            f"{args.batch_size / network:.2f} images/s"
        )
    emit(load_legend([load for _, _, load in results.values()]))
    emit(f"weights: {weights_line}")
    if len(tools) > 1:
        reference = tensor_digest(tools[0].state())
        same = [tool.name for tool in tools[1:] if tensor_digest(tool.state()) == reference]
        differ = [tool.name for tool in tools[1:] if tool.name not in same]
        emit(
            f"same weights: {reference[0]} trunk tensors (shape + bytes) identical in ganeval and "
            f"{', '.join(same) or 'no peer'}" + (f"; DIFFERENT in {', '.join(differ)}" if differ else "")
        )
        parts = []
        for tool in tools[1:]:
            diffs = [float(np.abs(results[(s, ours)][1] - results[(s, tool.name)][1]).max()) for s in sizes]
            parts.append(f"{tool.name} {' / '.join(f'{d:.2g}' for d in diffs)}")
        emit(
            f"pool3 max |difference| from ganeval ({' / '.join(f'{s}px' for s in sizes)}): {'; '.join(parts)} "
            f"(torch-fidelity resizes like TF as ganeval does; pytorch-fid uses PyTorch's bilinear resize)"
        )
    emit()


def _threads() -> int:
    import torch

    return torch.get_num_threads()


# --- section 2: FID from statistics --------------------------------------------------------------


def synthetic_statistics(rows: int, dim: int, seed: int):
    """Two sets of ``rows`` non-Gaussian, correlated ``dim``-d features: |z|^1.5 (z standard normal) mixed
    by a random matrix; the second set with a perturbed mixing matrix and a shift."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    other = mixing + 0.3 * rng.standard_normal((dim, dim)) / np.sqrt(dim)
    stats = []
    for matrix, shift in ((mixing, 0.0), (other, 0.05)):
        features = (np.abs(rng.standard_normal((rows, dim))) ** 1.5) @ matrix + shift
        stats.append((features.mean(axis=0), np.cov(features, rowvar=False)))
        del features
    return stats


def fid_sqrtm(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> tuple[float, float]:
    """pytorch-fid's formula: trace of scipy's sqrtm(Σ1Σ2), real part (offset by eps·I if not finite).
    Returns (FID, largest |imaginary| on the diagonal of the square root)."""
    from scipy import linalg

    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    imaginary = 0.0
    if np.iscomplexobj(covmean):
        imaginary = float(np.abs(np.diagonal(covmean).imag).max())
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)), imaginary


def fid_eigvals(mu1, sigma1, mu2, sigma2) -> float:
    """torch-fidelity/torchmetrics style: sum of the real parts of sqrt(eigvals(Σ1Σ2))."""
    eigenvalues = np.linalg.eigvals(sigma1 @ sigma2).astype(np.complex128)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.sqrt(eigenvalues).real.sum())


def section_fid(args: argparse.Namespace) -> None:
    from ganeval.metrics.fid import frechet_distance, psd_factor

    note(f"generating two synthetic sets of {args.stats_rows} × {args.dim} features and their statistics ...")
    (mu1, sigma1), (mu2, sigma2) = synthetic_statistics(args.stats_rows, args.dim, STATS_SEED)

    note("timing ganeval frechet_distance ...")
    t_ours, fid_ours, l_ours = measured(lambda: frechet_distance(mu1, sigma1, mu2, sigma2), 3)
    t_factor, factor, l_factor = measured(lambda: psd_factor(sigma1), 3)
    t_cached, fid_cached, l_cached = measured(lambda: frechet_distance(mu1, sigma1, mu2, sigma2, factor1=factor), 3)
    note("timing numpy eigvals formula ...")
    t_eig, fid_eig, l_eig = measured(lambda: fid_eigvals(mu1, sigma1, mu2, sigma2), 2)
    note(f"timing scipy sqrtm formula ({args.sqrtm_repeats}×) ...")
    t_sqrtm, (fid_sq, imaginary), l_sqrtm = measured(lambda: fid_sqrtm(mu1, sigma1, mu2, sigma2), args.sqrtm_repeats)

    def rel(value: float) -> str:
        return "0 (reference)" if value is fid_sq else f"{abs(value - fid_sq) / abs(fid_sq):.1e}"

    rows = [
        [
            "ganeval frechet_distance (Cholesky + sygst + syevr)",
            "best of 3",
            f"{t_ours:.3f}",
            "reference",
            f"{fid_ours:.6f}",
            rel(fid_ours),
            l_ours.short(),
        ],
        [
            "ganeval frechet_distance, cached factor1=psd_factor(Σ1)",
            "best of 3",
            f"{t_cached:.3f}",
            f"{t_ours / t_cached:.1f}× faster",
            f"{fid_cached:.6f}",
            rel(fid_cached),
            l_cached.short(),
        ],
        [
            "  (psd_factor(Σ1) itself, computed once per reference)",
            "best of 3",
            f"{t_factor:.3f}",
            "",
            "",
            "",
            l_factor.short(),
        ],
        [
            "numpy eigvals(Σ1Σ2), Σ sqrt(λ).real (torch-fidelity style)",
            "best of 2",
            f"{t_eig:.3f}",
            f"{t_eig / t_ours:.1f}× slower",
            f"{fid_eig:.6f}",
            rel(fid_eig),
            l_eig.short(),
        ],
        [
            "scipy sqrtm(Σ1Σ2), trace of real part (pytorch-fid style)",
            f"best of {args.sqrtm_repeats}",
            f"{t_sqrtm:.3f}",
            f"{t_sqrtm / t_ours:.1f}× slower",
            f"{fid_sq:.6f}",
            rel(fid_sq),
            l_sqrtm.short(),
        ],
    ]
    emit(
        f"[2] FID from statistics, d = {args.dim}: synthetic statistics of 2 × {args.stats_rows} rows of |z|^1.5 "
        f"mixed by a random {args.dim}×{args.dim} matrix (non-Gaussian, correlated, full rank), float64"
    )
    emit(
        table(
            ["method", "runs", "seconds", "vs ganeval", "FID", "rel. diff vs sqrtm", "other load"],
            rows,
            right={2, 3, 4, 6},
        )
    )
    emit(
        f"speed-up of ganeval: {t_sqrtm / t_ours:.1f}× vs sqrtm, {t_eig / t_ours:.1f}× vs eigvals; "
        f"with a cached reference factor {t_sqrtm / t_cached:.1f}× vs sqrtm "
        f"(sqrtm's largest |imaginary| on the diagonal: {imaginary:.1e})"
    )
    emit(load_legend([l_ours, l_cached, l_factor, l_eig, l_sqrtm]))
    emit()


# --- section 3: memory -----------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_child(folder: str, batch_size: int) -> None:
    """Runs in a fresh process: extract ``folder`` after warm-up, report memory as JSON on stdout."""
    import resource

    import torch

    from ganeval.extractors.inception import Extractor
    from ganeval.sources import open_source

    torch.set_num_threads(usable_cores())
    block_network()
    extractor = Extractor(device="cpu", batch_size=batch_size)
    extractor.forward([np.full((32, 32, 3), 127, np.uint8)] * batch_size)  # network built, one batch run
    source = open_source(folder)
    gc.collect()
    reset = False
    try:  # reset the peak-RSS counter (VmHWM) to the current RSS, so the peak is this extraction's
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        reset = True
    except OSError:
        pass
    base_kib = _status_kib("VmRSS")
    tracemalloc.start()
    features = extractor.extract(source, progress=False)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak_kib = _status_kib("VmHWM") if reset else None
    if peak_kib is None:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "n": features.n,
                "rss_base": (base_kib or 0) * 1024,
                "rss_peak": peak_kib * 1024,
                "hwm_reset": reset,
                "traced_peak": traced_peak,
                "features_bytes": int(features.pool3.nbytes),
            }
        )
    )


def section_memory(args: argparse.Namespace, work: Path) -> None:
    counts = (args.mem_n, 2 * args.mem_n)
    measured = []
    folders = [write_png_folder(work / f"mem{count}", count, 32, IMAGE_SEED + count) for count in counts]
    for folder, count in zip(folders, counts):
        note(f"memory: extracting {count} images 32×32 in a fresh process ...")
        completed = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--_memory-child",
                str(folder),
                "--batch-size",
                str(args.batch_size),
            ],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            check=False,
        )
        if completed.returncode != 0:
            sys.stderr.write(completed.stderr)
            raise SystemExit(f"memory child failed with exit code {completed.returncode}")
        measured.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    rows = []
    for item in measured:
        rows.append(
            [
                str(item["n"]),
                f"{(item['rss_peak'] - item['rss_base']) / MIB:.1f}",
                f"{item['rss_base'] / MIB:.0f}",
                f"{item['traced_peak'] / MIB:.1f}",
                f"{item['features_bytes'] / MIB:.2f}",
            ]
        )
    how = (
        "VmHWM reset just before extracting"
        if all(m["hwm_reset"] for m in measured)
        else "ru_maxrss (includes the warm-up batch's peak)"
    )
    emit(
        f"[3] Memory while extracting 32×32 PNGs, batch size {args.batch_size}: a fresh process per run, network "
        f"built and one batch run before measuring; peak RSS from {how}; numpy/Python peak from tracemalloc "
        f"(torch's allocations are not traced)"
    )
    emit(
        table(
            ["images", "peak RSS above start (MiB)", "RSS at start (MiB)", "traced peak (MiB)", "pool3 features (MiB)"],
            rows,
            right={0, 1, 2, 3, 4},
        )
    )
    small, large = measured
    added = large["n"] - small["n"]
    d_rss = (large["rss_peak"] - large["rss_base"]) - (small["rss_peak"] - small["rss_base"])
    d_traced = large["traced_peak"] - small["traced_peak"]
    held = added * 3 * 299 * 299 * 4
    emit(
        f"{small['n']} → {large['n']} images: peak RSS {d_rss / MIB:+.1f} MiB, traced peak {d_traced / MIB:+.2f} MiB "
        f"({d_traced / added:,.0f} bytes per added image; pool3 is {2048 * 4:,} bytes per image); holding the "
        f"{added} added images as 299×299 float32 inputs would take {held / MIB:.0f} MiB"
    )
    emit()


# --- main ----------------------------------------------------------------------------------------------


def isolate(work: Path) -> None:
    """A temporary ``$GANEVAL_HOME`` under ``work`` (nothing cached before is reused) and an empty
    ``$TORCH_HOME``, so ganeval neither finds a user's weights file nor the peers' seeded one (which it
    would rightly refuse as non-standard at pytorch-fid's file name)."""
    os.environ["GANEVAL_HOME"] = str(work / "ganeval-home")
    os.environ["TORCH_HOME"] = str(work / "torch-home-empty")
    os.environ.pop("GANEVAL_INCEPTION_WEIGHTS", None)


def header(title: str, quick: bool = False) -> None:
    """The first lines of a benchmark's output: title and date, CPU (model, vector extensions, usable
    cores), torch version and threads, library versions; then an empty line."""
    import scipy
    import torch

    import ganeval

    emit(
        f"{title}, {datetime.datetime.now().isoformat(timespec='seconds')}"
        + ("  [--quick: tiny sizes, numbers meaningless]" if quick else "")
    )
    emit(
        f"CPU: {cpu_model()}, {usable_cores()} usable cores; torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads; numpy {np.__version__}, scipy {scipy.__version__}, "
        f"Python {platform.python_version()}, ganeval {ganeval.__version__}"
    )
    emit()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=None, help="images per generated folder (default 64; 4 with --quick)")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="batch size for every tool (default 32; 2 with --quick)"
    )
    parser.add_argument("--skip-peers", action="store_true", help="measure ganeval only")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run (numbers meaningless)")
    parser.add_argument(
        "--peer-workers",
        type=int,
        default=None,
        help="DataLoader workers for the peers (default: each tool's own default)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        metavar="SECONDS",
        help="before each timing, wait up to this long for other processes to go quiet (default 120; 0 with --quick)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=1,
        help="measure again when other processes were busy during a timing (default 1)",
    )
    parser.add_argument("--skip-fid", action="store_true", help="leave out section 2 (FID from statistics)")
    parser.add_argument("--skip-memory", action="store_true", help="leave out section 3 (memory)")
    parser.add_argument("--_memory-child", dest="memory_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n is None:
        args.n = 4 if args.quick else 64
    if args.batch_size is None:
        args.batch_size = 2 if args.quick else 32
    if args.n < 2 or args.batch_size < 1:
        parser.error("--n must be at least 2 and --batch-size at least 1")
    if args.wait_quiet is None:
        args.wait_quiet = 0.0 if args.quick else 120.0
    args.dim = 256 if args.quick else 2048
    args.stats_rows = 600 if args.quick else 5000
    args.sqrtm_repeats = 1 if args.quick else 2
    args.mem_n = 4 if args.quick else 64
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.batch_size)
        return 0

    block_network()
    QUIET.update(wait=args.wait_quiet, retries=max(0, args.retries))
    work = Path(tempfile.mkdtemp(prefix="ganeval-bench-"))
    try:
        isolate(work)

        import torch

        torch.set_num_threads(usable_cores())
        started = time.perf_counter()
        header("ganeval foundation benchmark", args.quick)
        section_throughput(args, work)
        if not args.skip_fid:
            section_fid(args)
        if not args.skip_memory:
            section_memory(args, work)
        emit(f"total benchmark time: {time.perf_counter() - started:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
