#!/usr/bin/env python
"""Speed and scale benchmark for ganeval (issue #8): the machine's limit for the Inception forward, how
close ganeval's network and end-to-end extraction come to it, the same extraction against pytorch-fid and
torch-fidelity (same weights, same images), the forward chunk size, the arithmetic precisions (speed and
FID deviation), a cached reference and a distributed (torchrun) run. Everything in one run, on this machine.

    python benchmarks/bench_speed.py --quick     # smoke run with tiny sizes (about a minute)
    python benchmarks/bench_speed.py             # default run (about 8 minutes on 2 CPU cores)
    python benchmarks/bench_speed.py --device cuda --precisions fp32,tf32,bf16,fp16
    python benchmarks/bench_speed.py --device cuda --weights weights.pth   # any weights file, e.g. on a GPU box

Tables go to stdout, progress and notes to stderr. See benchmarks/README.md for what each line means.
Helpers (quiet-machine waiting, other-load accounting, generated PNG folders, the peers' weights file, the
peer tools) come from bench_foundation.py. Network access is blocked inside this process.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_foundation as foundation  # noqa: E402
from bench_foundation import OtherLoad, emit, load_legend, measured, note, table  # noqa: E402

TARGET_OF_LIMIT = 0.70  # ganeval's network-only and end-to-end images/s as a share of the machine limit
TARGET_VS_PEER = 1.3  # ganeval's end-to-end images/s over each peer's
CHUNKS = (1, 2, 4, 8, 16, 32)
MATMUL_SIZE = 4096
SIZES = (32, 256)
CACHE_FAKE_SEED = 101


# --- small helpers -------------------------------------------------------------------------------


def pct(value: float) -> str:
    return f"{100.0 * value:.0f}%"


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "MISSED")


@contextlib.contextmanager
def cpu_chunk(images: int) -> Iterator[None]:
    """ganeval's CPU forward runs ``images`` images per forward inside the block (device.CPU_FORWARD_CHUNK,
    read at call time by device.forward_chunk)."""
    import ganeval.device

    saved = ganeval.device.CPU_FORWARD_CHUNK
    ganeval.device.CPU_FORWARD_CHUNK = images
    try:
        yield
    finally:
        ganeval.device.CPU_FORWARD_CHUNK = saved


def timed_once(fn: Callable[[], object]) -> tuple[float, object, OtherLoad]:
    """(seconds, result, other load) of one call after waiting for a quiet machine, never repeated: for
    calls whose second run would differ from the first (a cache fills)."""
    if foundation.QUIET["wait"] > 0:
        foundation.wait_quiet(foundation.QUIET["wait"])
    with OtherLoad() as load:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    return seconds, result, load


def network_timing(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray, OtherLoad]:
    """(best seconds, pool3, other load) of a network-only call, after one untimed call that creates the
    oneDNN / cuDNN primitives for these shapes."""
    fn()
    return measured(fn, repeats)


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def fmt_diff(value: float) -> str:
    return "0.0" if value == 0.0 else f"{value:.2g}"


# --- section 1: the machine limit and the network -------------------------------------------------


def flops_per_image(state: dict) -> float:
    """FLOPs of one forward of the plain network at 299×299 (torch's FlopCounterMode: 2 per multiply-add
    of the convolutions and the matmuls; pooling, ReLU and BatchNorm are not counted)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ganeval.inception import INPUT_SIZE, build_inception

    network = build_inception(state).eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        network(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
    return float(counter.get_total_flops())


def matmul_rate(device, dtype, size: int, repeats: int) -> tuple[float, OtherLoad]:
    """FLOP/s of a ``size``³ matmul in ``dtype`` on ``device`` (best of ``repeats``, IEEE float32 on CUDA)."""
    import torch

    from ganeval.device import exact_float32, synchronise

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)

    def run() -> None:
        synchronise(a @ b)

    with exact_float32():
        run()
        seconds, _, load = measured(run, repeats)
    return 2.0 * size**3 / seconds, load


def preprocessed_batch(extractor, folder: Path, count: int):
    """The network input (count, 3, 299, 299) of the first ``count`` images of ``folder`` (cycled)."""
    import torch

    from ganeval.sources import open_source

    source = open_source(folder)
    images = [source.load(i % len(source)) for i in range(count)]
    return extractor.preprocess(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)).contiguous()


