"""Uncertainty on every feature metric by the bootstrap (Efron 1979), and a paired comparison of two generators.

A replicate draws each set's kept pool3 features with replacement (as many rows as the set has; a side given as
statistics without features is held fixed, and the result says so), builds the replicate's statistics from them
in float64, and computes the metric as for the real sets.  Over ``replicates`` replicates: the mean, the standard
deviation and the percentile interval at ``confidence`` of the metric's headline number (KID's mean, FD∞'s
intercept).  Rows come from ``numpy.random.default_rng([seed, stream])``, one stream per set, so a replicate's
draw depends on the seed alone.

:func:`compare_sets` is the paired bootstrap of two generated sets against one reference: each replicate resamples
the reference once and uses the same draw for both, so the reference's own noise cancels in the difference
``A − B``; the two-sided p-value is ``2 · min(P*(Δ ≤ 0), P*(Δ ≥ 0))`` (the percentile bootstrap's, approximate).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import repeat
from typing import Any

import numpy as np
import torch

from .errors import InputError, spelled
from .metrics.base import FEATURES, HIGHER, KEPT_FEATURES, LOWER, Context, SetData, registry
from .stats import FeatureStats
from .stream import progress_bar

RESAMPLABLE = frozenset({FEATURES, KEPT_FEATURES})  #: metrics of these needs can be bootstrapped
_STREAMS = {"gen": 1, "real": 2, "gen_b": 3}


def bootstrappable(name: str) -> bool:
    """Whether a metric is computed from pool3 features only (FID, KID, precision ... FD∞)."""
    return registry()[name].needs <= RESAMPLABLE


def draws(n: int, replicates: int, seed: int, stream: str) -> Iterator[np.ndarray]:
    """Each replicate's rows of a set of ``n``: ``n`` indices drawn with replacement (pure, seeded)."""
    rng = np.random.default_rng([seed, _STREAMS[stream]])
    for _ in range(replicates):
        yield rng.integers(0, n, n)


def resampled(data: SetData, rows: np.ndarray | None, device: torch.device | str = "cpu") -> SetData:
    """``data`` with its kept features replaced by ``features[rows]`` (and statistics of those, accumulated in
    float64 on ``device``); unchanged when ``rows`` is None."""
    if rows is None:
        return data
    features = torch.from_numpy(np.asarray(data.stats.features)[np.sort(rows)])
    stats = FeatureStats(data.stats.dim, keep_features=True, meta=data.stats.meta)
    stats.update(features.to(device))
    return SetData(role=data.role, description=data.description, num_images=len(rows), stats=stats)


def summary(values: list[float], confidence: float) -> dict:
    """Mean, standard deviation (ddof 1) and the percentile interval of bootstrap replicates (pure)."""
    v = np.asarray(values, dtype=np.float64)
    low, high = np.quantile(v, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "low": float(low),
            "high": float(high), "confidence": confidence, "replicates": len(v)}


def check_bootstrap(replicates: int, confidence: float) -> None:
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 2:
        raise InputError(f"{spelled('bootstrap', '--bootstrap')} must be an integer >= 2 (replicates), got "
                         f"{replicates!r}")
    if not 0 < confidence < 1:
        raise InputError(f"{spelled('ci', '--ci')} (the interval's confidence) must lie in (0, 1), got {confidence!r}")


def _with_features(data: SetData | None) -> bool:
    return data is not None and data.stats is not None and data.stats.features is not None


def _values(metrics, gen: SetData, real: SetData | None, options: dict, ctx: Context) -> dict[str, float]:
    known = registry()
    replicate_ctx = Context(seed=ctx.seed, device=ctx.device, strict=ctx.strict)  # a fresh cache per replicate
    for name in metrics:
        known[name].prepare(options[name], replicate_ctx)
    return {name: known[name].headline(known[name].compute(gen, real, options[name], replicate_ctx))
            for name in metrics}


