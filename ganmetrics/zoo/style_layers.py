"""Building blocks of the StyleGAN family, shared by :mod:`.models.stylegan` and :mod:`.models.stylegan2`.

References:

* [SG1] Karras, Laine, Aila, "A Style-Based Generator Architecture for Generative Adversarial
  Networks", CVPR 2019 (arXiv:1812.04948).
* [SG2] Karras, Laine, Aittala, Hellsten, Lehtinen, Aila, "Analyzing and Improving the Image Quality
  of StyleGAN", CVPR 2020 (arXiv:1912.04958).
* [PG] Karras, Aila, Laine, Lehtinen, "Progressive Growing of GANs", ICLR 2018 (equalised learning
  rate, minibatch standard deviation).

Written from the papers; nothing here comes from NVIDIA's (non-commercially licensed) code.

Randomness: per-pixel noise in training mode comes from ``torch.randn`` on the activations' device,
the style-mixing decisions from the global CPU generator; the trainer seeds both per rank.  In eval
mode nothing here draws random numbers, so a generator built from these blocks is a pure function
of its latents (noise comes from a fixed buffer per layer, StyleGAN2-ADA's ``noise_mode='const'``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .config import ModelConfig

#: negative slope of every leaky ReLU in the family [SG1, SG2]
LEAKY_RELU_SLOPE = 0.2
#: gain after each leaky ReLU that keeps the activations' second moment ≈ 1 with unit-variance weights
#: (He et al.: sqrt(2)); with equalised lr it stands in for He initialisation [PG §4.1]
ACTIVATION_GAIN = math.sqrt(2.0)
#: the 2nd-order binomial filter of bilinear up/downsampling [SG1 §2 "bilinear sampling", SG2 Appendix B]
BINOMIAL_TAPS = (1.0, 3.0, 3.0, 1.0)
#: decay of the tracked mean of w [SG2-ADA's w_avg_beta]
W_AVG_BETA = 0.995
#: learning-rate multiplier of the mapping network [SG1 Appendix C: "reduce the learning rate by two
#: orders of magnitude for the mapping network, i.e. λ' = 0.01·λ"]
MAPPING_LR_MUL = 0.01


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(2) · leaky_relu(x, 0.2)``: the family's activation, variance-preserving."""
    return F.leaky_relu(x, LEAKY_RELU_SLOPE) * ACTIVATION_GAIN


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """The "pixel norm" of a latent [PG §4.2, SG1 §2]: ``x / sqrt(mean_i x_i² + eps)`` along dim 1."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


# -- resampling -------------------------------------------------------------------------------------

def _binomial_kernel(channels: int, like: torch.Tensor, gain: float) -> torch.Tensor:
    """Depthwise 4×4 kernel ``gain · f fᵀ / (Σf)²``, f = [1, 3, 3, 1], one per channel: ``[C, 1, 4, 4]``."""
    taps = torch.tensor(BINOMIAL_TAPS, device=like.device, dtype=like.dtype)
    kernel = torch.outer(taps, taps) * (gain / float(sum(BINOMIAL_TAPS)) ** 2)
    return kernel.expand(channels, 1, 4, 4).contiguous()


def upsample_2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2× upsampling [SG1 §2, SG2 App. B]: zero-insertion, then the [1,3,3,1] filter (gain 4).

    Output pixel ``2j`` is ``¾·x_j + ¼·x_{j-1}`` and ``2j+1`` is ``¾·x_j + ¼·x_{j+1}`` along each axis
    (zero padding at the border, as in the papers' FIR implementation).
    """
    channels = x.shape[1]
    return F.conv_transpose2d(x, _binomial_kernel(channels, x, 4.0), stride=2, padding=1, groups=channels)


