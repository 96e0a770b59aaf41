"""k-NN manifold metrics (ganmetrics.metrics.manifold) against the definitions, torch-fidelity 0.4.0's precision
and recall (k = 3, ``≤``) and prdc 0.2's precision, recall, density and coverage (k = 5, ``<``) on the same
feature vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganmetrics.metrics.manifold import knn_radii, manifold_scores
from peers import import_peer


def inception_like(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """float32 ``[n, 2048]``: non-negative like pool3 features, a fixed per-dimension scale in [0.1, 1]."""
    scale = np.random.default_rng(12345).uniform(0.1, 1.0, 2048).astype(np.float32)
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.abs(rng.standard_normal((n, 2048), dtype=np.float32)) * scale * (1 + shift) + shift)


def test_the_definitions_on_points_counted_by_hand():
    """1-D points, k = 1.  Real 0, 1, 3 have radii 1, 1, 2; generated 0.5, 2.5, 10 have radii 2, 2, 7.5."""
    real = torch.tensor([[0.0], [1.0], [3.0]])
    fake = torch.tensor([[0.5], [2.5], [10.0]])
    assert knn_radii(real, 1).tolist() == [1.0, 1.0, 2.0]
    loose = manifold_scores(real, fake, 1, strict=False)
    # 0.5 lies in the balls of 0 and 1, 2.5 in the ball of 3 only, 10 in none: precision 2/3, density (2+1)/3
    assert (loose.precision, loose.density) == pytest.approx((2 / 3, 1.0))
    # 0 and 1 lie in the ball of 0.5 (radius 2), 3 in those of 0.5 (|3−0.5| = 2.5 > 2: no) and 2.5 (0.5 ≤ 2): all in
    assert loose.recall == 1.0
    # nearest generated point: 0 → 0.5 (< 1), 1 → 0.5 (< 1), 3 → 2.5 (< 2): all covered
    assert loose.coverage == 1.0
    edge = manifold_scores(torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0], [5.0]]), 1, strict=False)
    strict = manifold_scores(torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0], [5.0]]), 1, strict=True)
    assert edge.precision == 0.5 and strict.precision == 0.0  # 2 is exactly on the ball of 1 (radius 1)


def test_block_size_changes_nothing():
    real, fake = inception_like(90, 1), inception_like(70, 2, shift=0.02)
    whole = manifold_scores(real, fake, 3, strict=False, block=1024)
    assert manifold_scores(real, fake, 3, strict=False, block=7) == whole


@pytest.mark.parametrize("n_real, n_fake", [(300, 250), (200, 400)])
def test_precision_and_recall_equal_torch_fidelity(n_real, n_fake):
    metric_prc = import_peer("torch_fidelity.metric_prc")
    real, fake = inception_like(n_real, 3), inception_like(n_fake, 4, shift=0.03)
    # torch-fidelity's convention: features_1 generated, features_2 real; it reports float32 means
    precision, recall = metric_prc.calculate_precision_recall_full(fake, real, 3, 10000)
    ours = manifold_scores(real, fake, 3, strict=False)
    assert 0 < ours.precision < 1 and 0 < ours.recall < 1
    assert ours.precision == pytest.approx(precision, abs=1e-7) and ours.recall == pytest.approx(recall, abs=1e-7)


@pytest.mark.parametrize("n_real, n_fake", [(300, 250), (200, 400)])
def test_precision_recall_density_coverage_equal_prdc(n_real, n_fake):
    prdc = import_peer("prdc")
    real, fake = inception_like(n_real, 5), inception_like(n_fake, 6, shift=0.03)
    expected = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    ours = manifold_scores(real, fake, 5, strict=True)
    assert 0 < ours.coverage < 1 and 0 < ours.density
    for name in ("precision", "recall", "density", "coverage"):
        assert getattr(ours, name) == pytest.approx(float(expected[name]), abs=1e-9), name


def test_k_out_of_range_is_refused():
    with pytest.raises(ValueError, match="k must be between 1 and"):
        knn_radii(torch.zeros(4, 2), 4)


def float64_everywhere(real: torch.Tensor, fake: torch.Tensor, k: int, strict: bool) -> dict:
    """The oracle: every squared distance as ``Σ (a_i − b_i)²`` in float64 (no float32 shortcut), every test on it."""
    def squared(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.stack([(a.double() - row.double()).square().sum(dim=1) for row in b], dim=1)

    inside = torch.lt if strict else torch.le
    rr = squared(real, real).sort(dim=1).values[:, k]  # column 0: the point itself
    rf = squared(fake, fake).sort(dim=1).values[:, k]
    d = squared(real, fake)  # [N, M]
    in_real_balls = inside(d, rr[:, None])
    return {"precision": in_real_balls.any(0).double().mean().item(),
            "recall": inside(d, rf[None, :]).any(1).double().mean().item(),
            "density": in_real_balls.sum(0).double().mean().item() / k,
            "coverage": in_real_balls.any(1).double().mean().item()}


@pytest.mark.parametrize("k, strict", [(1, False), (3, False), (3, True), (5, True)])
def test_the_float32_shortcut_changes_no_ball_test(k, strict):
    """Lattice points ×0.1 in 256-d: 44 to 69 exact ties between a cross distance and a k-NN radius (measured), which
    float32 dot products miss by rounding; every decision must still be that of float64 distances."""
    rng = np.random.default_rng(k)
    real = torch.from_numpy(rng.integers(0, 3, (120, 256)).astype(np.float32) * np.float32(0.1))
    fake = torch.cat([real[:40], torch.from_numpy(rng.integers(0, 3, (60, 256)).astype(np.float32) * np.float32(0.1))])
    fake[40:50, :8] += np.float32(0.1)  # near copies of real points
    oracle = float64_everywhere(real, fake, k, strict)
    ours = manifold_scores(real, fake, k, strict=strict, block=17)
    assert {name: getattr(ours, name) for name in oracle} == oracle
    assert 0 < oracle["precision"] < 1
