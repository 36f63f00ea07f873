"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016) for 28, 32 and 64 px images.

Architecture guidelines followed: no pooling (strided convolutions in D, fractionally strided ones in G),
BatchNorm in both networks except the generator's output layer and the discriminator's input layer, no
fully-connected hidden layers, ReLU in G with tanh on the output, LeakyReLU(0.2) in D, and weights drawn from
N(0, 0.02).

Resolution paths (``width`` = W, every stride-2 layer has kernel 4, stride 2, padding 1 and doubles or halves
the side exactly):

- 64 px: G 1→4 (8W) →8 (4W) →16 (2W) →32 (W) →64 (out); D 64→32 (W) →16 (2W) →8 (4W) →4 (8W) →1.
- 32 px: G 1→4 (4W) →8 (2W) →16 (W) →32 (out); D 32→16 (W) →8 (2W) →4 (4W) →1.
- 28 px: G 1→7 (2W) →14 (W) →28 (out); D 28→14 (W) →7 (2W) →1. The projection uses a 7×7 kernel instead
  of 4×4 (and the discriminator's head a 7×7 kernel), so 28 is reached by two exact doublings from 7.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

SIZES = (28, 32, 64)
CHANNELS = (1, 3)
NORMS = ("batch", "layer", "none")
_BASE_SIDE = {28: 7, 32: 4, 64: 4}


def _upsamplings(size: int) -> int:
    """Number of stride-2 stages between the base side (4 or 7) and ``size``."""
    side, count = _BASE_SIDE[size], 0
    while side < size:
        side, count = side * 2, count + 1
    return count


def _check(size: int, channels: int, width: int) -> None:
    if size not in SIZES:
        raise ValueError(f"unsupported image size {size!r}: choose one of {SIZES}")
    if channels not in CHANNELS:
        raise ValueError(f"unsupported channel count {channels!r}: choose one of {CHANNELS}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")


def _unconstrained_weight(module: nn.Conv2d | nn.ConvTranspose2d | nn.Linear) -> torch.Tensor:
    """The tensor to initialise for ``module.weight``: the weight itself, or the ``original`` that a
    parametrization (spectral norm) of it keeps."""
    if not parametrize.is_parametrized(module, "weight"):
        return module.weight
    chain = module.get_submodule("parametrizations.weight")
    assert isinstance(chain, parametrize.ParametrizationList)  # what torch keeps per parametrized tensor
    return chain.original


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation for one module (use ``model.apply(init_weights)``): (transposed) convolution and
    linear weights ~ N(0, 0.02) with zero bias; BatchNorm weight ~ N(1, 0.02) with zero bias. Other modules
    are left alone. A spectrally normalised weight is re-drawn through its unconstrained ``original``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(_unconstrained_weight(module), 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        if module.weight is not None:
            nn.init.normal_(module.weight, 1.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z (B, z_dim) or (B, z_dim, 1, 1) → images (B, channels, size, size) in [-1, 1].

    The projection of z is a 4×4 (7×7 for 28 px) transposed convolution applied to z seen as a 1×1 map,
    followed by BatchNorm and ReLU; then stride-2 transposed convolutions (kernel 4, padding 1), each with
    BatchNorm and ReLU and halving the channel count; the last one maps to ``channels`` with tanh and no
    BatchNorm. ``blocks`` holds the hidden stages (projection first), ``output`` the final layer.
    """

    def __init__(self, size: int = 32, channels: int = 3, z_dim: int = 100, width: int = 64) -> None:
        super().__init__()
        _check(size, channels, width)
        if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim < 1:
            raise ValueError(f"z_dim must be a positive integer, got {z_dim!r}")
        self.size = size
        self.channels = channels
        self.z_dim = z_dim
        self.width = width

        hidden = _upsamplings(size) - 1
        features = width * 2**hidden
        blocks = [self._block(z_dim, features, kernel=_BASE_SIDE[size], stride=1, padding=0)]
        for _ in range(hidden):
            blocks.append(self._block(features, features // 2, kernel=4, stride=2, padding=1))
            features //= 2
        self.blocks = nn.Sequential(*blocks)
        self.output = nn.Sequential(nn.ConvTranspose2d(features, channels, 4, 2, 1), nn.Tanh())
        self.apply(init_weights)

    @staticmethod
    def _block(c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
        return nn.Sequential(
            nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, z_dim) or (B, z_dim, 1, 1) → (B, channels, size, size)."""
        if z.dim() == 2 and z.shape[1] == self.z_dim:
            z = z[:, :, None, None]
        elif not (z.dim() == 4 and tuple(z.shape[1:]) == (self.z_dim, 1, 1)):
            raise ValueError(f"z must have shape (B, {self.z_dim}) or (B, {self.z_dim}, 1, 1), got {tuple(z.shape)}")
        return self.output(self.blocks(z))


class DCGANDiscriminator(nn.Module):
    """Images (B, channels, size, size) → one value per image, shape (B,): a raw logit, or a probability
    when ``sigmoid=True``.

    Stride-2 convolutions (kernel 4, padding 1) with LeakyReLU(0.2), doubling the channel count; the input
    block has no normalisation, every later block has ``norm``: "batch" (BatchNorm2d), "layer" (LayerNorm
    over (C, H, W) of each sample, implemented as ``nn.GroupNorm(1, C)`` with a per-channel affine, so it
    needs no spatial size) or "none". The head is a 4×4 (7×7 for 28 px) convolution with no padding to a
    single channel and no normalisation; there is no pooling and no fully-connected layer. With
    ``spectral_norm=True`` every convolution, the head included, is wrapped in
    ``torch.nn.utils.parametrizations.spectral_norm``. ``blocks`` holds the strided blocks, ``head`` the
    final convolution.
    """

    def __init__(
        self,
        size: int = 32,
        channels: int = 3,
        width: int = 64,
        norm: str = "batch",
        sigmoid: bool = False,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        _check(size, channels, width)
        if norm not in NORMS:
            raise ValueError(f"unsupported norm {norm!r}: choose one of {NORMS}")
        self.size = size
        self.channels = channels
        self.width = width
        self.norm = norm
        self.sigmoid = sigmoid
        self.spectral_norm = spectral_norm

        blocks = [self._block(channels, width, None)]
        features = width
        for _ in range(_upsamplings(size) - 1):
            blocks.append(self._block(features, features * 2, norm))
            features *= 2
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(features, 1, _BASE_SIDE[size], 1, 0)
        self.apply(init_weights)
        if spectral_norm:
            for module in list(self.modules()):
                if isinstance(module, nn.Conv2d):
                    _spectral_norm(module)

    @staticmethod
    def _block(c_in: int, c_out: int, norm: str | None) -> nn.Sequential:
        normalised = norm in ("batch", "layer")
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not normalised)]
        if norm == "batch":
            layers.append(nn.BatchNorm2d(c_out))
        elif norm == "layer":
            layers.append(nn.GroupNorm(1, c_out))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, channels, size, size) → (B,)."""
        expected = (self.channels, self.size, self.size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"images must have shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        out = self.head(self.blocks(x)).reshape(x.shape[0])
        return torch.sigmoid(out) if self.sigmoid else out


def wgan_critic(
    size: int = 32,
    channels: int = 3,
    width: int = 64,
    gradient_penalty: bool = False,
    spectral_norm: bool = False,
) -> DCGANDiscriminator:
    """The DCGAN discriminator trunk as a WGAN critic: images (B, channels, size, size) → scores (B,), no
    sigmoid. Without a gradient penalty (weight-clipped WGAN) it keeps BatchNorm. With
    ``gradient_penalty=True`` it uses ``norm="layer"`` instead, as Gulrajani et al. (2017) suggest: a
    per-sample gradient penalty is invalid when the critic mixes samples through batch statistics."""
    norm = "layer" if gradient_penalty else "batch"
    return DCGANDiscriminator(size, channels, width, norm=norm, sigmoid=False, spectral_norm=spectral_norm)