def downsample_2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2× downsampling [SG1 §2, SG2 App. B]: the [1,3,3,1]/8 filter per axis, then stride 2."""
    channels = x.shape[1]
    return F.conv2d(x, _binomial_kernel(channels, x, 1.0), stride=2, padding=1, groups=channels)


# -- equalised learning rate [PG §4.1] ----------------------------------------------------------------

class _EqualizedLayer(nn.Module):
    """Weights stored as ``N(0, 1) / lr_mul`` and scaled at run time by ``lr_mul / sqrt(fan_in)``.

    Adam's updates are invariant to the scale of a parameter, so storing unit-variance weights and
    applying the He constant at run time equalises the effective learning rate of every layer [PG §4.1];
    ``lr_mul`` further slows a layer down (the mapping network: 0.01 [SG1 App. C]).  The bias is
    stored as ``bias_init / lr_mul`` and scaled by ``lr_mul``.
    """

    def __init__(self, weight_shape: tuple[int, ...], bias: bool, bias_init: float, lr_mul: float) -> None:
        super().__init__()
        self.lr_mul = float(lr_mul)
        self.weight = nn.Parameter(torch.randn(weight_shape) / self.lr_mul)
        fan_in = math.prod(weight_shape[1:])
        #: runtime scale of the weight: lr_mul / sqrt(fan_in)
        self.weight_gain = self.lr_mul / math.sqrt(fan_in)
        #: runtime scale of the bias: lr_mul
        self.bias_gain = self.lr_mul
        self.bias = nn.Parameter(torch.full((weight_shape[0],), float(bias_init) / self.lr_mul)) if bias else None

    def scaled_weight(self) -> torch.Tensor:
        """The effective weight ``weight · lr_mul / sqrt(fan_in)``."""
        return self.weight * self.weight_gain

    def scaled_bias(self) -> torch.Tensor | None:
        """The effective bias ``bias · lr_mul`` (None without a bias)."""
        return None if self.bias is None else self.bias * self.bias_gain


class EqualLinear(_EqualizedLayer):
    """Fully connected layer with equalised learning rate: ``y = x (ŵ)ᵀ + b̂`` (ŵ, b̂ scaled at run time)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0) -> None:
        super().__init__((out_features, in_features), bias, bias_init, lr_mul)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.scaled_weight(), self.scaled_bias())


class EqualConv2d(_EqualizedLayer):
    """k×k convolution (stride 1, "same" padding) with equalised learning rate."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 lr_mul: float = 1.0) -> None:
        super().__init__((out_channels, in_channels, kernel_size, kernel_size), bias, 0.0, lr_mul)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.scaled_weight(), self.scaled_bias(), padding=self.padding)


# -- mapping network, w_avg, truncation, style mixing [SG1 §2, §3.1, App. B] -----------------------

def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float) -> torch.Tensor:
    """Truncation trick in W [SG1 App. B]: ``w' = w_avg + ψ (w − w_avg)``; ψ = 1 leaves w unchanged."""
    return w_avg.to(ws.dtype).lerp(ws, psi)


def mix_styles(ws: torch.Tensor, ws_other: torch.Tensor, mixing_prob: float) -> torch.Tensor:
    """Style mixing regularisation [SG1 §3.1]: with probability ``mixing_prob``, the layers from a random
    crossover index ``k ∈ [1, num_ws)`` on take their style from a second latent.

    ``ws``, ``ws_other``: ``[N, num_ws, w_dim]``.  One decision and one crossover for the batch, as in
    the paper's implementation.  Draws from the global CPU generator.
    """
    num_ws = ws.shape[1]
    if num_ws < 2 or float(torch.rand(())) >= mixing_prob:
        return ws
    crossover = int(torch.randint(1, num_ws, ()))
    return torch.cat([ws[:, :crossover], ws_other[:, crossover:]], dim=1)


