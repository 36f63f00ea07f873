"""Inception-v3 as in TensorFlow's 2015-12-05 graph, the network FID is defined on.

The blocks are torchvision's Inception3 blocks with the differences of the TF graph (as ported by
pytorch-fid): average pools that do not count padding in the A, C and first E blocks, a max pool in
the last E block, and a 1008-way classifier. Parameter names follow pytorch-fid's state-dict layout
(``Conv2d_1a_3x3.conv.weight``, ``Mixed_7c.branch_pool.bn.running_var``, ``fc.weight``, ...).

Input: float tensor (N, 3, 299, 299), already resized and normalised (see ``preprocess``).
Output: pool3 (N, 2048) and, when the classifier is loaded, logits (N, 1008) from the same forward;
``FIDInceptionV3.taps`` gives any subset of the parts in ``PART_DIMS`` (sFID's spatial feature, the
64/192/768-d pools of pytorch-fid's ``--dims``) from one forward that stops at the last layer needed.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

POOL3_DIM = 2048
NUM_CLASSES = 1008
INPUT_SIZE = 299

SPATIAL_CHANNELS = 7
"""sFID keeps the first 7 of the 192 channels of TF's ``mixed_6/conv:0`` (openai/guided-diffusion)."""

PART_DIMS: dict[str, int] = {
    "pool_64": 64,
    "pool_192": 192,
    "spatial": 17 * 17 * SPATIAL_CHANNELS,
    "pool_768": 768,
    "pool3": POOL3_DIM,
    "logits_unbiased": NUM_CLASSES,
}
"""Features per image of each part ``FIDInceptionV3.taps`` produces, for a 299×299 input, in the order the
forward reaches them:

- ``pool_64``: global average of the 64 channels after MaxPool_1 (Conv2d_2b_3x3, then the first 3×3/2 max pool);
- ``pool_192``: the same after MaxPool_2 (Conv2d_4a_3x3, then the second max pool), 192 channels;
- ``spatial``: sFID's feature, TF's ``mixed_6/conv:0`` = Mixed_6d's branch1x1 after its ReLU (192 × 17 × 17),
  first 7 channels, flattened in TF's NHWC order (H, W, C);
- ``pool_768``: global average of Mixed_6e's output (the input of the auxiliary classifier);
- ``pool3``: global average of Mixed_7c's output (FID's feature);
- ``logits_unbiased``: pool3 · fc.weightᵀ without the bias (networks with a classifier only).

The three pools are pytorch-fid's ``--dims 64/192/768`` and torch-fidelity's ``feature_layer_fid`` '64', '192',
'768'."""

_PART_DEPTH = {"pool_64": 1, "pool_192": 2, "spatial": 3, "pool_768": 4, "pool3": 5, "logits_unbiased": 5}
"""The stage of the forward after which each part is known (``taps`` stops after the deepest one wanted)."""


class InceptionOutput(NamedTuple):
    """pool3: (N, 2048). logits_unbiased: pool3 · Wᵀ (N, 1008) without the bias, as the Inception
    Score uses them. logits: with the bias. Both are None when the network has no classifier."""

    pool3: torch.Tensor
    logits_unbiased: torch.Tensor | None
    logits: torch.Tensor | None


class BasicConv2d(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3), ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn: nn.BatchNorm2d | nn.Identity = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))

    def fold_batchnorm(self) -> None:
        """Fold the (inference-mode) BatchNorm into the convolution: weight·γ/√(var+ε) and bias
        β − mean·γ/√(var+ε), computed in float64 and rounded once to the weights' dtype. One pass over the
        activations fewer; the output moves by float32 reassociation only (~1e-5 absolute on pool3)."""
        if isinstance(self.bn, nn.Identity):
            return
        conv, bn = self.conv, self.bn
        # built with affine=True and track_running_stats=True (the default), so all four are set
        assert bn.running_mean is not None and bn.running_var is not None
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        dtype = conv.weight.dtype
        # the convolution takes the folded tensors in place (its bias was registered as None): no new module,
        # so no initialisation draws from torch's global RNG, which a training loop relies on
        conv.bias = nn.Parameter((bn.bias.double() - bn.running_mean.double() * scale).to(dtype), requires_grad=False)
        conv.weight = nn.Parameter((conv.weight.double() * scale[:, None, None, None]).to(dtype), requires_grad=False)
        self.bn = nn.Identity()


