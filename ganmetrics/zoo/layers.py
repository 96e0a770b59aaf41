"""Building blocks of the zoo's ResNet family (WGAN-GP, SNGAN, SAGAN, BigGAN), one piece of code per concept.

- :func:`init_weights_`: the initialisations the papers use (Glorot, orthogonal, DCGAN's N(0, 0.02)).
- :func:`spectral_norm`: W / σ(W) with a power-iteration estimate of σ (Miyato et al. 2018).
- :class:`LayerFactory`: makes every conv / linear / embedding of a network the same way
  (initialised, then optionally spectral-normalised).
- :class:`ConditionalBatchNorm2d` and its two variants: class-conditional (SNGAN, SAGAN) and
  linear in a conditioning vector (BigGAN); :class:`PlainBatchNorm2d` for the unconditional case.
- :class:`SelfAttention2d`: SAGAN's self-attention block (Zhang et al. 2019).
- :class:`GeneratorResBlock` / :class:`DiscriminatorResBlock`: the pre-activation up / down blocks of
  Gulrajani et al. 2017 and Miyato et al. 2018, reused by BigGAN (Brock et al. 2019).
- :func:`orthogonal_penalty`: BigGAN's off-diagonal orthogonal regularisation.

Every norm layer is called as ``norm(x, cond)`` so that one block serves the unconditional,
class-conditional and BigGAN cases.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _torch_spectral_norm

from ..errors import InputError

#: initialisation schemes of :func:`init_weights_`
INIT_SCHEMES = ("default", "xavier", "orthogonal", "dcgan")

#: layer types whose weights are initialised, spectral-normalised and orthogonally regularised
WEIGHT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


# -- initialisation -------------------------------------------------------------------------------


def init_weights_(layer: nn.Module, scheme: str, gain: float = 1.0) -> nn.Module:
    """Initialise ``layer.weight`` in place (and its bias to 0, unless ``scheme`` is "default").

    - ``"xavier"``: Glorot uniform, U(±gain·√(6 / (fan_in + fan_out))) (Glorot & Bengio 2010), as in
      the code of WGAN-GP (Gulrajani et al. 2017) and SNGAN (Miyato et al. 2018).
    - ``"orthogonal"``: the weight reshaped to ``[rows, -1]`` is gain × a (semi-)orthogonal matrix, so
      WᵀW = gain²·I (tall) or WWᵀ = gain²·I (wide) (Saxe et al. 2014; BigGAN, Brock et al. 2019).
    - ``"dcgan"``: N(0, 0.02²) (Radford et al. 2016).
    - ``"default"``: PyTorch's own initialisation, untouched.
    """
    if scheme not in INIT_SCHEMES:
        raise InputError(f"unknown init scheme {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    if scheme == "default":
        return layer
    weight = raw_weight(layer)
    with torch.no_grad():
        if scheme == "xavier":
            nn.init.xavier_uniform_(weight, gain=gain)
        elif scheme == "orthogonal":
            nn.init.orthogonal_(weight, gain=gain)
        else:
            nn.init.normal_(weight, 0.0, 0.02)
        bias = getattr(layer, "bias", None)
        if bias is not None:
            bias.zero_()
    return layer


# -- spectral normalisation -----------------------------------------------------------------------


def spectral_norm(layer: nn.Module) -> nn.Module:
    """Spectrally normalise ``layer.weight``: W_SN = W / σ(W) (Miyato et al. 2018, eq. 8).

    σ(W), the largest singular value of the weight reshaped to ``[out, -1]``, is estimated as
    uᵀWv by one power-iteration step per training-mode forward; u and v are buffers (saved in the
    state dict, not trained). Wraps ``torch.nn.utils.parametrizations.spectral_norm``; the trained
    parameter is then ``layer.parametrizations.weight.original`` (see :func:`raw_weight`).
    """
    return _torch_spectral_norm(layer)


def is_spectral_normalized(layer: nn.Module) -> bool:
    """Whether ``layer.weight`` goes through a spectral-norm parametrization."""
    if not parametrize.is_parametrized(layer, "weight"):
        return False
    return any(type(p).__name__ == "_SpectralNorm" for p in layer.parametrizations.weight)


def raw_weight(layer: nn.Module) -> torch.Tensor:
    """The trained weight parameter of ``layer``: before spectral normalisation where there is one."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight


