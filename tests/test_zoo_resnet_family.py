"""The zoo's DCGAN, WGAN-GP, SNGAN, SAGAN and BigGAN: shapes, budgets, gradients, and that what defines
each model (ZOO.md) is there and does what it should. Fast, CPU only."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from conftest import assert_float32_close
from ganmetrics.zoo import build, default_config, model_names
from ganmetrics.zoo.layers import (
    WEIGHT_LAYERS,
    ClassConditionalBatchNorm2d,
    LinearConditionalBatchNorm2d,
    PlainBatchNorm2d,
    SelfAttention2d,
    init_weights_,
    is_spectral_normalized,
    orthogonal_penalty,
    raw_weight,
)

MODELS = ("dcgan", "wgan_gp", "sngan", "sagan", "biggan")
CONDITIONAL = ("sngan", "sagan", "biggan")
#: (model, num_classes) pairs covering every variant: BigGAN is conditional by default
VARIANTS = [(name, None) for name in MODELS] + [(name, 10) for name in ("sngan", "sagan")] + [("biggan", 0)]
#: ZOO.md's "compact design" parameter counts (G, D), to be met within ±15 %
COMPACT_PARAMS = {"dcgan": (299_000, 168_000), "sngan": (310_000, 274_000), "sagan": (315_000, 279_000),
                  "biggan": (303_000, 279_000)}
#: WGAN-GP is given as a range, width 48–64
WGAN_GP_RANGE = ((184_000, 303_000), (154_000, 273_000))
BATCH = 4


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _build(name: str, num_classes: int | None = None):
    overrides = {} if num_classes is None else {"num_classes": num_classes}
    return build(name, **overrides)


def _inputs(G, config, batch: int = BATCH):
    z = torch.randn(batch, G.z_dim)
    labels = torch.arange(batch) % config.num_classes if config.num_classes else None
    return z, labels


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _state_bytes(module: nn.Module) -> int:
    return sum(t.numel() * 4 for t in module.state_dict().values() if t.is_floating_point())


def _attention_blocks(module: nn.Module) -> list[SelfAttention2d]:
    return [m for m in module.modules() if isinstance(m, SelfAttention2d)]


def _weight_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (*WEIGHT_LAYERS, nn.Embedding))]


# -- every model ----------------------------------------------------------------------------------


def test_registered_in_order():
    names = model_names()
    assert [n for n in names if n in MODELS] == list(MODELS)


@pytest.mark.parametrize("name,num_classes", VARIANTS)
def test_forward_shapes_and_range(name, num_classes):
    G, D, config = _build(name, num_classes)
    z, labels = _inputs(G, config)
    for mode in (True, False):
        G.train(mode)
        D.train(mode)
        images = G(z, labels)
        assert images.shape == (BATCH, 3, 32, 32) and images.dtype == torch.float32
        assert images.min() >= -1 and images.max() <= 1
        logits = D(images, labels)
        assert logits.shape == (BATCH,) and torch.isfinite(logits).all()
    assert (G.resolution, G.num_classes, G.z_dim) == (32, config.num_classes, config.z_dim)


@pytest.mark.parametrize("name", MODELS)
def test_labels_are_checked(name):
    G, D, config = build(name)
    z, labels = _inputs(G, config)
    x = torch.zeros(BATCH, 3, 32, 32)
    if config.num_classes:
        with pytest.raises(ValueError):
            G(z)
        with pytest.raises(ValueError):
            D(x)
    else:
        with pytest.raises(ValueError):
            G(z, torch.zeros(BATCH, dtype=torch.int64))
        with pytest.raises(ValueError):
            D(x, torch.zeros(BATCH, dtype=torch.int64))


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp"])
def test_unconditional_models_refuse_classes(name):
    with pytest.raises(ValueError):
        build(name, num_classes=10)


@pytest.mark.parametrize("name,num_classes", VARIANTS)
def test_parameter_budget(name, num_classes):
    G, D, _ = _build(name, num_classes)
    g_params, d_params = _params(G), _params(D)
    if name == "wgan_gp":
        (g_low, g_high), (d_low, d_high) = WGAN_GP_RANGE
        assert g_low <= g_params <= g_high and d_low <= d_params <= d_high, (g_params, d_params)
    else:
        g_target, d_target = COMPACT_PARAMS[name]
        assert abs(g_params / g_target - 1) <= 0.15, g_params
        assert abs(d_params / d_target - 1) <= 0.15, d_params
    assert _state_bytes(G) + _state_bytes(D) <= 3_000_000


@pytest.mark.parametrize("name,num_classes", VARIANTS)
def test_gradients_reach_every_parameter(name, num_classes):
    G, D, config = _build(name, num_classes)
    # at γ = 0 the attention convs get exactly zero gradient (the block is the identity): open it
    for block in _attention_blocks(G) + _attention_blocks(D):
        nn.init.constant_(block.gamma, 0.5)
    z, labels = _inputs(G, config)
    D(G(z, labels), labels).mean().backward()
    for net in (G, D):
        for pname, p in net.named_parameters():
            assert p.grad is not None, pname
            assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", MODELS)
def test_sample_is_deterministic_and_independent_of_batch_size(name):
    G, _, _ = build(name)
    G.train()
    first = G.sample(6, seed=3, batch_size=4)
    assert G.training
    assert_float32_close(G.sample(6, seed=3, batch_size=6), first)
    assert_float32_close(G.sample(6, seed=3, batch_size=1), first)
    assert not torch.allclose(G.sample(6, seed=4), first)
    if name != "biggan":
        with pytest.raises(ValueError):
            G.sample(2, truncation=0.5)


@pytest.mark.parametrize("name,values", [
    ("dcgan", dict(loss="nonsaturating", g_lr=2e-4, d_lr=2e-4, betas=(0.5, 0.999), d_steps=1, z_dim=64)),
    ("wgan_gp", dict(loss="wasserstein", gp_weight=10.0, d_steps=5, g_lr=1e-4, d_lr=1e-4, betas=(0.0, 0.9))),
    ("sngan", dict(loss="hinge", g_lr=2e-4, d_lr=2e-4, betas=(0.0, 0.9), d_steps=5, num_classes=0)),
    ("sagan", dict(loss="hinge", g_lr=1e-4, d_lr=4e-4, betas=(0.0, 0.9), num_classes=0)),
    ("biggan", dict(loss="hinge", g_lr=2e-4, d_lr=2e-4, betas=(0.0, 0.999), d_steps=2, z_dim=80, z_chunks=4,
                    shared_dim=32, num_classes=10, ortho_weight=0.0)),
])
def test_paper_settings(name, values):
    config = default_config(name)
    assert config.model == name
    assert {key: getattr(config, key) for key in values} == values


# -- DCGAN ----------------------------------------------------------------------------------------


def test_dcgan_all_convolutional_with_batch_norm():
    G, D, _ = build("dcgan")
    assert [m for m in G.modules() if isinstance(m, nn.Linear)] == [G.project]
    assert not [m for m in D.modules() if isinstance(m, nn.Linear)]
    pooling = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Upsample)
    assert not [m for m in [*G.modules(), *D.modules()] if isinstance(m, pooling)]
    assert all(isinstance(m, (nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU, nn.Tanh)) for m in G.body)
    assert [m.stride for m in G.body if isinstance(m, nn.ConvTranspose2d)] == [(2, 2)] * 3
    assert [m.stride for m in D.body if isinstance(m, nn.Conv2d)] == [(2, 2)] * 3 + [(1, 1)]
    assert {m.negative_slope for m in D.body if isinstance(m, nn.LeakyReLU)} == {0.2}
    assert not isinstance(D.body[1], nn.BatchNorm2d)  # no BN on D's input layer

    # every BN is on the path and normalises its input per channel with batch statistics
    seen: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    norms = [m for m in [*G.modules(), *D.modules()] if isinstance(m, nn.BatchNorm2d)]
    assert len([m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]) == 3 and len(norms) == 5
    for norm in norms:
        norm.register_forward_hook(
            lambda module, inputs, output: seen.setdefault(module, []).append((inputs[0], output)))
    D(G(torch.randn(8, G.z_dim)))
    for norm in norms:
        assert len(seen[norm]) == 1
        x, out = (t.detach() for t in seen[norm][0])
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        torch.testing.assert_close(out, (x - mean) / torch.sqrt(var + norm.eps), rtol=1e-4, atol=1e-4)
        assert out.std() > 0.5  # not a no-op on DCGAN's small N(0, 0.02) activations


# -- WGAN-GP --------------------------------------------------------------------------------------


def test_wgan_gp_critic_has_no_normalisation():
    G, D, _ = build("wgan_gp")
    norm_types = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
    assert not [m for m in D.modules() if isinstance(m, norm_types)]
    assert not [m for m in D.modules() if parametrize.is_parametrized(m)]
    assert any(isinstance(m, PlainBatchNorm2d) for m in G.modules())  # the generator keeps its BN
    # so the critic scores each image on its own, as the per-sample gradient penalty needs
    x = torch.randn(BATCH, 3, 32, 32)
    together = D(x)
    alone = torch.cat([D(x[i:i + 1]) for i in range(BATCH)])
    assert_float32_close(together, alone)


# -- SNGAN ----------------------------------------------------------------------------------------


def _assert_unit_spectral_norm(network: nn.Module, forward) -> None:
    layers = _weight_layers(network)
    assert layers and all(is_spectral_normalized(m) for m in layers)
    network.train()
    with torch.no_grad():
        for _ in range(20):
            forward()
    network.eval()
    with torch.no_grad():
        for layer in layers:
            weight = layer.weight  # in eval mode: W / σ̂ with the stored u, v, no further iteration
            sigma = torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), ord=2)
            assert abs(float(sigma) - 1) <= 0.05, (layer, float(sigma))


@pytest.mark.parametrize("num_classes", [0, 10])
def test_sngan_spectral_norm_on_every_d_layer(num_classes):
    G, D, config = build("sngan", num_classes=num_classes)
    x = torch.randn(BATCH, 3, 32, 32)
    _, labels = _inputs(G, config)
    _assert_unit_spectral_norm(D, lambda: D(x, labels))
    assert not any(parametrize.is_parametrized(m) for m in G.modules())  # SNGAN's G has no SN
    if num_classes:
        assert D.class_embedding is not None


@pytest.mark.parametrize("name", ["sngan", "sagan"])
def test_conditional_bn_and_projection_are_effective(name):
    G, D, config = build(name, num_classes=10)
    norms = [m for block in G.blocks for m in (block.norm1, block.norm2)]
    assert all(isinstance(m, ClassConditionalBatchNorm2d) for m in norms)
    G.eval()
    z = torch.randn(2, G.z_dim).repeat(2, 1)
    labels = torch.tensor([0, 0, 1, 1])
    with torch.no_grad():
        before = G(z, labels)
        for norm in norms:
            norm.gain.weight[1] += 0.5  # change class 1's gains only
        after = G(z, labels)
    torch.testing.assert_close(after[:2], before[:2])
    assert (after[2:] - before[2:]).abs().max() > 1e-3
    # projection: the same image scores differently under different labels
    D.eval()
    x = torch.randn(1, 3, 32, 32).expand(3, -1, -1, -1)
    logits = D(x, torch.tensor([0, 1, 2]))
    assert logits.unique().numel() == 3


# -- SAGAN ----------------------------------------------------------------------------------------


def test_sagan_attention_starts_as_identity_at_16x16():
    G, D, config = build("sagan")
    for network in (G, D):
        blocks = _attention_blocks(network)
        assert len(blocks) == 1 and float(blocks[0].gamma.detach()) == 0.0
        x = torch.randn(2, 64, 16, 16)
        assert torch.equal(blocks[0](x), x)
    # the block runs once in each network, on 16×16 features
    sizes: list[tuple[int, ...]] = []
    for block in _attention_blocks(G) + _attention_blocks(D):
        block.register_forward_hook(lambda module, inputs, output: sizes.append(tuple(inputs[0].shape[2:])))
    z, labels = _inputs(G, config)
    D(G(z, labels), labels)
    assert sizes == [(16, 16), (16, 16)]


def test_sagan_attention_is_non_local():
    block = build("sagan")[0].attention
    nn.init.constant_(block.gamma, 1.0)
    x = torch.randn(1, 64, 16, 16)
    moved = x.clone()
    moved[0, :, 0, 0] += 3.0
    change = (block(moved) - block(x))[0, :, 15, 15].abs().max()
    assert change > 1e-6  # a far corner reacts: no convolution with a 1×1 (or 3×3) window does this


def test_sagan_spectral_norm_in_g_and_d():
    G, D, config = build("sagan")
    z, labels = _inputs(G, config)
    x = torch.randn(BATCH, 3, 32, 32)
    _assert_unit_spectral_norm(G, lambda: G(z, labels))
    _assert_unit_spectral_norm(D, lambda: D(x, labels))


# -- BigGAN ---------------------------------------------------------------------------------------


def test_biggan_hierarchical_z_and_shared_embedding():
    G, _, config = build("biggan")
    assert config.num_classes == 10 and G.chunk_size == 20
    embeddings = [m for m in G.modules() if isinstance(m, nn.Embedding)]
    assert embeddings == [G.shared_embedding] and G.shared_embedding.embedding_dim == 32
    assert all(isinstance(norm, LinearConditionalBatchNorm2d) and norm.cond_dim == 52
               for block in G.blocks for norm in (block.norm1, block.norm2))
    seen: dict[str, list] = {"stem": [], "blocks": [], "embedding": []}
    G.stem.register_forward_hook(lambda m, inputs, out: seen["stem"].append(inputs[0]))
    G.shared_embedding.register_forward_hook(lambda m, inputs, out: seen["embedding"].append(out))
    for block in G.blocks:
        block.register_forward_hook(lambda m, inputs, out: seen["blocks"].append(inputs[1]))
    z, labels = _inputs(G, config)
    G(z, labels)
    assert len(seen["embedding"]) == 1  # one lookup, shared by every block
    shared = seen["embedding"][0]
    torch.testing.assert_close(seen["stem"][0], z[:, :20], rtol=0, atol=0)
    assert len(seen["blocks"]) == 3
    for index, cond in enumerate(seen["blocks"]):
        assert cond.shape == (BATCH, 52)
        torch.testing.assert_close(cond[:, :32], shared, rtol=0, atol=0)
        torch.testing.assert_close(cond[:, 32:], z[:, 20 * (index + 1):20 * (index + 2)], rtol=0, atol=0)
    G.eval()
    assert not torch.allclose(G(z[:1], torch.tensor([0])), G(z[:1], torch.tensor([1])))
    with pytest.raises(ValueError):
        build("biggan", z_dim=81)


def test_biggan_truncated_latents():
    G, _, _ = build("biggan")
    z = G.draw_latents(256, torch.Generator().manual_seed(7), truncation=0.5)
    assert z.shape == (256, 80) and z.abs().max() <= 0.5
    assert z.std() > 0.2  # still spread over [-0.5, 0.5]
    torch.testing.assert_close(G.draw_latents(256, torch.Generator().manual_seed(7), truncation=0.5), z,
                               rtol=0, atol=0)
    plain = G.draw_latents(256, torch.Generator().manual_seed(7))
    torch.testing.assert_close(plain, torch.randn(256, 80, generator=torch.Generator().manual_seed(7)))
    assert plain.abs().max() > 2
    images = G.sample(3, seed=1, truncation=0.5)
    assert images.shape == (3, 3, 32, 32)
    assert_float32_close(G.sample(3, seed=1, truncation=0.5, batch_size=1), images)
    with pytest.raises(ValueError):
        G.draw_latents(2, torch.Generator(), truncation=0.0)


def test_orthogonal_penalty_hand_cases():
    assert float(orthogonal_penalty([torch.eye(3)])) == 0.0
    rotation = torch.tensor([[0.6, -0.8], [0.8, 0.6]])
    assert float(orthogonal_penalty([rotation, torch.diag(torch.tensor([2.0, 3.0]))])) == pytest.approx(0.0)
    # filters (1, 1) and (0, 1) have inner product 1, counted once each side of the diagonal
    skew = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    assert float(orthogonal_penalty([skew])) == pytest.approx(2.0)
    assert float(orthogonal_penalty([skew.reshape(2, 1, 1, 2)])) == pytest.approx(2.0)  # conv layout


def test_biggan_orthogonal_penalty_and_init():
    G, D, _ = build("biggan")
    penalty = G.orthogonal_penalty()
    assert penalty.ndim == 0 and float(penalty.detach()) >= 0 and torch.isfinite(penalty)
    penalty.backward()
    assert raw_weight(G.blocks[0].conv1).grad is not None
    assert G.shared_embedding.weight.grad is None  # embeddings are not regularised
    # orthogonal initialisation before SN: WᵀW = I (tall) or WWᵀ = I (wide) for every layer
    for layer in _weight_layers(G) + _weight_layers(D):
        assert is_spectral_normalized(layer) or layer is G.shared_embedding
        weight = raw_weight(layer).detach()
        matrix = weight.reshape(weight.shape[0], -1)
        gram = matrix @ matrix.t() if matrix.shape[0] <= matrix.shape[1] else matrix.t() @ matrix
        torch.testing.assert_close(gram, torch.eye(gram.shape[0]), rtol=0, atol=1e-4)
    # the helper on fresh layers, both shapes
    for layer in (nn.Linear(5, 12), nn.Linear(12, 5), nn.Conv2d(4, 16, 3)):
        init_weights_(layer, "orthogonal")
        matrix = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        gram = matrix.t() @ matrix if matrix.shape[0] >= matrix.shape[1] else matrix @ matrix.t()
        torch.testing.assert_close(gram, torch.eye(gram.shape[0]), rtol=0, atol=1e-5)
        assert float(layer.bias.detach().abs().max()) == 0.0


def test_biggan_has_sn_and_attention_in_both_networks():
    G, D, _ = build("biggan")
    for network in (G, D):
        blocks = _attention_blocks(network)
        assert len(blocks) == 1 and float(blocks[0].gamma.detach()) == 0.0
        assert all(is_spectral_normalized(m) for m in _weight_layers(network) if m is not G.shared_embedding)
    assert D.class_embedding is not None
