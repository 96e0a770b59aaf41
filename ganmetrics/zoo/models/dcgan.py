"""DCGAN (Radford, Metz & Chintala 2016, "Unsupervised representation learning with deep convolutional
generative adversarial networks"), compact 32×32 version.

G is all-convolutional after its first layer: a linear projection of z to a 4×4 map, then strided
(fractionally-strided) transposed convolutions, BN + ReLU after every layer but the last, tanh out.
D: strided convolutions with LeakyReLU(0.2), BN inside (not on the input layer), a final 4×4
convolution to one logit. No pooling and no fully connected hidden layers anywhere. Weights
N(0, 0.02); non-saturating logistic loss; Adam 2e-4, β (0.5, 0.999).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...errors import InputError
from ..base import Generator
from ..config import ModelConfig
from ..layers import (
    WEIGHT_LAYERS,
    check_labels,
    check_latents,
    init_weights_,
    reject_truncation,
    require_unconditional,
)
from ..registry import ModelSpec, register

_STEM_SIZE = 4
_RESOLUTION = 32


@dataclass
class DCGANConfig(ModelConfig):
    model: str = "dcgan"
    z_dim: int = 64
    #: channels of the widest-resolution layer; G goes 4w → 2w → w, D w → 2w → 4w (128-64-32)
    width: int = 32
    loss: str = "nonsaturating"
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)


def _check_config(config: ModelConfig, owner: str) -> None:
    require_unconditional(config.num_classes, owner)
    if config.resolution != _RESOLUTION:
        raise InputError(f"{owner} is built for {_RESOLUTION}×{_RESOLUTION} images, got {config.resolution}")


def _init_dcgan_weights(network: nn.Module) -> None:
    """N(0, 0.02) for every conv / linear weight, as in the paper (§4); BN keeps γ = 1, β = 0."""
    for layer in network.modules():
        if isinstance(layer, WEIGHT_LAYERS):
            init_weights_(layer, "dcgan")


class DCGANGenerator(Generator):
    """z → linear → [4w, 4, 4] → BN → ReLU → (ConvTranspose 4×4 stride 2 → BN → ReLU) ×2
    → ConvTranspose 4×4 stride 2 → tanh: 4 → 8 → 16 → 32."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        _check_config(config, type(self).__name__)
        self.z_dim = config.z_dim
        self.num_classes = 0
        self.resolution = config.resolution
        self.stem_channels = 4 * config.width
        width = config.width
        self.project = nn.Linear(config.z_dim, self.stem_channels * _STEM_SIZE * _STEM_SIZE, bias=False)
        self.project_norm = nn.BatchNorm2d(self.stem_channels)
        self.body = nn.Sequential(
            *self._up(4 * width, 2 * width),
            *self._up(2 * width, width),
            nn.ConvTranspose2d(width, 3, 4, stride=2, padding=1),
            nn.Tanh(),
        )
        _init_dcgan_weights(self)

    @staticmethod
    def _up(in_channels: int, out_channels: int) -> list[nn.Module]:
        """Doubles the resolution: ConvTranspose 4×4 stride 2 (bias folded into BN) → BN → ReLU."""
        return [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out_channels), nn.ReLU()]

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                truncation: float | None = None) -> torch.Tensor:
        name = type(self).__name__
        reject_truncation(truncation, name)
        check_latents(z, self.z_dim, name)
        check_labels(labels, 0, z.shape[0], name)
        h = self.project(z).view(-1, self.stem_channels, _STEM_SIZE, _STEM_SIZE)
        return self.body(torch.relu(self.project_norm(h)))


class DCGANDiscriminator(nn.Module):
    """Conv 4×4 stride 2 → LReLU(0.2) → (Conv 4×4 stride 2 → BN → LReLU(0.2)) ×2 → Conv 4×4 valid → logit:
    32 → 16 → 8 → 4 → 1."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        _check_config(config, type(self).__name__)
        width = config.width
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            *self._down(width, 2 * width),
            *self._down(2 * width, 4 * width),
            nn.Conv2d(4 * width, 1, _STEM_SIZE),
        )
        _init_dcgan_weights(self)

    @staticmethod
    def _down(in_channels: int, out_channels: int) -> list[nn.Module]:
        """Halves the resolution: Conv 4×4 stride 2 (bias folded into BN) → BN → LeakyReLU(0.2)."""
        return [nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2)]

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        check_labels(labels, 0, x.shape[0], type(self).__name__)
        return self.body(x).flatten()


register(ModelSpec(
    name="dcgan",
    description="DCGAN (Radford et al. 2016): all-convolutional G and D with strided (transposed) "
                "convolutions and batch norm, LeakyReLU in D",
    config_class=DCGANConfig,
    build_generator=DCGANGenerator,
    build_discriminator=DCGANDiscriminator,
))
