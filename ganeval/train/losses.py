"""GAN losses as pure functions of discriminator outputs, plus the WGAN helpers and per-loss defaults.

Every loss takes raw logits (or critic values) as 1-D tensors of shape (B,) and returns a scalar tensor that
the caller minimises: ``d_loss_*`` for the discriminator/critic step, ``g_loss_*`` for the generator step.
Binary cross-entropy is written with softplus: BCE(x, y) = y·softplus(−x) + (1 − y)·softplus(x), which is
−y·log σ(x) − (1 − y)·log(1 − σ(x)) computed stably.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

import torch
import torch.nn.functional as F
from torch import nn

Loss = Callable[..., torch.Tensor]


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean binary cross-entropy of logits against a constant target in [0, 1]."""
    return (target * F.softplus(-logits) + (1.0 - target) * F.softplus(logits)).mean()


def d_loss_ns(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """Discriminator loss of the standard GAN: BCE(real, real_label) + BCE(fake, 0). ``real_label`` < 1 is
    one-sided label smoothing (Salimans et al. 2016)."""
    if not 0.0 <= real_label <= 1.0:
        raise ValueError(f"real_label must lie in [0, 1], got {real_label!r}")
    return _bce(real_logits, real_label) + _bce(fake_logits, 0.0)


def g_loss_ns(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: BCE(fake, 1) = mean(softplus(−fake)) = −mean(log D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def d_loss_minimax(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """Discriminator loss of the minimax game; identical to :func:`d_loss_ns`."""
    return d_loss_ns(real_logits, fake_logits, real_label)


def g_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """Saturating (minimax) generator loss: −BCE(fake, 0) = −mean(softplus(fake)) = mean(log(1 − D(G(z))))."""
    return -F.softplus(fake_logits).mean()


def d_loss_lsgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Least-squares discriminator loss (Mao et al. 2017, a=0, b=1): ½·mean((real − 1)²) + ½·mean(fake²)."""
    return 0.5 * (real - 1.0).pow(2).mean() + 0.5 * fake.pow(2).mean()


def g_loss_lsgan(fake: torch.Tensor) -> torch.Tensor:
    """Least-squares generator loss (c=1): ½·mean((fake − 1)²)."""
    return 0.5 * (fake - 1.0).pow(2).mean()


def d_loss_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss: mean(relu(1 − real)) + mean(relu(1 + fake))."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_loss_hinge(fake: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: −mean(fake)."""
    return -fake.mean()


def d_loss_wgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss: mean(fake) − mean(real) (the negated Wasserstein estimate)."""
    return fake.mean() - real.mean()


def g_loss_wgan(fake: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss: −mean(fake)."""
    return -fake.mean()


def wasserstein_estimate(real: torch.Tensor, fake: torch.Tensor) -> float:
    """mean(real) − mean(fake) as a Python float, for logging."""
    return float((real.detach().mean() - fake.detach().mean()).item())


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gradient penalty of WGAN-GP (Gulrajani et al. 2017), unweighted (the caller multiplies by λ).

    real, fake: (B, ...) of equal shape. x̂ = ε·real + (1 − ε)·fake with one ε ~ U[0, 1] per sample, drawn on
    ``real``'s device (with ``generator`` when given). Returns mean over samples of (‖∇_x̂ critic(x̂)‖₂ − 1)²
    as a scalar tensor. ``real`` and ``fake`` are detached, so the penalty depends on the critic's
    parameters only; the gradient is taken with ``create_graph=True`` so the penalty can be backpropagated
    into them. Gradients of ``critic(x̂).sum()`` are per-sample gradients only when the critic treats samples
    independently, i.e. it has no BatchNorm in training mode.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if real.dim() < 1 or real.shape[0] == 0:
        raise ValueError("gradient_penalty needs a non-empty batch")
    batch = real.shape[0]
    eps = torch.rand((batch,), generator=generator, device=real.device, dtype=real.dtype)
    eps = eps.reshape((batch,) + (1,) * (real.dim() - 1))
    mixed = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grads,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = torch.linalg.vector_norm(grads.reshape(batch, -1), ord=2, dim=1)
    return (norms - 1.0).pow(2).mean()


def clip_weights(module: nn.Module, clip: float = 0.01) -> None:
    """WGAN weight clipping: clamp every parameter of ``module`` in place to [−clip, clip]."""
    if not clip > 0:
        raise ValueError(f"clip must be positive, got {clip!r}")
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.clamp_(-clip, clip)


def instance_noise(images: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """images + N(0, std²) noise of the same shape, drawn on the images' device (with ``generator`` when
    given); ``std == 0`` returns ``images`` itself."""
    if std < 0:
        raise ValueError(f"std must be non-negative, got {std!r}")
    if std == 0:
        return images
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return images + std * noise


@dataclass(frozen=True)
class LossSpec:
    """A loss pair with its paper's training defaults.

    ``optimizer`` is the ``torch.optim`` class name ("Adam" or "RMSprop"); ``betas`` are Adam's (β1, β2) and
    are unused, set to (0.0, 0.0), for RMSprop. ``n_critic`` is the number of discriminator steps per
    generator step; ``clip`` the weight-clipping bound (None: no clipping); ``gp_weight`` the gradient penalty
    λ (None: no penalty). ``reference`` is a one-line citation.
    """

    name: str
    d_loss: Loss
    g_loss: Loss
    optimizer: str
    lr_g: float
    lr_d: float
    betas: tuple[float, float]
    n_critic: int
    clip: float | None
    gp_weight: float | None
    reference: str


class _TrainingDefaults(TypedDict):
    """The optimiser and step fields of :class:`LossSpec`, shared by the losses that train alike."""

    optimizer: str
    lr_g: float
    lr_d: float
    betas: tuple[float, float]
    n_critic: int
    clip: float | None
    gp_weight: float | None


_DCGAN_ADAM: _TrainingDefaults = dict(
    optimizer="Adam", lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), n_critic=1, clip=None, gp_weight=None
)

LOSSES: dict[str, LossSpec] = {
    "ns": LossSpec(
        "ns",
        d_loss_ns,
        g_loss_ns,
        **_DCGAN_ADAM,
        reference="Goodfellow et al. 2014, Generative Adversarial Nets (non-saturating G loss); Radford et al. 2016, "
        "DCGAN (optimiser settings)",
    ),
    "minimax": LossSpec(
        "minimax",
        d_loss_minimax,
        g_loss_minimax,
        **_DCGAN_ADAM,
        reference="Goodfellow et al. 2014, Generative Adversarial Nets (minimax G loss); optimiser settings of "
        "Radford et al. 2016, DCGAN",
    ),
    "lsgan": LossSpec(
        "lsgan",
        d_loss_lsgan,
        g_loss_lsgan,
        **_DCGAN_ADAM,
        reference="Mao et al. 2017, Least Squares Generative Adversarial Networks (a=0, b=c=1); DCGAN-style "
        "optimiser defaults",
    ),
    "hinge": LossSpec(
        "hinge",
        d_loss_hinge,
        g_loss_hinge,
        **_DCGAN_ADAM,
        reference="Lim & Ye 2017, Geometric GAN; Miyato et al. 2018, Spectral Normalization for GANs (SN-GAN), "
        "whose hinge runs used other optimiser settings; these are DCGAN-style defaults",
    ),
    "wgan": LossSpec(
        "wgan",
        d_loss_wgan,
        g_loss_wgan,
        optimizer="RMSprop",
        lr_g=5e-5,
        lr_d=5e-5,
        betas=(0.0, 0.0),
        n_critic=5,
        clip=0.01,
        gp_weight=None,
        reference="Arjovsky, Chintala & Bottou 2017, Wasserstein GAN",
    ),
    "wgan-gp": LossSpec(
        "wgan-gp",
        d_loss_wgan,
        g_loss_wgan,
        optimizer="Adam",
        lr_g=1e-4,
        lr_d=1e-4,
        betas=(0.0, 0.9),
        n_critic=5,
        clip=None,
        gp_weight=10.0,
        reference="Gulrajani et al. 2017, Improved Training of Wasserstein GANs",
    ),
}


def _short(value: float) -> str:
    """1e-4 rather than 0.0001; plain form for numbers that are not small."""
    if value != 0 and abs(value) < 1e-2:
        mantissa, exponent = f"{value:e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:g}"


def describe(spec: LossSpec) -> str:
    """One line, e.g. "wgan-gp: Adam lr_g=1e-4 lr_d=1e-4 betas=(0.0, 0.9), 5 critic steps, gradient penalty
    λ=10 (Gulrajani et al. 2017, Improved Training of Wasserstein GANs)"."""
    parts = [f"{spec.name}: {spec.optimizer} lr_g={_short(spec.lr_g)} lr_d={_short(spec.lr_d)}"]
    if spec.optimizer == "Adam":
        parts[0] += f" betas={spec.betas}"
    parts.append(f"{spec.n_critic} critic step{'s' if spec.n_critic != 1 else ''}")
    if spec.clip is not None:
        parts.append(f"weight clipping ±{_short(spec.clip)}")
    if spec.gp_weight is not None:
        parts.append(f"gradient penalty λ={_short(spec.gp_weight)}")
    return ", ".join(parts) + f" ({spec.reference})"
