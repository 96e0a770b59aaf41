"""The trainer's parts: losses and penalties on hand-computed cases, EMA, data sharding, checkpoints, the dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganmetrics.cli import main
from ganmetrics.data.builtin import CLASS_NAMES, NUM_CLASSES, BuiltinDataset, render_dataset, render_image
from ganmetrics.errors import CheckpointError, InputError
from ganmetrics.train.checkpoint import TRAINING_FORMAT, load_training_checkpoint, save_training_checkpoint
from ganmetrics.train.data import batch_indices, batches_per_epoch, load_training_set, to_model_range
from ganmetrics.train.ema import ema_beta, make_ema, update_ema
from ganmetrics.train.losses import drift_penalty, get_loss, gradient_penalty, r1_penalty

# -- losses: hand-computed values ------------------------------------------------------------------------


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


REAL, FAKE = torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.5])


def test_nonsaturating_loss():
    loss = get_loss("nonsaturating")
    expected_d = (softplus(-0.5) + softplus(-2.0)) / 2 + (softplus(-2.0) + softplus(0.5)) / 2
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(expected_d, rel=1e-6)
    assert loss.generator(FAKE).item() == pytest.approx((softplus(2.0) + softplus(-0.5)) / 2, rel=1e-6)


def test_hinge_loss():
    loss = get_loss("hinge")
    # relu(1 − 0.5) = 0.5, relu(1 − 2) = 0 → 0.25; relu(1 − 2) = 0, relu(1 + 0.5) = 1.5 → 0.75
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(1.0)
    assert loss.generator(FAKE).item() == pytest.approx(0.75)


def test_wasserstein_loss():
    loss = get_loss("wasserstein")
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(-0.75 - 1.25)
    assert loss.generator(FAKE).item() == pytest.approx(0.75)


def test_unknown_loss_is_named():
    with pytest.raises(InputError, match="unknown GAN loss 'lsgan'"):
        get_loss("lsgan")


class LinearCritic(nn.Module):
    """``D(x) = Σ w·x``: its input gradient is ``w`` everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor, labels=None) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