def section_network(args: argparse.Namespace, device, state: dict, folder: Path) -> dict:
    import torch

    import ganeval.device
    from ganeval.device import exact_float32
    from ganeval.inception import build_inception, fold_batchnorm
    from ganeval.extractors.inception import Extractor

    note("counting the FLOPs of one forward (plain network, FlopCounterMode) ...")
    flops = flops_per_image(state)
    note(f"timing a {MATMUL_SIZE}×{MATMUL_SIZE} fp32 matmul (best of {args.matmul_repeats}) ...")
    rate, matmul_load = matmul_rate(device, torch.float32, MATMUL_SIZE, args.matmul_repeats)
    limit = rate / flops
    bf16_rate = None
    if "bf16" in args.precisions:
        bf16_rate, _ = matmul_rate(device, torch.bfloat16, MATMUL_SIZE, args.matmul_repeats)

    batch = args.batch_size
    extractor = Extractor(device=device, batch_size=batch)
    x = preprocessed_batch(extractor, folder, batch)

    def plain_forward(network: torch.nn.Module) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            with torch.inference_mode(), exact_float32():
                return network(x).pool3.float().cpu().numpy()

        return run

    def ganeval_forward() -> np.ndarray:
        return extractor._run(x)[0]

    rows_spec: list[tuple[str, Callable[[], np.ndarray]]] = []
    note(f"network only, one preprocessed batch of {batch}: plain network (NCHW, BatchNorm unfolded) ...")
    plain = build_inception(state).eval().to(device)
    rows_spec.append(("plain: build_inception, NCHW, BatchNorm unfolded, whole batch", plain_forward(plain)))
    folded = fold_batchnorm(build_inception(state).eval()).to(device)
    rows_spec.append(("+ BatchNorm folded (NCHW, whole batch)", plain_forward(folded)))
    if device.type == "cpu":

        def whole_batch() -> np.ndarray:
            with cpu_chunk(batch):
                return extractor._run(x)[0]

        rows_spec.append(("+ channels-last (whole batch)", whole_batch))
        label = f"+ chunks of {ganeval.device.CPU_FORWARD_CHUNK} = ganeval Extractor (fp32)"
    else:
        label = "+ channels-last = ganeval Extractor (fp32, whole batch on CUDA)"
    rows_spec.append((label, ganeval_forward))

    measured_rows = []
    for name, fn in rows_spec:
        note(f"network only: {name} ...")
        gc.collect()
        measured_rows.append((name, *network_timing(fn, args.repeats)))
    del plain, folded
    gc.collect()

    plain_seconds, plain_pool3 = measured_rows[0][1], measured_rows[0][2]
    rows = []
    for name, seconds, pool3, load in measured_rows:
        speed = batch / seconds
        rows.append(
            [
                name,
                f"{seconds:.2f}",
                f"{speed:.2f}",
                f"{plain_seconds / seconds:.2f}×",
                pct(speed / limit),
                fmt_diff(max_diff(pool3, plain_pool3)),
                load.short(),
            ]
        )
    network_speed = batch / measured_rows[-1][1]

    emit(f"[1] Machine limit and the network alone (fp32, {device.type})")
    emit(
        f"FLOPs of one Inception-v3 forward at 299×299 (FlopCounterMode on the plain network): {flops / 1e9:.2f} GFLOP"
    )
    emit(
        f"fp32 matmul {MATMUL_SIZE}×{MATMUL_SIZE} @ {MATMUL_SIZE}×{MATMUL_SIZE}, best of {args.matmul_repeats}, "
        f"{_threads_text(device)}: {rate / 1e9:.1f} GFLOP/s (other load {matmul_load.short()})"
    )
    emit(f"limit: {rate / 1e9:.1f} GFLOP/s / {flops / 1e9:.2f} GFLOP = {limit:.2f} images/s")
    if bf16_rate is not None:
        emit(
            f"(bf16 matmul, same size: {bf16_rate / 1e9:.1f} GFLOP/s = {bf16_rate / rate:.2f}× fp32, a bf16 limit "
            f"of {bf16_rate / flops:.2f} images/s)"
        )
    emit(
        table(
            [
                "network, one preprocessed batch of " + str(batch),
                "seconds",
                "images/s",
                "vs plain",
                "% of limit",
                "max |pool3 − plain|",
                "other load",
            ],
            rows,
            right={1, 2, 3, 4, 5, 6},
        )
    )
    emit(f"best of {args.repeats} after one untimed call per row; " + load_legend([r[3] for r in measured_rows]))
    emit()
    return {
        "flops": flops,
        "rate": rate,
        "limit": limit,
        "network": network_speed,
        "plain": batch / plain_seconds,
        "extractor": extractor,
        "x": x,
    }


def _threads_text(device) -> str:
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}"
    return f"torch {torch.get_num_threads()} threads"


# --- section 2: end-to-end extraction against the peers -------------------------------------------


