"""VGG16 fc2 features for the published precision/recall protocol (Kynkäänniemi et al. 2019; StyleGAN's pr50k3).

Network: torchvision's VGG16 (configuration "D", no BatchNorm) with its ImageNet weights
``vgg16-397923af.pth``; the feature is fc2 after its ReLU, (B, 4096) float32, as torch-fidelity's ``fc2_relu``.
The architecture is written out here with torchvision's module names (``features.0.weight`` …
``classifier.6.bias``) so that torchvision stays a test-only dependency; the tests pin it to
``torchvision.models.vgg16``.

Weights, first hit wins:

1. an explicit path (``--vgg-weights`` / ``weights=``), then ``$GANEVAL_VGG16_WEIGHTS``: any state dict in
   torchvision's layout; a file whose sha256 is not the standard one is used as "vgg16-custom-weights";
2. ``$GANEVAL_HOME/weights/vgg16-397923af.pth``, then torch hub's ``checkpoints/vgg16-397923af.pth`` (where
   torchvision caches it): must be the standard file;
3. a download from download.pytorch.org into ``$GANEVAL_HOME/weights`` (only with ``download=True``),
   verified by sha256 before an atomic rename.

They are declared as a ``WeightSpec`` (``vgg16_spec``) over the generic helper ``ganeval.extractors.weights``.

The full sha256 ``397923af8e79…5bf0`` (553,433,881 bytes) is verified, not only the 8-digit prefix in the
file name that torchvision checks: it is listed identically by several independent public hash lists
(for example snap-research/discoscene ``models/perceptual_model.py``, next to torchvision's URL).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .device import describe as describe_device
from .device import exact_float32, prepare_input, prepare_model, resolve_device, to_device
from .errors import BadInputError
from .preprocess import tf_resize_bilinear
from .extractors import weights as generic
from .extractors.weights import WeightSpec, WeightsInfo
from .paths import ganeval_home, ganeval_weights_dir, torch_hub_checkpoints

VGG16_FILENAME = "vgg16-397923af.pth"
VGG16_URL = "https://download.pytorch.org/models/" + VGG16_FILENAME
VGG16_SHA256 = "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"
ENV_VGG_WEIGHTS = "GANEVAL_VGG16_WEIGHTS"
EXTRACTOR_STANDARD = "vgg16-torchvision-imagenet"
EXTRACTOR_CUSTOM = "vgg16-custom-weights"
FEATURE_DIM = 4096
INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESS_ID = "tf1-bilinear-224-imagenet-norm"
"""Names the preprocessing of ``preprocess_vgg`` in provenance (and should be part of any cache key)."""

_CFG_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
_MEAN_255 = torch.tensor([255 * m for m in IMAGENET_MEAN], dtype=torch.float32).view(1, 3, 1, 1)
_STD_255 = torch.tensor([255 * s for s in IMAGENET_STD], dtype=torch.float32).view(1, 3, 1, 1)


def how_to_get_vgg() -> str:
    """One line: where the standard file comes from and where ganeval looks for it (paths as of now)."""
    return (
        f"download {VGG16_URL} (sha256 {VGG16_SHA256[:16]}…) to {ganeval_home() / 'weights' / VGG16_FILENAME} "
        f"or {torch_hub_checkpoints() / VGG16_FILENAME}, or pass --vgg-weights PATH (or set ${ENV_VGG_WEIGHTS})"
    )


def vgg16_spec() -> WeightSpec:
    """The VGG16 weights as a WeightSpec, from this module's constants as they are now."""
    return WeightSpec(
        name="VGG16",
        filename=VGG16_FILENAME,
        sha256=VGG16_SHA256,
        standard_sha256={VGG16_SHA256: "torchvision VGG16 ImageNet weights (vgg16-397923af.pth)"},
        env=ENV_VGG_WEIGHTS,
        option="--vgg-weights",
        how_to=how_to_get_vgg(),
        extractor_standard=EXTRACTOR_STANDARD,
        extractor_custom=EXTRACTOR_CUSTOM,
        check_layout=check_vgg_layout,
        layout="torchvision's VGG16 layout",
        url=VGG16_URL,
        folders=(("ganeval-home", ganeval_weights_dir), ("torch-hub", torch_hub_checkpoints)),
        strict_name=False,
        nonstandard_note="precision/recall not comparable with published numbers",
        provenance_prefix="pr_",
    )


def nonstandard_vgg_warning(sha256: object) -> str:
    """The sentence every precision/recall made with non-standard VGG16 weights carries."""
    return generic.nonstandard_warning(vgg16_spec(), sha256)


VGGWeightsInfo = WeightsInfo
"""The VGG16 weights in use (``ganeval.extractors.weights.WeightsInfo``; this name stays for one release)."""


def locate_vgg_weights(
    explicit: str | os.PathLike[str] | None = None, download: bool = True, url: str = VGG16_URL, timeout: float = 30.0
) -> WeightsInfo:
    """Resolve the VGG16 weights in the order of the module docstring and hash the file found.
    Layout is checked when the file is read (``load_vgg_state_dict``)."""
    return generic.locate(vgg16_spec(), explicit, download, url=url, timeout=timeout)


def load_vgg_state_dict(path: str | os.PathLike[str], mmap: bool = False) -> dict[str, torch.Tensor]:
    """Read a VGG16 state dict (weights-only unpickling or safetensors, CPU) and check it against torchvision's
    layout: 32 float tensors ``features.{0,2,…,28}.{weight,bias}`` and ``classifier.{0,3,6}.{weight,bias}``.
    ``mmap`` maps a zip-format file instead of reading it (for a cheap layout check)."""
    return generic.read_state_dict(vgg16_spec(), Path(path), mmap=mmap)


