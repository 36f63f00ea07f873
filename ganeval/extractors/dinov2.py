"""DINOv2 ViT-L/14 CLS features as an extractor: the feature space of FD_DINOv2 (Stein et al. 2023,
"Exposing flaws of generative model evaluation metrics", dgm-eval; EDM2's ``fd_dinov2``).

Part ``cls``: the normalised CLS token ``x_norm_clstoken`` of Meta's ViT-L/14 backbone, (B, 1024) float32
(the width of other configs when other DINOv2 weights are given). The network is
``ganeval.extractors.dinov2_network``.

Preprocessing, ``resize=``:

- ``"pil"`` (default; dgm-eval's transform and EDM2's ``resize_mode='pil'``, "matches the original
  dgm-eval codebase exactly"): the uint8 image is resized by PIL bicubic to exactly 224×224 (aspect
  ratio squashed, no crop) and stays uint8, i.e. torchvision ``Resize((224, 224), BICUBIC)`` on a PIL
  image; then ``x/255``, minus ImageNet mean (0.485, 0.456, 0.406), over std (0.229, 0.224, 0.225)
  (``ToTensor``, ``Normalize``). The resize runs in the decode threads (``per_image``).
- ``"torch"`` (EDM2's default ``resize_mode='torch'``, "fast practical implementation that yields almost
  the same results"): EDM2's ``calculate_metrics.py`` ``DINOv2Detector`` does
  ``F.interpolate(x.to(torch.float32), size=(224, 224), mode='bicubic', antialias=True)`` on the uint8
  values as float [0, 255] (no rounding, no clamp), then the same ``/255`` and normalisation; here on the
  device, batch-wise.

Weights, first hit wins (``dinov2_spec``, over ``ganeval.extractors.weights``): an explicit path
(``--features-weights`` / ``weights=``), ``$GANEVAL_DINOV2_WEIGHTS`` (either any state dict in Meta's layout
of ViT-S/B/L/g-14, .pth/.pt or .safetensors), ``$GANEVAL_HOME/weights/dinov2_vitl14_pretrain.pth``, torch
hub's ``checkpoints/dinov2_vitl14_pretrain.pth`` (where ``torch.hub.load('facebookresearch/dinov2',
'dinov2_vitl14')`` caches it), then a download of Meta's file from dl.fbaipublicfiles.com.

The standard file's ``SHA256`` = ``d5383ea8f487…f428`` (1,217,586,395 bytes) is not published by Meta,
pinned from independent downloads: finegrain-ai/refiners' DINOv2 conversion script checks it
(``expected_sha256``, next to Meta's URL), a setup script checks its download of that URL with
``sha256sum -c``, and several projects' weight tables list the same sha256 and byte size. It is verified as
VGG16's is: the download is verified before its atomic rename (nothing is saved otherwise), and a
``dinov2_vitl14_pretrain.pth`` in ``$GANEVAL_HOME/weights`` or torch hub's ``checkpoints/`` with another
sha256 is refused (corrupted or partial download?). The standard file gives extractor ``dinov2-vitl14`` (no
warning); any other file, given explicitly, is used as custom weights (``dinov2-<config>-custom``) with a
warning. Every result records the sha256 it was made with.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import torch
import torch.nn.functional as F
from PIL import Image

from .. import __version__
from ..device import check_numerics, forward_chunk, numerics_context, prepare_input, prepare_model, resolve_device
from ..device import describe as describe_device
from ..device import to_device
from ..errors import BadInputError, GanevalError
from ..paths import ganeval_home, ganeval_weights_dir, torch_hub_checkpoints
from . import weights as generic
from .base import Batch, Params, VectorExtractor
from .dinov2_network import CONFIGS, DINOv2ViT, ViTConfig, build_dinov2, check_layout, infer_config
from .weights import State, WeightSpec, WeightsInfo

FILENAME = "dinov2_vitl14_pretrain.pth"
URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/" + FILENAME
SHA256 = "d5383ea8f4877b2472eb973e0fd72d557c7da5d3611bd527ceeb1d7162cbf428"
"""sha256 of Meta's ``dinov2_vitl14_pretrain.pth`` (1,217,586,395 bytes): not published by Meta, pinned from
independent downloads (see the module docstring)."""
ENV_WEIGHTS = "GANEVAL_DINOV2_WEIGHTS"
OPTION = "--features-weights"
STANDARD_CONFIG = "vitl14"
EXTRACTOR_STANDARD = "dinov2-vitl14"
INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("pil", "torch")
DEFAULT_BATCH_SIZE = 50


def how_to_get_dinov2() -> str:
    """One line: where Meta's file comes from and where ganeval looks for it (paths as of now)."""
    return (
        f"download {URL} (sha256 {SHA256[:16]}…) to {ganeval_home() / 'weights' / FILENAME} "
        f"or {torch_hub_checkpoints() / FILENAME}, or pass {OPTION} PATH (or set ${ENV_WEIGHTS})"
    )


