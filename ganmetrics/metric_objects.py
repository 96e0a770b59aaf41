"""Metric objects for training loops, in the style of torchmetrics: ``update(batch)``, ``compute()``, ``reset()``.

    fid = ganmetrics.FID(real="shapes32")          # reference statistics loaded (or computed) once
    for z in latents:
        fid.update(G(z))                           # float in value_range, or uint8; N×C×H×W
    value = fid.compute()                          # the same number on every rank under DDP
    fid.reset()                                    # fake side cleared; the reference is kept

Each object owns one Inception network.  ``update`` takes this process's batches; under DDP
(an initialised ``torch.distributed`` group, e.g. ``torchrun``) every rank updates with its own
batches and ``compute()`` — a collective, called by every rank — combines them: statistics by
Chan et al.'s update in rank order (identical on every rank), features (KID) and logits (IS)
gathered rank after rank.  The values equal those of :func:`ganmetrics.fid`, :func:`ganmetrics.kid`
and :func:`ganmetrics.inception_score` on the same images, since the same functions compute them
(``tests/test_metric_objects.py``).

The reference side: ``real=`` a bundled name, a statistics file, a :class:`FeatureStats` or images
(computed once, sharded under DDP), kept across :meth:`reset`; or ``real=None`` and
``update(batch, real=True)``, which ``reset()`` clears only with ``reset_real=True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .api import as_stats
from .distributed import Shard, all_gather_concat, current_shard
from .errors import InputError
from .features import Extractor, check_finite_features, resolve_extractor
from .inception import NUM_CLASSES
from .metrics.fid import fid_from_stats
from .metrics.inception_score import TORCH_FIDELITY_SHUFFLE_SEED, inception_score_from_logits
from .metrics.kid import kid_from_features
from .preprocess import DEFAULT_PROTOCOL
from .sources import same_size_runs, to_uint8_batch
from .stats import FeatureStats, check_compatible


def batch_features(extractor: Extractor, images, value_range: Sequence[float], *, what: str,
                   warn: bool) -> torch.Tensor:
    """Features ``[N, d]`` of one update's batch, whatever its form (converted and checked as a source's;
    ``warn``: the [0, 1]-floats warning), each same-size run through the network."""
    batch = to_uint8_batch(images, value_range, what=what, warn=warn)
    return check_finite_features(torch.cat([extractor(run) for run in same_size_runs(batch)]), what)


class _InceptionMetric:
    """What the objects share: the network, batch conversion, this rank's shard and the fake-side statistics."""

    #: whether the fake side keeps its features (KID)
    keeps_features = False

    def __init__(self, *, protocol: str = DEFAULT_PROTOCOL, device: torch.device | str | None = None,
                 weights: str | None = None, value_range: Sequence[float] = (-1.0, 1.0),
                 distributed: bool | None = None, progress: bool = False, feature_extractor=None) -> None:
        self.shard: Shard = current_shard(distributed)
        self.extractor = resolve_extractor(feature_extractor, protocol=protocol, device=device, weights=weights,
                                           progress=progress and self.shard.is_main)
        self.value_range = tuple(value_range)
        self.protocol = self.extractor.protocol
        self._fake = self._new_stats("updates (fake)")
        self._first_update = True  # the [0, 1]-floats warning is given on the first batch, as a source gives it

    def _new_stats(self, source: str) -> FeatureStats:
        meta = self.extractor.stats_meta(f"{type(self).__name__} {source}")
        return FeatureStats(self.extractor.feature_dim, keep_features=self.keeps_features, meta=meta)

    def _features(self, images) -> torch.Tensor:
        """Features of one batch (tensor N×C×H×W uint8 or float in ``value_range``, array N×H×W×C, list)."""
        features = batch_features(self.extractor, images, self.value_range, what=f"{type(self).__name__}.update() "
                                  "batch", warn=self._first_update)
        self._first_update = False
        return features

    @property
    def num_samples(self) -> int:
        """Fake images this rank has seen since the last reset."""
        return self._fake.num_samples or 0

    def _merged_fake(self) -> FeatureStats:
        merged = self._fake.merged_across_ranks(self.shard, set_order=False)
        if not merged.num_samples:
            raise InputError(f"{type(self).__name__}.compute() before any update(); feed generated images first")
        return merged