def check_vgg_layout(path: Path, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The spec's layout check: names, shapes and floating-point dtypes of torchvision's VGG16."""
    generic.check_tensors(path, state, _reference_shapes(), "torchvision's VGG16 layout")
    return state


def _reference_shapes() -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {key: tuple(value.shape) for key, value in VGG16Features().state_dict().items()}


class VGG16Features(nn.Module):
    """torchvision's ``vgg16(weights=None)`` (same modules and state-dict names) whose forward stops at fc2
    after ReLU: float32 (B, 3, 224, 224) normalised input → (B, 4096) float32, all ≥ 0. ``classifier.6``
    (fc3, 1000 classes) is kept so that torchvision's state dict loads as it is, but is not run."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _CFG_D:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, FEATURE_DIM),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(FEATURE_DIM, FEATURE_DIM),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(FEATURE_DIM, 1000),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        for index in range(5):  # fc1, ReLU, Dropout (identity in eval), fc2, ReLU
            x = self.classifier[index](x)
        return x


def build_vgg16(state: dict[str, torch.Tensor]) -> VGG16Features:
    """The network in eval mode on the CPU with ``state`` (torchvision layout) as float32 parameters,
    built without a random initialisation."""
    with torch.device("meta"):
        model = VGG16Features()
    state = {key: value.to(torch.float32).contiguous() for key, value in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval().requires_grad_(False)


def preprocess_vgg(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) → float32 (B, 3, 224, 224), ImageNet-normalised; no crop (the whole image).

    Resize: TensorFlow 1 ``resize_bilinear`` (align_corners=False, no half-pixel centres, no antialiasing)
    on float [0, 255], then (x − 255·mean) / (255·std) with ImageNet mean (0.485, 0.456, 0.406) and std
    (0.229, 0.224, 0.225), i.e. (x/255 − mean)/std. Why: the published protocol resizes inside its network
    (StyleGAN2-ADA's pr50k3 feeds full-resolution uint8 images to NVIDIA's ``vgg16.pt``, a port of the
    official TF ``vgg16.pkl``); ports of that network reproduce its resize as TF1-style bilinear
    (snap-research/discoscene ``models/perceptual_model.py``, ``align_tf_resize``), and torch-fidelity's
    VGG16 ``fc2_relu`` extractor (its precision/recall default) does exactly this resize and normalisation
    with these weights. Antialiased bilinear would give different numbers from both.
    """
    if not isinstance(images_uint8, torch.Tensor) or images_uint8.dtype != torch.uint8:
        got = getattr(images_uint8, "dtype", type(images_uint8).__name__)
        raise BadInputError(f"VGG16 input must be a uint8 tensor, got {got}")
    if images_uint8.dim() != 4 or images_uint8.shape[1] != 3:
        raise BadInputError(f"VGG16 input must be (B, 3, H, W), got {tuple(images_uint8.shape)}")
    x = tf_resize_bilinear(images_uint8.to(torch.float32), (INPUT_SIZE, INPUT_SIZE))
    return (x - _MEAN_255.to(x.device)) / _STD_255.to(x.device)


def _as_batch(images: list[np.ndarray]) -> torch.Tensor:
    """Same-sized uint8 (H, W, 3) arrays → a uint8 (B, 3, H, W) tensor (a copy: inputs may be read-only)."""
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise BadInputError(f"VGG16 input images must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)


class VGGExtractor:
    """VGG16 fc2-after-ReLU features for precision/recall. The weights are found (and, when not the standard
    file, their layout checked) at construction; the network is built on the device on first use."""

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        download: bool = True,
    ) -> None:
        self.device = resolve_device(device)
        self.weights = locate_vgg_weights(weights, download=download)
        if not self.weights.standard:
            load_vgg_state_dict(self.weights.path, mmap=True)
        self._model: VGG16Features | None = None

    @property
    def model(self) -> VGG16Features:
        """The network on ``self.device`` in channels-last format, built on first use."""
        if self._model is None:
            self._model = prepare_model(build_vgg16(load_vgg_state_dict(self.weights.path)), self.device)
        return self._model

    def provenance(self) -> dict[str, object]:
        """What made the features, every key prefixed ``pr_``: extractor, weights, preprocessing, device."""
        return {
            **self.weights.to_dict(),
            "pr_feature_layer": "fc2_relu",
            "pr_feature_dim": FEATURE_DIM,
            "pr_preprocess": PREPROCESS_ID,
            "pr_device": describe_device(self.device),
        }

    def forward(self, images: torch.Tensor | list[np.ndarray]) -> np.ndarray:
        """fc2 after ReLU, float32 (B, 4096), for uint8 images: a tensor (B, 3, H, W) or a list of (H, W, 3)
        arrays of possibly different sizes."""
        if not isinstance(images, torch.Tensor) and len(images) == 0:
            return np.zeros((0, FEATURE_DIM), dtype=np.float32)
        model = self.model
        with torch.inference_mode():
            if isinstance(images, torch.Tensor):
                x = preprocess_vgg(to_device(images, self.device))
            elif len({img.shape for img in images}) == 1:
                x = preprocess_vgg(to_device(_as_batch(images), self.device))
            else:
                x = torch.cat([preprocess_vgg(to_device(_as_batch([img]), self.device)) for img in images])
            with exact_float32():
                out = model(prepare_input(x))
        return out.float().cpu().numpy()
