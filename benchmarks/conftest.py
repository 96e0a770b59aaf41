"""Benchmarks share the tests' helpers: put ``tests/`` on sys.path (``from peers import import_peer``)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS_DIR = str(Path(__file__).resolve().parent.parent / "tests")
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
