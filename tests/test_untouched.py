"""A generator is scored in eval mode, under inference mode, and comes back exactly as it was handed in
(mode, parameters, buffers), with the caller's RNG state untouched (issue: "Scoring a generator changes it")."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import ganmetrics as gm
from ganmetrics.sources import open_source, quantize


class BNGenerator(nn.Module):
    """A tiny generator with BatchNorm (train-mode output depends on the batch), dropout and global-RNG noise."""

    z_dim = 8

    def __init__(self, noisy: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(8, 3 * 16 * 16)
        self.bn = nn.BatchNorm1d(3 * 16 * 16)
        self.drop = nn.Dropout(0.5)
        self.noisy = noisy
        with torch.no_grad():  # running statistics that differ from any batch's, so train vs eval shows
            self.bn.running_mean.fill_(0.3)
            self.bn.running_var.fill_(4.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.bn(self.fc(z)))
        if self.noisy:
            x = x + 0.1 * torch.randn_like(x)
        return torch.tanh(x).view(-1, 3, 16, 16)


def _state(g: nn.Module) -> dict:
    return {k: v.clone() for k, v in g.state_dict().items()}


def _images(g, batch_size: int, n: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.cat(list(open_source(g, num_samples=n, batch_size=batch_size, seed=seed)))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_generator_left_exactly_as_handed_in(mode):
    g = BNGenerator(noisy=True)
    g.train(mode == "train")
    before, modes = _state(g), [m.training for m in g.modules()]
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    _images(g, batch_size=5)
    assert [m.training for m in g.modules()] == modes
    after = _state(g)
    assert before.keys() == after.keys()
    for key in before:  # num_batches_tracked and running stats too
        assert torch.equal(before[key], after[key]), key
    assert torch.equal(torch.get_rng_state(), rng), "the caller's RNG state moved"
    assert all(p.grad is None for p in g.parameters())


def test_scored_in_eval_mode_whatever_the_mode_and_batch_size():
    g = BNGenerator()
    expected = _images(copy.deepcopy(g).eval(), batch_size=12)
    g.train()
    for batch_size in (1, 4, 12):  # BatchNorm in train mode would make every batch size give other images
        assert torch.equal(_images(g, batch_size=batch_size), expected)
    with torch.no_grad():  # and eval mode is what this is: the running statistics by hand
        manual = torch.tanh(g.eval().bn(g.fc(torch.randn(12, 8, generator=torch.Generator().manual_seed(0)))))
    assert torch.equal(expected, quantize(manual.view(-1, 3, 16, 16)))


def test_global_rng_noise_is_a_function_of_the_seed_not_of_the_caller_rng():
    g = BNGenerator(noisy=True).eval()
    torch.manual_seed(1)
    a = _images(g, batch_size=4, seed=7)
    torch.manual_seed(2)
    torch.randn(100)
    b = _images(g, batch_size=4, seed=7)
    assert torch.equal(a, b)
    assert not torch.equal(a, _images(g, batch_size=4, seed=8))
    # the noise stream runs on from batch to batch: two batches do not repeat the same noise
    pair = _images(g, batch_size=2, n=4)
    twin = BNGenerator(noisy=False).eval()
    clean = _images(twin, batch_size=2, n=4).float()
    noise = pair.float() - clean
    assert not torch.equal(noise[:2], noise[2:])


def test_metrics_leave_the_generator_untouched():
    """ms_ssim_diversity and swd (no Inception needed) read generators through the same path."""
    g = BNGenerator(noisy=True).train()
    g.z_dim = 8
    before = _state(g)
    value_train = gm.ms_ssim_diversity(g, num_pairs=8, progress=False)
    g.eval()
    value_eval = gm.ms_ssim_diversity(g, num_pairs=8, progress=False)
    g.train()
    assert value_train == value_eval
    for key, tensor in _state(g).items():
        assert torch.equal(tensor, before[key]), key
    assert np.isfinite(value_train)


@pytest.mark.slow
def test_fid_of_a_train_mode_generator_does_not_depend_on_batch_size(offline_weights, image_folders):
    g = BNGenerator().train()
    tracked = g.bn.num_batches_tracked.clone()
    values = [gm.fid(g, image_folders[0], num_samples=16, batch_size=b, weights=str(offline_weights),
                     progress=False) for b in (4, 8)]
    assert g.bn.num_batches_tracked == tracked and g.training
    g.eval()
    reference = gm.fid(g, image_folders[0], num_samples=16, batch_size=16, weights=str(offline_weights),
                       progress=False)
    assert values[0] == pytest.approx(reference, abs=1e-6)
    assert values[1] == pytest.approx(reference, abs=1e-6)
