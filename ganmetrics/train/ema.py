"""Exponential moving average of the generator's weights (Karras et al. 2018; Yazıcı et al. 2019).

``θ_ema ← β·θ_ema + (1 − β)·θ`` after every generator step; buffers (BN statistics, StyleGAN's
tracked mean w) are copied.  With a half-life of ``h`` thousand images and ``B`` images per step
(all ranks), ``β = 0.5^(B / (1000·h))``: after ``h`` kimg the old weights count half (StyleGAN2).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_beta(images_per_step: int, half_life_kimg: float | None, default: float) -> float:
    """``0.5^(images_per_step / (1000·half_life_kimg))``, or ``default`` without a half-life."""
    if half_life_kimg is None:
        return default
    if half_life_kimg <= 0:
        raise ValueError(f"the EMA half-life must be positive, got {half_life_kimg} kimg")
    return 0.5 ** (images_per_step / (1000.0 * half_life_kimg))


def make_ema(generator: nn.Module) -> nn.Module:
    """A frozen copy of ``generator`` in eval mode, to be updated by :func:`update_ema`."""
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, generator: nn.Module, beta: float) -> None:
    """``θ_ema ← β·θ_ema + (1 − β)·θ`` for parameters; buffers copied."""
    for p_ema, p in zip(ema.parameters(), generator.parameters(), strict=True):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), generator.buffers(), strict=True):
        b_ema.copy_(b)
