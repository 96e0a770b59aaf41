"""SWD, 256 images per set at 64 px: ganmetrics against the float64 NumPy oracle of the spec.

The oracle (``tests/test_swd.py``) follows METRICS.md image by image with the same random draws
(patch centres and directions), so both compute the same numbers.  ganmetrics runs on the bench
device (``--bench-device cuda``: pyramids, projections and sorts on the GPU), the oracle on the CPU.  Run
``python -m pytest benchmarks/test_bench_swd.py --benchmark-only``; the oracle's
``extra_info["ratio_vs_ganmetrics"]`` is its median time over ours (``--benchmark-json`` shows it).
"""

from __future__ import annotations

import pytest
import torch
from test_swd import nchw, oracle_swd

from ganmetrics.api import swd

NUM_IMAGES = 256
SIZE = 64
GROUP = "swd"
RESULTS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def image_sets() -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``[256, 3, 64, 64]`` 'shapes' and 'blobs' sets."""
    return nchw("shapes", NUM_IMAGES, seed=1, size=SIZE), nchw("blobs", NUM_IMAGES, seed=2, size=SIZE)


def ganmetrics_method(a: torch.Tensor, b: torch.Tensor, device: str) -> dict:
    return swd(a, b, num_images=NUM_IMAGES, seed=0, batch_size=64, device=device, progress=False)


def oracle_method(a: torch.Tensor, b: torch.Tensor, device: str) -> dict:
    return oracle_swd(a.numpy(), b.numpy(), seed=0, stream_a="fake", stream_b="real")


METHODS = {"ganmetrics": (ganmetrics_method, 5), "numpy-oracle": (oracle_method, 2)}


@pytest.mark.parametrize("name", list(METHODS))  # ganmetrics first: the oracle's ratio needs its median
def test_swd_256x64px(benchmark, record_ratio, image_sets, bench_device, name):
    method, rounds = METHODS[name]
    benchmark.group = GROUP
    result = benchmark.pedantic(method, args=(*image_sets, bench_device), rounds=rounds, iterations=1,
                                warmup_rounds=1 if rounds > 2 else 0)
    RESULTS[name] = result
    other = RESULTS.get("ganmetrics" if name != "ganmetrics" else "numpy-oracle")
    if other is not None:
        for resolution, value in other["levels"].items():
            assert result["levels"][resolution] == pytest.approx(value, rel=1e-5)
    if record_ratio(benchmark, name):
        benchmark.extra_info["swd_avg"] = result["avg"]
