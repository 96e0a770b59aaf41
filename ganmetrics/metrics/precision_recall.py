"""Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models"), as torch-fidelity 0.4's ``prc``: k-NN balls (k = 3) around each set's pool3 features,
``≤`` at the ball's edge.  precision = share of generated samples inside some real ball (fidelity); recall =
share of real samples inside some generated ball (diversity).  The math: :mod:`ganmetrics.metrics.manifold`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import option, register
from .manifold import ManifoldMetric


@dataclass(frozen=True)
class PROptions:
    k: int = option(3, help="nearest neighbours of precision and recall's manifolds (default: 3)")


class _PrecisionRecall(ManifoldMetric):
    Options, prefix, family, strict = PROptions, "pr", "precision/recall", False


@register
class PrecisionMetric(_PrecisionRecall):
    name, title, order, counted = "precision", "Precision", 60, "gen"
    meaning = "Share of A's samples inside the k-NN manifold of B's features (fidelity); higher is better."


@register
class RecallMetric(_PrecisionRecall):
    name, title, order, counted = "recall", "Recall", 61, "real"
    meaning = "Share of B's samples inside the k-NN manifold of A's features (diversity); higher is better."
