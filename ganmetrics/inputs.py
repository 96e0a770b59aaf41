"""Whether an input is statistics or images, decided in one place, once per side at the entry point.

Statistics: a :class:`FeatureStats`, an ``.npz`` holding ``mu`` (ganmetrics, pytorch-fid, TTUR or clean-fid), or
the name of a bundled reference set.  Anything else is images, opened (and checked) by
:func:`~ganmetrics.sources.open_source` but not yet read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .reference import looks_like_reference_name, reference_path
from .sources import ImageSource, open_source
from .stats import FeatureStats, load_stats


def is_stats_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is an ``.npz`` holding ``mu`` (statistics, not images; one without ``sigma`` is a broken
    statistics file, which :func:`load_stats` reports as such)."""
    path = Path(path)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as data:
            return "mu" in data.files
    except Exception:  # noqa: BLE001 - unreadable files are reported by the image loader
        return False


def is_statistics(source: Any) -> bool:
    """True when ``source`` is statistics (module docstring), False when it is images."""
    if isinstance(source, FeatureStats):
        return True
    if isinstance(source, (str, os.PathLike)):
        return is_stats_file(source) or looks_like_reference_name(source)
    return False


def load_statistics(source: Any) -> FeatureStats:
    """The statistics ``source`` is (:func:`is_statistics` must hold)."""
    if isinstance(source, FeatureStats):
        return source
    return load_stats(source) if is_stats_file(source) else load_stats(reference_path(str(source)))


def resolve_input(source: Any, *, num_samples: int | None = None, **open_kwargs: Any) -> FeatureStats | ImageSource:
    """One side resolved: its statistics loaded, or its images opened and checked, not yet read.
    ``open_kwargs``: those of :func:`~ganmetrics.sources.open_source`."""
    if is_statistics(source):
        return load_statistics(source)
    return open_source(source, num_samples=num_samples, **open_kwargs)


__all__ = ["is_stats_file", "is_statistics", "load_statistics", "resolve_input"]
