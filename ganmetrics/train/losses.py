"""GAN losses and discriminator regularisers, as pure functions of logits and networks.

Losses (``LOSSES``, by the name a model config gives in ``loss``), on raw logits ``D(x)``:

* ``"nonsaturating"`` — Goodfellow et al. 2014, the non-saturating logistic loss:
  ``L_D = softplus(−D(x_real)) + softplus(D(x_fake))``, ``L_G = softplus(−D(G(z)))``;
* ``"hinge"`` — Lim & Ye 2017 / Miyato et al. 2018: ``L_D = relu(1 − D(x_real)) + relu(1 + D(x_fake))``,
  ``L_G = −D(G(z))``;
* ``"wasserstein"`` — Arjovsky et al. 2017: ``L_D = D(x_fake) − D(x_real)``, ``L_G = −D(G(z))``.

Each is a mean over the batch.  Regularisers of D:

* :func:`gradient_penalty` — Gulrajani et al. 2017: ``λ · E[(‖∇_x̂ D(x̂)‖₂ − 1)²]`` at
  ``x̂ = ε x_real + (1 − ε) x_fake``, ``ε ~ U[0, 1]`` per sample;
* :func:`r1_penalty` — Mescheder et al. 2018: ``γ/2 · E‖∇_x D(x_real)‖²``;
* :func:`drift_penalty` — Karras et al. 2018 (ProGAN): ``ε_drift · E[D(x_real)²]``.

The gradient penalties use ``torch.autograd.grad(create_graph=True)`` so that they are themselves
differentiated (also through DDP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputError


@dataclass(frozen=True)
class GANLoss:
    name: str
    #: ``(real_logits, fake_logits) -> L_D``
    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    #: ``fake_logits -> L_G``
    generator: Callable[[torch.Tensor], torch.Tensor]


def _nonsaturating_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def _nonsaturating_g(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()


def _hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def _wasserstein_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return fake.mean() - real.mean()


def _negated_mean(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


LOSSES: dict[str, GANLoss] = {loss.name: loss for loss in (
    GANLoss("nonsaturating", _nonsaturating_d, _nonsaturating_g),
    GANLoss("hinge", _hinge_d, _negated_mean),
    GANLoss("wasserstein", _wasserstein_d, _negated_mean),
)}


def get_loss(name: str) -> GANLoss:
    if name not in LOSSES:
        raise InputError(f"unknown GAN loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


def _input_gradient(logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """``∇_x Σ_n D(x_n)`` per sample, flattened to ``[N, C·H·W]``, with a graph for the second backward."""
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return grad.flatten(1)


def gradient_penalty(discriminator: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None, weight: float, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
    """WGAN-GP: ``weight · E[(‖∇D(x̂)‖₂ − 1)²]`` on random interpolates ``x̂`` of real and fake (fake detached)."""
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator, dtype=real.dtype).to(real.device)
    mixed = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    grad = _input_gradient(discriminator(mixed, labels), mixed)
    return weight * ((grad.norm(dim=1) - 1) ** 2).mean()


def r1_penalty(discriminator: Callable[..., torch.Tensor], real: torch.Tensor, labels: torch.Tensor | None,
               gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """R1: ``(γ/2 · E‖∇_x D(x_real)‖², D(x_real))``; the logits are returned so a caller can reuse them."""
    real = real.detach().requires_grad_(True)
    logits = discriminator(real, labels)
    grad = _input_gradient(logits, real)
    return 0.5 * gamma * grad.pow(2).sum(dim=1).mean(), logits


def drift_penalty(real_logits: torch.Tensor, weight: float) -> torch.Tensor:
    """ProGAN's drift term ``weight · E[D(x_real)²]``, keeping the critic's output near 0."""
    return weight * real_logits.pow(2).mean()