def section_end_to_end(args: argparse.Namespace, device, work: Path, folders: dict[int, Path], limit: float) -> dict:
    tools: list[foundation.Tool] = []
    missing: list[str] = []
    for precision in args.precisions:
        tools.append(foundation.GanevalTool(args.batch_size, device=str(device), precision=precision))
    ours = [tool.name for tool in tools]
    weights_line = foundation.ganeval_weights_line(tools[0])
    peers: list[foundation.Tool] = []
    if not args.skip_peers:
        peers, missing, peers_line = foundation.load_peers(args.batch_size, args.peer_workers, work, str(device))
        tools.extend(peers)
        if peers:
            weights_line += peers_line

    for tool in tools:
        note(f"warm-up batch: {tool.name}")
        tool.warm_up()
    results: dict[tuple[int, str], tuple[float, np.ndarray, OtherLoad]] = {}
    for size in SIZES:
        for tool in tools:
            note(f"extracting {args.n} images {size}×{size}: {tool.name}")
            gc.collect()
            results[(size, tool.name)] = measured(lambda: tool.extract(folders[size]))

    peer_names = [peer.name for peer in peers]
    short = {name: name.split(" ")[0] for name in peer_names}
    rows = []
    for size in SIZES:
        for index, tool in enumerate(tools):
            seconds, _, load = results[(size, tool.name)]
            speed = args.n / seconds
            ratios = []
            for peer in peer_names:
                if tool.name in ours:
                    ratios.append(f"{speed / (args.n / results[(size, peer)][0]):.2f}×")
                else:
                    ratios.append("")
            fp32 = tool.name not in ours or args.precisions[ours.index(tool.name)] == "fp32"
            rows.append(
                [
                    f"PNG {size}×{size}" if index == 0 else "",
                    str(args.n) if index == 0 else "",
                    tool.name,
                    tool.parallelism,
                    f"{seconds:.2f}",
                    f"{speed:.2f}",
                    *ratios,
                    pct(speed / limit) if fp32 else "",
                    load.short(),
                ]
            )
        for label in missing:
            rows.append(["", "", label, "not installed", "", "", *([""] * len(peer_names)), "", ""])
    headers = [
        "images",
        "n",
        "tool",
        "parallelism",
        "seconds",
        "images/s",
        *[f"ganeval/{short[p]}" for p in peer_names],
        "% of limit",
        "other load",
    ]
    emit(
        f"[2] End-to-end extraction (list + decode + resize to 299 + Inception forward + mean/cov), batch size "
        f"{args.batch_size}, after one warm-up batch per tool, on {device.type}"
    )
    emit(table(headers, rows, right={1, 4, 5, *range(6, len(headers))}))
    emit(
        f"ganeval/<peer>: ganeval's images/s over the peer's on the same folder; % of limit: images/s over the fp32 "
        f"limit of [1] ({limit:.2f} images/s), fp32 rows only"
    )
    emit(load_legend([load for _, _, load in results.values()]))
    emit(f"weights: {weights_line}")
    if peers:
        reference = foundation.tensor_digest(tools[0].state())
        same = [tool.name for tool in peers if foundation.tensor_digest(tool.state()) == reference]
        differ = [tool.name for tool in peers if tool.name not in same]
        emit(
            f"same weights: {reference[0]} trunk tensors (shape + bytes) identical in ganeval and "
            f"{', '.join(same) or 'no peer'}" + (f"; DIFFERENT in {', '.join(differ)}" if differ else "")
        )
        parts = []
        for tool in [*tools[1 : len(ours)], *peers]:
            diffs = [max_diff(results[(s, ours[0])][1], results[(s, tool.name)][1]) for s in SIZES]
            parts.append(f"{tool.name} {' / '.join(fmt_diff(d) for d in diffs)}")
        emit(f"pool3 max |difference| from {ours[0]} ({' / '.join(f'{s}px' for s in SIZES)}): {'; '.join(parts)}")
    if device.type == "cuda" and peers:
        emit(
            "peers run with PyTorch's CUDA defaults: cuDNN convolutions may use TF32 (Ampere and newer) unless "
            "the user turns it off; ganeval's fp32 turns TF32 off"
        )
    emit()

    speeds = {(size, tool.name): args.n / results[(size, tool.name)][0] for size in SIZES for tool in tools}
    return {"ours": ours, "peers": peer_names, "speeds": speeds}


# --- section 3: forward chunk size (CPU) ----------------------------------------------------------


