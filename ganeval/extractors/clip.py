"""OpenAI CLIP image towers as extractors: the feature spaces of CLIP-FID and CMMD.

Two named protocols, each one OpenAI checkpoint with one preprocessing; part ``embedding`` is the projected
image embedding (B, D) float32 as ``CLIP.encode_image`` returns it, before any L2 normalisation (CMMD
normalises it in its metric; CLIP-FID does not):

``clip-vit-b-32`` — CLIP-FID as clean-fid 0.1.35 computes it (``compute_fid(..., model_name="clip_vit_b_32")``:
``cleanfid/clip_features.py`` and ``cleanfid/fid.py``, ``cleanfid/utils.py``). OpenAI's ViT-B/32
(``ViT-B-32.pt``, 512-d). Per image (``clean_fid_clip_crop``): PIL image, torchvision ``Resize(224,
BICUBIC)`` of the shorter side (the longer one to ``int(224 · long / short)``), ``CenterCrop(224)`` (offsets
``int(round((side − 224) / 2))``, Python's round-half-even), uint8. Per batch (``clean_fid_scaling``): the
arithmetic clean-fid does in float32 — ``ToTensor`` (÷255) then ×255 (its dataset), ÷255.0 (``CLIP_fx``),
then ``Normalize`` with OpenAI's mean and std (subtract, divide). This is clean-fid's arithmetic on the CPU,
where ``clip.load`` gives a float32 model. On CUDA clean-fid's ``clip.load("ViT-B/32", device="cuda")``
keeps OpenAI's float16 weights and ``encode_image`` casts the input to float16, so its CUDA features are a
float16 computation (LayerNorms in float32); ours stay float32 unless ``precision`` says otherwise, and no
precision here reproduces that float16 model bit for bit.

``clip-vit-l-14-336`` — CMMD (Jayasumana et al. 2024, google-research ``cmmd/``: ``io_util.py``,
``embedding.py``). OpenAI's ViT-L/14@336px (``ViT-L-14-336px.pt``, 768-d). Per image (``cmmd_crop``): the
largest centred square, box ``(left, top, left + s, top + s)`` with s = min(w, h), left = (w − s) // 2,
top = (h − s) // 2, then PIL ``resize((336, 336), BICUBIC)`` (antialiased), uint8. Per batch
(``cmmd_scaling``): float32 ÷ 255.0, then (x − mean) / std with OpenAI's mean and std. CMMD's
``jax.image.resize`` to the same 336×336 shape is the identity (cubic weights (0, 1, 0, 0) at scale 1).

Both crop and resize to the network's input resolution (224 and 336 for the standard weights), in the
decode threads (``per_image``). Weights: one ``WeightSpec`` per file (``clip_spec``), resolved in this order:

1. an explicit path (``--features-weights`` / ``weights=``), then ``$GANEVAL_CLIP_WEIGHTS``: OpenAI's
   TorchScript ``.pt``, or any state dict in OpenAI's key layout (``torch.save(state_dict)``, read without
   executing anything, or ``.safetensors``), with or without the text tower; a file named like the standard
   one must have its sha256; a file of the standard sha256 is converted and cached like the standard file;
2. ``$GANEVAL_HOME/weights/<file>``, then ``~/.cache/clip/<file>`` (where OpenAI's ``clip`` package keeps
   them: ``os.path.expanduser("~/.cache/clip")``, no ``XDG_CACHE_HOME``): must have the standard sha256;
3. a download of OpenAI's URL into ``$GANEVAL_HOME/weights``, verified by sha256 before an atomic rename.

OpenAI's file is a TorchScript archive: it is read once, without running its code
(``torchscript_archive.read_archive``), and its image tower (``visual.*``, the file's float16 tensors) is
kept in ``$GANEVAL_HOME/weights/<stem>-<sha256[:12]>.safetensors``; afterwards only that file is read.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open

from .. import __version__
from ..device import check_numerics, forward_chunk, numerics_context, prepare_input, prepare_model, resolve_device
from ..device import describe as describe_device
from ..device import to_device
from ..errors import BadInputError, WeightsError
from ..paths import ganeval_weights_dir, safe_torch_load
from . import weights as generic
from .base import Batch, Params, VectorExtractor
from .clip_network import PREFIX, CLIPVisionTower, VisionConfig, build_visual, infer_config, visual_keys
from .torchscript_archive import is_torchscript_archive, read_archive

DEFAULT_BATCH_SIZE = 50
ENV_CLIP_WEIGHTS = "GANEVAL_CLIP_WEIGHTS"
WEIGHTS_OPTION = "--features-weights"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
URL_BASE = "https://openaipublic.azureedge.net/clip/models"


@dataclass(frozen=True)
class ClipProtocol:
    """One named CLIP feature space: its OpenAI checkpoint and its preprocessing."""

    name: str
    """The extractor's name and part prefix (``clip-vit-b-32``)."""
    title: str
    """What it reproduces, for provenance."""
    model: str
    """OpenAI's model name (``ViT-B/32``)."""
    filename: str
    """OpenAI's file name (``ViT-B-32.pt``)."""
    sha256: str
    """The file's sha256 (also in OpenAI's URL)."""
    preprocess: str
    """``clean-fid`` or ``cmmd``: which per-image crop and per-batch scaling."""
    preprocess_id: str
    """Names the preprocessing in the cache identity and the provenance."""

    @property
    def url(self) -> str:
        """OpenAI's download URL."""
        return f"{URL_BASE}/{self.sha256}/{self.filename}"

    @property
    def converted_stem(self) -> str:
        """The cached image tower: ``$GANEVAL_HOME/weights/{stem}-{sha256[:12]}.safetensors``."""
        return f"{self.name}-visual"


