"""Benchmarks share the tests' helpers: put ``tests/`` on sys.path (``from peers import import_peer``)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS_DIR = str(Path(__file__).resolve().parent.parent / "tests")
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)


import platform  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--bench-device", default="cpu", choices=("cpu", "cuda"),
                     help="where ganmetrics and the peers run the networks and metrics (default: cpu)")


@pytest.fixture(scope="session")
def bench_device(request) -> str:
    """``"cpu"`` or ``"cuda"`` (``--bench-device``); on CUDA every implementation runs float32 with TF32 off."""
    device = request.config.getoption("--bench-device")
    if device == "cuda":
        if not torch.cuda.is_available():
            pytest.fail("--bench-device cuda: torch sees no CUDA GPU on this machine")
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    return device


def synchronize(device: str) -> None:
    """Wait for the device's queued work, so a timed call includes it."""
    if device == "cuda":
        torch.cuda.synchronize()


def synchronized(method, device: str):
    """``method`` followed by :func:`synchronize`: what a benchmark times."""

    def run(*args):
        out = method(*args)
        synchronize(device)
        return out

    return run


def environment_line(device: str) -> str:
    """torch version and the device's name (GPU model, CUDA and driver-facing versions)."""
    parts = [f"torch {torch.__version__}"]
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        parts.append(f"GPU {props.name} ({props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs), "
                     f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, float32 with TF32 off")
    else:
        parts.append(f"CPU ({platform.machine()}), {torch.get_num_threads()} torch threads")
    return "; ".join(parts)


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["ganmetrics_environment"] = environment_line(config.getoption("--bench-device"))


_MEDIANS: dict[tuple[str, str], float] = {}


@pytest.fixture
def record_ratio():
    """``record(benchmark, name)`` after ``benchmark.pedantic``: keeps the median and, for a peer,
    stores ``extra_info["ratio_vs_ganmetrics"]`` (its median over ganmetrics's in the same group;
    parametrise with "ganmetrics" first).  Returns False under ``--benchmark-disable``."""

    def record(benchmark, name: str) -> bool:
        if benchmark.stats is None:
            return False
        median = benchmark.stats.stats.median
        _MEDIANS[(benchmark.group, name)] = median
        reference = _MEDIANS.get((benchmark.group, "ganmetrics"))
        if name != "ganmetrics" and reference:
            benchmark.extra_info["ratio_vs_ganmetrics"] = median / reference
        return True

    return record
