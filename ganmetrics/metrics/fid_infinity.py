"""FD∞: FID without its sample-size bias (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score
and where to find them", CVPR).

FID of N samples is biased upwards, ``FID_N ≈ FID_∞ + k / N``, and ``k`` depends on the generator, so rankings at
one N can flip.  FD∞ is the intercept of a least-squares line through ``(1 / N_i, FID_{N_i})``: the FIDs of random
subsets of the generated set at ``points`` sizes ``N_i`` evenly spaced in ``1 / N`` between ``smallest`` and the
set's size N, each subset the first ``N_i`` rows of a fresh seeded permutation (the authors' code reshuffles for
every size too).  The reference side stays whole.

``smallest``: the paper's 5,000; for sets under 10,000 images, half the set (so the fit always spans sizes from N/2
to N).  The subsets come from the generated set's kept pool3 features: no second Inception pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..stats import FeatureStats
from .base import FEATURES, KEPT_FEATURES, LOWER, Context, Metric, SetData, option, register
from .fid import FIDMetric, fid_from_stats

PAPER_SMALLEST = 5000


def default_smallest(n: int) -> int:
    """The smallest subset: the paper's 5,000, or half of a set under 10,000 images."""
    return PAPER_SMALLEST if n >= 2 * PAPER_SMALLEST else max(2, n // 2)


def subset_sizes(n: int, points: int = 15, smallest: int | None = None) -> np.ndarray:
    """``points`` sizes evenly spaced in 1/N from ``smallest`` to ``n`` (rounded to integers; pure)."""
    smallest = default_smallest(n) if smallest is None else smallest
    if not 2 <= smallest <= n:
        raise InputError(f"FD∞'s smallest subset must lie in 2..{n} (the generated images), got {smallest}")
    return np.rint(1.0 / np.linspace(1.0 / smallest, 1.0 / n, points)).astype(np.int64)


def subsets(n: int, sizes: np.ndarray, seed: int) -> list[np.ndarray]:
    """The rows of each subset: the first ``size`` entries of a permutation of ``range(n)``, one permutation per
    size, all from one generator seeded by ``seed`` (pure)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n)[:size] for size in sizes]


def intercept_weights(sizes: np.ndarray) -> np.ndarray:
    """``w`` with ``intercept = w · FIDs`` for the least-squares line in ``x = 1 / size`` (pure)."""
    design = np.stack([np.ones(len(sizes)), 1.0 / np.asarray(sizes, np.float64)], axis=1)
    return np.linalg.pinv(design)[0]


def fit_line(sizes, fids) -> tuple[float, float]:
    """``(intercept, slope)`` of the least-squares line through ``(1 / size, fid)`` (pure)."""
    design = np.stack([np.ones(len(sizes)), 1.0 / np.asarray(sizes, np.float64)], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, np.asarray(fids, np.float64), rcond=None)
    return float(intercept), float(slope)


def fid_infinity(gen: FeatureStats, real: FeatureStats, *, points: int = 15, smallest: int | None = None,
                 seed: int = 0, strict: bool = True) -> dict:
    """FD∞ of ``gen``'s kept features against ``real``: ``{"fid_inf": intercept, "fid_n": {"N": FID_N, ...}}``."""
    if gen.features is None:
        raise InputError("FD∞ needs the generated set's features: compute its statistics with keep_features=True")
    features = np.asarray(gen.features)
    sizes = subset_sizes(len(features), points, smallest)
    fids = []
    for rows in subsets(len(features), sizes, seed):
        stats = FeatureStats(gen.dim, meta=gen.meta)
        stats.update(features[np.sort(rows)])  # the sum's order does not depend on the permutation
        fids.append(fid_from_stats(stats, real, strict=strict))
    return {"fid_inf": fit_line(sizes, fids)[0], "fid_n": {str(int(n)): f for n, f in zip(sizes, fids)}}


@dataclass(frozen=True)
class FIDInfOptions:
    points: int = option(15, help="FD∞: subset sizes in the fit (default: 15)", minimum=2)
    smallest: int | None = option(None, help="FD∞: the smallest subset (default: 5,000, or half of a set under "
                                              "10,000 images)", minimum=2)


@register
class FIDInfinityMetric(Metric):
    name, title, label, order, direction = "fid_inf", "FD∞ (unbiased FID)", "FD∞", 11, LOWER
    aliases = ("fd_inf", "fid_infinity")
    needs = frozenset({FEATURES, KEPT_FEATURES})
    Options, prefix = FIDInfOptions, "fid_inf"
    meaning = ("FID extrapolated to infinitely many samples (Chong & Forsyth 2020): the intercept of FID against "
               "1/N over subsets of A; lower is closer, and comparable across sample counts.")
    tolerance_basis = ("the intercept is a fixed linear combination Σ w_i FID_i of the subsets' FIDs, so it moves by at "
                       "most Σ|w_i| × FID's tolerance (2e-3); the subsets' FIDs by FID's tolerance.")

    def unavailable(self, gen, real, options: FIDInfOptions, ctx: Context) -> str | Exception | None:
        reason = super().unavailable(gen, real, options, ctx)
        count = getattr(gen, "total_images", None) or getattr(gen, "num_samples", None)
        if reason is None and count is not None:
            try:
                subset_sizes(count, options.points, options.smallest)
            except InputError as exc:
                return str(exc)
        return reason

    def set_needs(self, role: str) -> frozenset[str]:
        return self.needs if role == "gen" else frozenset({FEATURES})

    def tolerance_for(self, options: FIDInfOptions, num_images: tuple[int, int]) -> float:
        weights = intercept_weights(subset_sizes(num_images[0], options.points, options.smallest))
        return float(np.abs(weights).sum()) * FIDMetric.tolerance

    def headline(self, value: dict) -> float:
        return value["fid_inf"]

    def compute(self, gen: SetData, real: SetData, options: FIDInfOptions, ctx: Context) -> dict:
        return fid_infinity(gen.stats, real.stats, points=options.points, smallest=options.smallest, seed=ctx.seed,
                            strict=ctx.strict)

    def short(self, value: dict) -> str:
        return f"{value['fid_inf']:.6f}"

    def detail(self, options: FIDInfOptions, protocol: str, num_images: list[int]) -> str:
        sizes = subset_sizes(num_images[0], options.points, options.smallest)
        return f"{options.points} subsets of {sizes[0]:,} to {sizes[-1]:,} images, protocol {protocol}"


__all__ = ["FIDInfinityMetric", "default_smallest", "fid_infinity", "fit_line", "intercept_weights",
           "subset_sizes", "subsets"]
