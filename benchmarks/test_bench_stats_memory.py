"""Peak memory of feature statistics: 50,000 feature vectors of 2048 float32, arriving in batches of 500.

* ganmetrics: ``FeatureStats.update`` per batch (float64 streaming mean and co-moment, O(d²) memory),
  then ``.mu`` / ``.sigma``;
* numpy-cov: keep every batch (float32), ``np.concatenate``, then ``np.mean`` / ``np.cov`` (what
  pytorch-fid and torch-fidelity do with their features; pytorch-fid even keeps them as float64).  The
  mean is taken in float64: torch-fidelity's ``np.mean`` of float32 features is ~3e-6 relative off.

Each runs in a fresh process (``benchmarks/_runner.py stats``) that imports torch (both do, as the
peers are torch libraries), then draws the batches itself from a seed, so nothing but the
accumulation costs memory.  ``extra_info``: ``peak_rss_mb`` (the child's ``ru_maxrss``),
``baseline_rss_mb`` (its RSS after the imports, before the first batch), ``accumulation_mb`` (their
difference) and ``accumulate_seconds``; the benchmark time is the whole child process.  The two must give
the same statistics: checked on 5,000 vectors in this process (≤ 1e-9 relative) and, for the full run,
through sums of ``mu`` and ``sigma`` printed by both children.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks._runner import feature_batches, run_child, stats_ganmetrics, stats_numpy_cov

GROUP = "stats-memory-50k"
N, BATCH, SEED = 50_000, 500, 0
CHECK_N = 5_000
RESULTS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def same_statistics() -> float:
    """Both methods on the first 5,000 vectors; the largest relative difference of mu and sigma."""
    mu_a, sigma_a = stats_ganmetrics(feature_batches(CHECK_N, BATCH, SEED))
    mu_b, sigma_b = stats_numpy_cov(feature_batches(CHECK_N, BATCH, SEED))
    return max(float(np.abs(mu_a - mu_b).max() / np.abs(mu_b).max()),
               float(np.abs(sigma_a - sigma_b).max() / np.abs(sigma_b).max()))


@pytest.mark.parametrize("name", ["ganmetrics", "numpy-cov"])  # ganmetrics first
def test_stats_memory_50k_x_2048(benchmark, same_statistics, name):
    assert same_statistics <= 1e-9
    benchmark.group = GROUP
    args = ("stats", name, "--n", str(N), "--batch", str(BATCH), "--seed", str(SEED))
    result = benchmark.pedantic(run_child, args=args, rounds=1, iterations=1)
    RESULTS[name] = result
    other = RESULTS.get("ganmetrics" if name != "ganmetrics" else "numpy-cov")
    if other is not None:
        for key in ("mu_sum", "sigma_trace", "sigma_sum"):
            assert result[key] == pytest.approx(other[key], rel=1e-9)
    if benchmark.stats is None:  # --benchmark-disable
        return
    benchmark.extra_info.update(
        peak_rss_mb=result["peak_rss_mb"], baseline_rss_mb=result["baseline_rss_mb"],
        accumulation_mb=result["peak_rss_mb"] - result["baseline_rss_mb"],
        accumulate_seconds=result["accumulate_seconds"], num_vectors=N, dim=2048, batch=BATCH,
        max_rel_diff_5k=same_statistics,
    )
