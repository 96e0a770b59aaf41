"""The zoo's StyleGAN and StyleGAN2 (ganmetrics.zoo.models.stylegan / stylegan2, ganmetrics.zoo.style_layers).

Checks the interface every zoo model keeps (registry, shapes, gradients, size), then that each defining
component of the two papers is present *and* does what it should: equalised learning rate, the
mapping network's lr multiplier and z normalisation, the tracked w_avg and truncation, style mixing,
AdaIN, noise (random in training, constant in eval), demodulation, the skip generator, the residual
discriminator and minibatch stddev.  CPU only, a few seconds.
"""

from __future__ import annotations

import contextlib
import math
from itertools import chain

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import assert_float32_close, float32_close
from ganmetrics.zoo import Generator, build, config_from_dict, default_config, get_spec, model_names
from ganmetrics.zoo.models.stylegan2 import ResidualDiscriminatorBlock, SynthesisBlock
from ganmetrics.zoo.style_layers import (
    AdaIN,
    EqualConv2d,
    EqualLinear,
    MappingNetwork,
    MinibatchStdDev,
    ModulatedConv2d,
    NoiseInjection,
    downsample_2x,
    leaky_relu,
    upsample_2x,
)

MODELS = ["stylegan", "stylegan2"]
#: ZOO.md's "compact design" column: (G parameters, D parameters); the zoo allows ±15 %
BUDGETS = {"stylegan": (335_000, 325_000), "stylegan2": (190_000, 190_000)}
#: G + D in float32, parameters and buffers
MAX_BYTES = 3_000_000
#: layers that take a style w: AdaIN (StyleGAN) and modulated convs incl. toRGB (StyleGAN2)
STYLE_CONSUMERS = (AdaIN, ModulatedConv2d)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _latents(n: int = 4, z_dim: int = 64) -> torch.Tensor:
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(123))


@contextlib.contextmanager
def _hooked(modules, register):
    """``register(module)`` on each module (returning a hook handle) for the duration."""
    hooks = [register(m) for m in modules]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def _styles_fed_to_layers(G: nn.Module, z: torch.Tensor) -> list[torch.Tensor]:
    """The w each style-consuming layer receives during ``G(z)``, in call order."""
    fed: list[torch.Tensor] = []
    consumers = [m for m in G.modules() if isinstance(m, STYLE_CONSUMERS)]
    with _hooked(consumers, lambda m: m.register_forward_pre_hook(lambda module, args: fed.append(args[1].detach().clone()))), \
            torch.no_grad():
        G(z)
    return fed


def _call_order(G: nn.Module, z: torch.Tensor, names: dict[type, str]) -> list[str]:
    """Names of the modules of the given types, in the order their forwards finish during ``G(z)``."""
    order: list[str] = []

    def record(module, args, output):
        name = names[type(module)]
        if isinstance(module, ModulatedConv2d) and not module.demodulate:
            name = "rgb"
        order.append(name)

    with _hooked([m for m in G.modules() if type(m) in names], lambda m: m.register_forward_hook(record)), \
            torch.no_grad():
        G(z)
    return order


# ---------------------------------------------------------------------------------------------
# the zoo interface

@pytest.mark.parametrize("name", MODELS)
def test_registered_built_and_configured(name):
    assert name in model_names()
    G, D, config = build(name)
    assert isinstance(config, get_spec(name).config_class) and config.model == name
    assert isinstance(G, Generator) and isinstance(D, nn.Module)
    assert (G.z_dim, G.num_classes, G.resolution) == (64, 0, 32)
    assert config.z_dim == config.w_dim == 64
    assert config.loss == "nonsaturating" and config.r1_gamma > 0
    assert config.betas == (0.0, 0.99) and config.mixing_prob == 0.9 == G.mixing_prob
    assert config_from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unconditional"):
        build(name, num_classes=10)


def test_stylegan_config():
    config = default_config("stylegan")
    assert (config.width, config.mapping_layers, config.r1_interval) == (64, 4, 1)


def test_stylegan2_config():
    config = default_config("stylegan2")
    assert (config.width, config.mapping_layers, config.r1_interval) == (48, 2, 16)
    assert config.g_lr == config.d_lr == 0.0025
    assert config.ema_half_life_kimg is not None and config.ema_half_life_kimg > 0


