"""Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models"), as
``prdc`` 0.2: k-NN balls (k = 5) around the real pool3 features, ``<`` at the ball's edge.  density = mean number
of real balls a generated sample lies in, over k (can exceed 1); coverage = share of real samples whose ball holds
a generated sample.  The math: :mod:`ganmetrics.metrics.manifold`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import option, register
from .manifold import ManifoldMetric


@dataclass(frozen=True)
class DCOptions:
    k: int = option(5, help="nearest neighbours of density and coverage's balls (default: 5)")


class _DensityCoverage(ManifoldMetric):
    Options, prefix, family, strict = DCOptions, "dc", "density/coverage", True


@register
class DensityMetric(_DensityCoverage):
    name, title, order, counted, over_k = "density", "Density", 70, "gen", True
    meaning = "Mean count of B's k-NN balls holding each of A's samples, over k (fidelity); higher is better."


@register
class CoverageMetric(_DensityCoverage):
    name, title, order, counted = "coverage", "Coverage", 71, "real"
    meaning = "Share of B's samples whose k-NN ball holds one of A's samples (diversity); higher is better."