def bootstrap_metrics(metrics: tuple[str, ...], gen: SetData, real: SetData | None, options: dict[str, Any],
                      ctx: Context, *, replicates: int, confidence: float = 0.95, progress: bool = False) -> dict:
    """``{metric: summary, ..., "resampled": [the sides drawn]}`` over ``replicates`` replicates (see the module
    docstring); ``gen`` must keep its features."""
    check_bootstrap(replicates, confidence)
    if not _with_features(gen):
        raise InputError("the bootstrap resamples the generated set's features: they were not kept")
    sides = ["gen"] + (["real"] if _with_features(real) else [])
    rows_gen = draws(gen.num_images, replicates, ctx.seed, "gen")
    rows_real = draws(real.num_images, replicates, ctx.seed, "real") if "real" in sides else repeat(None)
    values: dict[str, list[float]] = {name: [] for name in metrics}
    with progress_bar(replicates, desc="bootstrap", enabled=progress) as bar:
        for _ in range(replicates):
            g = resampled(gen, next(rows_gen), ctx.device)
            r = resampled(real, next(rows_real), ctx.device) if real is not None else None
            for name, value in _values(metrics, g, r, options, ctx).items():
                values[name].append(value)
            bar.update(1)
    return {**{name: summary(v, confidence) for name, v in values.items()}, "resampled": sides}


def compare_sets(metric: str, a: SetData, b: SetData, real: SetData, options: Any, ctx: Context, *,
                 replicates: int, confidence: float = 0.95, progress: bool = False) -> dict:
    """The paired bootstrap of ``metric(A) − metric(B)`` against one reference (see the module docstring)."""
    check_bootstrap(replicates, confidence)
    known = registry()[metric]
    if not all(_with_features(side) for side in (a, b)):
        raise InputError("the comparison resamples both generated sets' features: they were not kept")
    opts = {metric: options}
    point = {key: _values((metric,), side, real, opts, ctx)[metric] for key, side in (("a", a), ("b", b))}
    rows_a, rows_b = draws(a.num_images, replicates, ctx.seed, "gen"), draws(b.num_images, replicates, ctx.seed, "gen_b")
    rows_real = draws(real.num_images, replicates, ctx.seed, "real") if _with_features(real) else repeat(None)
    deltas = []
    with progress_bar(replicates, desc="paired bootstrap", enabled=progress) as bar:
        for _ in range(replicates):
            r = resampled(real, next(rows_real), ctx.device)
            deltas.append(_values((metric,), resampled(a, next(rows_a), ctx.device), r, opts, ctx)[metric]
                          - _values((metric,), resampled(b, next(rows_b), ctx.device), r, opts, ctx)[metric])
            bar.update(1)
    d = np.asarray(deltas)
    p = float(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))))
    interval = summary(deltas, confidence)
    return {"metric": metric, "a": point["a"], "b": point["b"], "difference": point["a"] - point["b"],
            "low": interval["low"], "high": interval["high"], "std": interval["std"], "p_value": p,
            "confidence": confidence, "replicates": replicates, "direction": known.direction,
            "verdict": verdict(metric, point["a"] - point["b"], interval["low"], interval["high"], p, confidence)}


def verdict(metric: str, difference: float, low: float, high: float, p: float, confidence: float) -> str:
    """One line: which set is better, or that the interval holds 0 (pure)."""
    known = registry()[metric]
    title = known.label or known.title
    interval = f"{difference:+.4g}, {confidence:.0%} interval [{low:.4g}, {high:.4g}], p = {p:.3g}"
    if low <= 0 <= high:
        return f"no significant difference in {title}: A − B = {interval}"
    if known.direction is None:
        return f"A and B differ in {title}: A − B = {interval}"
    a_better = (difference < 0) == (known.direction == LOWER) if known.direction in (LOWER, HIGHER) else False
    return f"{'A' if a_better else 'B'} is better in {title}: A − B = {interval}"


__all__ = ["bootstrap_metrics", "bootstrappable", "compare_sets", "draws", "resampled", "summary", "verdict"]
