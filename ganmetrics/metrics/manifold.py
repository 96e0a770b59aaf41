"""k-NN manifold metrics of two feature sets: precision and recall (Kynkäänniemi et al. 2019), density and
coverage (Naeem et al. 2020).

For real features ``x_1..x_N`` and generated ``y_1..y_M``, ``r(x_i)`` is the distance from ``x_i`` to its k-th
nearest neighbour among the real features (itself not counted), ``r(y_j)`` likewise among the generated ones:

* precision ``= 1/M Σ_j [∃i: ‖y_j − x_i‖ ≼ r(x_i)]``, recall ``= 1/N Σ_i [∃j: ‖x_i − y_j‖ ≼ r(y_j)]``;
* density ``= 1/(kM) Σ_j Σ_i [‖y_j − x_i‖ ≼ r(x_i)]``, coverage ``= 1/N Σ_i [min_j ‖x_i − y_j‖ ≼ r(x_i)]``.

``≼`` is ``≤`` in torch-fidelity's precision/recall and ``<`` in ``prdc`` (``strict``).  Distances are float64
(``‖a‖² + ‖b‖² − 2a·b`` on float64 copies, rounding ~1e-16 relative, against float32's ~1e-7 in the peers),
computed ``block`` rows at a time, so memory is ``O(block · max(N, M))`` whatever N and M: by default
``block = max(1, 2²⁴ // max(N, M))`` rows, 128 MiB of float64 distances per block (a few such buffers live at
once: under 1 GiB at 50,000 × 50,000), beside the features themselves.

The metric objects (precision, recall: k = 3, ``≤``; density, coverage: k = 5, ``<``) live in
:mod:`~ganmetrics.metrics.precision_recall` and :mod:`~ganmetrics.metrics.density_coverage`; they share one
computation per ``(k, strict)`` through :func:`scores_of_sets`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..stats import check_compatible
from .base import Context, SetData

BLOCK_ELEMENTS = 1 << 24  # distances per block: 128 MiB of float64
DEFAULT_BLOCK = 1024


@dataclass(frozen=True)
class ManifoldScores:
    precision: float
    recall: float
    density: float
    coverage: float


def _blocks(a: torch.Tensor, b: torch.Tensor, block: int):
    """``(start, distances of a[start:start+block] to every row of b)`` in float64."""
    b = b.double()
    for start in range(0, a.shape[0], block):
        yield start, torch.cdist(a[start:start + block].double(), b, compute_mode="use_mm_for_euclid_dist")


def knn_radii(features: torch.Tensor, k: int, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """float64 ``[N]``: each row's distance to its k-th nearest other row (the (k+1)-th smallest, itself first)."""
    if not 1 <= k < features.shape[0]:
        raise ValueError(f"k must be between 1 and the number of feature vectors − 1 ({features.shape[0] - 1}), "
                         f"got {k}")
    return torch.cat([d.kthvalue(k + 1, dim=1).values for _, d in _blocks(features, features, block)])


def manifold_scores(real: torch.Tensor, fake: torch.Tensor, k: int, *, strict: bool,
                    block: int = DEFAULT_BLOCK) -> ManifoldScores:
    """Precision, recall, density and coverage of ``fake`` against ``real`` (feature matrices ``[N, D]``,
    ``[M, D]``) with k nearest neighbours; ``strict``: ``<`` instead of ``≤`` (see the module docstring)."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"expected two [N, D] feature matrices of the same D, got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    inside = torch.lt if strict else torch.le
    r_real, r_fake = knn_radii(real, k, block), knn_radii(fake, k, block)
    fake_covered = torch.zeros(fake.shape[0], dtype=torch.bool, device=fake.device)  # y_j in some real ball
    fake_balls_in = torch.zeros(fake.shape[0], dtype=torch.float64, device=fake.device)  # how many real balls
    real_recalled = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)  # x_i in some fake ball
    real_covered = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)  # nearest y_j in x_i's ball
    for start, d in _blocks(real, fake, block):  # d[i, j] = ‖x_i − y_j‖ for this block of real rows
        radius = r_real[start:start + d.shape[0], None]
        in_real_balls = inside(d, radius)
        fake_covered |= in_real_balls.any(dim=0)
        fake_balls_in += in_real_balls.sum(dim=0, dtype=torch.float64)
        real_recalled[start:start + d.shape[0]] = inside(d, r_fake[None, :]).any(dim=1)
        real_covered[start:start + d.shape[0]] = inside(d.min(dim=1).values, radius[:, 0])
    return ManifoldScores(precision=fake_covered.double().mean().item(), recall=real_recalled.double().mean().item(),
                          density=fake_balls_in.mean().item() / k, coverage=real_covered.double().mean().item())


def scores_of_sets(gen: SetData, real: SetData, k: int, *, strict: bool, ctx: Context, what: str) -> ManifoldScores:
    """:func:`manifold_scores` of two sets' kept features on ``ctx.device``, computed once per ``(k, strict)`` for
    all the metrics of one evaluation (``what`` names them in errors)."""
    key = ("manifold", k, strict)
    if key not in ctx.cache:
        check_compatible(gen.stats, real.stats, strict=ctx.strict)
        fake, reals = (torch.as_tensor(np.asarray(s.stats.features)).to(ctx.device) for s in (gen, real))
        fewest = min(len(fake), len(reals))
        if fewest <= k:
            raise InputError(f"{what} with k={k} nearest neighbours needs more than {k} images in each set, got "
                             f"{len(fake)} and {len(reals)}; give more images or a smaller k")
        block = max(1, BLOCK_ELEMENTS // max(len(fake), len(reals)))
        ctx.cache[key] = manifold_scores(reals, fake, k, strict=strict, block=block)
    return ctx.cache[key]