class MappingNetwork(nn.Module):
    """z → w [SG1 §2]: ``w = f(z / rms(z))``, f an MLP of equalised-lr FC layers with leaky ReLU 0.2
    and learning-rate multiplier 0.01.

    Tracks ``w_avg``, the moving mean of w (``w_avg ← β·w_avg + (1−β)·mean_batch(w)``, β = 0.995), in
    every training-mode forward; :meth:`forward` broadcasts w to every synthesis layer, applies style
    mixing (training mode only) and the truncation trick around ``w_avg``.
    """

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mul: float = MAPPING_LR_MUL,
                 w_avg_beta: float = W_AVG_BETA) -> None:
        super().__init__()
        if num_layers < 1:
            raise InputError(f"the mapping network needs at least one layer, got {num_layers}")
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.w_avg_beta = float(w_avg_beta)
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(EqualLinear(dims[i], dims[i + 1], lr_mul=lr_mul) for i in range(num_layers))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """``w = f(normalize_2nd_moment(z))``: ``[N, z_dim] → [N, w_dim]``, no side effects."""
        x = normalize_2nd_moment(z)
        for layer in self.layers:
            x = leaky_relu(layer(x))
        return x

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor) -> None:
        """``w_avg ← β·w_avg + (1−β)·mean_batch(w)``."""
        self.w_avg.copy_(w.detach().mean(dim=0).to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))

    def forward(self, z: torch.Tensor, num_ws: int, truncation: float | None = None,
                mixing_prob: float = 0.0) -> torch.Tensor:
        """The per-layer styles ``ws: [N, num_ws, w_dim]`` of latents ``z: [N, z_dim]``.

        Training mode: updates ``w_avg`` from this batch's w and mixes styles with probability
        ``mixing_prob`` (second latent ``randn_like(z)``).  Eval mode: every layer gets w(z).
        ``truncation`` ψ (None: none) pulls every layer's w towards ``w_avg``.
        """
        w = self.map(z)
        if self.training:
            self.update_w_avg(w)
        ws = w.unsqueeze(1).repeat(1, num_ws, 1)
        if self.training and mixing_prob > 0:
            ws_other = self.map(torch.randn_like(z)).unsqueeze(1).repeat(1, num_ws, 1)
            ws = mix_styles(ws, ws_other, mixing_prob)
        if truncation is not None and truncation != 1:
            ws = truncate(ws, self.w_avg, truncation)
        return ws


# -- noise, AdaIN, modulated convolution -----------------------------------------------------------

