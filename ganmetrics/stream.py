"""The one pass over an image set: source → uint8 batches → consumers → :class:`~ganmetrics.metrics.base.SetData`.

:func:`stream_set` reads this rank's share of an opened source once and hands each batch to what the chosen
metrics need — the Inception network (pool3 statistics, the kept features, the logits from the same forward)
and each metric's own accumulator of the uint8 images — with one progress bar, every rank failing together, and
the ranks' results merged at the end (statistics in set order, features and logits gathered in set order,
accumulators merged by their ``merged(shard)``).  Every metric, statistic and report reads its images here.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .distributed import all_sum_int, failing_together, gather_rows
from .features import Extractor, check_finite_features
from .inception import NUM_CLASSES
from .metrics.base import FEATURES, KEPT_FEATURES, LOGITS, SetData
from .sources import ImageSource
from .stats import FeatureStats


def bar_label(role: str, source: Any, protocol: str | None = None) -> str:
    """A progress bar's label: the set's role and its input's name, e.g. ``gen samples.zip [tf]``."""
    if isinstance(source, (str, os.PathLike)):
        name = os.path.basename(os.path.normpath(os.fspath(source))) or os.fspath(source)
    else:
        name = type(source).__name__
    name = name if len(name) <= 32 else name[:31] + "…"
    return f"{role} {name}" + (f" [{protocol}]" if protocol else "")


def progress_bar(total: int | None, *, desc: str, enabled: bool) -> tqdm:
    """A tqdm bar over images (not batches) on stderr."""
    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, dynamic_ncols=True, leave=False)


def stream_set(images: ImageSource, *, role: str, needs: frozenset[str] | set[str] = frozenset(),
               extractor: Extractor | None = None, consumers: dict[str, Any] | None = None,
               label: str | None = None, progress: bool = True, total: int | None = None) -> SetData:
    """One pass over this rank's share of ``images`` (collective under sharding: every rank calls it).

    ``needs``: what the feature extractor must give (FEATURES, KEPT_FEATURES, LOGITS; needs ``extractor``);
    ``consumers``: name → accumulator with ``update(batch, indices)`` (``indices``: the images' positions in the
    whole set), ``full`` (takes no more images) and ``merged(shard)``.  Without network work the pass stops once
    every consumer is full.  ``label`` / ``total`` name and size the progress bar (rank 0's share is shown).
    """
    shard, consumers = images.shard, dict(consumers or {})
    network = bool({FEATURES, KEPT_FEATURES, LOGITS} & set(needs))
    stats = logits = None
    if network:
        if extractor is None:
            raise ValueError("stream_set: the network's outputs are needed but no extractor was given")
        stats = FeatureStats(extractor.feature_dim, keep_features=KEPT_FEATURES in needs,
                             meta=extractor.stats_meta(images.description))
        logits = [] if LOGITS in needs else None
    done = 0

    def finished() -> bool:
        return not network and all(c.full for c in consumers.values())

    with failing_together(shard), progress_bar(images.num_images if total is None else total, desc=label or role,
                                               enabled=progress and shard.is_main) as bar:
        batches = iter(images) if not finished() else iter(())
        try:
            for batch in batches:
                if network:
                    features = check_finite_features(extractor(batch), images, done)
                    stats.update(features)
                    if logits is not None:
                        logits.append(extractor.logits_unbiased(features).cpu())
                if consumers:
                    indices = shard.global_index(np.arange(done, done + len(batch)))
                    for consumer in consumers.values():
                        if not consumer.full:
                            consumer.update(batch, indices)
                done += len(batch)
                bar.update(len(batch) if total is None else min(len(batch), total - bar.n))
                if finished():
                    break
        finally:
            close = getattr(batches, "close", None)  # a DataLoader's workers end even when stopped early
            if close is not None:
                close()
    gathered = None
    if logits is not None:
        local = torch.cat(logits) if logits else torch.zeros(0, NUM_CLASSES, dtype=torch.float32)
        gathered = gather_rows(local, shard) if shard.active else local
    return SetData(role=role, description=images.description, num_images=all_sum_int(done, shard),
                   stats=stats.merged_across_ranks(shard) if stats is not None else None, logits=gathered,
                   accumulators={name: consumer.merged(shard) for name, consumer in consumers.items()})


__all__ = ["bar_label", "progress_bar", "stream_set"]