def section_chunks(args: argparse.Namespace, device, extractor, x) -> dict | None:
    import ganeval.device

    batch = len(x)
    if device.type != "cpu":
        emit(f"[3] Forward chunk size: CPU only (on {device.type} ganeval runs each batch in one forward); skipped")
        emit()
        return None
    chunks = sorted({c for c in CHUNKS if c <= batch} | {batch})
    default = ganeval.device.CPU_FORWARD_CHUNK
    timings = {}
    for chunk in chunks:
        note(f"network only, chunks of {chunk} ...")
        gc.collect()
        with cpu_chunk(chunk):
            timings[chunk] = network_timing(lambda: extractor._run(x)[0], args.repeats)
    reference = timings[batch][1]
    rows = []
    for chunk in chunks:
        seconds, pool3, load = timings[chunk]
        rows.append(
            [
                f"{chunk}" + (" (default)" if chunk == default else ""),
                f"{seconds:.2f}",
                f"{batch / seconds:.2f}",
                f"{timings[batch][0] / seconds:.2f}×",
                fmt_diff(max_diff(pool3, reference)),
                load.short(),
            ]
        )
    emit(
        f"[3] Forward chunk size on the CPU: ganeval.device.CPU_FORWARD_CHUNK images per forward, one preprocessed "
        f"batch of {batch}, fp32, best of {args.repeats} after one untimed call"
    )
    emit(
        table(
            ["images per forward", "seconds", "images/s", f"vs {batch}", f"max |pool3 − chunk {batch}|", "other load"],
            rows,
            right={1, 2, 3, 4, 5},
        )
    )
    emit(load_legend([t[2] for t in timings.values()]))
    emit()
    speeds = {chunk: batch / timings[chunk][0] for chunk in chunks}
    best = max(speeds, key=speeds.get)
    return {
        "speeds": speeds,
        "best": best,
        "default": default,
        "batch": batch,
        "max_diff": max(max_diff(timings[c][1], reference) for c in chunks),
    }


# --- section 4: precisions -----------------------------------------------------------------------