@pytest.mark.parametrize("name", MODELS)
def test_forward_shapes(name):
    G, D, _ = build(name)
    z = _latents()
    for train in (True, False):
        G.train(train)
        D.train(train)
        images = G(z)
        assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
        assert bool(torch.isfinite(images).all())
        logits = D(images)
        assert logits.shape == (4,) and bool(torch.isfinite(logits).all())
    with pytest.raises(ValueError):
        G(z, torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError):
        D(images, torch.zeros(4, dtype=torch.int64))


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_parameter(name):
    G, D, _ = build(name)
    G.train()
    D.train()
    F.softplus(-D(G(_latents()))).mean().backward()  # the non-saturating G loss
    for net in (G, D):
        for pname, parameter in net.named_parameters():
            assert parameter.grad is not None, f"{type(net).__name__}.{pname} gets no gradient"
            assert float(parameter.grad.abs().sum()) > 0, f"{type(net).__name__}.{pname} has a zero gradient"


@pytest.mark.parametrize("name", MODELS)
def test_parameter_budget_and_size(name):
    G, D, _ = build(name)
    g_budget, d_budget = BUDGETS[name]
    g_params = sum(p.numel() for p in G.parameters())
    d_params = sum(p.numel() for p in D.parameters())
    assert abs(g_params / g_budget - 1) <= 0.15, g_params
    assert abs(d_params / d_budget - 1) <= 0.15, d_params
    tensors = chain(G.parameters(), G.buffers(), D.parameters(), D.buffers())
    assert all(t.dtype == torch.float32 for t in chain(G.parameters(), D.parameters()))
    assert sum(t.numel() * t.element_size() for t in tensors) <= MAX_BYTES


# ---------------------------------------------------------------------------------------------
# equalised learning rate, the mapping network, w_avg and truncation

