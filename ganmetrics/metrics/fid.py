"""Fréchet Inception Distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule").

``FID = ‖μ_g − μ_r‖² + tr Σ_g + tr Σ_r − 2 tr (Σ_g Σ_r)^{1/2}`` over Inception pool3 features;
the protocol decides how images reach the network (:mod:`ganmetrics.preprocess`).
"""

from __future__ import annotations

from ..frechet import frechet_distance
from ..stats import FeatureStats, check_compatible
from .base import FEATURES, ISA_MEASURED, LOWER, Context, Metric, SetData, register


def fid_from_stats(a: FeatureStats, b: FeatureStats, *, strict: bool = True) -> float:
    """FID between two statistics after checking they were computed the same way."""
    check_compatible(a, b, strict=strict)
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


@register
class FIDMetric(Metric):
    name, title, order, direction = "fid", "FID", 10, LOWER
    needs = frozenset({FEATURES})
    meaning = ("Fréchet distance between Gaussians fitted to Inception pool3 features of A and B; lower is "
               "closer.")
    tolerance = 2e-3
    tolerance_basis = (ISA_MEASURED + "FID by at most 1e-5 (1 or 2 threads, batches of 32, 50 or 64: 8e-8); 2e-3 "
                       "leaves a wide margin for the unmeasured CUDA path.")

    def compute(self, gen: SetData, real: SetData, options, ctx: Context) -> float:
        return fid_from_stats(gen.stats, real.stats, strict=ctx.strict)

    def detail(self, options, protocol: str, num_images: list[int]) -> str:
        return f"protocol {protocol}"
