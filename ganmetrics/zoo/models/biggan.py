"""BigGAN (Brock, Donahue & Simonyan 2019, "Large scale GAN training for high fidelity natural image
synthesis"), compact 32×32 version.

SAGAN's conditional ResNet (SN in G and D, self-attention at 16×16, projection discriminator, hinge
loss) with BigGAN's changes (§3 and appendix B):

- a **shared class embedding** e(y), one table for all of G's blocks;
- **hierarchical z**: z is split into equal chunks, the first feeds the initial linear layer, each
  other one is joined to e(y) as c = [e(y), z_i] and drives that block's conditional BN,
  γ = 1 + W_γ c, β = W_β c;
- **orthogonal initialisation** of every layer, and optional **orthogonal regularisation**
  β·Σ‖WᵀW ⊙ (1 − I)‖²_F of G (:meth:`BigGANGenerator.orthogonal_penalty`, weight ``ortho_weight``);
- the **truncation trick** at sampling: z drawn from a normal truncated to [−t, t] by resampling
  (:meth:`BigGANGenerator.draw_latents`);
- Adam 2e-4 for both networks, β (0, 0.999), 2 D steps per G step, an EMA of G (kept by the trainer;
  the paper's per-step decay 0.9999 is ``ema_beta``, used when ``ema_half_life_kimg`` is None — the
  zoo's short runs use the shared 10 kimg half-life instead).

BigGAN is class-conditional (default 10 classes); with ``num_classes=0`` there is no embedding and
each block's condition is its z chunk alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...errors import InputError
from ..config import ModelConfig
from ..layers import WEIGHT_LAYERS, LayerFactory, LinearConditionalBatchNorm2d, orthogonal_penalty, raw_weight
from ..registry import ModelSpec, register
from ..resnet import ResNetDiscriminator, ResNetGenerator

#: BigGAN attends at 16×16 in both networks, as SAGAN does
ATTENTION_RESOLUTION = 16
#: orthogonal initialisation everywhere (gain 1), spectral norm on every conv / linear of G and D
_LAYERS = LayerFactory(spectral_norm=True, init="orthogonal")


@dataclass
class BigGANConfig(ModelConfig):
    model: str = "biggan"
    num_classes: int = 10
    z_dim: int = 80
    width: int = 64
    #: z is split into this many equal chunks: one for the initial linear layer, one per G block
    z_chunks: int = 4
    #: size of the shared class embedding
    shared_dim: int = 32
    loss: str = "hinge"
    d_steps: int = 2
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.999)
    ema_beta: float = 0.9999


class BigGANGenerator(ResNetGenerator):
    """The ResNet generator with a shared class embedding, hierarchical z, SN, attention and orthogonal init."""

    has_truncation_trick = True

    def __init__(self, config: BigGANConfig):
        name = type(self).__name__
        num_blocks = 3  # 4 → 8 → 16 → 32
        if config.z_chunks != num_blocks + 1 or config.z_dim % config.z_chunks:
            raise InputError(f"{name}: z_dim ({config.z_dim}) must split into z_chunks = {num_blocks + 1} "
                             f"equal chunks (one for the linear layer, one per block), got z_chunks = "
                             f"{config.z_chunks}")
        chunk_size = config.z_dim // config.z_chunks
        cond_dim = chunk_size + (config.shared_dim if config.num_classes else 0)
        super().__init__(z_dim=config.z_dim, num_classes=config.num_classes, resolution=config.resolution,
                         width=config.width, layers=_LAYERS, stem_features=chunk_size,
                         block_norm=lambda channels: LinearConditionalBatchNorm2d(channels, cond_dim, _LAYERS),
                         attention_resolution=ATTENTION_RESOLUTION)
        self.chunk_size = chunk_size
        self.shared_embedding: nn.Embedding | None = None
        if config.num_classes:
            # not spectral-normalised: it is an input table, not a layer of the network
            self.shared_embedding = nn.Embedding(config.num_classes, config.shared_dim)
            nn.init.orthogonal_(self.shared_embedding.weight)

    def block_conditions(self, z: torch.Tensor, labels: torch.Tensor | None
                         ) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """z = [z_0, z_1, z_2, z_3]: z_0 feeds the linear layer, block i gets c_i = [e(y), z_(i+1)]."""
        stem_chunk, *block_chunks = z.split(self.chunk_size, dim=1)
        if self.shared_embedding is None:
            return stem_chunk, list(block_chunks)
        shared = self.shared_embedding(labels)
        return stem_chunk, [torch.cat([shared, chunk], dim=1) for chunk in block_chunks]

    def draw_latents(self, n: int, generator: torch.Generator, truncation: float | None = None) -> torch.Tensor:
        """``n`` latents from N(0, I), or with ``truncation`` = t from N(0, I) truncated to [−t, t]: every
        value with |z| > t is redrawn from ``generator`` until it falls inside (BigGAN §4.1)."""
        z = torch.randn(n, self.z_dim, generator=generator)
        if truncation is None:
            return z
        if not truncation > 0:
            raise InputError(f"truncation must be > 0 (or None), got {truncation}")
        outside = z.abs() > truncation
        while bool(outside.any()):
            z[outside] = torch.randn(int(outside.sum()), generator=generator)
            outside = z.abs() > truncation
        return z

    def orthogonal_penalty(self) -> torch.Tensor:
        """Σ‖WᵀW ⊙ (1 − I)‖²_F over the (pre-SN) weights of G's conv and linear layers, not the shared
        embedding (BigGAN eq. 3 without its weight; the trainer adds ``ortho_weight ×`` this)."""
        weights = (raw_weight(layer) for layer in self.modules() if isinstance(layer, WEIGHT_LAYERS))
        return orthogonal_penalty(weights)


class BigGANDiscriminator(ResNetDiscriminator):
    """SN ResNet discriminator with self-attention at 16×16, orthogonal init and a projection head."""

    def __init__(self, config: ModelConfig):
        super().__init__(num_classes=config.num_classes, resolution=config.resolution, width=config.width,
                         layers=_LAYERS, pooling="sum", attention_resolution=ATTENTION_RESOLUTION)


register(ModelSpec(
    name="biggan",
    description="BigGAN (Brock et al. 2019): conditional SN ResNet with self-attention, a shared class "
                "embedding, hierarchical z, orthogonal init and regularisation, truncation trick",
    config_class=BigGANConfig,
    build_generator=BigGANGenerator,
    build_discriminator=BigGANDiscriminator,
))
