"""Fréchet Inception Distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule").

``FID = ‖μ_g − μ_r‖² + tr Σ_g + tr Σ_r − 2 tr (Σ_g Σ_r)^{1/2}`` over Inception pool3 features;
the protocol decides how images reach the network (:mod:`ganmetrics.preprocess`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..devices import resolve_device
from ..distributed import current_shard, failing_together
from ..errors import InputError
from ..features import FeatureExtractor, bar_label, compute_stats, stream_stats
from ..frechet import frechet_distance
from ..preprocess import DEFAULT_PROTOCOL
from ..reference import looks_like_reference_name, reference_path
from ..sources import ImageSource, open_source
from ..stats import FeatureStats, check_compatible, load_stats


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


def as_stats(source, *, keep_features: bool = False, extractor: FeatureExtractor | None = None,
             **kwargs) -> FeatureStats:
    """Statistics of ``source``: a FeatureStats, a stats file, a bundled reference name, or images."""
    if isinstance(source, FeatureStats):
        return source
    if isinstance(source, (str, os.PathLike)):
        if is_stats_file(source):
            return load_stats(source)
        if looks_like_reference_name(source):
            return load_stats(reference_path(str(source)))
    return compute_stats(source, keep_features=keep_features, extractor=extractor, **kwargs)


def needs_images(source) -> bool:
    """True when statistics of ``source`` must be computed by running the network."""
    if isinstance(source, FeatureStats):
        return False
    if isinstance(source, (str, os.PathLike)):
        return not (is_stats_file(source) or looks_like_reference_name(source))
    return True


def fid_from_stats(a: FeatureStats, b: FeatureStats, *, strict: bool = True) -> float:
    """FID between two statistics after checking they were computed the same way."""
    check_compatible(a, b, strict=strict)
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


def fid(gen, real, *, protocol: str = DEFAULT_PROTOCOL, num_samples: int | None = None, batch_size: int = 64,
        device=None, seed: int = 0, weights: str | None = None, value_range: tuple[float, float] = (-1.0, 1.0),
        progress: bool = True, strict: bool = True, num_workers: int | None = None,
        z_dim: int | None = None, distributed: bool | None = None) -> float:
    """FID between ``gen`` and ``real``.

    ``gen``: a generator (``nn.Module`` or callable, needs ``num_samples``), folder, zip,
    npz/npy, array, tensor or DataLoader.  ``real``: any of those, or a statistics file, a
    :class:`FeatureStats`, or the name of a bundled reference set.  Statistics of different
    protocols or weights are refused unless ``strict=False``.  Under torchrun the images are sharded
    by rank and every rank returns the same FID (``distributed=False``: this process alone).
    """
    stats_pair = resolve_stats_pair(gen, real, protocol=protocol, num_samples=num_samples, batch_size=batch_size,
                                    device=device, seed=seed, weights=weights, value_range=value_range,
                                    progress=progress, num_workers=num_workers, z_dim=z_dim, distributed=distributed)
    return fid_from_stats(*stats_pair, strict=strict)


def resolve_stats_pair(gen, real, *, protocol: str, num_samples: int | None, weights: str | None, device,
                       progress: bool, distributed: bool | None = None, keep_gen_features: bool = False,
                       **open_kwargs) -> tuple[FeatureStats, FeatureStats]:
    """Statistics of both sides, sharing one loaded network.

    Both sides are resolved before either is computed — statistics loaded, image sources opened and
    checked — so a missing or empty ``real`` fails at once, not after all of ``gen``.  ``num_samples``
    applies to ``gen``; ``real`` uses all of its images; ``keep_gen_features`` keeps ``gen``'s features
    (e.g. for :func:`fid_curve`).  ``open_kwargs``: batch_size, seed, value_range, num_workers, z_dim.
    """
    shard = current_shard(distributed)
    target = resolve_device(device)
    with failing_together(shard):
        sides = [stats_or_images(source, num_samples=n, device=target, shard=shard, **open_kwargs)
                 for source, n in ((gen, num_samples), (real, None))]
        extractor = None
        if any(isinstance(side, ImageSource) for side in sides):
            extractor = FeatureExtractor(protocol=protocol, device=target, weights=weights,
                                         progress=progress and shard.is_main)
        computed = [isinstance(side, ImageSource) for side in sides]
        for i, (role, source, keep) in enumerate((("gen", gen, keep_gen_features), ("real", real, False))):
            if computed[i]:
                sides[i] = stream_stats(sides[i], extractor, keep_features=keep, progress=progress,
                                        label=bar_label(role, source, extractor.protocol))
    gen_stats, real_stats = (side.merged_across_ranks(shard) if was_computed else side
                             for side, was_computed in zip(sides, computed, strict=True))
    return gen_stats, real_stats


def stats_or_images(source, *, num_samples: int | None, device, shard, **open_kwargs) -> FeatureStats | ImageSource:
    """One side of a comparison resolved: loaded statistics (a FeatureStats, a stats file, a bundled name), or its
    images opened and checked (:func:`~ganmetrics.sources.open_source`), not yet read."""
    if not needs_images(source):
        return as_stats(source)
    return open_source(source, num_samples=num_samples, device=device, shard=shard, **open_kwargs)


def curve_counts(total: int, smallest: int = 50) -> list[int]:
    """Sample counts for a FID curve: ``smallest``, doubling, up to and including ``total``."""
    counts, n = [], min(smallest, total)
    while n < total:
        counts.append(n)
        n *= 2
    return counts + [total]


def fid_curve(gen: FeatureStats, real: FeatureStats, counts: list[int] | None = None, *,
              strict: bool = True) -> list[dict]:
    """FID of the first ``n`` generated images against ``real`` for each ``n`` of ``counts`` (default:
    :func:`curve_counts`): the small-sample bias of FID made visible.  ``gen`` must keep its features
    (``keep_features=True``); each point's statistics are accumulated from them as for any set."""
    if gen.features is None:
        raise InputError("a FID curve needs the generated set's features: compute its statistics with "
                         "keep_features=True")
    features = np.asarray(gen.features)
    counts = counts or curve_counts(len(features))
    if min(counts) < 2 or max(counts) > len(features):
        raise InputError(f"curve sample counts must lie in 2..{len(features)}, got {counts}")
    points = []
    for n in counts:
        stats = FeatureStats(gen.dim, meta=gen.meta)
        stats.update(features[:n])
        points.append({"num_samples": n, "fid": fid_from_stats(stats, real, strict=strict)})
    return points

