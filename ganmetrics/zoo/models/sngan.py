"""SNGAN (Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral normalization for generative adversarial
networks"), its CIFAR-10 ResNet at compact width, with the class-conditional variant of Miyato &
Koyama 2018 ("cGANs with projection discriminator").

Every layer of D is spectrally normalised, W / σ(W), σ by one power-iteration step per forward with
the vectors kept as buffers. G is the ResNet generator (no SN); conditional: class-conditional BN in
G and a projection discriminator, logit = ψ(φ(x)) + ⟨embed(y), φ(x)⟩. Hinge loss, 5 D steps per G
step, Adam 2e-4, β (0, 0.9) (the paper's setting for its ResNet experiments).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ModelConfig
from ..layers import LayerFactory, batch_norm_factory
from ..registry import ModelSpec, register
from ..resnet import ResNetDiscriminator, ResNetGenerator


@dataclass
class SNGANConfig(ModelConfig):
    model: str = "sngan"
    width: int = 64
    loss: str = "hinge"
    d_steps: int = 5
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.9)


def sngan_layers(spectral_norm: bool) -> LayerFactory:
    """Glorot-uniform initialisation, gain √2 on residual branches (the paper's code), optionally SN."""
    return LayerFactory(spectral_norm=spectral_norm, init="xavier", residual_gain=2 ** 0.5)


class SNGANGenerator(ResNetGenerator):
    """ResNet generator; class-conditional BN in every block when ``num_classes > 0``.

    ``spectral_norm`` and ``attention_resolution`` are SAGAN's additions (see :mod:`.sagan`).
    """

    def __init__(self, config: ModelConfig, *, spectral_norm: bool = False,
                 attention_resolution: int | None = None):
        super().__init__(z_dim=config.z_dim, num_classes=config.num_classes, resolution=config.resolution,
                         width=config.width, layers=sngan_layers(spectral_norm),
                         block_norm=batch_norm_factory(config.num_classes),
                         attention_resolution=attention_resolution)


class SNGANDiscriminator(ResNetDiscriminator):
    """Spectrally normalised ResNet discriminator, sum-pooled features, projection when conditional."""

    def __init__(self, config: ModelConfig, *, attention_resolution: int | None = None):
        super().__init__(num_classes=config.num_classes, resolution=config.resolution, width=config.width,
                         layers=sngan_layers(spectral_norm=True), pooling="sum",
                         attention_resolution=attention_resolution)


register(ModelSpec(
    name="sngan",
    description="SNGAN (Miyato et al. 2018): ResNet GAN with spectral normalisation on every D layer, hinge "
                "loss; conditional variant with conditional BN and a projection discriminator",
    config_class=SNGANConfig,
    build_generator=SNGANGenerator,
    build_discriminator=SNGANDiscriminator,
))
