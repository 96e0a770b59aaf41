"""k-NN manifold metrics at 10,000 × 10,000 feature vectors of 2048: ganmetrics vs torch-fidelity 0.4.0's precision
and recall (k = 3) and prdc 0.2's density and coverage (k = 5).

Each runs in a fresh process (``benchmarks/_runner.py manifold``) on the same seeded pool3-like features (real,
and generated ones scaled by 1.02 and shifted by 0.02).  ganmetrics computes all four numbers (two k-NN passes: k = 3
with ``≤`` and k = 5 with ``<``) in float64, blocks of ``2²⁴ / N`` rows; torch-fidelity keeps the full float32
distance matrices, prdc sklearn's float64-accurate ones (three N×N matrices).  ``extra_info``: ``compute_seconds``
(the metric alone), ``peak_rss_mb`` and ``accumulation_mb`` (peak minus the RSS once the features exist).  The
values must agree: precision/recall with torch-fidelity's to its float32 mean, density/coverage with prdc's to 1e-9.
"""

from __future__ import annotations

import pytest

from benchmarks._runner import run_child

GROUP = "manifold-10k"
N, SEED = 10_000, 0
RESULTS: dict[str, dict] = {}


@pytest.mark.parametrize("name", ["ganmetrics", "torch-fidelity", "prdc"])  # ganmetrics first
def test_manifold_10k_x_10k(benchmark, name):
    benchmark.group = GROUP
    result = benchmark.pedantic(run_child, args=("manifold", name, "--n", str(N), "--seed", str(SEED)), rounds=1,
                                iterations=1)
    RESULTS[name] = result
    ours = RESULTS.get("ganmetrics")
    if ours is not None and name != "ganmetrics":
        for key in ("precision", "recall", "density", "coverage"):
            if key in result:
                assert ours[key] == pytest.approx(result[key], abs=1e-7 if name == "torch-fidelity" else 1e-9), key
    if benchmark.stats is None:  # --benchmark-disable
        return
    benchmark.extra_info.update(
        compute_seconds=result["compute_seconds"], peak_rss_mb=result["peak_rss_mb"],
        baseline_rss_mb=result["baseline_rss_mb"], accumulation_mb=result["peak_rss_mb"] - result["baseline_rss_mb"],
        num_vectors=N, dim=2048, **{k: result[k] for k in ("precision", "recall", "density", "coverage") if k in result})
