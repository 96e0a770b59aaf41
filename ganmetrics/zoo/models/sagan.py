"""SAGAN (Zhang, Goodfellow, Metaxas & Odena 2019, "Self-attention generative adversarial networks"),
compact 32×32 version.

SNGAN's ResNet G and D (conditional BN and projection D in the conditional variant) plus:
a self-attention block at 16×16 in both G and D (1×1 query/key/value convolutions, key and value
2×2 max-pooled, softmax over keys, output scaled by a learned γ that starts at 0, residual add),
spectral normalisation in G as well as D, and two time-scale learning rates (TTUR, Heusel et al.
2017): G 1e-4, D 4e-4, Adam β (0, 0.9), one D step per G step, hinge loss (§4–5).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ModelConfig
from ..registry import ModelSpec, register
from .sngan import SNGANDiscriminator, SNGANGenerator

#: SAGAN attends at 16×16 in both networks (the middle of the 32×32 ResNet)
ATTENTION_RESOLUTION = 16


@dataclass
class SAGANConfig(ModelConfig):
    model: str = "sagan"
    width: int = 64
    loss: str = "hinge"
    d_steps: int = 1
    g_lr: float = 1e-4
    d_lr: float = 4e-4
    betas: tuple[float, float] = (0.0, 0.9)


class SAGANGenerator(SNGANGenerator):
    """SNGAN's generator, spectrally normalised, with self-attention on the 16×16 features."""

    def __init__(self, config: ModelConfig):
        super().__init__(config, spectral_norm=True, attention_resolution=ATTENTION_RESOLUTION)


class SAGANDiscriminator(SNGANDiscriminator):
    """SNGAN's discriminator with self-attention on the 16×16 features."""

    def __init__(self, config: ModelConfig):
        super().__init__(config, attention_resolution=ATTENTION_RESOLUTION)


register(ModelSpec(
    name="sagan",
    description="SAGAN (Zhang et al. 2019): SNGAN plus self-attention at 16×16 in G and D, spectral norm in G "
                "too, two learning rates",
    config_class=SAGANConfig,
    build_generator=SAGANGenerator,
    build_discriminator=SAGANDiscriminator,
))
