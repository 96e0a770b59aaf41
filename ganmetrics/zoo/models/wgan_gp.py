"""WGAN-GP (Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved training of Wasserstein
GANs"), its CIFAR-10 ResNet at compact width.

G: the ResNet generator with batch norm. The critic is the ResNet discriminator **without any
normalisation** (no BN, no spectral norm): the gradient penalty λ·E[(‖∇_x̂ D(x̂)‖ − 1)²] on random
real/fake interpolates x̂ is per sample, which batch-coupling layers would break (§4). Wasserstein
loss, λ = 10, 5 critic steps per G step, Adam 1e-4, β (0, 0.9) (algorithm 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ModelConfig
from ..layers import LayerFactory, PlainBatchNorm2d, require_unconditional
from ..registry import ModelSpec, register
from ..resnet import ResNetDiscriminator, ResNetGenerator

#: Glorot-uniform initialisation with gain √2 on residual branches, as in the paper's code
_LAYERS = LayerFactory(spectral_norm=False, init="xavier", residual_gain=2 ** 0.5)


@dataclass
class WGANGPConfig(ModelConfig):
    model: str = "wgan_gp"
    width: int = 56
    loss: str = "wasserstein"
    gp_weight: float = 10.0
    d_steps: int = 5
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.9)


class WGANGPGenerator(ResNetGenerator):
    """ResNet generator with plain batch norm (Gulrajani et al. 2017, appendix F)."""

    def __init__(self, config: ModelConfig):
        require_unconditional(config.num_classes, type(self).__name__)
        super().__init__(z_dim=config.z_dim, num_classes=0, resolution=config.resolution, width=config.width,
                         layers=_LAYERS, block_norm=PlainBatchNorm2d)


class WGANGPCritic(ResNetDiscriminator):
    """ResNet critic without normalisation, mean-pooled features, one unbounded score per image."""

    def __init__(self, config: ModelConfig):
        require_unconditional(config.num_classes, type(self).__name__)
        super().__init__(num_classes=0, resolution=config.resolution, width=config.width, layers=_LAYERS,
                         pooling="mean")


register(ModelSpec(
    name="wgan_gp",
    description="WGAN-GP (Gulrajani et al. 2017): ResNet G and a critic without batch norm, Wasserstein loss "
                "with a gradient penalty on real/fake interpolates",
    config_class=WGANGPConfig,
    build_generator=WGANGPGenerator,
    build_discriminator=WGANGPCritic,
))
