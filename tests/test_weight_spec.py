"""ganeval.extractors.weights: the generic locate → verify → convert → cache → download helper, tested with a
made-up network "Toy" (a 4→3 linear layer) whose standard file, package file and download are all local."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from conftest import closed_port
from ganeval.errors import WeightsError
from ganeval.extractors.weights import SearchPlace, WeightSpec, load_state_dict, locate, read_state_dict
from ganeval.paths import ganeval_weights_dir, safe_torch_load

SHAPES = {"lin.weight": (3, 4), "lin.bias": (3,)}


def _bytes(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


TOY_STATE = {"lin.weight": torch.arange(12, dtype=torch.float32).view(3, 4), "lin.bias": torch.ones(3)}
STANDARD_BYTES = _bytes(TOY_STATE)
STANDARD_SHA = _sha(STANDARD_BYTES)
RAW_BYTES = _bytes({"W": TOY_STATE["lin.weight"].t().contiguous(), "b": TOY_STATE["lin.bias"]})  # another layout
RAW_SHA = _sha(RAW_BYTES)
CUSTOM_BYTES = _bytes({"lin.weight": torch.zeros(3, 4), "lin.bias": torch.zeros(3)})
CORRUPTED = bytes(b ^ 1 if i == len(STANDARD_BYTES) // 2 else b for i, b in enumerate(STANDARD_BYTES))
HOW_TO = "download https://example.invalid/toy-standard.pth, or pass --toy-weights PATH"


def _check_toy(path: Path, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if {key: tuple(value.shape) for key, value in state.items()} != SHAPES:
        raise WeightsError(f"{path}: not the toy layout")
    return state


@pytest.fixture
def conversions() -> list[Path]:
    return []


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    return {"elsewhere": tmp_path / "elsewhere", "package": tmp_path / "package"}


@pytest.fixture
def spec(fresh_home: Path, folders: dict[str, Path], conversions: list[Path]) -> WeightSpec:
    def convert(path: Path) -> dict[str, torch.Tensor]:
        conversions.append(path)
        raw = safe_torch_load(path)
        return {"lin.weight": raw["W"].t().contiguous(), "lin.bias": raw["b"].clone()}

    def packaged() -> Path | None:
        path = folders["package"] / "raw.pt"
        return path if path.is_file() else None

    place = SearchPlace(
        source="toy-package",
        find=packaged,
        sha256=RAW_SHA,
        what="toy-package 1.0's",
        fix="reinstall toy-package",
        how_to="pip install toy-package",
        details={"origin": "package"},
    )
    return WeightSpec(
        name="Toy",
        filename="toy-standard.pth",
        sha256=STANDARD_SHA,
        standard_sha256={STANDARD_SHA: "toy standard file", RAW_SHA: "toy package file"},
        env="GANEVAL_TOY_WEIGHTS",
        option="--toy-weights",
        how_to=HOW_TO,
        extractor_standard="toy-standard",
        extractor_custom="toy-custom",
        check_layout=_check_toy,
        layout="the toy layout",
        url="https://example.invalid/toy-standard.pth",
        folders=(("ganeval-home", ganeval_weights_dir), ("elsewhere", lambda: folders["elsewhere"])),
        places=(place,),
        convert=convert,
        converted_stem="toy-raw",
        file_details={"origin": "standard"},
        inspect=lambda state: {"origin": "given", "rows": int(state["lin.weight"].shape[0])},
        provenance_prefix="toy_",
    )


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _one_line(caught: pytest.ExceptionInfo[WeightsError]) -> str:
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- explicit path, environment variable ---------------------------------------------------------------------


def test_explicit_path_is_read_inspected_and_flagged_custom(spec, tmp_path, monkeypatch) -> None:
    explicit = _write(tmp_path / "mine.pth", CUSTOM_BYTES)
    monkeypatch.setenv(spec.env, str(_write(tmp_path / "env.pth", STANDARD_BYTES)))
    info = locate(spec, explicit, download=False)
    assert (info.source, info.path, info.state_path) == ("--toy-weights", explicit, explicit)
    assert info.sha256 == _sha(CUSTOM_BYTES) and not info.standard and info.extractor == "toy-custom"
    assert info.description == "not a known standard file"
    assert (
        info.warning == f"non-standard Toy weights (sha256 {info.sha256[:12]}…): not comparable with published numbers"
    )
    assert info.details == {"origin": "given", "rows": 3}
    assert info.to_dict() == {
        "toy_extractor": "toy-custom",
        "toy_weights_path": str(explicit),
        "toy_weights_sha256": info.sha256,
        "toy_weights_source": "--toy-weights",
        "toy_weights_standard": False,
        "toy_origin": "given",
        "toy_rows": 3,
    }


def test_missing_explicit_path_names_it_and_the_option(spec, tmp_path) -> None:
    with pytest.raises(WeightsError) as caught:
        locate(spec, tmp_path / "nope.pth")
    assert _one_line(caught) == f"{tmp_path / 'nope.pth'}: Toy weights file not found (from --toy-weights)"


def test_env_var_is_used_without_explicit_path(spec, tmp_path, monkeypatch) -> None:
    _write(ganeval_weights_dir() / spec.filename, STANDARD_BYTES)
    env_file = _write(tmp_path / "env.pth", STANDARD_BYTES)
    monkeypatch.setenv(spec.env, str(env_file))
    info = locate(spec, download=False)
    assert (info.source, info.path, info.standard, info.extractor) == (spec.env, env_file, True, "toy-standard")
    assert info.warning is None and info.description == "toy standard file"
    monkeypatch.setenv(spec.env, "")  # empty: ignored
    assert locate(spec, download=False).source == "ganeval-home"


def test_layout_error_is_one_line_naming_the_file(spec, tmp_path) -> None:
    bad = _write(tmp_path / "bad.pth", _bytes({"lin.weight": torch.zeros(4, 3)}))
    with pytest.raises(WeightsError) as caught:
        locate(spec, bad)
    assert _one_line(caught) == f"{bad}: not the toy layout"
    listed = _write(tmp_path / "list.pth", _bytes([torch.zeros(1)]))  # type: ignore[arg-type]
    with pytest.raises(WeightsError, match="expected a state dict of tensors in the toy layout"):
        read_state_dict(spec, listed)


# --- standard folders, search places -----------------------------------------------------------------------------


def test_folders_in_order_then_places(spec, folders, conversions) -> None:
    second = _write(folders["elsewhere"] / spec.filename, STANDARD_BYTES)
    _write(folders["package"] / "raw.pt", RAW_BYTES)
    info = locate(spec, download=False)
    assert (info.source, info.path, info.standard, info.details) == ("elsewhere", second, True, {"origin": "standard"})
    first = _write(ganeval_weights_dir() / spec.filename, STANDARD_BYTES)
    assert locate(spec, download=False).path == first
    first.unlink()
    second.unlink()
    info = locate(spec, download=False)
    assert (info.source, info.sha256, info.standard) == ("toy-package", RAW_SHA, True)
    assert info.details == {"origin": "package"} and info.description == "toy package file"
    assert len(conversions) == 1


@pytest.mark.parametrize("where", ["ganeval-home", "elsewhere", "explicit"])
def test_standard_named_file_with_wrong_sha_is_one_line_error(spec, folders, where) -> None:
    folder = {
        "ganeval-home": ganeval_weights_dir(),
        "elsewhere": folders["elsewhere"],
        "explicit": folders["elsewhere"] / "given",
    }[where]
    bad = _write(folder / spec.filename, STANDARD_BYTES[:-1])
    with pytest.raises(WeightsError) as caught:
        locate(spec, bad if where == "explicit" else None)
    message = _one_line(caught)
    assert message.startswith(f"{bad}: sha256 {_sha(STANDARD_BYTES[:-1])[:16]}…") and STANDARD_SHA[:16] in message
    if where != "explicit":
        assert message.endswith("delete it, or pass it as --toy-weights to use it as custom weights")


def test_standard_name_may_be_custom_without_strict_name(spec, tmp_path) -> None:
    given = _write(tmp_path / spec.filename, CUSTOM_BYTES)
    info = locate(dataclasses.replace(spec, strict_name=False), given)
    assert info.standard is False and info.extractor == "toy-custom"


# --- conversion cache --------------------------------------------------------------------------------------------


def test_conversion_is_cached_once(spec, folders, conversions, monkeypatch) -> None:
    raw = _write(folders["package"] / "raw.pt", RAW_BYTES)
    info = locate(spec, download=False)
    assert conversions == [raw] and info.path == raw
    assert info.state_path == ganeval_weights_dir() / f"toy-raw-{RAW_SHA[:12]}.safetensors"
    assert sorted(p.name for p in ganeval_weights_dir().iterdir()) == [info.state_path.name]  # no temporary files
    with safe_open(str(info.state_path), framework="pt") as handle:
        assert handle.metadata()["source_sha256"] == RAW_SHA
        assert handle.metadata()["format"] == "ganeval-toy-raw-v1"
    state = load_state_dict(info)
    assert all(torch.equal(state[key], TOY_STATE[key]) for key in SHAPES)

    mtime = info.state_path.stat().st_mtime_ns
    time.sleep(0.01)
    again = locate(spec, download=False)
    assert again.state_path == info.state_path and len(conversions) == 1
    assert info.state_path.stat().st_mtime_ns == mtime

    info.state_path.write_bytes(info.state_path.read_bytes()[:-3])  # a damaged cache is remade
    assert locate(spec, download=False).state_path == info.state_path and len(conversions) == 2


def test_place_with_wrong_sha_is_refused_and_nothing_cached(spec, folders, conversions) -> None:
    raw = _write(folders["package"] / "raw.pt", RAW_BYTES + b"x")
    with pytest.raises(WeightsError) as caught:
        locate(spec, download=False)
    assert _one_line(caught) == (
        f"{raw}: sha256 {_sha(RAW_BYTES + b'x')[:16]}… is not toy-package 1.0's {RAW_SHA[:16]}…; reinstall toy-package"
    )
    assert conversions == [] and not ganeval_weights_dir().exists()


def test_bad_conversion_is_not_cached(spec, folders) -> None:
    _write(folders["package"] / "raw.pt", RAW_BYTES)
    broken = dataclasses.replace(spec, convert=lambda path: {"lin.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match="not the toy layout"):
        locate(broken, download=False)
    assert not ganeval_weights_dir().exists() or list(ganeval_weights_dir().iterdir()) == []


# --- download ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(http_server):
    http_server.routes.update({"/toy-corrupted.pth": CORRUPTED})
    return http_server


def test_download_is_verified_and_atomic(spec, server) -> None:
    dest = ganeval_weights_dir() / spec.filename
    seen: list[list[str]] = []

    def halfway(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(STANDARD_BYTES)))
        handler.end_headers()
        half = len(STANDARD_BYTES) // 2
        handler.wfile.write(STANDARD_BYTES[:half])
        handler.wfile.flush()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (dest.parent.is_dir() and any(dest.parent.iterdir())):
            time.sleep(0.01)
        seen.append(sorted(p.name for p in dest.parent.iterdir()) if dest.parent.is_dir() else [])
        handler.wfile.write(STANDARD_BYTES[half:])

    server.routes["/toy-halfway.pth"] = halfway
    info = locate(spec, url=f"{server.base}/toy-halfway.pth", timeout=10)
    assert (info.source, info.path, info.sha256, info.standard) == ("download", dest, STANDARD_SHA, True)
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0] != dest.name  # written beside dest, then renamed
    assert dest.read_bytes() == STANDARD_BYTES and [p.name for p in dest.parent.iterdir()] == [dest.name]
    assert load_state_dict(info).keys() == SHAPES.keys()
    again = locate(spec, url=f"http://127.0.0.1:{closed_port()}/x", timeout=5)  # found now, no server needed
    assert again.source == "ganeval-home" and again.path == dest


def test_corrupted_download_is_refused_and_not_left_behind(spec, server) -> None:
    url = f"{server.base}/toy-corrupted.pth"
    with pytest.raises(WeightsError) as caught:
        locate(spec, url=url, timeout=10)
    message = _one_line(caught)
    assert message.startswith(f"{url}: downloaded file has sha256") and "nothing was saved" in message
    assert message.endswith(HOW_TO)
    assert not ganeval_weights_dir().exists() or list(ganeval_weights_dir().iterdir()) == []


# --- nothing found, spec rules ---------------------------------------------------------------------------------------


def test_missing_is_one_line_error_with_the_how_to(spec, server) -> None:
    before = len(server.requests)
    expected = f"no Toy weights found: pip install toy-package, or {HOW_TO}"
    for candidate, download in ((spec, False), (dataclasses.replace(spec, url=None), True)):
        with pytest.raises(WeightsError) as caught:
            locate(candidate, download=download)
        assert _one_line(caught) == expected
    assert len(server.requests) == before


def test_spec_refuses_an_unverifiable_download(spec) -> None:
    with pytest.raises(ValueError, match="https"):
        dataclasses.replace(spec, url="http://example.invalid/toy.pth")
    with pytest.raises(ValueError, match="sha256"):
        dataclasses.replace(spec, sha256=None)
    with pytest.raises(ValueError, match="converted_stem"):
        dataclasses.replace(spec, converted_stem="")
    no_url = dataclasses.replace(spec, url=None, sha256=None)  # nothing published: no download, no check
    assert no_url.url is None
