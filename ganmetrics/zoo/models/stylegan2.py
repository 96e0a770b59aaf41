"""StyleGAN2 (Karras, Laine, Aittala, Hellsten, Lehtinen, Aila, "Analyzing and Improving the Image
Quality of StyleGAN", CVPR 2020, arXiv:1912.04958) at 32×32, compact.

Generator: mapping network (2 FC layers, lr multiplier 0.01), a learned constant 4×4 input, and per
resolution modulated 3×3 convolutions with weight demodulation [SG2 §2.2], each followed by noise,
bias and leaky ReLU [SG2 Fig. 2c]; the "skip" output architecture [SG2 §4.1, Fig. 7b]: a toRGB
(modulated 1×1 conv, not demodulated) at every resolution, the running image upsampled and summed.
Discriminator: the "residual" architecture [SG2 Fig. 7c] with minibatch stddev in the 4×4 epilogue.
Equalised learning rate everywhere; style mixing (p = 0.9) in training mode; truncation in W.

Departures from the paper (both to fit the zoo's shared blocks): the noise strength is learned per
channel (the paper learns one scalar per layer, a special case), and the modulated convolutions
upsample bilinearly before convolving (the paper fuses a transposed convolution with the same
[1,3,3,1] filter).  Written from the paper; nothing of NVIDIA's code is used.
"""

from __future__ import annotations

import math
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
    EqualConv2d,
    MappingNetwork,
    ModulatedConv2d,
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
class StyleGAN2Config(StyleFamilyConfig):
    """StyleGAN2's settings [SG2 App. B; StyleGAN2-ADA's CIFAR-10 set-up] at the zoo's compact size
    (G ≈ 190k, D ≈ 190k parameters)."""

    model: str = "stylegan2"
    width: int = 48
    mapping_layers: int = 2
    # R1 γ scales with the pixel count (StyleGAN2-ADA's heuristic γ = 0.0002·res²/batch gives 0.003 at
    # 32², batch 64); 0.01 is StyleGAN2-ADA's CIFAR-10 value.  Lazy: every 16 D steps [SG2 §3.1].
    r1_gamma: float = 0.01
    r1_interval: int = 16
    g_lr: float = 0.0025
    d_lr: float = 0.0025


class SynthesisLayer(nn.Module):
    """``modulated conv3×3 (demodulated, optionally upsampling) → noise → + bias → leaky ReLU`` [SG2 Fig. 2c]."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, demodulate=True, upsample=upsample)
        self.noise = NoiseInjection(out_channels, resolution)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # the conv adds its bias; adding the noise after it is the same as before it
        return leaky_relu(self.noise(self.conv(x, w)))


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator [SG2 Fig. 7b]: ``[SynthesisLayer(up) →] SynthesisLayer``,
    then ``img ← upsample_2x(img) + toRGB(x)`` with toRGB a modulated 1×1 conv without demodulation.

    Takes ``num_conv + 1`` styles: one per conv, the last for toRGB (StyleGAN2 shares it with the next
    block's first conv).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, first: bool) -> None:
        super().__init__()
        convs = [] if first else [SynthesisLayer(in_channels, out_channels, w_dim, resolution, upsample=True)]
        convs.append(SynthesisLayer(out_channels, out_channels, w_dim, resolution))
        self.convs = nn.ModuleList(convs)
        self.to_rgb = ModulatedConv2d(out_channels, 3, 1, w_dim, demodulate=False)
        self.resolution = resolution
        self.num_conv = len(convs)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None,
                ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for index, layer in enumerate(self.convs):
            x = layer(x, ws[:, index])
        rgb = self.to_rgb(x, ws[:, self.num_conv])
        img = rgb if img is None else upsample_2x(img) + rgb
        return x, img


class StyleGAN2Generator(Generator):
    """StyleGAN2's skip generator; output linear (the sum of the toRGB outputs), nominally in [-1, 1].

    ``forward(z, truncation=ψ)``: ``ws = mapping(z)`` (style mixing in training mode with probability
    ``mixing_prob``; truncation ``w_avg + ψ(w − w_avg)``), then :meth:`synthesis`.
    """

    def __init__(self, z_dim: int = 64, w_dim: int = 64, width: int = 48, mapping_layers: int = 2,
                 resolution: int = 32, mixing_prob: float = 0.9, mapping_lr_mul: float = MAPPING_LR_MUL,
                 w_avg_beta: float = W_AVG_BETA) -> None:
        super().__init__()
        log2 = check_resolution(resolution)
        self.z_dim = z_dim
        self.num_classes = 0
        self.resolution = resolution
        self.mixing_prob = mixing_prob
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul, w_avg_beta)
        self.const = nn.Parameter(torch.randn(1, width, 4, 4))
        self.blocks = nn.ModuleList(SynthesisBlock(width, width, w_dim, 1 << res_log2, first=res_log2 == 2)
                                    for res_log2 in range(2, log2 + 1))
        #: number of styles: one per conv plus one for the last toRGB
        self.num_ws = sum(block.num_conv for block in self.blocks) + 1

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """Images ``[N, 3, R, R]`` from per-layer styles ``ws: [N, num_ws, w_dim]``."""
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        img = None
        w_index = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, w_index:w_index + block.num_conv + 1])
            w_index += block.num_conv
        return img

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                truncation: float | None = None) -> torch.Tensor:
        if labels is not None:
            raise InputError("StyleGAN2 is unconditional: it takes no labels")
        return self.synthesis(self.mapping(z, self.num_ws, truncation, self.mixing_prob))


class ResidualDiscriminatorBlock(nn.Module):
    """Residual D block [SG2 Fig. 7c]: ``(skip(down(x)) + lrelu(conv1(down(lrelu(conv0(x)))))) / sqrt(2)``,
    skip a 1×1 conv without bias, down the bilinear 2× downsampling."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(channels, channels, 3)
        self.conv1 = EqualConv2d(channels, channels, 3)
        self.skip = EqualConv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.skip(downsample_2x(x))
        x = leaky_relu(self.conv1(downsample_2x(leaky_relu(self.conv0(x)))))
        return (shortcut + x) * math.sqrt(0.5)


class StyleGAN2Discriminator(StyleDiscriminator):
    """StyleGAN2's residual discriminator: ``D(x) -> logits [N]``.

    1×1 fromRGB at full resolution, one residual block per resolution 32 → 16 → 8 → 4, then the 4×4
    epilogue (minibatch stddev, 3×3 conv, FC, FC); equalised learning rate throughout.
    """

    def __init__(self, width: int = 48, resolution: int = 32, mbstd_group_size: int = 4) -> None:
        super().__init__(ResidualDiscriminatorBlock, width, resolution, mbstd_group_size, "StyleGAN2")


def _stylegan2_config(config: ModelConfig) -> StyleGAN2Config:
    return unconditional_config(config, StyleGAN2Config, "StyleGAN2")


def build_generator(config: ModelConfig) -> StyleGAN2Generator:
    return StyleGAN2Generator(**generator_arguments(_stylegan2_config(config)))


def build_discriminator(config: ModelConfig) -> StyleGAN2Discriminator:
    return StyleGAN2Discriminator(**discriminator_arguments(_stylegan2_config(config)))


SPEC = register(ModelSpec(
    name="stylegan2",
    description="StyleGAN2 (Karras et al. 2020): modulated convolution with demodulation, skip G, residual D, "
                "equalised lr; non-saturating loss + lazy R1, EMA",
    config_class=StyleGAN2Config,
    build_generator=build_generator,
    build_discriminator=build_discriminator,
))