PROTOCOLS: dict[str, ClipProtocol] = {
    "clip-vit-b-32": ClipProtocol(
        name="clip-vit-b-32",
        title="CLIP-FID (clean-fid 0.1.35 clip_vit_b_32)",
        model="ViT-B/32",
        filename="ViT-B-32.pt",
        sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
        preprocess="clean-fid",
        preprocess_id="clean-fid-0.1.35-clip: tv-resize-short-bicubic+center-crop, x/255*255/255, openai-norm",
    ),
    "clip-vit-l-14-336": ClipProtocol(
        name="clip-vit-l-14-336",
        title="CMMD (google-research cmmd)",
        model="ViT-L/14@336px",
        filename="ViT-L-14-336px.pt",
        sha256="3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
        preprocess="cmmd",
        preprocess_id="cmmd: center-square-crop+pil-bicubic, x/255, openai-norm",
    ),
}
"""The protocols by name."""


def openai_clip_cache() -> Path:
    """Where OpenAI's ``clip`` package downloads its files: ``~/.cache/clip`` (it ignores XDG_CACHE_HOME)."""
    return Path(os.path.expanduser("~/.cache/clip"))


def how_to_get(protocol: ClipProtocol) -> str:
    """One line: where the standard file comes from and where ganeval looks for it (paths as of now)."""
    return (
        f"download {protocol.url} (sha256 {protocol.sha256[:16]}…) to "
        f"{ganeval_weights_dir() / protocol.filename} or {openai_clip_cache() / protocol.filename}, "
        f"or pass {WEIGHTS_OPTION} PATH (or set ${ENV_CLIP_WEIGHTS})"
    )


def clip_spec(name: str) -> generic.WeightSpec:
    """The weights of protocol ``name`` as a WeightSpec, from this module's constants as they are now."""
    protocol = PROTOCOLS[name]
    return generic.WeightSpec(
        name=f"CLIP {protocol.model}",
        filename=protocol.filename,
        sha256=protocol.sha256,
        standard_sha256={protocol.sha256: f"OpenAI CLIP {protocol.model} ({protocol.filename})"},
        env=ENV_CLIP_WEIGHTS,
        option=WEIGHTS_OPTION,
        how_to=how_to_get(protocol),
        extractor_standard=f"{name}-openai",
        extractor_custom=f"{name}-custom-weights",
        check_layout=check_clip_layout,
        layout="OpenAI CLIP's layout (visual.*)",
        url=protocol.url,
        folders=(("ganeval-home", ganeval_weights_dir), ("openai-clip-cache", openai_clip_cache)),
        convert=convert_openai_file,
        converted_stem=protocol.converted_stem,
        convert_standard=True,
        read_file=read_weights_file,
        nonstandard_note=f"{protocol.title.split(' (')[0]} not comparable with published numbers",
    )


def read_weights_file(path: Path) -> object:
    """A non-safetensors weights file: a TorchScript archive through the safe reader (nothing in it runs),
    anything else through ``torch.load(weights_only=True)``."""
    if is_torchscript_archive(path):
        return read_archive(path)
    return safe_torch_load(path)


