"""One pass for all metrics: each image is decoded once and goes through Inception once.

For each set, :func:`evaluate` streams the uint8 batches of its source a single time and hands
every batch to the consumers the requested metrics need:

* Inception pool3 features → :class:`FeatureStats` (FID; the features themselves are kept only
  when KID is asked for), and the classifier logits (Inception Score) from the same forward;
* the uint8 batch itself → SWD's Laplacian-pyramid descriptors and MS-SSIM's pair accumulator.

The reference side may be statistics instead of images (a stats file, a bundled reference name,
a :class:`FeatureStats`): FID works from them, KID when they were saved with
``keep_features=True``, SWD needs images.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from .distributed import Shard, all_sum_int, current_shard, failing_together, gather_rows
from .errors import InputError, spelled
from .features import FeatureExtractor, bar_label, check_finite_features, progress_bar, resolve_device
from .inception import FEATURE_DIM, NUM_CLASSES
from .metrics.fid import as_stats, fid_from_stats, needs_images
from .metrics.inception_score import TORCH_FIDELITY_SHUFFLE_SEED, inception_score_from_logits
from .metrics.kid import kid_from_features
from .metrics.ms_ssim import MSSSIMDiversity
from .metrics.swd import SWDDescriptors, swd_across_ranks
from .preprocess import DEFAULT_PROTOCOL
from .sources import ImageSource, open_source
from .stats import FeatureStats, check_compatible

METRICS = ("fid", "kid", "is", "swd", "ms_ssim")
_ALIASES = {"isc": "is", "inception_score": "is", "msssim": "ms_ssim", "ms-ssim": "ms_ssim"}
GEN_ONLY = frozenset({"is", "ms_ssim"})
FEATURE_METRICS = frozenset({"fid", "kid", "is"})


def parse_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise ``"fid,kid"`` or ``["fid", "KID"]`` to known metric names, in canonical order."""
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    chosen = set()
    for name in names:
        key = _ALIASES.get(name.strip().lower(), name.strip().lower())
        if key not in METRICS:
            raise InputError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
        chosen.add(key)
    if not chosen:
        raise InputError(f"no metric requested; choose from {', '.join(METRICS)}")
    return tuple(m for m in METRICS if m in chosen)


@dataclass
class SetPass:
    """What one pass over one image set collects for the requested metrics."""

    stats: FeatureStats | None = None
    logits: list[torch.Tensor] = field(default_factory=list)
    swd: object | None = None  # metrics.swd.SWDDescriptors
    ms_ssim: object | None = None  # metrics.ms_ssim.MSSSIMDiversity
    num_images: int = 0


def run_pass(images: ImageSource, *, label: str, want_stats: bool, keep_features: bool, want_logits: bool,
             swd, ms_ssim, extractor: FeatureExtractor | None, swd_limit: int | None = None, progress: bool) -> SetPass:
    """Stream this rank's share of the opened ``images`` once, feeding every requested consumer (SWD: the images
    whose index in the whole set is below ``swd_limit``), then combine the ranks' results
    (:func:`merged_across_ranks`).  ``label`` names the progress bar."""
    result = SetPass(swd=swd, ms_ssim=ms_ssim)
    shard = images.shard
    with failing_together(shard):
        if want_stats:
            result.stats = FeatureStats(FEATURE_DIM, keep_features=keep_features, meta=extractor.stats_meta(images.description))
        with progress_bar(images, desc=label, enabled=progress) as bar:
            for batch in images:
                if want_stats:
                    features = check_finite_features(extractor(batch), images, result.num_images)
                    result.stats.update(features)
                    if want_logits:
                        with torch.inference_mode():
                            result.logits.append(extractor.model.logits_unbiased(features).cpu())
                if swd is not None or ms_ssim is not None:
                    if not isinstance(batch, torch.Tensor):
                        raise InputError(f"{images.description}: SWD and MS-SSIM need images of one size, "
                                         "but this set mixes sizes")
                    if swd is not None:
                        indices = shard.global_index(np.arange(result.num_images, result.num_images + len(batch)))
                        keep = len(batch) if swd_limit is None else int(np.count_nonzero(indices < swd_limit))
                        if keep:
                            swd.update(batch[:keep], indices[:keep])
                    if ms_ssim is not None:
                        ms_ssim.update(batch)
                result.num_images += len(batch)
                bar.update(len(batch))
    return merged_across_ranks(result, shard, with_logits=want_logits)


