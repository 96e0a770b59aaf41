"""MS-SSIM of 64 RGB pairs at 64 px: ganmetrics (batched float64 band matmuls) against the NumPy/SciPy oracle.

The oracle is ``tests/test_ms_ssim.py::oracle_ms_ssim``: the same spec, one pair, scale and channel at a
time with ``scipy.signal.correlate2d``.  Run ``python -m pytest benchmarks/test_bench_ms_ssim.py
--benchmark-only [--bench-device cuda]``; the oracle (always on the CPU) has ``extra_info["ratio_vs_ganmetrics"]``, its median time over ours
(the report shows best times too).  The oracle is single-threaded, ganmetrics uses torch's
intra-op threads: on a CPU shared with other busy processes its times jump (each parallel region waits
for a descheduled thread), so compare on an otherwise idle machine.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from test_ms_ssim import oracle_ms_ssim, pair_set

from ganmetrics.metrics.ms_ssim import ms_ssim

NUM_PAIRS = 64
SIZE = 64
GROUP = "ms_ssim"


@pytest.fixture(scope="module")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    """Image-like uint8 ``[64, 3, 64, 64]`` x and y = x + noise, from fixed seeds."""
    return pair_set("related", NUM_PAIRS, SIZE, seed=0)


@pytest.fixture(scope="module")
def expected(pairs) -> np.ndarray:
    return oracle_ms_ssim(*pairs)


def ganmetrics_method(device: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """MS-SSIM on ``device``, the copies to and from it included."""
    def run(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return ms_ssim(torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)).cpu().numpy()

    return run


METHODS = {"ganmetrics": ganmetrics_method, "numpy-scipy-oracle": lambda device: oracle_ms_ssim}


@pytest.mark.parametrize("name", list(METHODS))  # ganmetrics first: the oracle's ratio needs its median
def test_ms_ssim_64_pairs_64px(benchmark, record_ratio, pairs, expected, bench_device, name):
    method = METHODS[name](bench_device)
    benchmark.group = GROUP
    rounds = 10 if name == "ganmetrics" else 3
    value = benchmark.pedantic(method, args=pairs, rounds=rounds, iterations=1, warmup_rounds=1)
    np.testing.assert_allclose(value, expected, rtol=0, atol=1e-5)
    if record_ratio(benchmark, name):
        benchmark.extra_info["mean_ms_ssim"] = float(np.mean(value))
        benchmark.extra_info["torch_threads"] = torch.get_num_threads()