class FID(_InceptionMetric):
    """Fréchet Inception Distance of the images given to :meth:`update` against ``real`` (module docstring)."""

    def __init__(self, real=None, *, protocol: str = DEFAULT_PROTOCOL, device: torch.device | str | None = None,
                 weights: str | None = None, value_range: Sequence[float] = (-1.0, 1.0), strict: bool = True,
                 reset_real: bool = False, distributed: bool | None = None, progress: bool = False,
                 feature_extractor=None, **real_kwargs) -> None:
        super().__init__(protocol=protocol, device=device, weights=weights, value_range=value_range,
                         distributed=distributed, progress=progress, feature_extractor=feature_extractor)
        self.strict, self.reset_real = strict, reset_real
        self._real_fixed = None if real is None else as_stats(
            real, feature_extractor=self.extractor, protocol=self.protocol, progress=progress,
            distributed=self.shard.active, **real_kwargs)
        self._real = self._new_stats("updates (real)") if real is None else None

    def update(self, images, *, real: bool = False) -> None:
        """Add a batch of generated images (or, with ``real=True`` and no ``real=`` given, reference images)."""
        if real and self._real is None:
            raise InputError("this FID was given its reference set (real=...); update(..., real=True) is only for "
                             "a FID built with real=None")
        (self._real if real else self._fake).update(self._features(images))

    def compute(self) -> float:
        """FID of everything updated since the last reset, on every rank (a collective under DDP)."""
        fake = self._merged_fake()
        real = self._real_fixed if self._real is None else self._real.merged_across_ranks(self.shard, set_order=False)
        if not real.num_samples and self._real is not None:
            raise InputError("FID.compute(): no reference images yet; call update(batch, real=True) or pass real=")
        return fid_from_stats(fake, real, strict=self.strict)

    def reset(self) -> None:
        """Forget the generated images; the reference statistics stay unless ``reset_real=True``."""
        self._fake = self._new_stats("updates (fake)")
        if self._real is not None and self.reset_real:
            self._real = self._new_stats("updates (real)")


class KID(_InceptionMetric):
    """Kernel Inception Distance ``(mean, std)`` of the updated images against ``real``, as :func:`ganmetrics.kid`.

    ``real``: images (their features computed once) or statistics saved with ``keep_features=True``.
    """

    keeps_features = True

    def __init__(self, real, *, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                 gamma: float | None = None, coef0: float = 1.0, seed: int = 0, protocol: str = DEFAULT_PROTOCOL,
                 device: torch.device | str | None = None, weights: str | None = None,
                 value_range: Sequence[float] = (-1.0, 1.0), strict: bool = True, distributed: bool | None = None,
                 progress: bool = False, feature_extractor=None, **real_kwargs) -> None:
        super().__init__(protocol=protocol, device=device, weights=weights, value_range=value_range,
                         distributed=distributed, progress=progress, feature_extractor=feature_extractor)
        self.kernel = dict(subsets=subsets, subset_size=subset_size, degree=degree, gamma=gamma, coef0=coef0,
                           seed=seed)
        self.strict = strict
        self._real_fixed = as_stats(real, keep_features=True, feature_extractor=self.extractor, protocol=self.protocol,
                                    progress=progress, distributed=self.shard.active, **real_kwargs)
        if self._real_fixed.features is None:
            raise InputError("KID needs the reference set's features, but these statistics were saved without them; "
                             "recompute with keep_features=True (ganmetrics stats --keep-features) or pass images")

    def update(self, images) -> None:
        """Add a batch of generated images."""
        self._fake.update(self._features(images))

    def compute(self) -> tuple[float, float]:
        """KID ``(mean, std)`` of everything updated since the last reset (a collective under DDP)."""
        fake = self._merged_fake()
        check_compatible(fake, self._real_fixed, strict=self.strict)
        return kid_from_features(fake.features, self._real_fixed.features, device=self.extractor.device,
                                 **self.kernel)

    def reset(self) -> None:
        """Forget the generated images (the reference features stay)."""
        self._fake = self._new_stats("updates (fake)")


class InceptionScore(_InceptionMetric):
    """Inception Score ``(mean, std)`` of the updated images, as :func:`ganmetrics.inception_score`.

    Needs Inception weights with the classifier layer (an error at construction says how to get them).
    """

    def __init__(self, *, splits: int = 10, shuffle: bool = True, shuffle_seed: int = TORCH_FIDELITY_SHUFFLE_SEED,
                 protocol: str = DEFAULT_PROTOCOL, device: torch.device | str | None = None, weights: str | None = None,
                 value_range: Sequence[float] = (-1.0, 1.0), distributed: bool | None = None) -> None:
        super().__init__(protocol=protocol, device=device, weights=weights, value_range=value_range,
                         distributed=distributed)
        self.extractor.logits_unbiased(torch.zeros(1, self.extractor.feature_dim, device=self.extractor.device))
        self.splits, self.shuffle, self.shuffle_seed = splits, shuffle, shuffle_seed
        self._logits: list[torch.Tensor] = []

    def update(self, images) -> None:
        """Add a batch of generated images."""
        features = self._features(images)
        self._fake.update(features)
        self._logits.append(self.extractor.logits_unbiased(features).cpu())

    def compute(self) -> tuple[float, float]:
        """Inception Score ``(mean, std)`` of everything updated since the last reset (a collective under DDP)."""
        local = torch.cat(self._logits) if self._logits else torch.zeros(0, NUM_CLASSES)
        logits = all_gather_concat(local, self.shard)
        if not len(logits):
            raise InputError("InceptionScore.compute() before any update(); feed generated images first")
        return inception_score_from_logits(logits, splits=self.splits, shuffle=self.shuffle,
                                           shuffle_seed=self.shuffle_seed)

    def reset(self) -> None:
        """Forget the generated images."""
        self._fake = self._new_stats("updates (fake)")
        self._logits = []


__all__ = ["FID", "KID", "InceptionScore"]
