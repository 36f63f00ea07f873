"""GAN losses against their formulas written out in NumPy float64, the gradient penalty against hand and
per-sample autograd computations, the WGAN helpers and the per-loss paper defaults."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from ganeval.train.losses import (
    LOSSES,
    LossSpec,
    clip_weights,
    d_loss_hinge,
    d_loss_lsgan,
    d_loss_minimax,
    d_loss_ns,
    d_loss_wgan,
    describe,
    g_loss_hinge,
    g_loss_lsgan,
    g_loss_minimax,
    g_loss_ns,
    g_loss_wgan,
    gradient_penalty,
    instance_noise,
    wasserstein_estimate,
)

REAL = np.array([-2.0, -0.5, 0.0, 1.5])
FAKE = np.array([0.7, -1.25, 3.0, -0.1])


def t(values: np.ndarray) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def bce(x: np.ndarray, y: float) -> float:
    """Binary cross-entropy from its definition: −[y·log σ(x) + (1 − y)·log(1 − σ(x))], averaged."""
    p = sigmoid(x)
    return float(np.mean(-(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))))


def check(value: torch.Tensor, expected: float) -> None:
    assert value.dim() == 0
    assert value.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("real_label", [1.0, 0.9, 0.75])
def test_standard_gan_discriminator_losses(real_label: float) -> None:
    expected = bce(REAL, real_label) + bce(FAKE, 0.0)
    check(d_loss_ns(t(REAL), t(FAKE), real_label=real_label), expected)
    check(d_loss_minimax(t(REAL), t(FAKE), real_label=real_label), expected)


def test_label_smoothing_by_hand() -> None:
    """A single logit 0 (D = ½) with real label 0.9 and a fake logit 0: −0.9·log ½ − 0.1·log ½ − log ½."""
    check(d_loss_ns(t(np.array([0.0])), t(np.array([0.0])), real_label=0.9), 2 * np.log(2.0))
    check(d_loss_ns(t(np.array([2.0])), t(np.array([-1.0]))), -np.log(sigmoid(2.0)) - np.log(1 - sigmoid(-1.0)))
    with pytest.raises(ValueError, match="real_label"):
        d_loss_ns(t(REAL), t(FAKE), real_label=1.5)


def test_standard_gan_generator_losses() -> None:
    check(g_loss_ns(t(FAKE)), float(np.mean(-np.log(sigmoid(FAKE)))))
    check(g_loss_ns(t(FAKE)), bce(FAKE, 1.0))
    check(g_loss_minimax(t(FAKE)), float(np.mean(np.log(1.0 - sigmoid(FAKE)))))
    check(g_loss_minimax(t(FAKE)), -bce(FAKE, 0.0))


def test_non_saturating_loss_is_stable_for_large_logits() -> None:
    big = torch.tensor([-200.0, 200.0])
    assert torch.isfinite(g_loss_ns(big)) and torch.isfinite(g_loss_minimax(big))
    assert g_loss_ns(big).item() == pytest.approx(100.0)
    assert torch.isfinite(d_loss_ns(big, big))


def test_lsgan_losses() -> None:
    check(d_loss_lsgan(t(REAL), t(FAKE)), 0.5 * np.mean((REAL - 1.0) ** 2) + 0.5 * np.mean(FAKE**2))
    check(g_loss_lsgan(t(FAKE)), 0.5 * np.mean((FAKE - 1.0) ** 2))


def test_hinge_losses() -> None:
    expected = np.mean(np.maximum(0.0, 1.0 - REAL)) + np.mean(np.maximum(0.0, 1.0 + FAKE))
    check(d_loss_hinge(t(REAL), t(FAKE)), expected)
    check(g_loss_hinge(t(FAKE)), -np.mean(FAKE))
    # Written out: relu(1 − real) = [3, 1.5, 1, 0], relu(1 + fake) = [1.7, 0, 4, 0.9].
    check(d_loss_hinge(t(REAL), t(FAKE)), (3 + 1.5 + 1 + 0) / 4 + (1.7 + 0 + 4 + 0.9) / 4)


def test_wgan_losses() -> None:
    check(d_loss_wgan(t(REAL), t(FAKE)), np.mean(FAKE) - np.mean(REAL))
    check(g_loss_wgan(t(FAKE)), -np.mean(FAKE))
    estimate = wasserstein_estimate(t(REAL), t(FAKE))
    assert isinstance(estimate, float)
    assert estimate == pytest.approx(np.mean(REAL) - np.mean(FAKE), rel=1e-12)
    assert wasserstein_estimate(t(REAL).requires_grad_(), t(FAKE)) == pytest.approx(estimate)


def test_losses_backpropagate_to_logits() -> None:
    """d/dx of the NS generator loss is −(1 − σ(x))/B, from the formula."""
    fake = t(FAKE).requires_grad_()
    g_loss_ns(fake).backward()
    np.testing.assert_allclose(fake.grad.numpy(), -(1.0 - sigmoid(FAKE)) / len(FAKE), rtol=1e-12)


class Linear(nn.Module):
    """f(x) = w·x (flattened) + b: its input gradient is w for every sample."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(0.3, dtype=w.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w.flatten() + self.b


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.6, 0.0], [0.0, 0.0], [0.5, -0.5]])
def test_gradient_penalty_of_a_linear_critic(w: list[float]) -> None:
    critic = Linear(torch.tensor(w, dtype=torch.float64))
    real = torch.randn(6, 2, dtype=torch.float64)
    fake = torch.randn(6, 2, dtype=torch.float64)
    penalty = gradient_penalty(critic, real, fake)
    check(penalty, (np.linalg.norm(w) - 1.0) ** 2)


