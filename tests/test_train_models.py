"""DCGAN models: shapes for every supported size and channel count, normalisation placement, initialisation
statistics, the WGAN critics and argument checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from ganeval.train.models import DCGANDiscriminator, DCGANGenerator, init_weights, wgan_critic

CASES = [(size, channels) for size in (28, 32, 64) for channels in (1, 3)]
NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)
POOL_TYPES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def conv_blocks(model: nn.Module, kind: type[nn.Module]) -> list[list[nn.Module]]:
    """Every convolution of ``kind`` in forward order, with the modules that follow it up to the next one."""
    blocks: list[list[nn.Module]] = []
    for module in model.modules():
        if isinstance(module, kind):
            blocks.append([module])
        elif blocks and not list(module.children()):
            blocks[-1].append(module)
    return blocks


@pytest.mark.parametrize("size, channels", CASES)
def test_generator_shapes_and_range(size: int, channels: int) -> None:
    torch.manual_seed(0)
    generator = DCGANGenerator(size=size, channels=channels, width=8)
    assert (generator.z_dim, generator.size, generator.channels) == (100, size, channels)
    z = torch.randn(5, 100) * 3
    flat = generator(z)
    assert flat.shape == (5, channels, size, size)
    assert flat.min() >= -1 and flat.max() <= 1
    torch.testing.assert_close(generator(z[:, :, None, None]), flat)
    generator.eval()
    assert generator(z).shape == (5, channels, size, size)


@pytest.mark.parametrize("size, channels", CASES)
@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_discriminator_shapes(size: int, channels: int, norm: str) -> None:
    torch.manual_seed(0)
    images = torch.rand(4, channels, size, size) * 2 - 1
    logits = DCGANDiscriminator(size=size, channels=channels, width=8, norm=norm)(images)
    assert logits.shape == (4,)
    probabilities = DCGANDiscriminator(size=size, channels=channels, width=8, norm=norm, sigmoid=True)(images)
    assert probabilities.shape == (4,)
    assert probabilities.min() > 0 and probabilities.max() < 1


@pytest.mark.parametrize("size, expected", [(28, [7, 14, 28]), (32, [4, 8, 16, 32]), (64, [4, 8, 16, 32, 64])])
def test_generator_resolution_path_and_widths(size: int, expected: list[int]) -> None:
    """The feature map after each transposed convolution: the documented sides, channels halving."""
    generator = DCGANGenerator(size=size, channels=3, width=8)
    sides, widths = [], []

    def record(_module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        sides.append(out.shape[-1])
        widths.append(out.shape[1])

    hooks = [m.register_forward_hook(record) for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    generator(torch.randn(2, 100))
    for hook in hooks:
        hook.remove()
    assert sides == expected
    hidden = len(expected) - 1
    assert widths == [8 * 2 ** (hidden - 1 - i) for i in range(hidden)] + [3]
    strides = [m.stride for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert strides[0] == (1, 1) and all(s == (2, 2) for s in strides[1:])


@pytest.mark.parametrize("size, channels", CASES)
def test_generator_normalisation_placement(size: int, channels: int) -> None:
    generator = DCGANGenerator(size=size, channels=channels, width=8)
    blocks = conv_blocks(generator, nn.ConvTranspose2d)
    for block in blocks[:-1]:
        assert [type(m) for m in block] == [nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU]
    assert [type(m) for m in blocks[-1]] == [nn.ConvTranspose2d, nn.Tanh]
    assert not any(isinstance(m, (nn.Linear,) + POOL_TYPES) for m in generator.modules())


@pytest.mark.parametrize("size, channels", CASES)
def test_discriminator_normalisation_placement(size: int, channels: int) -> None:
    discriminator = DCGANDiscriminator(size=size, channels=channels, width=8)
    blocks = conv_blocks(discriminator, nn.Conv2d)
    assert [type(m) for m in blocks[0]] == [nn.Conv2d, nn.LeakyReLU]
    for block in blocks[1:-1]:
        assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU]
    assert [type(m) for m in blocks[-1]] == [nn.Conv2d]
    assert blocks[-1][0].out_channels == 1
    for block in blocks[:-1]:
        conv, act = block[0], block[-1]
        assert (conv.kernel_size, conv.stride, conv.padding) == ((4, 4), (2, 2), (1, 1))
        assert act.negative_slope == pytest.approx(0.2)
    assert not any(isinstance(m, (nn.Linear,) + POOL_TYPES) for m in discriminator.modules())


def test_layer_and_no_norm_discriminators() -> None:
    layer = DCGANDiscriminator(size=32, channels=3, width=8, norm="layer")
    norms = [m for m in layer.modules() if isinstance(m, NORM_TYPES)]
    assert norms and all(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in norms)
    assert len(norms) == len(conv_blocks(layer, nn.Conv2d)) - 2
    assert isinstance(conv_blocks(layer, nn.Conv2d)[0][1], nn.LeakyReLU)
    plain = DCGANDiscriminator(size=32, channels=3, width=8, norm="none")
    assert not any(isinstance(m, NORM_TYPES) for m in plain.modules())


def test_groupnorm_one_group_is_layer_norm_over_chw() -> None:
    """The "layer" choice normalises each sample over (C, H, W): the same as nn.LayerNorm((C, H, W)) with unit
    affine."""
    x = torch.randn(3, 6, 5, 5, dtype=torch.float64)
    group = nn.GroupNorm(1, 6).double()
    layer = nn.LayerNorm((6, 5, 5), elementwise_affine=False).double()
    torch.testing.assert_close(group(x), layer(x))


def test_wgan_critics() -> None:
    torch.manual_seed(0)
    images = torch.rand(4, 3, 32, 32)
    gp = wgan_critic(size=32, channels=3, width=8, gradient_penalty=True)
    assert not gp.sigmoid and gp.norm == "layer"
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) for m in gp.modules())
    assert gp(images).shape == (4,)
    clipped = wgan_critic(size=32, channels=3, width=8)
    assert not clipped.sigmoid and clipped.norm == "batch"
    assert any(isinstance(m, nn.BatchNorm2d) for m in clipped.modules())
    # Per-sample independence of the GP critic: a sample's score does not depend on the rest of the batch.
    gp.train()
    torch.testing.assert_close(gp(images)[:2], gp(images[:2]))


def test_spectral_norm_wraps_every_conv() -> None:
    torch.manual_seed(0)
    critic = wgan_critic(size=28, channels=1, width=8, gradient_penalty=True, spectral_norm=True)
    convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3
    assert all(parametrize.is_parametrized(m, "weight") for m in convs)
    assert critic(torch.rand(2, 1, 28, 28)).shape == (2,)
    plain = DCGANDiscriminator(size=28, channels=1, width=8)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    with torch.no_grad():  # each training-mode call runs one more power iteration
        for _ in range(50):
            critic(torch.rand(2, 1, 28, 28))
    critic.eval()
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.01)


def test_init_weights_statistics() -> None:
    torch.manual_seed(0)
    generator = DCGANGenerator(size=64, channels=3, width=64)
    weights = torch.cat([m.weight.detach().flatten() for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert weights.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert weights.std().item() == pytest.approx(0.02, rel=0.02)
    gammas = torch.cat([m.weight.detach() for m in generator.modules() if isinstance(m, nn.BatchNorm2d)])
    assert gammas.mean().item() == pytest.approx(1.0, abs=0.005)
    assert gammas.std().item() == pytest.approx(0.02, rel=0.1)
    for module in generator.modules():
        if isinstance(module, nn.BatchNorm2d) or (isinstance(module, nn.ConvTranspose2d) and module.bias is not None):
            assert torch.count_nonzero(module.bias) == 0

    conv = nn.Conv2d(64, 64, 4)
    nn.init.constant_(conv.weight, 5.0)
    nn.init.constant_(conv.bias, 5.0)
    init_weights(conv)
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.05) and torch.count_nonzero(conv.bias) == 0
    relu = nn.ReLU()
    init_weights(relu)


def test_argument_checks() -> None:
    for bad in (16, 48, 128):
        with pytest.raises(ValueError, match="size"):
            DCGANGenerator(size=bad)
        with pytest.raises(ValueError, match="size"):
            DCGANDiscriminator(size=bad)
    for bad in (0, 2, 4):
        with pytest.raises(ValueError, match="channel"):
            DCGANGenerator(channels=bad)
        with pytest.raises(ValueError, match="channel"):
            wgan_critic(channels=bad)
    for bad in (0, -8, 2.5, True):
        with pytest.raises(ValueError, match="width"):
            DCGANGenerator(width=bad)
        with pytest.raises(ValueError, match="width"):
            DCGANDiscriminator(width=bad)
    with pytest.raises(ValueError, match="norm"):
        DCGANDiscriminator(norm="instance")
    with pytest.raises(ValueError, match="z_dim"):
        DCGANGenerator(z_dim=0)
    generator = DCGANGenerator(size=28, channels=1, width=8, z_dim=16)
    assert generator(torch.randn(2, 16)).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="z must have shape"):
        generator(torch.randn(2, 100))
    with pytest.raises(ValueError, match="images must have shape"):
        DCGANDiscriminator(size=28, channels=1, width=8)(torch.randn(2, 3, 28, 28))