def check_clip_layout(path: Path, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The image tower of a state dict in OpenAI's layout: its ``visual.*`` tensors (the text tower's keys
    are dropped), checked against a tower of the configuration its shapes give: the same keys and shapes,
    floating-point dtypes. One-line WeightsError naming ``path`` otherwise."""
    visual = {key: value for key, value in state.items() if key.startswith(PREFIX)}
    try:
        config = infer_config(visual)
    except KeyError as exc:
        raise WeightsError(f"{path}: not OpenAI CLIP's ViT layout (no tensor {exc.args[0]})") from None
    except ValueError as exc:
        raise WeightsError(f"{path}: not OpenAI CLIP's ViT layout ({exc})") from None
    generic.check_tensors(path, visual, visual_keys(config), "OpenAI CLIP's ViT layout")
    return visual


def convert_openai_file(path: Path) -> dict[str, torch.Tensor]:
    """OpenAI's TorchScript file (or any state dict in its layout) → its image tower's tensors, dtypes as
    stored (float16 in OpenAI's files), each contiguous with a storage of its own (as safetensors needs)."""
    state = read_weights_file(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors in OpenAI CLIP's layout")
    visual = check_clip_layout(path, state)
    owners = Counter(value.untyped_storage().data_ptr() for value in visual.values())
    return {
        key: value if _owns_storage(value, owners) else value.clone(memory_format=torch.contiguous_format)
        for key, value in visual.items()
    }


def _owns_storage(value: torch.Tensor, owners: Counter[int]) -> bool:
    """Whether ``value`` is contiguous, alone on its storage and covers all of it."""
    storage = value.untyped_storage()
    whole = bool(value.is_contiguous()) and int(value.storage_offset()) == 0
    return whole and owners[storage.data_ptr()] == 1 and int(storage.nbytes()) == value.numel() * value.element_size()


# --- preprocessing ------------------------------------------------------------------------------------------


def _as_image(image: np.ndarray) -> Image.Image:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}"
        raise BadInputError(f"CLIP input images must be uint8 (H, W, 3), got {got}")
    return Image.fromarray(image)


def clean_fid_clip_crop(image: np.ndarray, size: int = 224) -> np.ndarray:
    """clean-fid's ``img_preprocess_clip`` at ``size``: uint8 (H, W, 3) → uint8 (size, size, 3). torchvision's
    ``Resize(size, BICUBIC)`` on a PIL image (shorter side → size, longer → ``int(size · long / short)``, PIL
    bicubic with antialiasing), then ``CenterCrop(size)`` (top/left = ``int(round((side − size) / 2))``)."""
    pil = _as_image(image)
    width, height = pil.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    pil = pil.resize((new_w, new_h), Image.Resampling.BICUBIC)
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    return np.asarray(pil.crop((left, top, left + size, top + size)), dtype=np.uint8)


def cmmd_crop(image: np.ndarray, size: int = 336) -> np.ndarray:
    """CMMD's ``_center_crop_and_resize``: uint8 (H, W, 3) → uint8 (size, size, 3). The largest centred
    square (box (left, top, left + s, top + s), s = min(w, h), left = (w − s) // 2, top = (h − s) // 2), then
    PIL ``resize((size, size), BICUBIC)`` (antialiased)."""
    pil = _as_image(image)
    width, height = pil.size
    side = min(width, height)
    top, left = (height - side) // 2, (width - side) // 2
    pil = pil.crop((left, top, left + side, top + side)).resize((size, size), resample=Image.Resampling.BICUBIC)
    return np.asarray(pil, dtype=np.uint8)


def _channel(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float32, device=like.device).view(-1, 1, 1)


def clean_fid_scaling(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, R, R) → float32 network input, clean-fid's operations in its order: ``ToTensor``
    (float32 ÷ 255), ×255 (its dataset), ÷255.0 (``CLIP_fx``), ``Normalize`` (− mean, ÷ std)."""
    x = images.to(torch.float32).div(255) * 255
    x = x / 255.0
    return x.sub(_channel(OPENAI_MEAN, x)).div(_channel(OPENAI_STD, x))


def cmmd_scaling(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, R, R) → float32 network input as CMMD: float32 ÷ 255.0, then (x − mean) / std."""
    x = images.to(torch.float32) / 255.0
    return (x - _channel(OPENAI_MEAN, x)) / _channel(OPENAI_STD, x)


_CROPS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {"clean-fid": clean_fid_clip_crop, "cmmd": cmmd_crop}
_SCALINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"clean-fid": clean_fid_scaling, "cmmd": cmmd_scaling}


# --- the extractor ------------------------------------------------------------------------------------------