def dinov2_spec() -> WeightSpec:
    """The DINOv2 weights as a WeightSpec (see the module docstring)."""
    return WeightSpec(
        name="DINOv2",
        filename=FILENAME,
        sha256=SHA256,
        standard_sha256={SHA256: f"Meta's DINOv2 ViT-L/14 backbone ({FILENAME})"},
        env=ENV_WEIGHTS,
        option=OPTION,
        how_to=how_to_get_dinov2(),
        extractor_standard=EXTRACTOR_STANDARD,
        extractor_custom="dinov2-custom-weights",
        check_layout=check_layout,
        layout="Meta's DINOv2 ViT layout",
        url=URL,
        folders=(("ganeval-home", ganeval_weights_dir), ("torch-hub", torch_hub_checkpoints)),
        strict_name=False,
        nonstandard_note="FD_DINOv2 not comparable with published numbers",
    )


def locate_dinov2_weights(
    explicit: str | os.PathLike[str] | None = None, download: bool = True, url: str = URL, timeout: float = 30.0
) -> WeightsInfo:
    """Resolve the DINOv2 weights in the order of the module docstring and hash the file found (or
    downloaded). The layout is checked when the file is read (``load_dinov2_state_dict``)."""
    return generic.locate(dinov2_spec(), explicit, download, url=url, timeout=timeout)


def load_dinov2_state_dict(path: str | os.PathLike[str], mmap: bool = False) -> State:
    """Read a state dict in Meta's DINOv2 layout (weights-only unpickling or safetensors, CPU tensors) and
    check it (``dinov2_network.check_layout``); ``mmap`` maps a zip-format file instead of reading it."""
    return generic.read_state_dict(dinov2_spec(), Path(path), mmap=mmap)


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInputError(f"DINOv2 input images must be uint8 (H, W, 3), got {image.dtype} {image.shape}")


def resize_pil(image: np.ndarray) -> np.ndarray:
    """The ``pil`` resize: uint8 (H, W, 3) → uint8 (224, 224, 3) by PIL bicubic, aspect squashed, no crop
    (``PIL.Image.resize((224, 224), BICUBIC)``, as torchvision's ``Resize((224, 224), BICUBIC)`` on a PIL image)."""
    _check_image(image)
    resized = Image.fromarray(np.ascontiguousarray(image)).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC)
    return np.asarray(resized)