def test_gradient_penalty_linear_critic_on_images_and_weight_gradient() -> None:
    """(‖w‖ − 1)² for image-shaped inputs; its gradient w.r.t. w is 2(‖w‖ − 1)·w/‖w‖ (needs create_graph)."""
    w = torch.arange(1.0, 13.0, dtype=torch.float64).reshape(3, 2, 2) / 10
    critic = Linear(w)
    real = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    fake = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    penalty = gradient_penalty(critic, real, fake)
    w_np = w.numpy()
    norm = np.linalg.norm(w_np)
    check(penalty, (norm - 1.0) ** 2)
    penalty.backward()
    np.testing.assert_allclose(critic.w.grad.numpy(), 2 * (norm - 1.0) * w_np / norm, rtol=1e-12)
    assert critic.b.grad is None or critic.b.grad.item() == 0.0


class Tiny(nn.Module):
    """A small nonlinear critic that treats samples independently: (B, 2, 3, 3) → (B,)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 2)
        self.out = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.conv(x)).flatten(1)).squeeze(1) + (x**2).flatten(1).sum(1)


def test_gradient_penalty_of_a_nonlinear_critic_per_sample() -> None:
    torch.manual_seed(0)
    critic = Tiny().double()
    real = torch.randn(5, 2, 3, 3, dtype=torch.float64)
    fake = torch.randn(5, 2, 3, 3, dtype=torch.float64)
    penalty = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))

    eps = torch.rand(5, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    squares = []
    for i in range(5):
        x = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).unsqueeze(0).requires_grad_()
        (grad,) = torch.autograd.grad(critic(x).sum(), x)
        squares.append((np.sqrt(np.sum(grad.numpy().astype(np.float64) ** 2)) - 1.0) ** 2)
    check(penalty, float(np.mean(squares)))

    # Same generator seed, same ε, same value; another seed draws other ε.
    again = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    assert again.item() == penalty.item()
    other = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(8))
    assert other.item() != penalty.item()

    # create_graph: the penalty reaches the critic's weights, and matches a finite difference.
    penalty.backward()
    grad_conv = critic.conv.weight.grad
    assert grad_conv is not None and torch.count_nonzero(grad_conv) > 0
    assert critic.out.weight.grad is not None and torch.count_nonzero(critic.out.weight.grad) > 0
    assert real.grad is None and fake.grad is None

    def penalty_at(delta: float) -> float:
        with torch.no_grad():
            critic.conv.weight[0, 0, 0, 0] += delta
        value = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7)).item()
        with torch.no_grad():
            critic.conv.weight[0, 0, 0, 0] -= delta
        return value

    h = 1e-6
    numeric = (penalty_at(h) - penalty_at(-h)) / (2 * h)
    assert grad_conv[0, 0, 0, 0].item() == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_gradient_penalty_input_checks() -> None:
    critic = Linear(torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(critic, torch.zeros(3, 2), torch.zeros(2, 2))


def test_clip_weights() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(0).add_(torch.linspace(-1, 1, parameter.numel()).reshape(parameter.shape))
    before = [p.detach().clone() for p in model.parameters()]
    ids = [id(p) for p in model.parameters()]
    clip_weights(model, 0.05)
    for parameter, old in zip(model.parameters(), before):
        assert parameter.abs().max() <= 0.05
        torch.testing.assert_close(parameter.detach(), old.clamp(-0.05, 0.05), rtol=0, atol=0)
    assert [id(p) for p in model.parameters()] == ids
    clip_weights(model)
    assert all(p.abs().max() <= 0.01 for p in model.parameters())
    assert model[1].running_var.min() == 1.0
    with pytest.raises(ValueError, match="clip"):
        clip_weights(model, 0.0)


def test_instance_noise() -> None:
    images = torch.rand(3, 1, 4, 4)
    assert instance_noise(images, 0.0) is images
    first = instance_noise(images, 0.1, generator=torch.Generator().manual_seed(3))
    second = instance_noise(images, 0.1, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    expected = images + 0.1 * torch.randn(images.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, expected)
    assert not torch.equal(first, instance_noise(images, 0.1, generator=torch.Generator().manual_seed(4)))
    spread = instance_noise(torch.zeros(20000), 0.5, generator=torch.Generator().manual_seed(0))
    assert spread.std().item() == pytest.approx(0.5, rel=0.03)
    with pytest.raises(ValueError, match="std"):
        instance_noise(images, -0.1)


PAPER = {
    # name: (d_loss, g_loss, optimizer, lr_g, lr_d, betas, n_critic, clip, gp_weight)
    "ns": (d_loss_ns, g_loss_ns, "Adam", 2e-4, 2e-4, (0.5, 0.999), 1, None, None),
    "minimax": (d_loss_minimax, g_loss_minimax, "Adam", 2e-4, 2e-4, (0.5, 0.999), 1, None, None),
    "lsgan": (d_loss_lsgan, g_loss_lsgan, "Adam", 2e-4, 2e-4, (0.5, 0.999), 1, None, None),
    "hinge": (d_loss_hinge, g_loss_hinge, "Adam", 2e-4, 2e-4, (0.5, 0.999), 1, None, None),
    "wgan": (d_loss_wgan, g_loss_wgan, "RMSprop", 5e-5, 5e-5, (0.0, 0.0), 5, 0.01, None),
    "wgan-gp": (d_loss_wgan, g_loss_wgan, "Adam", 1e-4, 1e-4, (0.0, 0.9), 5, None, 10.0),
}


def test_loss_defaults_are_the_paper_values() -> None:
    assert set(LOSSES) == set(PAPER)
    for name, values in PAPER.items():
        spec = LOSSES[name]
        assert isinstance(spec, LossSpec) and spec.name == name
        actual = (
            spec.d_loss,
            spec.g_loss,
            spec.optimizer,
            spec.lr_g,
            spec.lr_d,
            spec.betas,
            spec.n_critic,
            spec.clip,
            spec.gp_weight,
        )
        assert actual == values, name
        assert isinstance(spec.reference, str) and spec.reference and "\n" not in spec.reference
        assert hasattr(torch.optim, spec.optimizer)
    assert "SN-GAN" in LOSSES["hinge"].reference and "DCGAN" in LOSSES["hinge"].reference
    assert "Gulrajani" in LOSSES["wgan-gp"].reference and "Arjovsky" in LOSSES["wgan"].reference
    with pytest.raises(dataclasses.FrozenInstanceError):
        LOSSES["ns"].lr_g = 1.0  # type: ignore[misc]


def test_describe() -> None:
    line = describe(LOSSES["wgan-gp"])
    assert line.startswith("wgan-gp: Adam lr_g=1e-4 lr_d=1e-4 betas=(0.0, 0.9), 5 critic steps, gradient penalty λ=10")
    assert "Gulrajani et al. 2017" in line
    wgan = describe(LOSSES["wgan"])
    assert wgan.startswith("wgan: RMSprop lr_g=5e-5 lr_d=5e-5, 5 critic steps, weight clipping ±0.01")
    assert "betas" not in wgan
    assert describe(LOSSES["ns"]).startswith("ns: Adam lr_g=2e-4 lr_d=2e-4 betas=(0.5, 0.999), 1 critic step (")
    for spec in LOSSES.values():
        assert "\n" not in describe(spec)