@dataclass(frozen=True)
class LayerFactory:
    """Makes the conv, linear and embedding layers of one network in one way.

    Each layer is initialised by ``init`` (see :func:`init_weights_`), then spectral-normalised when
    ``spectral_norm`` is set: initialisation comes first so that the power iteration starts from the
    initialised weight. Convolutions on the residual branch of a block get ``residual_gain`` (the
    Glorot gain √2 of WGAN-GP's and SNGAN's code), all others gain 1.
    """

    spectral_norm: bool = False
    init: str = "default"
    residual_gain: float = 1.0

    def _finish(self, layer: nn.Module, gain: float = 1.0) -> nn.Module:
        init_weights_(layer, self.init, gain)
        return spectral_norm(layer) if self.spectral_norm else layer

    def conv(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
             residual: bool = False) -> nn.Module:
        """A stride-1 'same' convolution (padding ``kernel_size // 2``)."""
        layer = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
        return self._finish(layer, self.residual_gain if residual else 1.0)

    def linear(self, in_features: int, out_features: int, *, bias: bool = True) -> nn.Module:
        return self._finish(nn.Linear(in_features, out_features, bias=bias))

    def embedding(self, num_embeddings: int, embedding_dim: int) -> nn.Module:
        return self._finish(nn.Embedding(num_embeddings, embedding_dim))


# -- normalisation --------------------------------------------------------------------------------


class PlainBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (Ioffe & Szegedy 2015) called as ``norm(x, cond)``; it ignores ``cond``."""

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x)


class ConditionalBatchNorm2d(nn.Module, abc.ABC):
    """y = γ(c) ⊙ (x − E[x]) / √(Var[x] + ε) + β(c): batch norm whose gain γ and bias β are given per
    sample by a condition c (de Vries et al. 2017; Dumoulin et al. 2017). Subclasses say how c maps to
    (γ, β) in :meth:`gain_and_bias`."""

    def __init__(self, num_features: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)

    @abc.abstractmethod
    def gain_and_bias(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample gain and bias ``[N, num_features]`` for the condition ``cond``."""

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gain, bias = self.gain_and_bias(cond)
        return self.norm(x) * gain[:, :, None, None] + bias[:, :, None, None]