@pytest.mark.parametrize("name", MODELS)
def test_equalized_learning_rate(name):
    G, D, config = build(name)
    mapping_layers = list(G.mapping.layers)
    assert len(mapping_layers) == config.mapping_layers
    assert all(isinstance(layer, EqualLinear) for layer in mapping_layers)
    stored = []
    for net in (G, D):
        layers = [m for m in net.modules() if isinstance(m, (EqualLinear, EqualConv2d))]
        assert layers
        for layer in layers:
            expected_lr_mul = 0.01 if any(layer is m for m in mapping_layers) else 1.0
            fan_in = layer.weight[0].numel()
            assert layer.lr_mul == expected_lr_mul
            assert layer.weight_gain == pytest.approx(expected_lr_mul / math.sqrt(fan_in), rel=1e-12)
            assert layer.bias_gain == expected_lr_mul
            stored.append((layer.weight * layer.lr_mul).detach().flatten())
    # every layer (nothing else is a conv or FC) keeps its weights as N(0, 1) / lr_mul
    assert not [m for m in chain(G.modules(), D.modules()) if isinstance(m, (nn.Linear, nn.Conv2d))]
    stored = torch.cat(stored)
    assert float(stored.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(stored.std()) == pytest.approx(1.0, abs=0.01)
    # ... and scales them at run time
    layer = mapping_layers[0]
    with torch.no_grad():
        layer.bias.normal_()
        x = torch.randn(5, layer.weight.shape[1])
        expected = F.linear(x, layer.weight * 0.01 / math.sqrt(layer.weight.shape[1]), layer.bias * 0.01)
        assert torch.allclose(layer(x), expected, atol=1e-6)
        conv = D.from_rgb
        conv.bias.normal_()
        x = torch.randn(2, 3, 8, 8)
        expected = F.conv2d(x, conv.weight / math.sqrt(3), conv.bias)
        assert torch.allclose(conv(x), expected, atol=1e-6)


def test_mapping_normalizes_z_and_tracks_w_avg():
    mapping = MappingNetwork(8, 6, num_layers=3)
    z = torch.randn(16, 8)
    with torch.no_grad():
        assert torch.allclose(mapping.map(3.0 * z), mapping.map(z), atol=1e-5)  # z / rms(z)
        mapping.w_avg.normal_()
        before = mapping.w_avg.clone()
        mapping.train()
        ws = mapping(z, num_ws=5)
        w = mapping.map(z)
        assert ws.shape == (16, 5, 6) and torch.allclose(ws, w[:, None].expand(16, 5, 6))
        assert torch.allclose(mapping.w_avg, 0.995 * before + 0.005 * w.mean(0), atol=1e-6)
        after_train = mapping.w_avg.clone()
        mapping.eval()
        mapping(z, num_ws=5)
        assert torch.equal(mapping.w_avg, after_train)  # eval forwards do not touch w_avg
    assert "w_avg" in mapping.state_dict() and not any(p is mapping.w_avg for p in mapping.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_truncation(name):
    G, _, _ = build(name)
    G.eval()
    z = _latents()
    with torch.no_grad():
        G.mapping.w_avg.normal_()  # a non-trivial tracked mean, as after training
        centre = G.synthesis(G.mapping.w_avg.expand(1, G.num_ws, -1))
        truncated = G(z, truncation=0.0)
        assert torch.allclose(truncated, truncated[:1].expand_as(truncated), atol=1e-6)  # every sample alike
        assert float32_close(truncated, centre.expand_as(truncated))  # batch of 4 vs batch of 1
        assert torch.equal(G(z, truncation=1.0), G(z))
        assert not torch.allclose(G(z, truncation=0.5), G(z), atol=1e-3)
        w = G.mapping.map(z)
        half = G.mapping(z, G.num_ws, truncation=0.5)
        assert torch.allclose(half, (G.mapping.w_avg + 0.5 * (w - G.mapping.w_avg))[:, None].expand_as(half),
                              atol=1e-6)
        samples = G.sample(3, seed=1, truncation=0.0)
        assert float32_close(samples, centre.expand_as(samples))


# ---------------------------------------------------------------------------------------------
# style mixing, constant input, noise, AdaIN

@pytest.mark.parametrize("name", MODELS)
def test_style_mixing_in_training_only(name):
    G, _, _ = build(name)
    z = _latents()
    with torch.no_grad():
        w = G.mapping.map(z)
    G.train()
    G.mixing_prob = 1.0
    crossovers = set()
    for _ in range(12):
        fed = _styles_fed_to_layers(G, z)
        from_z = [torch.allclose(f, w, atol=1e-6) for f in fed]
        assert from_z[0], "the first layer always takes w(z)"
        crossover = from_z.index(False)  # the first layer fed from the second latent
        assert not any(from_z[crossover:])
        assert all(torch.equal(f, fed[-1]) for f in fed[crossover:])  # a single second w
        crossovers.add(crossover)
    assert len(crossovers) >= 2  # the crossover layer is random
    G.mixing_prob = 0.0
    assert all(torch.allclose(f, w, atol=1e-6) for f in _styles_fed_to_layers(G, z))
    G.mixing_prob = 1.0
    G.eval()
    assert all(torch.allclose(f, w, atol=1e-6) for f in _styles_fed_to_layers(G, z))


@pytest.mark.parametrize("name", MODELS)
def test_constant_input_is_learned(name):
    G, _, config = build(name)
    assert isinstance(G.const, nn.Parameter) and G.const.requires_grad
    assert any(p is G.const for p in G.parameters())
    assert G.const.shape == (1, config.width, 4, 4)
    G.eval()
    z = _latents()
    with torch.no_grad():
        before = G(z)
        G.const.add_(torch.randn_like(G.const))
        assert not torch.allclose(G(z), before, atol=1e-4)


def test_noise_injection():
    noise = NoiseInjection(3, 4)
    assert isinstance(noise.strength, nn.Parameter) and noise.strength.shape == (3,)
    assert "const_noise" in noise.state_dict() and noise.const_noise.shape == (1, 1, 4, 4)
    x = torch.zeros(2, 3, 4, 4)
    with torch.no_grad():
        noise.strength.copy_(torch.tensor([0.0, 1.0, 2.0]))
        noise.eval()
        out = noise(x)
        assert torch.equal(out, noise.const_noise * noise.strength.view(1, 3, 1, 1).expand(2, 3, 1, 1))
        noise.train()
        out = noise(x)
        assert torch.allclose(out[:, 2], 2 * out[:, 1]) and torch.equal(out[:, 0], torch.zeros(2, 4, 4))
        assert not torch.allclose(out[0], out[1])  # one noise image per sample
        assert not torch.allclose(noise(x), out)  # fresh in every training forward


@pytest.mark.parametrize("name", MODELS)
def test_noise_random_in_training_const_in_eval(name):
    G, _, _ = build(name)
    layers = [m for m in G.modules() if isinstance(m, NoiseInjection)]
    assert len(layers) == (8 if name == "stylegan" else 7)  # every synthesis layer
    z = _latents()
    G.mixing_prob = 0.0
    with torch.no_grad():
        for layer in layers:
            layer.strength.normal_()
        G.train()
        assert not torch.allclose(G(z), G(z), atol=1e-4)
        G.eval()
        first = G(z)
        assert torch.equal(G(z), first)
        assert float32_close(G(z[:2]), first[:2])  # the same const noise for every sample
        for layer in layers:
            layer.strength.zero_()
        assert not torch.allclose(G(z), first, atol=1e-4)


def test_adain():
    adain = AdaIN(5, 8)
    x = torch.randn(3, 5, 6, 6) * 3 + 2
    w = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.equal(adain.style_scale.scaled_bias(), torch.ones(5))  # identity styles at init
        assert torch.equal(adain.style_bias.scaled_bias(), torch.zeros(5))
        y = adain(x, w)
        assert torch.allclose(y.mean(dim=(2, 3)), adain.style_bias(w), atol=1e-5)
        assert torch.allclose(y.std(dim=(2, 3), unbiased=False), adain.style_scale(w).abs(), atol=1e-4)
        assert torch.allclose(adain(5 * x - 1, w), y, atol=1e-4)  # instance-normalised first


def test_stylegan_layer_order():
    """Noise before every AdaIN, an AdaIN after every conv [SG1 Fig. 1b]."""
    G, _, _ = build("stylegan")
    order = _call_order(G, _latents(), {EqualConv2d: "conv", NoiseInjection: "noise", AdaIN: "adain"})
    assert order == ["noise", "adain"] + ["conv", "noise", "adain"] * 7 + ["conv"]  # the last conv: toRGB


def test_stylegan_upsamples_per_resolution():
    G, _, _ = build("stylegan")
    sizes = []
    hooks = [layer.register_forward_hook(lambda m, a, out: sizes.append(out.shape[-1])) for layer in G.layers]
    with torch.no_grad():
        G(_latents())
    for hook in hooks:
        hook.remove()
    assert sizes == [4, 4, 8, 8, 16, 16, 32, 32]


# ---------------------------------------------------------------------------------------------
# StyleGAN2: demodulation, skip generator, residual discriminator

def test_stylegan2_layer_order():
    """Noise after every modulated conv; a toRGB closing every resolution."""
    G, _, _ = build("stylegan2")
    order = _call_order(G, _latents(), {ModulatedConv2d: "conv", NoiseInjection: "noise"})
    assert order == ["conv", "noise", "rgb"] + ["conv", "noise", "conv", "noise", "rgb"] * 3


def test_stylegan2_demodulation():
    G, _, _ = build("stylegan2")
    modulated = [m for m in G.modules() if isinstance(m, ModulatedConv2d)]
    demodulated = [m for m in modulated if m.demodulate]
    assert len(demodulated) == 7 and len(modulated) - len(demodulated) == 4  # toRGBs are not demodulated
    w = torch.randn(4, 64)
    with torch.no_grad():
        for conv in demodulated:
            styles = conv.affine(w)
            weight = conv.modulated_weight(styles)  # [N, out, in, k, k]
            norms = weight.square().sum(dim=(2, 3, 4)).sqrt()
            assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
            assert torch.allclose(conv.modulated_weight(3.0 * styles), weight, atol=1e-6)
            expected = conv.conv.scaled_weight() * styles[:, None, :, None, None]  # w' = w · s
            assert torch.allclose(weight, expected / expected.square().sum(dim=(2, 3, 4), keepdim=True).add(1e-8)
                                  .sqrt(), atol=1e-6)
        # the grouped convolution applies each sample's own kernel
        conv = next(m for m in demodulated if m.upsample)
        x = torch.randn(4, 48, 4, 4)
        weight = conv.modulated_weight(conv.affine(w))
        expected = torch.cat([F.conv2d(upsample_2x(x[i:i + 1]), weight[i], conv.conv.scaled_bias(), padding=1)
                              for i in range(4)])
        assert torch.allclose(conv(x, w), expected, atol=1e-5)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_stylegan2_training_mode_convolution_is_the_same_function(memory_format):
    """Training runs ``((x·s) ⊛ ŵ)·d`` as one batched convolution, eval the grouped per-sample kernels: the same
    values (and input gradients) up to float32 rounding, in either layout.  Measured worst (3 seeds, every layer,
    ONEDNN_MAX_CPU_ISA=SSE41/AVX2/AVX512_CORE): 1.5e-6 of the largest magnitude, a tenth of FLOAT32_REL."""
    G, _, _ = build("stylegan2")
    w = torch.randn(6, 64)
    for conv in (m for m in G.modules() if isinstance(m, ModulatedConv2d)):
        x = torch.randn(6, conv.affine.weight.shape[0], 8, 8).contiguous(memory_format=memory_format)
        outputs, grads = [], []
        for training in (False, True):
            conv.train(training)
            x_in = x.clone().requires_grad_(True)
            out = conv(x_in, w)
            out.square().sum().backward()
            outputs.append(out.detach())
            grads.append(x_in.grad)
        assert_float32_close(outputs[1], outputs[0])
        assert_float32_close(grads[1], grads[0])


def test_stylegan2_skip_generator():
    G, _, _ = build("stylegan2")
    G.eval()
    blocks = [m for m in G.modules() if isinstance(m, SynthesisBlock)]
    rgbs: list[torch.Tensor] = []
    hooks = [block.to_rgb.register_forward_hook(lambda m, a, out: rgbs.append(out)) for block in blocks]
    with torch.no_grad():
        image = G(_latents())
    for hook in hooks:
        hook.remove()
    assert [rgb.shape[-1] for rgb in rgbs] == [4, 8, 16, 32]
    assert all(float(rgb.abs().sum()) > 0 for rgb in rgbs)
    expected = rgbs[0]
    for rgb in rgbs[1:]:
        expected = upsample_2x(expected) + rgb
    assert torch.allclose(image, expected, atol=1e-6)


def test_bilinear_resampling():
    x = torch.randn(2, 3, 8, 8)
    bilinear = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(upsample_2x(x)[..., 1:-1, 1:-1], bilinear[..., 1:-1, 1:-1], atol=1e-6)
    assert torch.allclose(upsample_2x(torch.ones(1, 2, 4, 4))[..., 1:-1, 1:-1], torch.ones(1, 2, 6, 6))
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
    down = downsample_2x(x)
    assert down.shape == (2, 3, 4, 4)
    # output pixel i is centred between inputs 2i and 2i+1: [1, 3, 3, 1]/8 over inputs 2i-1 .. 2i+2
    assert torch.allclose(down[..., 1, 2], (x[..., 1:5, 3:7] * torch.outer(taps, taps)).sum(dim=(-2, -1)),
                          atol=1e-6)


def test_stylegan2_residual_discriminator():
    _, D, _ = build("stylegan2")
    blocks = [m for m in D.modules() if isinstance(m, ResidualDiscriminatorBlock)]
    assert len(blocks) == 3
    block = blocks[0]
    x = torch.randn(2, 48, 32, 32)
    with torch.no_grad():
        out = block(x)
        assert out.shape == (2, 48, 16, 16)
        main = leaky_relu(block.conv1(downsample_2x(leaky_relu(block.conv0(x)))))
        shortcut = block.skip(downsample_2x(x))
        assert block.skip.bias is None and block.skip.weight.shape[-1] == 1
        assert torch.allclose(out, (main + shortcut) * math.sqrt(0.5), atol=1e-6)
        block.conv1.weight.zero_()
        block.conv1.bias.zero_()  # no main path: the shortcut alone remains
        assert torch.allclose(block(x), shortcut * math.sqrt(0.5), atol=1e-6)
        assert float(shortcut.abs().sum()) > 0


# ---------------------------------------------------------------------------------------------
# minibatch standard deviation

def test_minibatch_stddev():
    x = torch.randn(8, 5, 3, 3)
    out = MinibatchStdDev(group_size=4)(x)
    assert out.shape == (8, 6, 3, 3) and torch.equal(out[:, :5], x)
    for n in range(8):
        group = x[[m for m in range(8) if m % 2 == n % 2]]  # 8 / 4 = 2 groups, sample n in group n mod 2
        expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        assert torch.allclose(out[n, 5], expected.expand(3, 3), atol=1e-6)
    assert MinibatchStdDev(4).group_for(6) == 3 and MinibatchStdDev(4).group_for(1) == 1
    assert MinibatchStdDev(4)(torch.randn(6, 2, 4, 4)).shape == (6, 3, 4, 4)


@pytest.mark.parametrize("name", MODELS)
def test_discriminator_uses_minibatch_stddev(name):
    _, D, config = build(name)
    assert isinstance(D.epilogue.mbstd, MinibatchStdDev)
    assert D.epilogue.conv.weight.shape[1] == config.width + 1  # the appended feature map
    D.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        # a sample's logit depends on the others in its group
        assert not torch.allclose(D(x)[:1], D(torch.cat([x[:1], torch.randn(3, 3, 32, 32)]))[:1], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# sampling

@pytest.mark.parametrize("name", MODELS)
def test_sample_deterministic_and_batch_independent(name):
    G, _, _ = build(name)
    with torch.no_grad():
        for layer in G.modules():
            if isinstance(layer, NoiseInjection):
                layer.strength.normal_()  # make the (const) noise matter
    G.train()
    first = G.sample(6, seed=3, batch_size=6)
    assert G.training  # sample() restores the mode
    assert first.shape == (6, 3, 32, 32)
    assert torch.equal(G.sample(6, seed=3, batch_size=6), first)
    assert_float32_close(G.sample(6, seed=3, batch_size=4), first)
    assert not torch.allclose(G.sample(6, seed=4), first, atol=1e-3)