def _global_average(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, C): mean over the spatial positions (the peers' ``adaptive_avg_pool2d`` to 1×1)."""
    return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def _avg_pool_same(x: torch.Tensor) -> torch.Tensor:
    """3×3 stride-1 average pool that, like TensorFlow's, ignores the zero padding."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool_same(x)),
            ],
            1,
        )


class InceptionB(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            1,
        )


class InceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        d = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(self.branch7x7dbl_2(d))))
        # branch1x1 comes first: output[:, :192] is its post-ReLU activation, copied unchanged (the spatial tap)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool_same(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """E block; ``pool="avg"`` for Mixed_7b (padding not counted), ``pool="max"`` for Mixed_7c."""

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        if self.pool == "max":
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _avg_pool_same(x)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3. ``with_classifier=False`` builds the trunk only (pool3, no logits)."""

    def __init__(self, with_classifier: bool = True) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(POOL3_DIM, NUM_CLASSES) if with_classifier else None

    @property
    def has_classifier(self) -> bool:
        return self.fc is not None

    def forward(self, x: torch.Tensor) -> InceptionOutput:
        parts = self.taps(x, ("pool3", "logits_unbiased") if self.fc is not None else ("pool3",))
        if self.fc is None:
            return InceptionOutput(parts["pool3"], None, None)
        unbiased = parts["logits_unbiased"]
        return InceptionOutput(parts["pool3"], unbiased, unbiased + self.fc.bias)

    def taps(self, x: torch.Tensor, wanted: Collection[str]) -> dict[str, torch.Tensor]:
        """The parts named in ``wanted`` (keys of ``PART_DIMS``) for the input x (N, 3, 299, 299), from one
        forward that stops after the deepest part wanted: pool_64 (N, 64), pool_192 (N, 192), spatial
        (N, 2023), pool_768 (N, 768), pool3 (N, 2048), logits_unbiased (N, 1008), in the network's float dtype
        (NCHW or channels_last alike). An empty ``wanted`` runs nothing. ValueError for an unknown name, or
        logits_unbiased without a classifier."""
        wanted = frozenset(wanted)
        unknown = sorted(wanted - PART_DIMS.keys())
        if unknown:
            raise ValueError(
                f"unknown Inception part(s) {', '.join(map(repr, unknown))}; choose from {', '.join(PART_DIMS)}"
            )
        if "logits_unbiased" in wanted and self.fc is None:
            raise ValueError("logits_unbiased needs the 1008-way classifier, which this network was built without")
        depth = max((_PART_DEPTH[name] for name in wanted), default=0)
        parts: dict[str, torch.Tensor] = {}
        if depth == 0:
            return parts
        x = F.max_pool2d(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))), kernel_size=3, stride=2)
        if "pool_64" in wanted:
            parts["pool_64"] = _global_average(x)
        if depth == 1:
            return parts
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), kernel_size=3, stride=2)
        if "pool_192" in wanted:
            parts["pool_192"] = _global_average(x)
        if depth == 2:
            return parts
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
        ):
            x = block(x)
        if "spatial" in wanted:  # Mixed_6d's first 192 channels are its branch1x1 (see InceptionC.forward)
            parts["spatial"] = x[:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).reshape(len(x), -1)
        if depth == 3:
            return parts
        x = self.Mixed_6e(x)
        if "pool_768" in wanted:
            parts["pool_768"] = _global_average(x)
        if depth == 4:
            return parts
        pool3 = _global_average(self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x))))
        if "pool3" in wanted:
            parts["pool3"] = pool3
        if "logits_unbiased" in wanted:
            assert self.fc is not None  # checked before the forward
            parts["logits_unbiased"] = pool3 @ self.fc.weight.T
        return parts


def fold_batchnorm(model: FIDInceptionV3) -> FIDInceptionV3:
    """The same network, in place, with every BatchNorm folded into its convolution (inference only; the
    state-dict layout no longer matches pytorch-fid's afterwards)."""
    for module in model.modules():
        if isinstance(module, BasicConv2d):
            module.fold_batchnorm()
    return model


def build_inception(state_dict: dict[str, torch.Tensor]) -> FIDInceptionV3:
    """Build the network for a pytorch-fid-layout state dict (with or without ``fc.*``), in eval mode,
    gradients off. Built on the meta device and given the tensors, so no random initialisation runs (and
    torch's global RNG, which a training loop relies on, is not advanced). Raises RuntimeError (via
    load_state_dict) on a layout mismatch."""
    with torch.device("meta"):
        model = FIDInceptionV3(with_classifier="fc.weight" in state_dict)
    model.load_state_dict({key: value.contiguous() for key, value in state_dict.items()}, strict=True, assign=True)
    model.requires_grad_(False)
    return model.eval()