class ClassConditionalBatchNorm2d(ConditionalBatchNorm2d):
    """Class-conditional BN: γ(y), β(y) are rows of per-class tables, initialised to 1 and 0
    (Miyato & Koyama 2018; used by SNGAN's and SAGAN's conditional generators). ``cond``: int64 labels."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__(num_features)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def gain_and_bias(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gain(cond), self.bias(cond)


class LinearConditionalBatchNorm2d(ConditionalBatchNorm2d):
    """BigGAN's conditional BN: γ(c) = 1 + W_γ c, β(c) = W_β c, linear (bias-free) maps of a conditioning
    vector c, in BigGAN the shared class embedding joined to the block's z chunk (Brock et al. 2019, §3
    and appendix B). ``cond``: float ``[N, cond_dim]``."""

    def __init__(self, num_features: int, cond_dim: int, layers: LayerFactory):
        super().__init__(num_features)
        self.cond_dim = cond_dim
        self.gain = layers.linear(cond_dim, num_features, bias=False)
        self.bias = layers.linear(cond_dim, num_features, bias=False)

    def gain_and_bias(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return 1.0 + self.gain(cond), self.bias(cond)


def batch_norm_factory(num_classes: int) -> Callable[[int], nn.Module]:
    """``channels -> norm``: class-conditional BN when ``num_classes > 0``, else plain BN."""
    if num_classes > 0:
        return lambda channels: ClassConditionalBatchNorm2d(channels, num_classes)
    return PlainBatchNorm2d


# -- self-attention -------------------------------------------------------------------------------


class SelfAttention2d(nn.Module):
    """SAGAN's self-attention block (Zhang et al. 2019, §3).

    With query f = W_f x, key g = maxpool₂(W_g x) (C/8 channels each), value h = maxpool₂(W_h x)
    (C/2 channels), all 1×1 convolutions: β = softmax over keys of fᵀg, o = W_o (h βᵀ), and the block
    returns y = x + γ·o with a learned scalar γ initialised at 0, so that it starts as the identity.
    """

    def __init__(self, channels: int, layers: LayerFactory):
        super().__init__()
        if channels % 8:
            raise InputError(f"self-attention needs a multiple of 8 channels, got {channels}")
        self.query = layers.conv(channels, channels // 8, 1, bias=False)
        self.key = layers.conv(channels, channels // 8, 1, bias=False)
        self.value = layers.conv(channels, channels // 2, 1, bias=False)
        self.out = layers.conv(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        query = self.query(x).flatten(2)                       # [N, C/8, HW]
        key = F.max_pool2d(self.key(x), 2).flatten(2)           # [N, C/8, HW/4]
        value = F.max_pool2d(self.value(x), 2).flatten(2)       # [N, C/2, HW/4]
        attention = torch.softmax(query.transpose(1, 2) @ key, dim=-1)   # [N, HW, HW/4], rows sum to 1
        attended = (value @ attention.transpose(1, 2)).view(n, c // 2, h, w)
        return x + self.gamma * self.out(attended)


# -- residual blocks ------------------------------------------------------------------------------


class GeneratorResBlock(nn.Module):
    """Pre-activation up-block of the ResNet generators (Gulrajani et al. 2017, appendix F; Miyato et al.
    2018, appendix B.4; BigGAN's G block):

    residual: x → norm → ReLU → ×2 nearest upsampling → conv3×3 → norm → ReLU → conv3×3;
    shortcut: ×2 upsampling → conv1×1 (identity when shapes allow); output = residual + shortcut.
    Both norms are called as ``norm(h, cond)``.
    """

    def __init__(self, in_channels: int, out_channels: int, layers: LayerFactory,
                 norm: Callable[[int], nn.Module], upsample: bool = True):
        super().__init__()
        self.upsample = upsample
        self.norm1 = norm(in_channels)
        self.conv1 = layers.conv(in_channels, out_channels, 3, residual=True)
        self.norm2 = norm(out_channels)
        self.conv2 = layers.conv(out_channels, out_channels, 3, residual=True)
        self.shortcut = layers.conv(in_channels, out_channels, 1) \
            if in_channels != out_channels or upsample else None

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(self._up(F.relu(self.norm1(x, cond))))
        h = self.conv2(F.relu(self.norm2(h, cond)))
        # a 1×1 convolution commutes with nearest upsampling: convolve the small map
        skip = self._up(self.shortcut(x) if self.shortcut is not None else x)
        return h + skip


class DiscriminatorResBlock(nn.Module):
    """Down-block of the ResNet discriminators (Gulrajani et al. 2017; Miyato et al. 2018, appendix B.4):

    residual: [ReLU →] conv3×3 → ReLU → conv3×3 → [2×2 average pool];
    shortcut: [2×2 average pool →] conv1×1 (identity when shapes allow); output = residual + shortcut.
    ``preactivation=False`` drops the first ReLU: the "optimized" first block that sees the image.
    No normalisation: WGAN-GP's critic must have none, SNGAN's normalises weights instead.
    """

    def __init__(self, in_channels: int, out_channels: int, layers: LayerFactory, downsample: bool = True,
                 preactivation: bool = True):
        super().__init__()
        self.downsample = downsample
        self.preactivation = preactivation
        self.conv1 = layers.conv(in_channels, out_channels, 3, residual=True)
        self.conv2 = layers.conv(out_channels, out_channels, 3, residual=True)
        self.shortcut = layers.conv(in_channels, out_channels, 1) \
            if in_channels != out_channels or downsample else None

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._down(self.conv2(F.relu(self.conv1(h))))
        # average pooling commutes with a 1×1 convolution: pool first, convolve the small map
        skip = self._down(x)
        if self.shortcut is not None:
            skip = self.shortcut(skip)
        return h + skip


# -- orthogonal regularisation --------------------------------------------------------------------


def orthogonal_penalty(weights: Iterable[torch.Tensor]) -> torch.Tensor:
    """BigGAN's orthogonal regularisation without the weight β (Brock et al. 2019, eq. 3):
    Σ_W ‖WᵀW ⊙ (1 − I)‖²_F, each weight reshaped to a matrix whose columns are its filters
    (``[-1, out]``), so only the inner products between different filters are penalised, not their norms.
    """
    terms = []
    for weight in weights:
        filters = weight.reshape(weight.shape[0], -1)          # rows are the filters: this is Wᵀ
        gram = filters @ filters.t()                            # WᵀW
        off_diagonal = gram - torch.diag_embed(torch.diagonal(gram))
        terms.append(off_diagonal.pow(2).sum())
    return torch.stack(terms).sum() if terms else torch.zeros(())


# -- argument checks ------------------------------------------------------------------------------


def check_labels(labels: torch.Tensor | None, num_classes: int, batch: int, owner: str) -> None:
    """Labels must be given (int64 ``[batch]``) to a conditional network and absent for an unconditional one."""
    if num_classes == 0:
        if labels is not None:
            raise InputError(f"{owner} is unconditional: it takes no labels")
        return
    if labels is None:
        raise InputError(f"{owner} is conditional on {num_classes} classes: labels are required")
    if labels.shape != (batch,) or labels.dtype != torch.int64:
        raise InputError(f"{owner}: labels must be int64 [{batch}], got {labels.dtype} {tuple(labels.shape)}")


def check_latents(z: torch.Tensor, z_dim: int, owner: str) -> None:
    if z.ndim != 2 or z.shape[1] != z_dim:
        raise InputError(f"{owner}: z must be [N, {z_dim}], got {tuple(z.shape)}")


def require_unconditional(num_classes: int, owner: str) -> None:
    """For the models that have no conditional variant (DCGAN, WGAN-GP)."""
    if num_classes:
        raise InputError(f"{owner} is unconditional; num_classes must be 0, got {num_classes}")


def reject_truncation(truncation: float | None, owner: str) -> None:
    """Models without a truncation trick refuse one rather than ignore it."""
    if truncation is not None:
        raise InputError(f"{owner} has no truncation trick; pass truncation=None")
