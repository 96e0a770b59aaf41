"""StyleGAN (Karras, Laine, Aila, "A Style-Based Generator Architecture for Generative Adversarial
Networks", CVPR 2019, arXiv:1812.04948) at 32×32, compact.

Generator [SG1 §2, Fig. 1b]: a mapping network z → w (z pixel-normalised, 4 FC layers, lr multiplier
0.01), a learned constant 4×4 input, and per resolution 4 → 8 → 16 → 32 two layers of
``[bilinear 2× upsample →] 3×3 conv → per-pixel noise → leaky ReLU → AdaIN(w)`` (the 4×4 block's first
layer starts from the constant instead of a conv), then a 1×1 toRGB with a linear output.  Style
mixing (p = 0.9) in training mode, truncation in W around the tracked mean w.

Shared building blocks live in :mod:`ganmetrics.zoo.style_layers`.  Written from the paper; nothing
of NVIDIA's code is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...errors import InputError
from ..base import Generator
from ..config import ModelConfig
from ..registry import ModelSpec, register
from ..style_layers import (
    MAPPING_LR_MUL,
    W_AVG_BETA,
    AdaIN,
    EqualConv2d,
    MappingNetwork,
    NoiseInjection,
    StyleDiscriminator,
    StyleFamilyConfig,
    check_resolution,
    discriminator_arguments,
    downsample_2x,
    generator_arguments,
    leaky_relu,
    unconditional_config,
    upsample_2x,
)


@dataclass
class StyleGANConfig(StyleFamilyConfig):
    """StyleGAN's settings [SG1 App. C] at the zoo's compact size (G ≈ 343k, D ≈ 325k parameters)."""

    model: str = "stylegan"
    width: int = 64
    mapping_layers: int = 4
    # The paper uses R1 with γ = 10 at 1024² (FFHQ).  The penalty γ/2·E‖∇_x D‖² sums over pixels, so
    # γ is scaled with the pixel count (StyleGAN2-ADA's heuristic is γ ∝ resolution²):
    # 10 · (32/1024)² ≈ 0.0098 → 0.01, also StyleGAN2-ADA's setting for CIFAR-10.
    r1_gamma: float = 0.01
    r1_interval: int = 1
    # Adam λ = 0.001, β = (0, 0.99): ProGAN's rate at low resolutions, which StyleGAN's training keeps.
    g_lr: float = 0.001
    d_lr: float = 0.001


class StyleGANLayer(nn.Module):
    """One synthesis layer [SG1 Fig. 1b]: ``[upsample →] [3×3 conv →] noise → leaky ReLU → AdaIN(w)``.

    Without ``conv`` (the first layer) it only adds noise, activates and applies AdaIN to its input,
    the learned constant.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, conv: bool = True,
                 upsample: bool = False) -> None:
        super().__init__()
        if not conv and (upsample or in_channels != out_channels):
            raise InputError("a layer without a conv can neither upsample nor change the channel count")
        self.conv = EqualConv2d(in_channels, out_channels, 3) if conv else None
        self.upsample = upsample
        self.noise = NoiseInjection(out_channels, resolution)
        self.adain = AdaIN(out_channels, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = upsample_2x(x)
        if self.conv is not None:
            x = self.conv(x)
        return self.adain(leaky_relu(self.noise(x)), w)


class StyleGANGenerator(Generator):
    """StyleGAN's style-based generator [SG1 §2]; output linear (no tanh), nominally in [-1, 1].

    ``forward(z, truncation=ψ)``: ``ws = mapping(z)`` (one w per AdaIN layer; style mixing in training
    mode with probability ``mixing_prob``; truncation ``w_avg + ψ(w − w_avg)``), then :meth:`synthesis`.
    """

    def __init__(self, z_dim: int = 64, w_dim: int = 64, width: int = 64, mapping_layers: int = 4,
                 resolution: int = 32, mixing_prob: float = 0.9, mapping_lr_mul: float = MAPPING_LR_MUL,
                 w_avg_beta: float = W_AVG_BETA) -> None:
        super().__init__()
        log2 = check_resolution(resolution)
        self.z_dim = z_dim
        self.num_classes = 0
        self.resolution = resolution
        self.mixing_prob = mixing_prob
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul, w_avg_beta)
        self.const = nn.Parameter(torch.ones(1, width, 4, 4))
        layers = [StyleGANLayer(width, width, w_dim, 4, conv=False), StyleGANLayer(width, width, w_dim, 4)]
        for res_log2 in range(3, log2 + 1):
            layers.append(StyleGANLayer(width, width, w_dim, 1 << res_log2, upsample=True))
            layers.append(StyleGANLayer(width, width, w_dim, 1 << res_log2))
        self.layers = nn.ModuleList(layers)
        self.to_rgb = EqualConv2d(width, 3, 1)
        #: number of styles, one per AdaIN layer
        self.num_ws = len(self.layers)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """Images ``[N, 3, R, R]`` from per-layer styles ``ws: [N, num_ws, w_dim]``."""
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        for index, layer in enumerate(self.layers):
            x = layer(x, ws[:, index])
        return self.to_rgb(x)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                truncation: float | None = None) -> torch.Tensor:
        if labels is not None:
            raise InputError("StyleGAN is unconditional: it takes no labels")
        return self.synthesis(self.mapping(z, self.num_ws, truncation, self.mixing_prob))


class StyleGANDiscriminatorBlock(nn.Module):
    """``x → lrelu(conv3×3(x)) → bilinear 2× downsample → lrelu(conv3×3)`` [SG1 / PG Table 2]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(channels, channels, 3)
        self.conv1 = EqualConv2d(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return leaky_relu(self.conv1(downsample_2x(leaky_relu(self.conv0(x)))))


class StyleGANDiscriminator(StyleDiscriminator):
    """StyleGAN's discriminator at a fixed resolution: ``D(x) -> logits [N]``.

    The paper trains D progressively (ProGAN's D with bilinear downsampling).  At 32×32 this zoo uses
    the same network without progressive growing: a 1×1 fromRGB, one block per resolution 32 → 16 → 8
    → 4 (two 3×3 convs around a bilinear downsample), and the 4×4 epilogue with minibatch stddev;
    equalised learning rate and leaky ReLU 0.2 throughout.
    """

    def __init__(self, width: int = 64, resolution: int = 32, mbstd_group_size: int = 4) -> None:
        super().__init__(StyleGANDiscriminatorBlock, width, resolution, mbstd_group_size, "StyleGAN")


def _stylegan_config(config: ModelConfig) -> StyleGANConfig:
    return unconditional_config(config, StyleGANConfig, "StyleGAN")


def build_generator(config: ModelConfig) -> StyleGANGenerator:
    return StyleGANGenerator(**generator_arguments(_stylegan_config(config)))


def build_discriminator(config: ModelConfig) -> StyleGANDiscriminator:
    return StyleGANDiscriminator(**discriminator_arguments(_stylegan_config(config)))


SPEC = register(ModelSpec(
    name="stylegan",
    description="StyleGAN (Karras et al. 2019): mapping network, constant input, AdaIN, per-pixel noise, "
                "style mixing, truncation in W; non-saturating loss + R1",
    config_class=StyleGANConfig,
    build_generator=build_generator,
    build_discriminator=build_discriminator,
))
