"""ganmetrics: peer-exact metrics for generative image models.

Public API (DESIGN.md §5)::

    import ganmetrics as gm
    gm.fid(gen, real)                  # FID, protocol "tf" (TTUR / torch-fidelity) by default
    gm.compute_stats(source)           # -> FeatureStats (mu, sigma, float64)
    gm.load_stats(path)                # ganmetrics, pytorch-fid, TTUR or clean-fid .npz
    gm.frechet_distance(mu1, sigma1, mu2, sigma2)
"""

from ._version import __version__
from .errors import (
    GanmetricsError,
    InputError,
    ProtocolError,
    SourceNotFoundError,
    StatsError,
    WeightsError,
)
from .features import compute_stats
from .frechet import frechet_distance
from .metrics.fid import fid
from .stats import FeatureStats, load_stats

__all__ = [
    "FeatureStats",
    "GanmetricsError",
    "InputError",
    "ProtocolError",
    "SourceNotFoundError",
    "StatsError",
    "WeightsError",
    "__version__",
    "compute_stats",
    "fid",
    "frechet_distance",
    "load_stats",
]
