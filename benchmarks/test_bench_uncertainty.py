"""The cost of FD∞ and of the bootstrap at 10,000 × 10,000 pool3-like vectors (2048-d): each against one plain FID
of the same features (the statistics of both sets and one Fréchet distance), in a fresh process each
(``benchmarks/_runner.py uncertainty``; the features of the k-NN benchmark, ``_runner.manifold_features``), the
float64 moments accumulated on ``--bench-device`` (the Fréchet step's eigendecomposition runs on the CPU).
FD∞: 15 subsets of 5,000 to 10,000 rows; the bootstrap: B = 100 replicates, each the statistics of both resampled
sets and one Fréchet distance.  No peer ships either (the authors' FD∞ code is not a package), so the table's ratio
is to the plain FID.  ``extra_info``: ``compute_seconds``, ``peak_rss_mb``, ``accumulation_mb``."""

from __future__ import annotations

import pytest

from benchmarks._runner import run_child

GROUP = "uncertainty-10k"
N, REPLICATES = 10_000, 100


@pytest.mark.parametrize("name", ["fid", "fid-inf", "bootstrap-fid"])  # the plain FID first: the baseline
def test_uncertainty_10k(benchmark, bench_device, name):
    benchmark.group = GROUP
    result = benchmark.pedantic(run_child, args=("uncertainty", name, "--n", str(N), "--replicates", str(REPLICATES),
                                                 "--device", bench_device), rounds=1, iterations=1,
                                kwargs={"timeout": 3600})
    assert result["value"] > 0
    if benchmark.stats is None:  # --benchmark-disable
        return
    benchmark.extra_info.update(
        compute_seconds=result["compute_seconds"], peak_rss_mb=result["peak_rss_mb"],
        baseline_rss_mb=result["baseline_rss_mb"], accumulation_mb=result["peak_rss_mb"] - result["baseline_rss_mb"],
        num_vectors=N, dim=2048, replicates=REPLICATES if name == "bootstrap-fid" else None, value=result["value"])
