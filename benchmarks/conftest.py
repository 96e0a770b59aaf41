"""Benchmarks share the tests' helpers: put ``tests/`` on sys.path (``from peers import import_peer``)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS_DIR = str(Path(__file__).resolve().parent.parent / "tests")
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)


import pytest  # noqa: E402

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