class NoiseInjection(nn.Module):
    """Per-pixel noise with a learned per-channel strength [SG1 §2]: ``x + s_c · n``, ``n ~ N(0, 1)``
    of shape ``[N, 1, H, W]`` (one noise image per sample, broadcast over channels).

    Training mode draws fresh noise; eval mode uses ``const_noise``, a fixed buffer drawn at
    construction (saved with the weights), so the generator is deterministic.  Strengths start at 0.
    """

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))
        self.register_buffer("const_noise", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        else:
            noise = self.const_noise.to(x.dtype)
        return x + noise * self.strength.view(1, -1, 1, 1)


class AdaIN(nn.Module):
    """Adaptive instance normalisation [SG1 eq. 1]: ``y_s(w) · (x − μ(x)) / σ(x) + y_b(w)``.

    μ, σ per sample and channel over the pixels; the style ``(y_s, y_b)`` is a learned affine map of w
    (equalised lr; ``y_s`` biased to 1, ``y_b`` to 0, so the initial styles are the identity).
    """

    def __init__(self, channels: int, w_dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.style_scale = EqualLinear(w_dim, channels, bias_init=1.0)
        self.style_bias = EqualLinear(w_dim, channels, bias_init=0.0)
        self.eps = eps

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=(2, 3), keepdim=True)
        x = x * (x.square().mean(dim=(2, 3), keepdim=True) + self.eps).rsqrt()
        return x * self.style_scale(w)[:, :, None, None] + self.style_bias(w)[:, :, None, None]


class ModulatedConv2d(nn.Module):
    """Modulated convolution [SG2 §2.2, eq. 1 and 3], optionally after bilinear 2× upsampling.

    Per sample: styles ``s = A(w)`` (equalised-lr affine map, bias 1), ``w'_{oik} = s_i · ŵ_{oik}``
    (ŵ the equalised-lr weight) and, with ``demodulate``, ``w''_{oik} = w'_{oik} / sqrt(Σ_{ik} w'²_{oik} + 1e-8)``.
    In eval mode the N per-sample kernels run as one grouped convolution (groups = N); in training
    mode the same function runs as ``((x · s) ⊛ ŵ) · d`` with ``d_o = (Σ_i s_i² Σ_k ŵ²_{oik} + 1e-8)^-½``, one
    convolution shared by the batch, which trains faster (StyleGAN2-ADA's ``fused_modconv=False``
    while training; equal up to float32 rounding, tested).  The bias (if any) is added after the convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True, upsample: bool = False, bias: bool = True, eps: float = 1e-8) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.conv = EqualConv2d(in_channels, out_channels, kernel_size, bias=bias)
        self.demodulate = demodulate
        self.upsample = upsample
        self.eps = eps

    def modulated_weight(self, styles: torch.Tensor) -> torch.Tensor:
        """Per-sample kernels ``[N, out, in, k, k]`` from styles ``[N, in]``: w' = w·s, demodulated if asked."""
        weight = self.conv.scaled_weight().unsqueeze(0) * styles[:, None, :, None, None]
        if self.demodulate:
            weight = weight * (weight.square().sum(dim=(2, 3, 4), keepdim=True) + self.eps).rsqrt()
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        if self.upsample:
            x = upsample_2x(x)
        padding = self.conv.padding
        if self.training:
            weight = self.conv.scaled_weight()
            out = F.conv2d(x * styles[:, :, None, None], weight, padding=padding)
            if self.demodulate:  # Σ_{ik} (s_i ŵ_{oik})² = Σ_i s_i² Σ_k ŵ²_{oik}: one [N, in] × [in, out] product
                out = out * (styles.square() @ weight.square().sum(dim=(2, 3)).t() + self.eps).rsqrt()[:, :, None, None]
        else:
            weight = self.modulated_weight(styles)
            n, in_channels, height, width = x.shape
            _, out_channels, _, k, _ = weight.shape
            out = F.conv2d(x.reshape(1, n * in_channels, height, width),
                           weight.reshape(n * out_channels, in_channels, k, k), padding=padding, groups=n)
            out = out.reshape(n, out_channels, height, width)
        bias = self.conv.scaled_bias()
        return out if bias is None else out + bias.view(1, -1, 1, 1)


# -- discriminator parts ----------------------------------------------------------------------------

class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation [PG §3]: append one feature map holding, for each group of
    ``group_size`` samples, the mean over (C, H, W) of the per-feature std over the group.

    Sample ``n`` belongs to group ``n mod (N / G)`` (as in StyleGAN2); G is the largest divisor of N
    not above ``group_size``.  std = sqrt(mean_group (x − mean_group x)² + 1e-8).
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size = group_size
        self.eps = eps

    def group_for(self, batch: int) -> int:
        group = max(1, min(self.group_size, batch))
        while batch % group:
            group -= 1
        return group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = self.group_for(n)
        y = x.reshape(group, n // group, c, h, w)
        y = y - y.mean(dim=0)
        std = (y.square().mean(dim=0) + self.eps).sqrt().mean(dim=(1, 2, 3))  # [N / G]
        feature = std.view(1, n // group, 1, 1, 1).expand(group, n // group, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, feature], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """The 4×4 head of the ProGAN/StyleGAN discriminators [PG Table 2, SG2 App. B]:
    minibatch stddev → 3×3 conv → FC → FC to one logit, equalised lr, leaky ReLU 0.2."""

    def __init__(self, channels: int, resolution: int = 4, mbstd_group_size: int = 4) -> None:
        super().__init__()
        self.mbstd = MinibatchStdDev(mbstd_group_size)
        self.conv = EqualConv2d(channels + 1, channels, 3)
        self.fc = EqualLinear(channels * resolution * resolution, channels)
        self.out = EqualLinear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = leaky_relu(self.conv(self.mbstd(x)))
        x = leaky_relu(self.fc(x.flatten(1)))
        return self.out(x).squeeze(1)


def check_resolution(resolution: int) -> int:
    """log2 of ``resolution``, a power of two ≥ 8 (the StyleGANs start from 4×4 and double)."""
    log2 = int(resolution).bit_length() - 1
    if resolution < 8 or resolution != 1 << log2:
        raise InputError(f"resolution must be a power of two >= 8, got {resolution}")
    return log2


class StyleDiscriminator(nn.Module):
    """The StyleGAN family's discriminator frame: ``D(x) -> logits [N]``, unconditional.

    A 1×1 fromRGB at full resolution (equalised lr, leaky ReLU), one ``block(width)`` per halving down
    to 4×4, then the 4×4 epilogue with minibatch stddev.  StyleGAN and StyleGAN2 differ only in the
    block (ProGAN-style vs residual).
    """

    def __init__(self, block: Callable[[int], nn.Module], width: int, resolution: int, mbstd_group_size: int,
                 model_name: str) -> None:
        super().__init__()
        log2 = check_resolution(resolution)
        self.resolution = resolution
        self.model_name = model_name
        self.from_rgb = EqualConv2d(3, width, 1)
        self.blocks = nn.ModuleList(block(width) for _ in range(log2 - 2))
        self.epilogue = DiscriminatorEpilogue(width, 4, mbstd_group_size)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is not None:
            raise InputError(f"{self.model_name}'s discriminator is unconditional: it takes no labels")
        x = leaky_relu(self.from_rgb(x))
        for block in self.blocks:
            x = block(x)
        return self.epilogue(x)


def unconditional_config(config, config_class: type, model_name: str):
    """``config`` after checking it is a ``config_class`` with ``num_classes == 0``."""
    if not isinstance(config, config_class):
        raise TypeError(f"{model_name} needs a {config_class.__name__}, got {type(config).__name__}")
    if config.num_classes:
        raise InputError(f"{model_name} is unconditional: num_classes must be 0")
    return config


@dataclass
class StyleFamilyConfig(ModelConfig):
    """Settings the StyleGAN family shares; :mod:`.models.stylegan` and :mod:`.models.stylegan2` set the rest.

    Non-saturating loss with R1, Adam β (0, 0.99), style mixing with probability 0.9, the tracked mean w
    for truncation, minibatch stddev over groups of 4, and a 5 kimg EMA half-life: the papers' 10 kimg
    would lag on the zoo's CPU runs of some hundred kimg (≈ 80 steps at batch 64).
    """

    z_dim: int = 64
    w_dim: int = 64
    #: fully connected layers of the mapping network (each model sets its own)
    mapping_layers: int = 4
    mapping_lr_mul: float = MAPPING_LR_MUL
    w_avg_beta: float = W_AVG_BETA
    mbstd_group_size: int = 4
    loss: str = "nonsaturating"
    betas: tuple[float, float] = (0.0, 0.99)
    ema_half_life_kimg: float | None = 5.0
    mixing_prob: float = 0.9


def generator_arguments(config: StyleFamilyConfig) -> dict:
    """The keyword arguments both StyleGAN generators take, from their config."""
    return dict(z_dim=config.z_dim, w_dim=config.w_dim, width=config.width, mapping_layers=config.mapping_layers,
                resolution=config.resolution, mixing_prob=config.mixing_prob, mapping_lr_mul=config.mapping_lr_mul,
                w_avg_beta=config.w_avg_beta)


def discriminator_arguments(config: StyleFamilyConfig) -> dict:
    """The keyword arguments both StyleGAN discriminators take, from their config."""
    return dict(width=config.width, resolution=config.resolution, mbstd_group_size=config.mbstd_group_size)
