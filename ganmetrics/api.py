"""The public functions (DESIGN.md §5): thin wrappers over the one pass (:mod:`ganmetrics.evaluate`,
:mod:`ganmetrics.stream`); the metrics' math lives in :mod:`ganmetrics.metrics`."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from .devices import resolve_device
from .distributed import current_shard, failing_together
from .errors import InputError
from .evaluate import evaluate, run
from .features import resolve_extractor
from .inputs import is_statistics, load_statistics
from .metrics.base import FEATURES, KEPT_FEATURES, registry
from .metrics.inception_score import TORCH_FIDELITY_SHUFFLE_SEED
from .metrics.ms_ssim import MSSSIMDiversity
from .metrics.swd import DEFAULT_MAX_MEMORY_BYTES, SWDDescriptors, swd_across_ranks
from .preprocess import DEFAULT_PROTOCOL
from .sources import ImageSource, is_generator, open_source
from .stats import FeatureStats
from .stream import bar_label, stream_set


def compute_stats(source, *, protocol: str = DEFAULT_PROTOCOL, num_samples: int | None = None,
                  keep_features: bool = False, batch_size: int = 64, device: torch.device | str | None = None,
                  seed: int = 0, weights: str | None = None, value_range: tuple[float, float] = (-1.0, 1.0),
                  progress: bool = True, num_workers: int | None = None, z_dim: int | None = None,
                  feature_extractor: Any = None, distributed: bool | None = None,
                  role: str = "features") -> FeatureStats:
    """Mean and covariance (float64) of the features of ``source``: Inception pool3 by default, or those of
    ``feature_extractor`` (:func:`ganmetrics.evaluate`), whose name and weights the statistics record.

    ``source`` is anything :func:`ganmetrics.sources.open_source` accepts (folder, zip, array,
    tensor, DataLoader, generator with ``num_samples``).  ``keep_features=True`` also keeps
    the float32 features (for KID, precision/recall ...).  Under torchrun the images are sharded by rank and every
    rank returns the statistics of the whole set (:mod:`ganmetrics.distributed`; ``distributed=False``: this
    process alone).  ``role`` names the set on the progress bar (``"gen"``, ``"real"``).
    """
    shard = current_shard(distributed)
    with failing_together(shard):
        extractor = resolve_extractor(feature_extractor, protocol=protocol, device=device, weights=weights,
                                      progress=progress and shard.is_main)
        images = open_source(source, num_samples=num_samples, batch_size=batch_size, seed=seed,
                             value_range=value_range, device=extractor.device, num_workers=num_workers, z_dim=z_dim,
                             shard=shard)
    needs = {FEATURES, KEPT_FEATURES} if keep_features else {FEATURES}
    return stream_set(images, role=role, needs=needs, extractor=extractor,
                      label=bar_label(role, source, extractor.protocol), progress=progress).stats


def as_stats(source, *, keep_features: bool = False, feature_extractor: Any = None, **kwargs: Any) -> FeatureStats:
    """Statistics of ``source``: a FeatureStats, a stats file, a bundled reference name, or images (computed with
    :func:`compute_stats` and ``kwargs``)."""
    if is_statistics(source):
        return load_statistics(source)
    return compute_stats(source, keep_features=keep_features, feature_extractor=feature_extractor, **kwargs)


def fid(gen, real, *, protocol: str = DEFAULT_PROTOCOL, num_samples: int | None = None, batch_size: int = 64,
        device=None, seed: int = 0, weights: str | None = None, value_range: tuple[float, float] = (-1.0, 1.0),
        progress: bool = True, strict: bool = True, num_workers: int | None = None,
        z_dim: int | None = None, distributed: bool | None = None, feature_extractor: Any = None) -> float:
    """FID between ``gen`` and ``real`` (Heusel et al. 2017; :mod:`ganmetrics.metrics.fid`).

    ``gen``: a generator (``nn.Module`` or callable, needs ``num_samples``), folder, zip,
    npz/npy, array, tensor or DataLoader.  ``real``: any of those, or a statistics file, a
    :class:`FeatureStats`, or the name of a bundled reference set.  Statistics of different
    protocols, weights or feature extractors are refused unless ``strict=False``.  Under torchrun the images are
    sharded by rank and every rank returns the same FID (``distributed=False``: this process alone).
    ``feature_extractor``: Inception pool3 by default; ``"dinov2-vit-l-14"`` gives FD_DINOv2, a module or callable
    gives the Fréchet distance in its feature space (:func:`ganmetrics.evaluate`).
    """
    return evaluate(gen, real, ("fid",), protocol=protocol, num_samples=num_samples, batch_size=batch_size,
                    device=device, seed=seed, weights=weights, value_range=value_range, progress=progress,
                    strict=strict, num_workers=num_workers, z_dim=z_dim, distributed=distributed,
                    feature_extractor=feature_extractor)["fid"]


def kid(gen, real, *, subsets: int = 100, subset_size: int = 1000, degree: int = 3, gamma: float | None = None,
        coef0: float = 1.0, seed: int = 0, **kwargs: Any) -> tuple[float, float | None]:
    """KID ``(mean, std)`` between ``gen`` and ``real`` (:mod:`ganmetrics.metrics.kid`).

    ``real`` may also be a statistics file or :class:`~ganmetrics.FeatureStats` saved with
    ``keep_features=True``.  ``seed`` seeds the subset draws (and a generator's latents).  Other
    keyword arguments are those of :func:`ganmetrics.evaluate`.
    """
    result = evaluate(gen, real, metrics=("kid",), seed=seed, kid_subsets=subsets, kid_subset_size=subset_size,
                      kid_degree=degree, kid_gamma=gamma, kid_coef0=coef0, **kwargs)
    return result["kid"]["mean"], result["kid"]["std"]


def inception_score(gen, *, splits: int = 10, num_samples: int | None = None, shuffle: bool = True,
                    shuffle_seed: int = TORCH_FIDELITY_SHUFFLE_SEED, **kwargs: Any) -> tuple[float, float]:
    """Inception Score ``(mean, std)`` of ``gen`` (:mod:`ganmetrics.metrics.inception_score`).

    Needs Inception weights with the classifier layer (pytorch-fid's
    ``pt_inception-2015-12-05-6726825d.pth`` or NVIDIA's TorchScript); feature-only weights raise
    :class:`~ganmetrics.errors.WeightsError` saying how to get them.  Other keyword arguments
    (``batch_size``, ``device``, ``seed``, ``weights``, ``value_range``, ``progress``, ...) are those of
    :func:`ganmetrics.evaluate`.
    """
    result = evaluate(gen, None, metrics=("is",), num_samples=num_samples, is_splits=splits, is_shuffle=shuffle,
                      is_shuffle_seed=shuffle_seed, **kwargs)
    return result["is"]["mean"], result["is"]["std"]


def precision_recall(gen, real, *, k: int = 3, **kwargs: Any) -> tuple[float, float]:
    """Improved precision and recall ``(precision, recall)`` of ``gen`` against ``real`` (Kynkäänniemi et al. 2019;
    equal to torch-fidelity 0.4's ``prc``; :mod:`ganmetrics.metrics.precision_recall`).  ``real`` may be
    statistics saved with ``keep_features=True``.  Other keyword arguments: those of :func:`ganmetrics.evaluate`."""
    result = evaluate(gen, real, metrics=("precision", "recall"), pr_k=k, **kwargs)
    return result["precision"], result["recall"]


def density_coverage(gen, real, *, k: int = 5, **kwargs: Any) -> tuple[float, float]:
    """Density and coverage ``(density, coverage)`` of ``gen`` against ``real`` (Naeem et al. 2020; equal to
    ``prdc`` 0.2; :mod:`ganmetrics.metrics.density_coverage`).  ``real`` may be statistics saved with
    ``keep_features=True``.  Other keyword arguments: those of :func:`ganmetrics.evaluate`."""
    result = evaluate(gen, real, metrics=("density", "coverage"), dc_k=k, **kwargs)
    return result["density"], result["coverage"]


def fid_infinity(gen, real, *, points: int = 15, smallest: int | None = None, seed: int = 0,
                 return_points: bool = False, **kwargs: Any) -> float | tuple[float, dict[int, float]]:
    """FD∞ of ``gen`` against ``real`` (Chong & Forsyth 2020; :mod:`ganmetrics.metrics.fid_infinity`): the intercept
    at 1/N = 0 of the least-squares line through the FIDs of ``points`` random subsets of ``gen`` (sizes evenly
    spaced in 1/N from ``smallest`` — default 5,000, or half of a set under 10,000 images — to N; drawn with
    ``seed``).  ``return_points``: also the fitted points ``{N: FID_N}``.  Other keyword arguments: those of
    :func:`ganmetrics.evaluate`."""
    value = evaluate(gen, real, metrics=("fid_inf",), fid_inf_points=points, fid_inf_smallest=smallest, seed=seed,
                     **kwargs)["fid_inf"]
    if return_points:
        return value["fid_inf"], {int(n): fid for n, fid in value["fid_n"].items()}
    return value["fid_inf"]


def compare(gen_a, gen_b, real, *, metric: str = "fid", bootstrap: int = 100, ci: float = 0.95, seed: int = 0,
            progress: bool = True, **kwargs: Any) -> dict:
    """Is ``gen_a`` better than ``gen_b``?  A paired bootstrap of ``metric(A) − metric(B)`` against the same
    resampled ``real`` (:func:`ganmetrics.bootstrap.compare_sets`): ``{"a", "b", "difference", "low", "high",
    "std", "p_value", "verdict", ...}``.  ``metric``: one of pool3 features comparing two sets (fid, fid_inf, kid,
    precision, recall, density, coverage).  One Inception pass per set (the reference's is shared).  Other keyword
    arguments: those of :func:`ganmetrics.evaluate` (``num_samples``, ``batch_size``, the metric's options ...)."""
    from .bootstrap import bootstrappable, check_bootstrap, compare_sets
    from .metrics.base import Context, option_fields, parse_metrics, split_options

    (name,) = parse_metrics([metric])
    if not bootstrappable(name) or registry()[name].sides != 2:
        raise InputError(f"compare: {name} is not a metric of pool3 features comparing two sets; choose one of "
                         + ", ".join(m for m, x in registry().items() if bootstrappable(m) and x.sides == 2))
    check_bootstrap(bootstrap, ci)
    options = {k: v for k, v in kwargs.items() if k in option_fields()}
    if kwargs.get("feature_extractor") is not None:  # a named or wrapped extractor: loaded once for both runs
        kwargs["feature_extractor"] = resolve_extractor(
            kwargs["feature_extractor"], protocol=kwargs.get("protocol", DEFAULT_PROTOCOL),
            device=kwargs.get("device"), weights=kwargs.get("weights"), progress=progress)
    _, a = run(gen_a, real, (name,), seed=seed, progress=progress, keep_gen_features=True, keep_real_features=True,
               **kwargs)
    _, b = run(gen_b, a["real"].stats, (name,), seed=seed, progress=progress, keep_gen_features=True, **kwargs)
    ctx = Context(seed=seed, device=resolve_device(kwargs.get("device")), strict=kwargs.get("strict", True))
    return compare_sets(name, a["gen"], b["gen"], a["real"], split_options((name,), options)[name], ctx,
                        replicates=bootstrap, confidence=ci, progress=progress)


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _open_sets(inputs: dict[str, Any], num_images: int, **kwargs: Any) -> dict[str, ImageSource]:
    """Both sets as sources of their first ``num_images`` images (this rank's share of them, with a ``shard``);
    an error when a set has fewer."""
    sources = {name: open_source(source, num_samples=num_images if is_generator(source) else None, **kwargs)
               for name, source in inputs.items()}
    counts = {name: source.total_images for name, source in sources.items()}  # None: unknown until read
    if any(count is not None and count < num_images for count in counts.values()):
        text = ", ".join(f"{name} has {'an unknown number of' if count is None else count} images"
                         for name, count in counts.items())
        fewest = min(count for count in counts.values() if count is not None)
        raise InputError(f"SWD compares equal descriptor counts and needs num_images={num_images} images in each "
                         f"set, but {text}; lower num_images (at most {fewest})")
    for name, count in counts.items():
        if count is not None and count > num_images:  # take the first num_images (no decoding beyond them)
            sources[name] = open_source(inputs[name], num_samples=num_images, **kwargs)
    return sources


def swd(gen, real, *, num_images: int = 8192, seed: int = 0, batch_size: int = 64, device=None,
        value_range: tuple[float, float] = (-1.0, 1.0), progress: bool = True, num_workers: int | None = None,
        z_dim: int | None = None, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
        distributed: bool | None = None) -> dict:
    """Progressive GAN's sliced Wasserstein distance between ``gen`` and ``real`` (:mod:`ganmetrics.metrics.swd`).

    Returns ``{"levels": {resolution: SWD × 10³, ...} finest first, "avg": their mean}``.
    ``gen`` / ``real``: anything :func:`~ganmetrics.sources.open_source` accepts (a generator
    draws ``num_images`` samples with ``seed``); the first ``num_images`` images of each set
    are used and both must have that many.  Images must be square with a power-of-two side
    ≥ 16, the same in both sets.  ``max_memory_bytes`` bounds each set's in-RAM descriptors
    (beyond it they go to temporary files; the value does not change).  Under torchrun each rank
    takes its share of the images (patch centres keyed by the image's index in the whole set), rank 0
    gathers the descriptors and computes, and every rank returns its result (``distributed=False``:
    this process alone).
    """
    num_images = _positive(num_images, "num_images")
    device = resolve_device(device)
    shard = current_shard(distributed)
    settings = dict(seed=seed, device=device, max_memory_bytes=max_memory_bytes, capacity=shard.count(num_images))
    with SWDDescriptors(stream="fake", description="gen images", **settings) as fake, \
            SWDDescriptors(stream="real", description="real images", **settings) as reals:
        with failing_together(shard):
            sources = _open_sets({"gen": gen, "real": real}, num_images, batch_size=batch_size, seed=seed,
                                 value_range=value_range, device=device, num_workers=num_workers, z_dim=z_dim,
                                 shard=shard)
        for role, descriptors in (("gen", fake), ("real", reals)):
            counted = stream_set(sources[role], role=role, consumers={"swd": descriptors},
                                 label=f"SWD {descriptors.description}", progress=progress)
            if counted.num_images < num_images:
                raise InputError(f"{descriptors.description} ({sources[role].description}) has only "
                                 f"{counted.num_images} images but SWD was asked for num_images={num_images} per "
                                 "set; lower num_images")
        return swd_across_ranks(fake, reals, shard, seed=seed, device=device)


def ms_ssim_diversity(gen, *, num_pairs: int = 10000, seed: int = 0, batch_size: int = 64, device=None,
                      value_range: tuple[float, float] = (-1.0, 1.0), progress: bool = True,
                      num_workers: int | None = None, z_dim: int | None = None,
                      distributed: bool | None = None) -> float:
    """Mean MS-SSIM over ``num_pairs`` pairs ``(image 2k, image 2k+1)`` of one set (Karras et al. 2018;
    :mod:`ganmetrics.metrics.ms_ssim`).

    ``gen``: anything :func:`ganmetrics.sources.open_source` accepts; a generator draws
    ``2·num_pairs`` images from ``seed``.  A finite set with fewer images uses all its complete pairs
    (with a warning); fewer than 2 images is an error.  Lower means more diverse (PGGAN Table 1:
    ~0.28 CelebA, ~0.06 LSUN Bedroom).  Under torchrun the pairs are sharded by rank and every rank
    returns the same value, equal to the single-process one (``distributed=False``: this process alone).
    """
    if isinstance(num_pairs, bool) or not isinstance(num_pairs, int) or num_pairs < 1:
        raise InputError(f"num_pairs must be an integer >= 1, got {num_pairs!r}")
    target = resolve_device(device)
    shard = current_shard(distributed)
    local_wanted = shard.count(2 * num_pairs)  # complete pairs: units of two images go to one rank
    with failing_together(shard):
        images = open_source(gen, num_samples=2 * num_pairs if is_generator(gen) else None, batch_size=batch_size,
                             seed=seed, value_range=value_range, device=target, num_workers=num_workers, z_dim=z_dim,
                             shard=shard)
    accumulator = MSSSIMDiversity.for_shard(shard, max_pairs=num_pairs, device=target)
    total = local_wanted if images.num_images is None else min(images.num_images, local_wanted)
    accumulator = stream_set(images, role="gen", consumers={"ms_ssim": accumulator}, label="ms-ssim",
                             progress=progress, total=total).accumulators["ms_ssim"]
    if 0 < accumulator.num_pairs < num_pairs and shard.is_main:
        unpaired = accumulator.num_images - 2 * accumulator.num_pairs
        warnings.warn(
            f"ms_ssim_diversity: {images.description} has only {accumulator.num_images} images, so "
            f"{accumulator.num_pairs} pairs are used instead of num_pairs={num_pairs}"
            + (f" ({unpaired} image left unpaired)" if unpaired else ""),
            UserWarning, stacklevel=2,
        )
    return accumulator.compute()


__all__ = ["as_stats", "compare", "compute_stats", "density_coverage", "fid", "fid_infinity", "inception_score", "kid",
           "ms_ssim_diversity", "precision_recall", "swd"]
