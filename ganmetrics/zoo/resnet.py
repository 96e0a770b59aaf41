"""The 32×32 ResNet generator and discriminator shared by WGAN-GP, SNGAN, SAGAN and BigGAN.

The four papers use one architecture (Gulrajani et al. 2017, appendix F; Miyato et al. 2018,
appendix B.4, table 4) and differ in what they add to it; each model module configures these
backbones with its own :class:`~ganmetrics.zoo.layers.LayerFactory` (spectral norm, initialisation),
norm (plain, class-conditional, BigGAN's linear-conditional), self-attention and conditioning.

G: z → linear → [width, 4, 4] → 3 up-blocks (8, 16, 32) → BN → ReLU → conv3×3 → tanh.
D: down-block without pre-activation (16) → down-block (8) → 2 blocks (8) → ReLU → global pooling φ(x)
→ logit ψ(φ(x)) [+ ⟨embed(y), φ(x)⟩, the projection of Miyato & Koyama 2018, when conditional].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .base import Generator
from .layers import (
    DiscriminatorResBlock,
    GeneratorResBlock,
    LayerFactory,
    PlainBatchNorm2d,
    SelfAttention2d,
    check_labels,
    check_latents,
    reject_truncation,
)

#: the only resolution of the compact zoo: 4×4 doubled by three blocks
RESOLUTION = 32
_STEM_SIZE = 4
_G_BLOCK_RESOLUTIONS = (8, 16, 32)
_D_BLOCKS = (  # (output resolution, downsample, preactivation)
    (16, True, False),
    (8, True, True),
    (8, False, True),
    (8, False, True),
)


def _check_resolution(resolution: int, owner: str) -> None:
    if resolution != RESOLUTION:
        raise InputError(f"{owner} is built for {RESOLUTION}×{RESOLUTION} images, got resolution {resolution}")


def _attention_index(resolutions: tuple[int, ...], attention_resolution: int | None, owner: str) -> int | None:
    """Index of the block after which self-attention runs (the first one whose output has that size)."""
    if attention_resolution is None:
        return None
    if attention_resolution not in resolutions:
        raise InputError(f"{owner}: no block works at {attention_resolution}×{attention_resolution}; "
                         f"choose one of {sorted(set(resolutions))}")
    return resolutions.index(attention_resolution)


class ResNetGenerator(Generator):
    """Pre-activation ResNet generator (see the module docstring).

    ``block_norm(channels)`` makes the two norms of every block, called as ``norm(h, cond)`` with the
    block's condition from :meth:`block_conditions`; the output norm is always plain BN.
    ``stem_features``: input size of the first linear layer (default ``z_dim``).
    """

    #: BigGAN draws truncated latents; the others refuse ``truncation``
    has_truncation_trick = False

    def __init__(self, *, z_dim: int, num_classes: int, resolution: int, width: int, layers: LayerFactory,
                 block_norm: Callable[[int], nn.Module], stem_features: int | None = None,
                 attention_resolution: int | None = None):
        super().__init__()
        name = type(self).__name__
        _check_resolution(resolution, name)
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.resolution = resolution
        self.width = width
        self.stem = layers.linear(stem_features or z_dim, width * _STEM_SIZE * _STEM_SIZE)
        self.blocks = nn.ModuleList(GeneratorResBlock(width, width, layers, block_norm)
                                    for _ in _G_BLOCK_RESOLUTIONS)
        self.attention_after = _attention_index(_G_BLOCK_RESOLUTIONS, attention_resolution, name)
        self.attention = SelfAttention2d(width, layers) if self.attention_after is not None else None
        self.out_norm = PlainBatchNorm2d(width)
        self.to_rgb = layers.conv(width, 3, 3)

    def block_conditions(self, z: torch.Tensor, labels: torch.Tensor | None
                         ) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """(input of the first linear layer, condition of each block): ``z`` and the labels by default."""
        return z, [labels] * len(self.blocks)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                truncation: float | None = None) -> torch.Tensor:
        name = type(self).__name__
        if not self.has_truncation_trick:
            reject_truncation(truncation, name)
        check_latents(z, self.z_dim, name)
        check_labels(labels, self.num_classes, z.shape[0], name)
        stem_input, conditions = self.block_conditions(z, labels)
        h = self.stem(stem_input).view(-1, self.width, _STEM_SIZE, _STEM_SIZE)
        for index, (block, cond) in enumerate(zip(self.blocks, conditions)):
            h = block(h, cond)
            if index == self.attention_after:
                h = self.attention(h)
        return torch.tanh(self.to_rgb(F.relu(self.out_norm(h))))


class ResNetDiscriminator(nn.Module):
    """ResNet discriminator / critic (see the module docstring): ``D(x, labels=None) -> logits [N]``.

    ``pooling``: "sum" over positions (SNGAN, BigGAN) or "mean" (WGAN-GP). With ``num_classes > 0``
    the logit gains the projection term ⟨embed(y), φ(x)⟩ (Miyato & Koyama 2018, eq. 3).
    """

    def __init__(self, *, num_classes: int, resolution: int, width: int, layers: LayerFactory,
                 pooling: str = "sum", attention_resolution: int | None = None):
        super().__init__()
        name = type(self).__name__
        _check_resolution(resolution, name)
        if pooling not in ("sum", "mean"):
            raise InputError(f"pooling must be 'sum' or 'mean', got {pooling!r}")
        self.num_classes = num_classes
        self.pooling = pooling
        channels = [3] + [width] * len(_D_BLOCKS)
        self.blocks = nn.ModuleList(
            DiscriminatorResBlock(channels[i], channels[i + 1], layers, downsample=down, preactivation=pre)
            for i, (_, down, pre) in enumerate(_D_BLOCKS))
        resolutions = tuple(size for size, _, _ in _D_BLOCKS)
        self.attention_after = _attention_index(resolutions, attention_resolution, name)
        self.attention = SelfAttention2d(width, layers) if self.attention_after is not None else None
        self.to_logit = layers.linear(width, 1)
        self.class_embedding = layers.embedding(num_classes, width) if num_classes > 0 else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x): the pooled ReLU features ``[N, width]``."""
        h = x
        for index, block in enumerate(self.blocks):
            h = block(h)
            if index == self.attention_after:
                h = self.attention(h)
        h = F.relu(h)
        return h.sum(dim=(2, 3)) if self.pooling == "sum" else h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        check_labels(labels, self.num_classes, x.shape[0], type(self).__name__)
        phi = self.features(x)
        logits = self.to_logit(phi).squeeze(1)
        if self.class_embedding is not None:
            logits = logits + (self.class_embedding(labels) * phi).sum(dim=1)
        return logits