def merged_across_ranks(result: SetPass, shard: Shard, *, with_logits: bool) -> SetPass:
    """One set's pass over the whole set from every rank's share (collective): statistics merged, logits and
    MS-SSIM values gathered, image counts summed.  SWD descriptors stay with each rank until
    :func:`~ganmetrics.metrics.swd.swd_across_ranks`."""
    if not shard.active:
        return result
    logits = []
    if with_logits:
        local = torch.cat(result.logits) if result.logits else torch.zeros(0, NUM_CLASSES, dtype=torch.float32)
        logits = [gather_rows(local, shard)]
    return SetPass(stats=result.stats.merged_across_ranks(shard) if result.stats is not None else None,
                   logits=logits, swd=result.swd,
                   ms_ssim=result.ms_ssim.merged_across_ranks(shard) if result.ms_ssim is not None else None,
                   num_images=all_sum_int(result.num_images, shard))


def evaluate(gen, real=None, metrics: str | Iterable[str] = METRICS, *, protocol: str = DEFAULT_PROTOCOL,
             num_samples: int | None = None, batch_size: int = 64, device=None, seed: int = 0,
             weights: str | None = None, value_range: tuple[float, float] = (-1.0, 1.0), progress: bool = True,
             num_workers: int | None = None, z_dim: int | None = None, strict: bool = True,
             kid_subsets: int = 100, kid_subset_size: int = 1000, kid_degree: int = 3, kid_gamma: float | None = None,
             kid_coef0: float = 1.0, is_splits: int = 10, is_shuffle: bool = True,
             is_shuffle_seed: int = TORCH_FIDELITY_SHUFFLE_SEED, ms_ssim_num_pairs: int = 10000,
             swd_num_images: int | None = None, distributed: bool | None = None,
             extractor: FeatureExtractor | None = None) -> dict:
    """Several metrics of ``gen`` against ``real`` in one pass over each set.

    Returns a dict with the requested keys: ``"fid"`` (float), ``"kid"`` and ``"is"``
    (``{"mean", "std"}``), ``"swd"`` (``{"levels": {resolution: value}, "avg"}``, ×1e3),
    ``"ms_ssim"`` (mean MS-SSIM over pairs of ``gen``), plus ``"protocol"`` and
    ``"num_samples"`` ([gen, real]).  ``gen`` and ``real`` accept what :func:`ganmetrics.fid`
    accepts; ``real`` may be ``None`` when only ``is`` / ``ms_ssim`` are asked for.
    ``seed`` seeds a generator's latents, the KID subsets and the SWD draws.  SWD compares the
    first ``n = min(len(gen), swd_num_images)`` images of each set, so ``real`` needs at least ``n``.

    Under torchrun each rank takes its share of both sets (:mod:`ganmetrics.distributed`) and every
    rank returns the same results, those of a single process (``distributed=False``: this process alone).
    ``extractor``: an already loaded :class:`FeatureExtractor` to use (its protocol and weights win over
    ``protocol`` / ``weights``).
    """
    chosen = parse_metrics(metrics)
    device = resolve_device(device)
    shard = current_shard(distributed)
    needs_real = [m for m in chosen if m not in GEN_ONLY]
    if needs_real and real is None:
        raise InputError(f"{', '.join(needs_real)} compare two sets: "
                         + spelled("pass real=", "give B, the reference set"))
    real_is_images = real is not None and needs_images(real)
    if "swd" in chosen and not real_is_images:
        raise InputError("SWD compares images, but the reference set is statistics; pass images (a folder, zip, "
                         f"array ...) as {spelled('real', 'B')}")
    if extractor is not None:
        protocol = extractor.protocol
    elif FEATURE_METRICS & set(chosen) and (needs_images(gen) or (real_is_images and {"fid", "kid"} & set(chosen))):
        with failing_together(shard):
            extractor = FeatureExtractor(protocol=protocol, device=device, weights=weights,
                                         progress=progress and shard.is_main)
    opening = dict(batch_size=batch_size, value_range=value_range, device=device, num_workers=num_workers,
                   z_dim=z_dim, seed=seed, shard=shard)
    with failing_together(shard):  # both sets opened and checked before either is read
        gen_images = open_source(gen, num_samples=num_samples, **opening)
        real_images = open_source(real, **opening) if needs_real and real_is_images else None
    if "swd" in chosen and gen_images.total_images is not None and real_images.total_images is not None:
        wanted = min(gen_images.total_images, swd_num_images or gen_images.total_images)
        if real_images.total_images < wanted:
            raise InputError(f"SWD compares equal-sized sets: {spelled('gen', 'A')} has {wanted} images but "
                             f"{spelled('real', 'B')} only {real_images.total_images}; pass "
                             f"{spelled('swd_num_images', '--swd-images')} <= {real_images.total_images}")
    protocol_of = extractor.protocol if extractor is not None else None
    common = dict(progress=progress, extractor=extractor)
    gen_pass = run_pass(
        gen_images, label=bar_label("gen", gen, protocol_of), want_stats=bool(FEATURE_METRICS & set(chosen)),
        keep_features="kid" in chosen,
        want_logits="is" in chosen, swd=SWDDescriptors(seed=seed, stream="fake", device=device,
                                                       description=spelled("gen images", "A's images"))
        if "swd" in chosen
        else None, ms_ssim=MSSSIMDiversity.for_shard(shard, max_pairs=ms_ssim_num_pairs) if "ms_ssim" in chosen else None,
        swd_limit=swd_num_images, **common)
    gen_swd_images = all_sum_int(gen_pass.swd.num_images, shard) if "swd" in chosen else None
    result: dict = {"protocol": protocol}
    real_stats, real_swd = None, None
    if needs_real:
        if real_is_images:
            real_pass = run_pass(
                real_images, label=bar_label("real", real, protocol_of), want_stats=bool({"fid", "kid"} & set(chosen)),
                keep_features="kid" in chosen,
                want_logits=False, swd=SWDDescriptors(seed=seed, stream="real", device=device,
                                                      description=spelled("real images", "B's images"))
                if "swd" in chosen else None, ms_ssim=None, swd_limit=gen_swd_images, **common)
            real_stats, real_swd = real_pass.stats, real_pass.swd
            real_count = real_pass.num_images
        else:
            real_stats = as_stats(real)
            real_count = real_stats.num_samples
        result["num_samples"] = [gen_pass.num_images, real_count]
    else:
        result["num_samples"] = [gen_pass.num_images]

    if "fid" in chosen:
        result["fid"] = fid_from_stats(gen_pass.stats, real_stats, strict=strict)
    if "kid" in chosen:
        check_compatible(gen_pass.stats, real_stats, strict=strict)
        if real_stats.features is None:
            raise InputError("KID needs the reference set's features, but these statistics were saved without "
                             f"them; recompute them with {spelled('keep_features=True', 'ganmetrics stats --keep-features')}"
                             " or give images")
        mean, std = kid_from_features(gen_pass.stats.features, real_stats.features, subsets=kid_subsets,
                                      subset_size=kid_subset_size, degree=kid_degree, gamma=kid_gamma,
                                      coef0=kid_coef0, seed=seed, device=device)
        result["kid"] = {"mean": mean, "std": std}
    if "is" in chosen:
        logits = torch.cat(gen_pass.logits) if gen_pass.logits else torch.zeros(0, NUM_CLASSES)
        mean, std = inception_score_from_logits(logits, splits=is_splits, shuffle=is_shuffle,
                                                shuffle_seed=is_shuffle_seed)
        result["is"] = {"mean": mean, "std": std}
    if "swd" in chosen:
        real_swd_images = all_sum_int(real_swd.num_images, shard)
        if real_swd_images < gen_swd_images:
            raise InputError(f"SWD compares equal-sized sets: {spelled('gen', 'A')} has {gen_swd_images} images but "
                             f"{spelled('real', 'B')} only {real_swd_images}; pass "
                             f"{spelled('swd_num_images', '--swd-images')} <= {real_swd_images}")
        result["swd"] = swd_across_ranks(gen_pass.swd, real_swd, shard, seed=seed, device=device)
    if "ms_ssim" in chosen:
        result["ms_ssim"] = gen_pass.ms_ssim.compute()
    return result
