"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"), as torch-fidelity 0.4.

Polynomial kernel ``k(x, y) = (γ·xᵀy + c0)^degree`` (defaults γ = 1/d, c0 = 1, degree 3) on
Inception pool3 features.  For each of ``subsets`` subsets, ``m`` rows are drawn without
replacement from each set — ``rng = numpy.random.RandomState(seed)``, per subset
``rng.choice(N1, m, replace=False)`` then ``rng.choice(N2, m, replace=False)``, torch-fidelity's
order — and the unbiased MMD² is

``[Σ_{i≠j} Kxx + Σ_{i≠j} Kyy] / (m(m−1)) − 2 Σ Kxy / m²``.

The result is the mean and the population std (ddof 0) over subsets, computed in float64.
When a set has fewer than ``subset_size`` samples, ``m = min(N1, N2)`` with a warning
(torch-fidelity raises instead); when both sets have ``m`` samples every subset is the whole of both
sets, so there is no spread to measure: the std is ``None`` (its ~1e-16 would be summation noise).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError, spelled
from ..stats import check_compatible
from .base import ISA_MEASURED, KEPT_FEATURES, LOWER, Context, Metric, SetData, option, register


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, *, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> torch.Tensor:
    """``K = (γ·x yᵀ + c0)^degree`` with ``γ = 1/d`` by default."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef0) ** degree


def unbiased_mmd2(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> float:
    """Unbiased MMD² from the three m×m kernel matrices (diagonals of Kxx and Kyy excluded)."""
    m = k_xx.shape[0]
    off_diagonal = (k_xx.sum() - k_xx.diagonal().sum()) + (k_yy.sum() - k_yy.diagonal().sum())
    return float(off_diagonal / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kid_from_features(features_1, features_2, *, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                      gamma: float | None = None, coef0: float = 1.0, seed: int = 0,
                      device: torch.device | str | None = None) -> tuple[float, float | None]:
    """KID ``(mean, std)`` between two feature sets ``[N1, d]`` and ``[N2, d]`` (float64 on ``device``); ``std``
    is None when every subset is the whole of both sets (module docstring)."""
    x = torch.as_tensor(np.asarray(features_1) if not isinstance(features_1, torch.Tensor) else features_1)
    y = torch.as_tensor(np.asarray(features_2) if not isinstance(features_2, torch.Tensor) else features_2)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise InputError(f"KID needs two feature matrices [N, d] with the same d, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if not isinstance(subsets, int) or subsets < 1:
        raise InputError(f"subsets must be a positive integer, got {subsets!r}")
    n1, n2 = x.shape[0], y.shape[0]
    m = min(subset_size, n1, n2)
    if m < 2:
        raise InputError(f"KID needs at least 2 samples in each set, got {n1} and {n2}")
    whole = n1 == m and n2 == m  # every subset is both sets whole: the subsets differ only in order
    if m < subset_size:
        warnings.warn(f"KID: {spelled(f'subset_size={subset_size}', f'--kid-subset-size {subset_size}')} is larger "
                      f"than a set ({n1} and {n2} samples); using subsets of {m}"
                      + ("; every subset is then the whole of both sets, so KID has no std" if whole else ""),
                      UserWarning, stacklevel=2)
    device = torch.device(device) if device is not None else x.device
    x = x.to(device, torch.float64)
    y = y.to(device, torch.float64)
    rng = np.random.RandomState(seed)
    kernel = dict(degree=degree, gamma=gamma, coef0=coef0)
    mmds = np.empty(subsets)
    for s in range(subsets):
        xs = x[torch.from_numpy(rng.choice(n1, m, replace=False)).to(device)]
        ys = y[torch.from_numpy(rng.choice(n2, m, replace=False)).to(device)]
        mmds[s] = unbiased_mmd2(polynomial_kernel(xs, xs, **kernel), polynomial_kernel(ys, ys, **kernel),
                                polynomial_kernel(xs, ys, **kernel))
    return float(mmds.mean()), None if whole else float(mmds.std())


@dataclass(frozen=True)
class KIDOptions:
    subsets: int = option(100, help="random subsets whose MMD² is averaged")
    subset_size: int = option(1000, help="samples drawn from each set per subset (at most the smaller set)")
    degree: int = option(3, help="degree of the polynomial kernel")
    gamma: float | None = option(None, kind=float, minimum=None, help="kernel scale γ (default 1/d)")
    coef0: float = option(1.0, kind=float, minimum=None, help="kernel offset c0")


@register
class KIDMetric(Metric):
    name, title, order, direction = "kid", "KID", 20, LOWER
    needs = frozenset({KEPT_FEATURES})
    Options = KIDOptions
    meaning = ("Kernel Inception distance: unbiased MMD² with the cubic polynomial kernel, mean ± std over random "
               "subsets; lower is closer, unbiased at small N.")
    tolerance = 5e-6
    tolerance_basis = ISA_MEASURED + "KID by at most 1.3e-8; 5e-6 leaves a wide margin for the CUDA path."

    def compute(self, gen: SetData, real: SetData, options: KIDOptions, ctx: Context) -> dict:
        check_compatible(gen.stats, real.stats, strict=ctx.strict)
        mean, std = kid_from_features(gen.stats.features, real.stats.features, subsets=options.subsets,
                                      subset_size=options.subset_size, degree=options.degree, gamma=options.gamma,
                                      coef0=options.coef0, seed=ctx.seed, device=ctx.device)
        return {"mean": mean, "std": std}

    def detail(self, options: KIDOptions, protocol: str, num_images: list[int]) -> str:
        return f"{options.subsets} subsets of min({options.subset_size}, N)"
