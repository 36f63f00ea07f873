"""Shared fixtures: an isolated $GANEVAL_HOME, the real packaged trunk, a full-layout weights file with a
seeded random classifier, one session-wide extractor, and small generated image sets."""

from __future__ import annotations

import http.server
import importlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

FC_SEED = 1234

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n N: the workers share the cores, so each computes on one thread (torch, BLAS, and the CLI and
    # torchrun processes the tests start), or they oversubscribe the cores and spin against each other.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def require_peer(module: str) -> object:
    """Import a peer tool that serves as a test oracle. Without it the test module is skipped with the
    install command, except where $GANEVAL_REQUIRE_PEERS is 1 (CI sets it), where its absence fails."""
    if os.environ.get("GANEVAL_REQUIRE_PEERS") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"{module} is not installed: pip install -e '.[test,compat]'")


@pytest.fixture(scope="session", autouse=True)
def ganeval_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session gets its own cache; no user weights leak in from the environment."""
    home = tmp_path_factory.mktemp("ganeval-home")
    os.environ["GANEVAL_HOME"] = str(home)
    os.environ["TORCH_HOME"] = str(tmp_path_factory.mktemp("torch-home"))
    os.environ.pop("GANEVAL_INCEPTION_WEIGHTS", None)
    return home


@pytest.fixture(scope="session")
def trunk_info(ganeval_home: Path):
    from ganeval.weights import locate_weights

    return locate_weights(download=False)


@pytest.fixture(scope="session")
def trunk_state(trunk_info) -> dict[str, torch.Tensor]:
    from ganeval.weights import load_state_dict

    return load_state_dict(trunk_info)


@pytest.fixture(scope="session")
def full_weights_file(trunk_state, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real trunk plus a seeded random 1008-way classifier, in pytorch-fid's full layout (.pth)."""
    generator = torch.Generator().manual_seed(FC_SEED)
    state = dict(trunk_state)
    state["fc.weight"] = torch.randn(1008, 2048, generator=generator) * 0.05
    state["fc.bias"] = torch.randn(1008, generator=generator) * 0.1
    path = tmp_path_factory.mktemp("weights") / "full-seeded.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="session")
def extractor(trunk_info):
    from ganeval.extractors.inception import Extractor

    return Extractor(batch_size=8, device="cpu")


@pytest.fixture(scope="session")
def full_extractor(full_weights_file):
    from ganeval.extractors.inception import Extractor

    return Extractor(weights=full_weights_file, batch_size=8, device="cpu")


def smooth_images(n: int, size: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """n uint8 RGB images (n, size, size, 3): upsampled coarse noise (image-like, not white noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(n, 4, 4, 3)) + shift
    images = []
    for tile in coarse.clip(0, 255).astype(np.uint8):
        images.append(np.asarray(Image.fromarray(tile).resize((size, size), Image.BICUBIC)))
    return np.stack(images)


def write_images(folder: Path, images: np.ndarray, ext: str = "png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:04d}.{ext}")
    return folder


@pytest.fixture(scope="session")
def image_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two small PNG folders (8 images of 32×32 each) from different distributions."""
    root = tmp_path_factory.mktemp("images")
    real = write_images(root / "real", smooth_images(8, 32, seed=1))
    fake = write_images(root / "fake", smooth_images(8, 32, seed=2, shift=60))
    return real, fake


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $GANEVAL_HOME (empty cache, no converted weights) and $TORCH_HOME for this test only, and
    no weights named by environment variables."""
    home = tmp_path / "ganeval-home"
    monkeypatch.setenv("GANEVAL_HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("GANEVAL_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.delenv("GANEVAL_VGG16_WEIGHTS", raising=False)
    return home


@pytest.fixture
def decode_counter(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the images decoded during the test, in order."""
    import ganeval.sources

    calls: list[str] = []
    original = ganeval.sources.decode_image

    def counting(data, name):
        calls.append(name)
        return original(data, name)

    monkeypatch.setattr(ganeval.sources, "decode_image", counting)
    return calls


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path]``: bytes, or a callable that handles the request itself."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.requests.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
        elif callable(route):
            route(self)
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(route)))
            self.end_headers()
            self.wfile.write(route)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def http_server() -> Iterator[http.server.ThreadingHTTPServer]:
    """A local HTTP server for download tests; modules add their ``routes``; ``base`` is its URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.routes = {}
    httpd.requests = []
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Internet sockets refuse to connect (local Unix sockets, used by DataLoader workers, still work)."""
    original = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"network access is blocked in this test ({address})")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def closed_port() -> int:
    """A local port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SCORE_RTOL = 1e-12
"""Relative tolerance for metric values computed in another process or with other BLAS/OpenMP thread counts:
OpenBLAS/LAPACK may sum float64 in another order with another thread count (docs/distributed.md)."""

SWD_RTOL = 1e-6
"""The same for SWD, whose projections are float32 matrix products (as in ProGAN's reference)."""


def assert_scores_close(got: object, expected: object, key: str = "") -> None:
    """``got`` equals ``expected`` (Result.scores dicts, or any JSON-like value): the same keys and lengths;
    integers, strings and None equal; floats to ``SCORE_RTOL`` relative (``SWD_RTOL`` under keys starting with
    "swd"). For results that crossed a process or thread-count boundary, where bit equality is not promised."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(expected), (key, sorted(got), sorted(expected))
        for name, value in expected.items():
            assert_scores_close(got[name], value, name if not key else key)
    elif isinstance(expected, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(expected), (key, got, expected)
        for a, b in zip(got, expected):
            assert_scores_close(a, b, key)
    elif isinstance(expected, float) and not isinstance(got, bool) and isinstance(got, (int, float)):
        rtol = SWD_RTOL if key.startswith("swd") else SCORE_RTOL
        assert got == pytest.approx(expected, rel=rtol, abs=rtol), (key, got, expected)
    else:
        assert got == expected, (key, got, expected)