def resize_torch(images: torch.Tensor) -> torch.Tensor:
    """The ``torch`` resize (EDM2's default): uint8 (B, 3, H, W) → float32 (B, 3, 224, 224) in about
    [0, 255] (bicubic overshoot is kept), ``F.interpolate(bicubic, antialias=True)`` on the float values."""
    return F.interpolate(images.to(torch.float32), size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", antialias=True)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """float32 (B, 3, H, W) in [0, 255] → ``(x/255 − mean)/std`` with ImageNet's mean and std."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return (x.to(torch.float32) / 255 - mean) / std


class DINOv2Extractor(VectorExtractor):
    """Part ``cls`` (B, D) float32, D = 1024 for ViT-L/14. Weights are located, and the network built, on
    first use: a run whose features are all cached never loads the network."""

    name = "dinov2"
    default_vector: str | None = "cls"

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        resize: str = "pil",
        device: str | torch.device | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        precision: str = "fp32",
    ) -> None:
        if resize not in RESIZE_MODES:
            raise GanevalError(f"unknown DINOv2 resize {resize!r}; choose from {', '.join(RESIZE_MODES)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.resize = resize
        self.device = resolve_device(device)
        self.numerics = check_numerics(precision, self.device)
        self.batch_size = batch_size
        self._weights_arg = weights
        self._weights: WeightsInfo | None = None
        self._config: ViTConfig | None = None
        self._model: DINOv2ViT | None = None

    @property
    def weights(self) -> WeightsInfo:
        """The located weights (found and hashed on first use)."""
        if self._weights is None:
            self._weights = locate_dinov2_weights(self._weights_arg)
        return self._weights

    @property
    def config(self) -> ViTConfig:
        """The network's config: ViT-L/14 for the standard file, otherwise read from the file's shapes."""
        if self._config is None:
            if self._model is not None:
                self._config = self._model.config
            elif self.weights.standard:
                self._config = CONFIGS[STANDARD_CONFIG]
            else:
                path = self.weights.state_path
                self._config = infer_config(path, load_dinov2_state_dict(path, mmap=True))
        return self._config

    @property
    def model(self) -> DINOv2ViT:
        """The network on ``self.device``, built on first use."""
        if self._model is None:
            path = self.weights.state_path
            self._model = prepare_model(build_dinov2(load_dinov2_state_dict(path), path), self.device)
            self._config = self._model.config
        return self._model

    @property
    def extractor_id(self) -> str:
        """``dinov2-vitl14`` with the standard file, ``dinov2-<config>-custom`` with any other."""
        return EXTRACTOR_STANDARD if self.weights.standard else f"dinov2-{self.config.name}-custom"

    @property
    def warning(self) -> str | None:
        """The non-standard-weights warning, or None."""
        return self.weights.warning

    def part_dims(self) -> Mapping[str, int | None]:
        return {"cls": self.config.dim}

    def identity(self, part: str) -> dict[str, object]:
        return {
            "extractor": self.extractor_id,
            "weights_sha256": self.weights.sha256,
            "architecture": self.config.name,
            "resize": self.resize,
            **({"precision": self.numerics} if self.numerics != "fp32" else {}),
        }

    def provenance(self) -> dict[str, object]:
        """What made the features: protocol, weights, architecture, preprocessing, device, versions."""
        return {
            **self.weights.to_dict(),
            "extractor": self.extractor_id,
            "protocol": EXTRACTOR_STANDARD if self.weights.standard else None,
            "architecture": self.config.name,
            "feature": "x_norm_clstoken",
            "feature_dim": self.config.dim,
            "input_size": INPUT_SIZE,
            "resize": self.resize,
            "precision": self.numerics,
            "device": describe_device(self.device),
            "batch_size": self.batch_size,
            "ganeval_version": __version__,
            "torch_version": torch.__version__,
            "pillow_version": PIL.__version__,
        }

    def per_image(self, parts: Mapping[str, Params]) -> Callable[[np.ndarray], Any] | None:
        return resize_pil if self.resize == "pil" else None

    def run(self, batch: Batch, parts: Mapping[str, Params]) -> dict[str, Any]:
        if self.resize == "pil" and self.name in batch.prepared:
            x = self._from_resized(batch.prepared[self.name])
        elif batch.tensor is not None:
            x = self.preprocess(batch.tensor)
        else:
            x = self._network_input(batch.arrays())
        return {"cls": self._features(x)}

    def forward(self, images: torch.Tensor | list[np.ndarray]) -> np.ndarray:
        """``cls`` (B, D) float32 of uint8 images: a tensor (B, 3, H, W) or (H, W, 3) arrays of any sizes."""
        x = self.preprocess(images) if isinstance(images, torch.Tensor) else self._network_input(images)
        return self._features(x)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """The network input, float32 (B, 3, 224, 224) on the device, of uint8 images (B, 3, H, W)."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise BadInputError(f"DINOv2 input must be uint8 (B, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        if self.resize == "pil":
            return self._network_input(list(images.permute(0, 2, 3, 1).cpu().numpy()))
        return normalise(resize_torch(to_device(images, self.device)))

    def _from_resized(self, resized: list[np.ndarray]) -> torch.Tensor:
        """The network input of images already through ``resize_pil``, uint8 (224, 224, 3) each."""
        if not resized:
            return torch.zeros((0, 3, INPUT_SIZE, INPUT_SIZE), device=self.device)
        batch = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2)
        return normalise(to_device(batch, self.device).to(torch.float32))

    def _network_input(self, images: list[np.ndarray]) -> torch.Tensor:
        """The network input of uint8 (H, W, 3) images of possibly different sizes."""
        for image in images:
            _check_image(image)
        if self.resize == "pil":
            return self._from_resized([resize_pil(image) for image in images])
        if not images:
            return torch.zeros((0, 3, INPUT_SIZE, INPUT_SIZE), device=self.device)
        if len({image.shape for image in images}) == 1:
            return self.preprocess(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2))
        return torch.cat([self.preprocess(torch.from_numpy(np.stack([image])).permute(0, 3, 1, 2)) for image in images])

    def _features(self, x: torch.Tensor) -> np.ndarray:
        """``cls`` of a prepared input (B, 3, 224, 224): float32 numpy (B, D) on the CPU."""
        if len(x) == 0:
            return np.zeros((0, self.config.dim), dtype=np.float32)
        model = self.model  # built outside inference mode: its parameters stay ordinary tensors
        chunk = forward_chunk(self.device) or len(x)
        outputs = []
        with torch.inference_mode(), numerics_context(self.numerics, self.device):
            for start in range(0, len(x), chunk):
                outputs.append(model(prepare_input(x[start : start + chunk])).float())
        return torch.cat(outputs).cpu().numpy()
