"""Several metrics in one pass over each set: each image is decoded once and goes through Inception once.

The path is one straight line, the same for every metric of the registry (:mod:`ganmetrics.metrics.base`):

1. each side resolved once: statistics loaded or images opened and checked (:mod:`ganmetrics.inputs`);
2. every chosen metric says whether it can apply to those inputs — all before any image is read;
3. one pass per image set (:func:`ganmetrics.stream.stream_set`) collects what the chosen metrics need:
   pool3 statistics, the kept features, the logits, each metric's accumulator of the uint8 batches;
4. each metric computes its value from the two sets' data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .bootstrap import bootstrap_metrics, bootstrappable, check_bootstrap
from .devices import resolve_device
from .distributed import current_shard, failing_together
from .errors import InputError, spelled
from .features import Extractor, resolve_extractor
from .inputs import resolve_input
from .metrics.base import (
    FEATURES,
    IMAGES,
    KEPT_FEATURES,
    LOGITS,
    Context,
    SetData,
    parse_metrics,
    registry,
    split_options,
)
from .preprocess import DEFAULT_PROTOCOL
from .sources import ImageSource
from .stats import FeatureStats, check_meta_compatible
from .stream import bar_label, stream_set

DEFAULT_METRICS = ("fid", "kid", "is", "swd", "ms_ssim")
_NETWORK = frozenset({FEATURES, KEPT_FEATURES, LOGITS})


def evaluate(gen, real=None, metrics: str | Iterable[str] = DEFAULT_METRICS, *, protocol: str = DEFAULT_PROTOCOL,
             num_samples: int | None = None, batch_size: int = 64, device=None, seed: int = 0,
             weights: str | None = None, value_range: tuple[float, float] = (-1.0, 1.0), progress: bool = True,
             num_workers: int | None = None, z_dim: int | None = None, strict: bool = True,
             distributed: bool | None = None, feature_extractor: Any = None, bootstrap: int = 0,
             ci: float = 0.95, **options: Any) -> dict:
    """Several metrics of ``gen`` against ``real`` in one pass over each set.

    Returns a dict with the requested metrics' values — ``"fid"``, ``"precision"``, ... (floats), ``"kid"`` and
    ``"is"`` (``{"mean", "std"}``), ``"swd"`` (``{"levels": {resolution: value}, "avg"}``, ×1e3) — plus
    ``"protocol"`` and ``"num_samples"`` ([gen, real]).  ``gen`` and ``real`` accept what :func:`ganmetrics.fid`
    accepts; ``real`` may be ``None`` when only one-set metrics (``is``, ``ms_ssim``) are asked for.
    ``seed`` seeds a generator's latents and every random draw of the metrics (KID subsets, SWD).

    ``options``: the metrics' options as ``{metric}_{option}`` — ``kid_subsets=100, kid_subset_size=1000,
    kid_degree=3, kid_gamma=None, kid_coef0=1, is_splits=10, is_shuffle=True, is_shuffle_seed=2020,
    ms_ssim_num_pairs=10000, swd_num_images=None, pr_k=3, dc_k=5`` (``ganmetrics.metrics.base.registry()`` lists
    them).  Under torchrun each rank takes its share of both sets (:mod:`ganmetrics.distributed`) and every rank
    returns the same results, those of a single process (``distributed=False``: this process alone).
    ``feature_extractor``: the features of FID, KID, FD∞, precision/recall and density/coverage —
    ``None``/``"inception"`` (Inception pool3, the default), ``"dinov2-vit-l-14"`` (``weights``: its file),
    ``"module:attribute"``, an ``nn.Module`` or callable from uint8 images to ``[N, d]`` features, or a loaded
    :class:`~ganmetrics.features.Extractor` (its protocol and weights win over ``protocol`` / ``weights``); see
    :func:`ganmetrics.features.resolve_extractor`.  Statistics given as inputs must come from the same extractor.

    ``bootstrap=B`` (B >= 2): also ``"bootstrap"``: for each metric of pool3 features (FID, FD∞, KID, precision,
    recall, density, coverage) the mean, std and ``ci`` percentile interval of its headline number over B
    replicates that resample each set's features with replacement (:mod:`ganmetrics.bootstrap`; seeded by
    ``seed``).
    """
    return run(gen, real, metrics, protocol=protocol, num_samples=num_samples, batch_size=batch_size, device=device,
               seed=seed, weights=weights, value_range=value_range, progress=progress, num_workers=num_workers,
               z_dim=z_dim, strict=strict, distributed=distributed, feature_extractor=feature_extractor,
               bootstrap=bootstrap, ci=ci, **options)[0]


def run(gen, real, metrics: str | Iterable[str], *, protocol: str = DEFAULT_PROTOCOL, num_samples: int | None = None,
        batch_size: int = 64, device=None, seed: int = 0, weights: str | None = None,
        value_range: tuple[float, float] = (-1.0, 1.0), progress: bool = True, num_workers: int | None = None,
        z_dim: int | None = None, strict: bool = True, distributed: bool | None = None,
        feature_extractor: Any = None, keep_gen_features: bool = False, keep_real_features: bool = False,
        image_sizes: dict[str, tuple[int, int]] | None = None, bootstrap: int = 0, ci: float = 0.95,
        **options: Any) -> tuple[dict, dict[str, SetData]]:
    """:func:`evaluate`, also returning each set's :class:`SetData` (``keep_gen_features`` /
    ``keep_real_features``: with that set's features).  ``image_sizes``: role → (H, W) when the caller has seen the
    images (checks run earlier)."""
    known = registry()
    chosen = parse_metrics(metrics)
    chosen_options = split_options(chosen, options)
    requested_device, device = device, resolve_device(device)
    shard = current_shard(distributed)
    comparing = [name for name in chosen if known[name].sides == 2]
    if comparing and real is None:
        raise InputError(f"{', '.join(comparing)} compare two sets: "
                         + spelled("pass real=", "give B, the reference set"))
    opening = dict(batch_size=batch_size, value_range=value_range, device=device, num_workers=num_workers,
                   z_dim=z_dim, seed=seed, shard=shard)
    inputs = {"gen": gen, "real": real} if comparing else {"gen": gen}
    with failing_together(shard):  # both sets resolved and checked before either is read
        sides = {role: resolve_input(source, num_samples=num_samples if role == "gen" else None, **opening)
                 for role, source in inputs.items()}
        needs = {role: frozenset().union(*(known[name].set_needs(role) for name in chosen)) for role in sides}
        resampled = tuple(name for name in chosen if bootstrappable(name)) if bootstrap else ()
        if bootstrap:
            check_bootstrap(bootstrap, ci)
        for role, keep in (("gen", keep_gen_features or resampled), ("real", keep_real_features or resampled)):
            if keep and role in needs:
                needs[role] |= {KEPT_FEATURES}
        extractor: Extractor | None = None
        if isinstance(feature_extractor, Extractor) or any(isinstance(sides[role], ImageSource)
                                                           and needs[role] & _NETWORK for role in sides):
            # a user's module runs where its parameters are unless a device was asked for
            extractor = resolve_extractor(feature_extractor, protocol=protocol, device=requested_device,
                                          weights=weights, progress=progress and shard.is_main)
            images = [side for role, side in sides.items() if isinstance(side, ImageSource) and needs[role] & _NETWORK]
            for role, side in sides.items():  # statistics of another extractor: refused before any image is read
                if strict and images and isinstance(side, FeatureStats) and needs[role] & _NETWORK:
                    check_meta_compatible(side.meta, extractor.stats_meta(images[0].description))
    protocol = extractor.protocol if extractor is not None else protocol
    ctx = Context(seed=seed, device=device, shard=shard, strict=strict,
                  has_classifier=extractor.has_classifier if extractor is not None else None,
                  image_sizes=dict(image_sizes or {}))
    for name in chosen:
        reason = known[name].unavailable(sides["gen"], sides.get("real"), chosen_options[name], ctx)
        if reason:
            raise reason if isinstance(reason, Exception) else InputError(reason)

    data: dict[str, SetData] = {}
    try:
        for role, side in sides.items():
            if isinstance(side, FeatureStats):
                data[role] = SetData(role=role, description=side.meta.get("source") or "statistics",
                                     num_images=side.num_samples or 0, stats=side)
                continue
            consumers = {name: known[name].accumulator(role, chosen_options[name], ctx, gen=data.get("gen"))
                         for name in chosen if IMAGES in known[name].set_needs(role)}
            data[role] = stream_set(side, role=role, needs=needs[role], extractor=extractor, consumers=consumers,
                                    label=bar_label(role, inputs[role], getattr(extractor, "protocol", None)),
                                    progress=progress)
        result: dict = {"protocol": protocol, "num_samples": [data[role].num_images for role in data]}
        feature = extractor.name if extractor is not None else next(
            (d.stats.meta.get("feature") for d in data.values() if d.stats is not None), None)
        if feature is not None:
            result["feature"] = feature
        for name in chosen:
            known[name].prepare(chosen_options[name], ctx)
        for name in chosen:
            result[name] = known[name].compute(data["gen"], data.get("real"), chosen_options[name], ctx)
        if resampled:
            result["bootstrap"] = bootstrap_metrics(resampled, data["gen"], data.get("real"), chosen_options, ctx,
                                                    replicates=bootstrap, confidence=ci,
                                                    progress=progress and shard.is_main)
    finally:
        for side in data.values():
            for accumulator in side.accumulators.values():
                getattr(accumulator, "close", lambda: None)()
    return result, data


__all__ = ["DEFAULT_METRICS", "evaluate", "run"]