class QuadraticCritic(nn.Module):
    """``D(x) = a/2 · ‖x‖²``: its input gradient is ``a·x``."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x: torch.Tensor, labels=None) -> torch.Tensor:
        return 0.5 * self.a * x.pow(2).flatten(1).sum(1)


def test_gradient_penalty_of_a_linear_critic():
    """‖∇D‖ = ‖w‖ = 3 at every interpolate: λ(3 − 1)² = 40; its gradient in w is 2λ(‖w‖ − 1)·w/‖w‖."""
    w = torch.zeros(1, 2, 2, 2)
    w[0, 0, 0, 0], w[0, 1, 1, 1] = 2.0, math.sqrt(5.0)
    critic = LinearCritic(w)
    real, fake = torch.rand(4, 2, 2, 2), torch.rand(4, 2, 2, 2)
    penalty = gradient_penalty(critic, real, fake, None, 10.0, generator=torch.Generator().manual_seed(0))
    assert penalty.item() == pytest.approx(40.0, rel=1e-6)
    penalty.backward()
    torch.testing.assert_close(critic.w.grad, 2 * 10.0 * (3.0 - 1.0) * w / 3.0)


def test_r1_penalty_of_a_quadratic_critic():
    """∇D(x) = a·x: R1 = γ/2 · mean‖a·x‖²; d/da = γ · a · mean‖x‖²."""
    critic = QuadraticCritic(2.0)
    real = torch.tensor([[[[1.0, 2.0]]], [[[0.0, 3.0]]]])  # ‖x‖² = 5 and 9
    penalty, logits = r1_penalty(critic, real, None, gamma=10.0)
    assert penalty.item() == pytest.approx(0.5 * 10.0 * 4.0 * 7.0)
    torch.testing.assert_close(logits, torch.tensor([5.0, 9.0]))
    penalty.backward()
    assert critic.a.grad.item() == pytest.approx(10.0 * 2.0 * 7.0)


def test_drift_penalty():
    assert drift_penalty(torch.tensor([1.0, -3.0]), 0.001).item() == pytest.approx(0.001 * 5.0)


# -- EMA ---------------------------------------------------------------------------------------------------


def test_ema_beta_from_half_life():
    beta = ema_beta(64, 10.0, default=0.999)
    assert beta ** (10_000 / 64) == pytest.approx(0.5)  # after 10 kimg the old weights count half
    assert ema_beta(64, None, default=0.999) == 0.999


def test_ema_update_and_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = make_ema(model)
    assert not any(p.requires_grad for p in ema.parameters()) and not ema.training
    before = [p.clone() for p in ema.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.fill_(7.0)
    update_ema(ema, model, beta=0.9)
    for old, new, current in zip(before, ema.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * current)
    assert torch.equal(ema[1].running_mean, torch.full((2,), 7.0))


# -- data order -----------------------------------------------------------------------------------------------


def test_batches_are_a_pure_function_of_the_step_and_shard_the_epoch():
    n, batch, world = 50, 4, 2
    per_epoch = batches_per_epoch(n, batch, world)
    assert per_epoch == 6  # 25 per rank → 6 batches of 4, 1 dropped
    epoch0 = {rank: [batch_indices(n, batch, step=s, rank=rank, world_size=world, seed=3) for s in range(per_epoch)]
              for rank in range(world)}
    seen = torch.cat([torch.cat(epoch0[r]) for r in range(world)])
    assert len(set(seen.tolist())) == len(seen) == 48  # no image twice in an epoch, across ranks
    again = batch_indices(n, batch, step=4, rank=1, world_size=world, seed=3)
    assert torch.equal(again, epoch0[1][4])
    next_epoch = batch_indices(n, batch, step=per_epoch, rank=0, world_size=world, seed=3)
    assert not torch.equal(next_epoch, epoch0[0][0])  # a new permutation each epoch
    assert not torch.equal(batch_indices(n, batch, step=0, rank=0, world_size=world, seed=4), epoch0[0][0])


def test_too_few_images_for_the_batch_is_a_clear_error():
    with pytest.raises(InputError, match="too few for 2 process"):
        batches_per_epoch(10, 8, 2)


def test_model_range():
    torch.testing.assert_close(to_model_range(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([-1.0, 1.0]))


# -- checkpoints ---------------------------------------------------------------------------------------------


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_training_checkpoint(path, {"step": 3, "G": {"w": torch.arange(4.0)}})
    data = load_training_checkpoint(path)
    assert data["format"] == TRAINING_FORMAT and data["step"] == 3
    assert torch.equal(data["G"]["w"], torch.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_training_checkpoint(path, {"step": 3, "G": {"w": torch.zeros(1000)}})
    path.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*checkpoint\.pt.*corrupted"):
        load_training_checkpoint(path)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickle_that_runs_code_is_refused(tmp_path, capsys):
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": TRAINING_FORMAT, "evil": _Payload()}, path)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_training_checkpoint(path)
    assert "must never run" not in capsys.readouterr().out


def test_foreign_file_is_named(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="is not a ganmetrics-training-checkpoint/1 file"):
        load_training_checkpoint(path)


# -- the built-in dataset ----------------------------------------------------------------------------------------


def test_images_are_a_pure_function_of_seed_and_index():
    image, label = render_image(0, 13)
    again, label_again = render_image(0, 13)
    assert np.array_equal(image, again) and label == label_again == 3
    assert image.dtype == np.uint8 and image.shape == (32, 32, 3)
    assert not np.array_equal(render_image(1, 13)[0], image)
    assert render_image(0, 13, size=64)[0].shape == (64, 64, 3)


def test_classes_are_balanced_and_visible():
    images, labels = render_dataset("shapes32", 200)
    assert np.bincount(labels).tolist() == [20] * NUM_CLASSES
    assert len({image.tobytes() for image in images}) == 200
    assert images.std() > 40  # colourful scenes, not flat images
    dataset = BuiltinDataset("shapes32", 20)
    tensor, label = dataset[11]
    assert tensor.shape == (3, 32, 32) and label == 1
    assert np.array_equal(tensor.permute(1, 2, 0).numpy(), images[11])


def test_unknown_dataset_is_named():
    with pytest.raises(InputError, match="unknown built-in dataset 'cifar'"):
        render_dataset("cifar", 1)


def test_dataset_cli_writes_class_folders_that_train_as_labelled_data(tmp_path, capsys):
    out = tmp_path / "shapes"
    assert main(["dataset", "shapes32", "-n", "30", "-o", str(out), "--json"]) == 0
    assert len(list(out.rglob("*.png"))) == 30
    assert sorted(p.name for p in out.iterdir()) == [f"{i}_{name}" for i, name in enumerate(CLASS_NAMES)]
    data = load_training_set(str(out))
    assert data.num_classes == NUM_CLASSES and data.images.shape == (30, 3, 32, 32)
    expected, labels = render_dataset("shapes32", 30)
    # folder order is class by class; every decoded image is one of the rendered ones with its class
    rendered = {image.tobytes(): label for image, label in zip(expected, labels, strict=True)}
    for image, label in zip(data.images.permute(0, 2, 3, 1).numpy(), data.labels.tolist(), strict=True):
        assert rendered[image.tobytes()] == label