def fid_sets(count: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The first ``count`` Fashion-MNIST training images and the first ``count`` test images (uint8
    (N, 28, 28, 3)); generated smooth images when the data set is not installed."""
    from ganeval.errors import GanevalError
    from ganeval.sources import open_source

    try:
        train, test = open_source("fashion-mnist"), open_source("fashion-mnist:test")
        return (
            np.stack([train.load(i) for i in range(count)]),
            np.stack([test.load(i) for i in range(count)]),
            f"the first {count} Fashion-MNIST train images vs the first {count} test images (28×28)",
        )
    except (GanevalError, OSError) as exc:
        note(f"Fashion-MNIST not available ({exc}); using generated images for the FID deviation")
        sets = []
        for seed in (1, 2):
            rng = np.random.default_rng(seed)
            coarse = rng.integers(0, 256, (count, 4, 4, 3), dtype=np.uint8)
            sets.append(np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2))
        return sets[0], sets[1], f"2 × {count} generated blocky 32×32 images (Fashion-MNIST not installed)"


def section_precisions(args: argparse.Namespace, device, x) -> dict:
    import ganeval
    from ganeval.extractors.inception import Extractor

    for message in args.precision_notes:
        emit(f"note: {message}")
    batch = len(x)
    network: dict[str, tuple[float, np.ndarray, OtherLoad]] = {}
    for precision in args.precisions:
        note(f"network only, {precision} ...")
        extractor = Extractor(device=device, batch_size=batch, precision=precision)
        gc.collect()
        network[precision] = network_timing(lambda: extractor._run(x)[0], args.repeats)
    real, fake, description = fid_sets(args.fid_n)
    fids: dict[str, tuple[float, float, OtherLoad]] = {}
    for precision in args.precisions:
        note(f"FID of {description} at {precision} (cache off) ...")
        gc.collect()
        seconds, result, load = measured(
            lambda: ganeval.fid(
                real, fake, cache=False, precision=precision, device=device, batch_size=args.batch_size, progress=False
            )
        )
        fids[precision] = (seconds, float(result["fid"]), load)

    reference_seconds, reference_pool3, _ = network["fp32"]
    reference_fid = fids["fp32"][1]
    rows = []
    for precision in args.precisions:
        seconds, pool3, load = network[precision]
        fid_seconds, fid, fid_load = fids[precision]
        delta = abs(fid - reference_fid)
        rows.append(
            [
                precision,
                f"{batch / seconds:.2f}",
                f"{reference_seconds / seconds:.2f}×",
                fmt_diff(max_diff(pool3, reference_pool3)),
                f"{fid_seconds:.1f}",
                f"{fid:.6f}",
                "0 (reference)" if precision == "fp32" else f"{delta:.2g}",
                "0 (reference)" if precision == "fp32" else f"{delta / abs(reference_fid):.2g}",
                f"{load.short()} / {fid_load.short()}",
            ]
        )
    emit(
        f"[4] Arithmetic precision (Extractor(precision=...), ganeval fid --precision): network only on one "
        f"preprocessed batch of {batch} (best of {args.repeats}); FID of {description}, computed from scratch "
        f"(cache=False) at each precision, batch size {args.batch_size}"
    )
    emit(
        table(
            [
                "precision",
                "images/s",
                "vs fp32",
                "max |pool3 − fp32|",
                "FID run s",
                "FID",
                "|ΔFID|",
                "|ΔFID| / FID",
                "other load (net / FID)",
            ],
            rows,
            right={1, 2, 3, 4, 5, 6, 7},
        )
    )
    emit(load_legend([entry[2] for entry in [*network.values(), *fids.values()]]))
    emit()
    return {
        "speed": {p: reference_seconds / network[p][0] for p in args.precisions},
        "pool3": {p: max_diff(network[p][1], reference_pool3) for p in args.precisions},
        "fid": {p: fids[p][1] for p in args.precisions},
        "description": description,
    }


# --- section 5: cached reference -----------------------------------------------------------------


@contextlib.contextmanager
def decode_counter(root: Path) -> Iterator[list[int]]:
    """Counts the images under ``root`` that ganeval decodes inside the block (wraps
    ganeval.sources.decode_image, which every folder and zip source calls per image)."""
    import ganeval.sources

    original = ganeval.sources.decode_image
    prefix = str(root) + os.sep
    count = [0]
    lock = threading.Lock()

    def counting(data: object, name: str) -> np.ndarray:
        if str(name).startswith(prefix):
            with lock:
                count[0] += 1
        return original(data, name)

    ganeval.sources.decode_image = counting
    try:
        yield count
    finally:
        ganeval.sources.decode_image = original


def section_cache(args: argparse.Namespace, device, work: Path, folders: dict[int, Path]) -> dict:
    import ganeval
    from ganeval.cache import cache_dir

    real, first_fake = folders[256], folders[32]
    note(f"writing {args.n} more 32×32 PNGs for the second fake set ...")
    second_fake = foundation.write_png_folder(work / "png32-second", args.n, 32, CACHE_FAKE_SEED)
    shutil.rmtree(cache_dir(), ignore_errors=True)  # nothing cached before this section
    runs = []
    for label, fake in (
        ("first: real + fake A, empty cache", first_fake),
        ("second: same real + fake B, cache on", second_fake),
    ):
        note(f"cached reference, {label} ...")
        gc.collect()
        with decode_counter(real) as decoded:  # timed once: a repeat would find everything cached
            seconds, result, load = timed_once(
                lambda: ganeval.fid(real, fake, device=device, batch_size=args.batch_size, progress=False)
            )
        runs.append((label, seconds, result, load, decoded[0]))
    rows = []
    for label, seconds, result, load, decoded in runs:
        rows.append(
            [
                label,
                f"{seconds:.2f}",
                f"{runs[0][1] / seconds:.2f}×",
                str(decoded),
                str(result.provenance.get("real", {}).get("cached")),
                f"{float(result['fid']):.4f}",
                load.short(),
            ]
        )
    emit(
        f"[5] Cached reference: ganeval.fid(real, fake) twice with the features cache on (temporary $GANEVAL_HOME, "
        f"emptied first); real = {args.n} PNGs 256×256, fakes = {args.n} PNGs 32×32 each, network built in each "
        f"call, each timed once (not repeated when disturbed)"
    )
    emit(
        table(
            ["run", "seconds", "speed-up", "real images decoded", "provenance real.cached", "FID", "other load"],
            rows,
            right={1, 2, 3, 5, 6},
        )
    )
    emit(load_legend([run[3] for run in runs]))
    emit()
    return {
        "first": runs[0][1],
        "second": runs[1][1],
        "decoded": runs[1][4],
        "cached": runs[1][2].provenance.get("real", {}).get("cached"),
    }


# --- section 6: distributed ----------------------------------------------------------------------


def json_results(text: str) -> list[dict]:
    """Every JSON object with a "fid" key printed in ``text`` (the CLI's --json documents)."""
    decoder = json.JSONDecoder()
    found, position = [], 0
    while (start := text.find("{", position)) >= 0:
        try:
            document, position = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        if isinstance(document, dict) and "fid" in document:
            found.append(document)
    return found


def section_distributed(args: argparse.Namespace, device, folders: dict[int, Path]) -> dict:
    """The CLI as one process and under torchrun. oneDNN's float32 convolutions add up in an order that
    depends on the number of threads, so pool3 (and FID, in the last digits) depends on the threads per
    process: the exactness check compares torchrun with one process running as many threads as each rank."""
    real, fake = str(folders[256]), str(folders[32])
    cli = [
        "-m",
        "ganeval",
        "fid",
        real,
        fake,
        "--json",
        "--no-cache",
        "-q",
        "--device",
        str(device),
        "--batch-size",
        str(args.batch_size),
    ]
    default_threads = str(foundation.usable_cores())
    given = os.environ.get("OMP_NUM_THREADS")
    # torchrun sets OMP_NUM_THREADS=1 for each process when it starts more than one and none is set
    rank_threads = given or ("1" if args.nproc > 1 else default_threads)
    single_threads = given or default_threads
    runs = [("single process", single_threads, [sys.executable, *cli], {})]
    if rank_threads != single_threads:
        runs.append(
            (
                f"single process, {rank_threads} thread{'s' if rank_threads != '1' else ''} (as each rank)",
                rank_threads,
                [sys.executable, *cli],
                {"OMP_NUM_THREADS": rank_threads},
            )
        )
    runs.append(
        (
            f"torchrun, {args.nproc} processes",
            rank_threads,
            [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}", *cli],
            {},
        )
    )

    outcomes = []
    for label, threads, command, extra in runs:
        note(f"distributed: {label} ...")
        gc.collect()
        env = {**os.environ, **extra}

        def run(command: list[str] = command, env: dict = env) -> subprocess.CompletedProcess | str:
            try:
                return subprocess.run(
                    command, capture_output=True, text=True, env=env, timeout=args.dist_timeout, check=False
                )
            except subprocess.TimeoutExpired:
                return f"timed out after {args.dist_timeout:.0f} s"

        seconds, completed, load = measured(run)
        fid, documents, problem = None, [], None
        if isinstance(completed, str):
            problem = completed
        else:
            documents = json_results(completed.stdout)
            if completed.returncode != 0 or not documents:
                lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
                note(
                    f"{label} failed (exit code {completed.returncode}); the end of its stderr:\n"
                    + "\n".join(lines[-40:])
                )
                problem = f"exit code {completed.returncode}, no JSON result" + (
                    f"; stderr ends: {' | '.join(lines[-3:])}" if lines else ""
                )
            else:
                fid = float(documents[0]["fid"])
                if len(documents) > 1:
                    problem = (
                        f"printed {len(documents)} results (expected one, from rank 0): the images were not "
                        f"sharded, every process computed everything"
                    )
        outcomes.append(
            {
                "label": label,
                "threads": threads,
                "seconds": seconds,
                "load": load,
                "fid": fid,
                "documents": documents,
                "problem": problem,
            }
        )

    single, dist = outcomes[0], outcomes[-1]
    same_threads = outcomes[-2]  # the single process with each rank's threads (the first run when they agree)
    rows = []
    for outcome in outcomes:
        row = [
            outcome["label"],
            outcome["threads"],
            f"{outcome['seconds']:.2f}",
            "",
            "",
            "",
            "",
            outcome["load"].short(),
        ]
        if outcome["fid"] is not None:
            row[3] = f"{2 * args.n / outcome['seconds']:.2f}"
            row[4] = f"{single['seconds'] / outcome['seconds']:.2f}×"
            row[5] = repr(outcome["fid"])
            if outcome is not dist and dist["fid"] is not None:
                delta = abs(outcome["fid"] - dist["fid"])
                row[6] = "equal" if delta == 0.0 else f"differs by {delta:.2g} ({delta / abs(dist['fid']):.1g} rel.)"
        elif outcome["problem"]:
            row[5] = "failed"
        rows.append(row)
    emit(
        f"[6] Distributed: `ganeval fid REAL FAKE --json --no-cache -q --device {device}` ({args.n} + {args.n} PNGs, "
        f"256×256 and 32×32) as one process and under `python -m torch.distributed.run --standalone "
        f"--nproc_per_node={args.nproc}`; wall time includes Python start-up and building the network"
    )
    emit(
        table(
            [
                "run",
                "threads per process",
                "seconds",
                "images/s",
                "vs single",
                "FID",
                "vs torchrun's FID",
                "other load",
            ],
            rows,
            right={1, 2, 3, 4, 7},
        )
    )
    emit(
        f"threads: torchrun runs {args.nproc} processes × {rank_threads} thread(s)"
        + ("" if given else " (it sets OMP_NUM_THREADS=1 per process)")
        + f"; the single process runs {single_threads}. oneDNN's float32 convolutions add up in a thread-count-"
        f"dependent order, so the exact comparison is with a single process at the same threads per process"
    )
    if dist["documents"]:
        provenance = dist["documents"][0].get("provenance")
        provenance = provenance if isinstance(provenance, dict) else {}
        keys = {
            k: v
            for k, v in provenance.items()
            if any(word in k.lower() for word in ("world", "rank", "distributed", "process", "shard"))
        }
        if keys:
            emit(f"distributed provenance: {json.dumps(keys, default=str)}")
    for outcome in outcomes:
        if outcome["problem"]:
            emit(f"note: {outcome['label']}: {outcome['problem']}")
    emit(load_legend([o["load"] for o in outcomes]))
    emit()
    ok = all(o["fid"] is not None and not o["problem"] for o in outcomes)
    return {
        "ok": ok,
        "equal": ok and same_threads["fid"] == dist["fid"],
        "equal_default": ok and single["fid"] == dist["fid"],
        "delta_default": abs(single["fid"] - dist["fid"]) if ok else None,
        "speed": single["seconds"] / dist["seconds"],
        "rank_threads": rank_threads,
        "single_threads": single_threads,
    }


# --- summary --------------------------------------------------------------------------------------


def summary(
    args: argparse.Namespace,
    net: dict,
    e2e: dict | None,
    chunks: dict | None,
    precisions: dict | None,
    cache: dict | None,
    dist: dict | None,
) -> None:
    rows = []
    limit = net["limit"]
    rows.append(
        [
            "network only, % of limit",
            f"≥ {pct(TARGET_OF_LIMIT)}",
            f"{pct(net['network'] / limit)} ({net['network']:.2f} of {limit:.2f} images/s)",
            verdict(net["network"] / limit >= TARGET_OF_LIMIT),
        ]
    )
    rows.append(["optimisations vs plain path (network only)", "", f"{net['network'] / net['plain']:.2f}×", ""])
    if e2e:
        ours = e2e["ours"][0]
        for size in SIZES:
            speed = e2e["speeds"][(size, ours)]
            rows.append(
                [
                    f"end to end {size} px, % of limit",
                    f"≥ {pct(TARGET_OF_LIMIT)}",
                    f"{pct(speed / limit)} ({speed:.2f} images/s)",
                    verdict(speed / limit >= TARGET_OF_LIMIT),
                ]
            )
        for peer in e2e["peers"]:
            ratios = [e2e["speeds"][(size, ours)] / e2e["speeds"][(size, peer)] for size in SIZES]
            rows.append(
                [
                    f"ganeval / {peer} (32 px / 256 px)",
                    f"≥ {TARGET_VS_PEER}×",
                    " / ".join(f"{r:.2f}×" for r in ratios),
                    verdict(min(ratios) >= TARGET_VS_PEER),
                ]
            )
        if not e2e["peers"]:
            rows.append(["ganeval / peers", f"≥ {TARGET_VS_PEER}×", "peers skipped", verdict(None)])
    if chunks:
        rows.append(
            [
                f"chunk size: default {chunks['default']} vs whole batch of {chunks['batch']}",
                "",
                f"{chunks['speeds'][chunks['default']] / chunks['speeds'][chunks['batch']]:.2f}× "
                f"(fastest: {chunks['best']}); pool3 max |diff| {fmt_diff(chunks['max_diff'])}",
                "identical" if chunks["max_diff"] == 0.0 else "DIFFERS",
            ]
        )
    if precisions:
        for precision in args.precisions:
            if precision == "fp32":
                continue
            fid, reference = precisions["fid"][precision], precisions["fid"]["fp32"]
            rows.append(
                [
                    f"{precision} vs fp32 (network speed, FID rel. deviation)",
                    "",
                    f"{precisions['speed'][precision]:.2f}×, |ΔFID|/FID {abs(fid - reference) / abs(reference):.2g}",
                    "",
                ]
            )
    if cache:
        rows.append(
            [
                "cached reference: second run (real images decoded)",
                "0 decoded",
                f"{cache['second']:.2f} s vs {cache['first']:.2f} s ({cache['decoded']} decoded)",
                verdict(cache["decoded"] == 0),
            ]
        )
    if dist is not None:
        if dist["ok"]:
            rows.append(
                [
                    f"torchrun × {args.nproc} vs one process, same threads per process ({dist['rank_threads']})",
                    "equal FID",
                    "FID equal" if dist["equal"] else "FID DIFFERENT",
                    verdict(bool(dist["equal"])),
                ]
            )
            rows.append(
                [
                    f"torchrun × {args.nproc} vs one process with {dist['single_threads']} threads",
                    "",
                    f"{dist['speed']:.2f}× speed; FID "
                    + ("equal" if dist["equal_default"] else f"differs by {dist['delta_default']:.2g} (threads)"),
                    "",
                ]
            )
        else:
            rows.append(
                [f"torchrun × {args.nproc} vs single process", "equal FID", "run failed (see [6])", verdict(None)]
            )
    emit("Summary against the targets of issue #8 (ratios from this run)")
    emit(table(["measure", "target", "measured", "status"], rows))
    emit()


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help="PNGs per generated folder (default 64 on CPU, 1000 on CUDA; 4 with --quick)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="batch size for every tool and the network-only batch (default 32 on CPU, 100 on CUDA; 4 with --quick)",
    )
    parser.add_argument(
        "--fid-n",
        type=int,
        default=None,
        help="images per set for the FID deviation of [4] (default 500 on CPU, 5000 on CUDA; 16 with --quick)",
    )
    parser.add_argument(
        "--precisions",
        default=None,
        help="comma-separated precisions for [2] and [4] (default fp32,bf16 on CPU, "
        "fp32,tf32,bf16,fp16 on CUDA); fp32 is always included",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default: CUDA when available)")
    parser.add_argument("--skip-peers", action="store_true", help="measure ganeval only in [2]")
    parser.add_argument("--skip-distributed", action="store_true", help="leave out [6] (torchrun)")
    parser.add_argument("--nproc", type=int, default=2, help="processes for the torchrun run of [6] (default 2)")
    parser.add_argument(
        "--peer-workers",
        type=int,
        default=None,
        help="DataLoader workers for the peers (default: each tool's own default)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="network-only timings: best of this many after one untimed call (default 2; 1 with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run (numbers meaningless)")
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
        default=None,
        help="measure again when other processes were busy during a timing (default 1; 0 with --quick)",
    )
    parser.add_argument(
        "--dist-timeout", type=float, default=900.0, help="seconds before a CLI run of [6] is abandoned (default 900)"
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="PATH",
        help="Inception weights file in pytorch-fid's layout for every ganeval run (as "
        "$GANEVAL_INCEPTION_WEIGHTS; default: the packaged trunk)",
    )
    args = parser.parse_args(argv)
    if args.weights is not None:
        if not Path(args.weights).is_file():
            parser.error(f"--weights {args.weights}: no such file")
        args.weights = str(Path(args.weights).resolve())

    from ganeval.device import NUMERICS, resolve_device

    args.device = resolve_device(args.device)
    cuda = args.device.type == "cuda"
    if args.n is None:
        args.n = 4 if args.quick else (1000 if cuda else 64)
    if args.batch_size is None:
        args.batch_size = 4 if args.quick else (100 if cuda else 32)
    if args.fid_n is None:
        args.fid_n = 16 if args.quick else (5000 if cuda else 500)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 2
    if args.wait_quiet is None:
        args.wait_quiet = 0.0 if args.quick else 120.0
    if args.retries is None:
        args.retries = 0 if args.quick else 1
    if args.n < 2 or args.batch_size < 1 or args.fid_n < 2 or args.nproc < 1:
        parser.error("--n and --fid-n must be at least 2, --batch-size and --nproc at least 1")
    args.matmul_repeats = 1 if args.quick else 3

    notes = []
    if args.precisions is None:
        wanted = list(NUMERICS) if cuda else ["fp32", "bf16"]
        if not cuda:
            notes.append(
                "fp16 skipped on the CPU by default: without native fp16 arithmetic autocast runs it about "
                "4× slower than fp32 (ask for it with --precisions fp32,bf16,fp16)"
            )
    else:
        wanted = [p.strip() for p in args.precisions.split(",") if p.strip()]
        unknown = [p for p in wanted if p not in NUMERICS]
        if unknown:
            parser.error(f"unknown precision(s) {', '.join(unknown)}; choose from {', '.join(NUMERICS)}")
    if "tf32" in wanted and not cuda:
        wanted.remove("tf32")
        notes.append("tf32 skipped: it is a CUDA (Ampere and newer) mode")
    if "fp32" not in wanted:
        wanted.insert(0, "fp32")
    args.precisions = sorted(dict.fromkeys(wanted), key=NUMERICS.index)
    args.precision_notes = notes
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    foundation.block_network()
    foundation.QUIET.update(wait=args.wait_quiet, retries=max(0, args.retries))
    work = Path(tempfile.mkdtemp(prefix="ganeval-bench-speed-"))
    try:
        foundation.isolate(work)
        if args.weights is not None:  # isolate() dropped any inherited choice; the CLI runs of [6] inherit this
            os.environ["GANEVAL_INCEPTION_WEIGHTS"] = args.weights

        import torch

        from ganeval.weights import load_state_dict, locate_weights

        torch.set_num_threads(foundation.usable_cores())
        device = args.device
        started = time.perf_counter()
        foundation.header("ganeval speed benchmark", args.quick)
        if device.type == "cuda":
            emit(
                f"GPU: {torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}, "
                f"cuDNN {torch.backends.cudnn.version()}"
            )
            emit()
        note(f"writing {args.n} PNGs of each size {SIZES} ...")
        folders = {
            size: foundation.write_png_folder(work / f"png{size}", args.n, size, foundation.IMAGE_SEED + size)
            for size in SIZES
        }
        note("loading the weights (converting the packaged trunk into the temporary GANEVAL_HOME) ...")
        state = dict(load_state_dict(locate_weights(None)))

        net = section_network(args, device, state, folders[256])
        e2e = section_end_to_end(args, device, work, folders, net["limit"])
        chunks = section_chunks(args, device, net["extractor"], net["x"])
        precisions = section_precisions(args, device, net["x"])
        cache = section_cache(args, device, work, folders)
        dist = None
        if args.skip_distributed:
            emit("[6] Distributed: skipped (--skip-distributed)")
            emit()
        else:
            try:
                dist = section_distributed(args, device, folders)
            except Exception as exc:  # a broken distributed run must not lose the other sections
                emit(f"[6] Distributed: failed ({type(exc).__name__}: {exc})")
                emit()
                dist = {"ok": False}
        summary(args, net, e2e, chunks, precisions, cache, dist)
        emit(f"total benchmark time: {time.perf_counter() - started:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
