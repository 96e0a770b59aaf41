"""ganmetrics: peer-exact metrics for generative image models.

Public API (DESIGN.md §5)::

    import ganmetrics as gm
    gm.fid(gen, real)                  # FID, protocol "tf" (TTUR / torch-fidelity) by default
    gm.compute_stats(source)           # -> FeatureStats (mu, sigma, float64)
    gm.load_stats(path)                # ganmetrics, pytorch-fid, TTUR or clean-fid .npz
    gm.frechet_distance(mu1, sigma1, mu2, sigma2)
    gm.inception_score(gen)            # (mean, std), torch-fidelity's definition
    gm.kid(gen, real)                  # (mean, std), torch-fidelity's definition
    gm.ms_ssim(x, y); gm.ms_ssim_diversity(gen)   # Progressive GAN's MS-SSIM
    gm.swd(gen, real)                  # Progressive GAN's Laplacian-pyramid SWD (×1e3)
    gm.precision_recall(gen, real)     # (precision, recall), k = 3, torch-fidelity's prc
    gm.density_coverage(gen, real)     # (density, coverage), k = 5, prdc
    gm.fid_infinity(gen, real)         # FD∞: FID without its sample-size bias (Chong & Forsyth 2020)
    gm.evaluate(gen, real, "fid,kid", bootstrap=100)  # + mean, std, 95 % interval of each by the bootstrap
    gm.compare(gen_a, gen_b, real, metric="fid")      # is A better than B? paired bootstrap, p-value
    gm.evaluate(gen, real, metrics=("fid", "kid", "is", "swd", "ms_ssim"))   # one pass for all (any registered)
    gm.report(gen, real, "report.html")   # every metric, sample grids and SWD chart in one HTML page
    gm.FID(real="shapes32")            # metric objects for training loops: update(batch), compute(), reset()
    gm.zoo.load("dcgan")               # a trained reference generator (gm.zoo, gm.train, gm.data load on use)
"""

import importlib

from ._version import __version__
from .api import (
    compare,
    compute_stats,
    density_coverage,
    fid,
    fid_infinity,
    inception_score,
    kid,
    ms_ssim_diversity,
    precision_recall,
    swd,
)
from .errors import (
    CheckpointError,
    GanmetricsError,
    InputError,
    ProtocolError,
    SourceNotFoundError,
    StatsError,
    WeightsError,
)
from .evaluate import evaluate
from .extractors.custom import CustomExtractor
from .features import Extractor
from .frechet import frechet_distance
from .html_report import report
from .metric_objects import FID, KID, InceptionScore
from .metrics.ms_ssim import ms_ssim
from .stats import FeatureStats, load_stats

__all__ = [
    "CheckpointError",
    "CustomExtractor",
    "Extractor",
    "FID",
    "FeatureStats",
    "GanmetricsError",
    "InceptionScore",
    "InputError",
    "KID",
    "ProtocolError",
    "SourceNotFoundError",
    "StatsError",
    "WeightsError",
    "__version__",
    "compute_stats",
    "compare",
    "density_coverage",
    "fid_infinity",
    "evaluate",
    "fid",
    "frechet_distance",
    "inception_score",
    "kid",
    "report",
    "ms_ssim",
    "ms_ssim_diversity",
    "precision_recall",
    "swd",
    "load_stats",
]

#: subpackages imported on first use, so that ``import ganmetrics`` stays light
_LAZY_SUBPACKAGES = ("zoo", "train", "data")


def __getattr__(name: str):
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'ganmetrics' has no attribute {name!r}")
