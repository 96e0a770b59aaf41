"""k-NN manifold metrics at 10,000 × 10,000 feature vectors of 2048: ganmetrics vs torch-fidelity 0.4.0's precision
and recall (k = 3) and prdc 0.2's density and coverage (k = 5).

Each runs in a fresh process (``benchmarks/_runner.py manifold``) on the same seeded pool3-like features
(``_runner.manifold_features``: low intrinsic dimension like Inception's; precision ≈ 0.15, recall ≈ 0.77).
"ganmetrics" computes all four numbers as ``evaluate`` does (k = 3 with ``≤`` and k = 5 with ``<`` in one pass),
"ganmetrics-prc" precision and recall alone (torch-fidelity's work); both exact float64 results from float32 matrix
products (``ganmetrics.metrics.manifold``), ``2²⁴ / N`` rows at a time.  torch-fidelity keeps full float32 N×N
distance matrices, prdc sklearn's float64-accurate ones (three N×N).  ``extra_info``: ``compute_seconds``
(the metric alone), ``peak_rss_mb`` and ``accumulation_mb`` (peak minus the RSS once the features exist).  The
values must agree: precision/recall with torch-fidelity's to its float32 mean, density/coverage with prdc's to 1e-9.
"""

from __future__ import annotations

import pytest

from benchmarks._runner import run_child

GROUP = "manifold-10k"
N, SEED = 10_000, 0
RESULTS: dict[str, dict] = {}


@pytest.mark.parametrize("name", ["ganmetrics", "ganmetrics-prc", "torch-fidelity", "prdc"])  # ganmetrics first
def test_manifold_10k_x_10k(benchmark, name):
    benchmark.group = GROUP
    result = benchmark.pedantic(run_child, args=("manifold", name, "--n", str(N), "--seed", str(SEED)), rounds=1,
                                iterations=1)
    RESULTS[name] = result
    ours = RESULTS.get("ganmetrics")
    if ours is not None and name != "ganmetrics":  # the same counts: ganmetrics-prc exactly, the peers to their float
        for key in ("precision", "recall", "density", "coverage"):
            if key in result:
                assert ours[key] == pytest.approx(result[key], abs={"torch-fidelity": 1e-7, "prdc": 1e-9}.get(name, 0))
    if benchmark.stats is None:  # --benchmark-disable
        return
    benchmark.extra_info.update(
        compute_seconds=result["compute_seconds"], peak_rss_mb=result["peak_rss_mb"],
        baseline_rss_mb=result["baseline_rss_mb"], accumulation_mb=result["peak_rss_mb"] - result["baseline_rss_mb"],
        num_vectors=N, dim=2048, **{k: result[k] for k in ("precision", "recall", "density", "coverage") if k in result})