class CLIPExtractor(VectorExtractor):
    """An OpenAI CLIP image tower under one protocol (module docstring): part ``embedding`` (B, D) float32.

    The weights are located on first use (``weights``), the network built on first use (``network``); a run
    whose features are all cached reads only the shapes of the cached tower."""

    default_vector: str | None = "embedding"

    def __init__(
        self,
        name: str,
        weights: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        precision: str = "fp32",
    ) -> None:
        if name not in PROTOCOLS:
            raise ValueError(f"unknown CLIP protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.name = name
        self.protocol = PROTOCOLS[name]
        self.device = resolve_device(device)
        self.numerics = check_numerics(precision, self.device)
        self.batch_size = batch_size
        self._weights_arg = weights
        self._weights: generic.WeightsInfo | None = None
        self._config: VisionConfig | None = None
        self._network: CLIPVisionTower | None = None

    @property
    def weights(self) -> generic.WeightsInfo:
        """The located and verified weights (found on first use). The other protocol's standard file is
        refused: its numbers would silently belong to another feature space."""
        if self._weights is None:
            info = generic.locate(clip_spec(self.name), self._weights_arg)
            for other in PROTOCOLS.values():
                if other.name != self.name and info.sha256 == other.sha256:
                    raise WeightsError(
                        f"{info.path}: this is OpenAI's {other.model} file ({other.name}); "
                        f"{self.name} needs {self.protocol.filename}"
                    )
            self._weights = info
        return self._weights

    @property
    def config(self) -> VisionConfig:
        """The tower's configuration, from the shapes of the weights (a cached tower's header only)."""
        if self._config is None:
            if self._network is not None:
                self._config = self._network.config
            else:
                self._config = infer_config(self._shapes())
        return self._config

    def _shapes(self) -> dict[str, torch.Tensor]:
        """The tensors of the weights as meta tensors (shapes only)."""
        path = self.weights.state_path
        if path != self.weights.path:  # our conversion: checked when it was made
            with safe_open(str(path), framework="pt") as handle:
                return {
                    key: torch.empty(handle.get_slice(key).get_shape(), device="meta")
                    for key in handle.keys()
                    if key.startswith(PREFIX)
                }
        return {key: value.to("meta") for key, value in generic.load_state_dict(self.weights).items()}

    @property
    def network(self) -> CLIPVisionTower:
        """The tower on ``self.device``, float32, built on first use."""
        if self._network is None:
            tower = build_visual(generic.load_state_dict(self.weights))
            self._network = prepare_model(tower, self.device)
            self._config = tower.config
        return self._network

    def part_dims(self) -> Mapping[str, int | None]:
        return {"embedding": self.config.embed_dim}

    def identity(self, part: str) -> dict[str, object]:
        return {
            "extractor": self.weights.extractor,
            "weights_sha256": self.weights.sha256,
            "protocol": self.name,
            "preprocess": self.protocol.preprocess_id,
            "architecture": self.config.architecture,
            **({"precision": self.numerics} if self.numerics != "fp32" else {}),
        }

    def provenance(self) -> dict[str, object]:
        """What made the features (the engine also keeps it per network, under ``networks``): protocol,
        weights, architecture, preprocessing, precision, device, versions."""
        own: dict[str, object] = {
            "protocol": self.name,
            "reproduces": self.protocol.title,
            "architecture": self.config.architecture,
            "input_resolution": self.config.image_resolution,
            "preprocess": self.protocol.preprocess_id,
            "precision": self.numerics,
            "device": describe_device(self.device),
            "batch_size": self.batch_size,
            "torch_version": torch.__version__,
        }
        return {
            **self.weights.to_dict(),
            **own,
            "ganeval_version": __version__,
        }

    @property
    def warning(self) -> str | None:
        """The non-standard-weights warning, or None."""
        return self.weights.warning

    def per_image(self, parts: Mapping[str, Params]) -> Callable[[np.ndarray], Any] | None:
        crop, size = _CROPS[self.protocol.preprocess], self.config.image_resolution
        return lambda image: crop(image, size)

    def run(self, batch: Batch, parts: Mapping[str, Params]) -> dict[str, Any]:
        if self.name in batch.prepared:
            prepared = batch.prepared[self.name]
        else:
            stage = self.per_image(parts)
            assert stage is not None
            prepared = [stage(image) for image in batch.arrays()]
        return {"embedding": self.forward_prepared(prepared)}

    def preprocess(self, prepared: list[np.ndarray]) -> torch.Tensor:
        """The network input, float32 (B, 3, R, R) on the device, for per-image-stage outputs (R, R, 3) uint8."""
        batch = torch.from_numpy(np.stack(prepared)).permute(0, 3, 1, 2)
        return _SCALINGS[self.protocol.preprocess](to_device(batch, self.device))

    @torch.inference_mode()
    def forward_prepared(self, prepared: list[np.ndarray]) -> np.ndarray:
        """The embeddings (B, D) float32 numpy of images through the per-image stage, uint8 (R, R, 3) each."""
        if not prepared:
            return np.zeros((0, self.config.embed_dim), dtype=np.float32)
        network = self.network
        x = self.preprocess(prepared)
        chunk = forward_chunk(self.device) or len(x)
        out = []
        with numerics_context(self.numerics, self.device):
            for start in range(0, len(x), chunk):
                out.append(network(prepare_input(x[start : start + chunk])).float())
        return torch.cat(out).cpu().numpy()
