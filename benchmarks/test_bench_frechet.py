"""Fréchet distance at d = 2048: ganmetrics (Cholesky/eigvalsh) against the peers' methods.

* pytorch-fid 0.3.0 ``calculate_frechet_distance``: ``scipy.linalg.sqrtm(Σ1Σ2)``;
* torch-fidelity 0.4.0 ``fid_statistics_to_metric``: ``eigvals(Σ1Σ2)`` of the non-symmetric product.

Run ``python -m pytest benchmarks/test_bench_frechet.py --benchmark-only``; each peer's
``extra_info["ratio_vs_ganmetrics"]`` is its median time over ours (``--benchmark-json`` shows it).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
from test_frechet import gaussian_stats

from ganmetrics.frechet import frechet_distance
from peers import import_peer

D = 2048
N = 4096  # samples per covariance: N/d = 2 keeps both well-conditioned
GROUP = "frechet-d2048"


@pytest.fixture(scope="module")
def stats_pair() -> tuple[np.ndarray, ...]:
    """``(mu1, sigma1, mu2, sigma2)``, float64, from fixed seeds."""
    return (*gaussian_stats(0, N, D), *gaussian_stats(1, N, D, shift=0.1))


@pytest.fixture(scope="module")
def expected(stats_pair) -> float:
    return frechet_distance(*stats_pair)


def pytorch_fid_method() -> Callable[..., float]:
    fid_score = import_peer("pytorch_fid.fid_score")

    def run(mu1, sigma1, mu2, sigma2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # sqrtm(disp=False) on scipy ≥ 1.16
            return fid_score.calculate_frechet_distance(mu1, sigma1, mu2, sigma2)

    return run


def torch_fidelity_method() -> Callable[..., float]:
    metric_fid = import_peer("torch_fidelity.metric_fid")

    def run(mu1, sigma1, mu2, sigma2):
        result = metric_fid.fid_statistics_to_metric({"mu": mu1, "sigma": sigma1}, {"mu": mu2, "sigma": sigma2},
                                                     verbose=False)
        return result[metric_fid.KEY_METRIC_FID]

    return run


METHODS = {
    "ganmetrics": lambda: frechet_distance,
    "pytorch-fid-sqrtm": pytorch_fid_method,
    "torch-fidelity-eigvals": torch_fidelity_method,
}


@pytest.mark.parametrize("name", list(METHODS))  # ganmetrics first: the peers' ratios need its median
def test_frechet_distance_d2048(benchmark, record_ratio, stats_pair, expected, name):
    method = METHODS[name]()
    benchmark.group = GROUP
    value = float(benchmark.pedantic(method, args=stats_pair, rounds=3, iterations=1))
    assert value == pytest.approx(expected, rel=1e-6)
    if record_ratio(benchmark, name):
        benchmark.extra_info["fd"] = value
