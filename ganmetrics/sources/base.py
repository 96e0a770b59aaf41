"""What every image source is: an :class:`ImageSource` of uint8 batches, and the counting helpers they share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..distributed import LOCAL, Shard
from ..errors import InputError, spelled

ImageBatch = torch.Tensor
"""uint8 ``[N, 3, H, W]``.  A set whose images differ in size comes in runs: consecutive images of one size make a
batch (:func:`same_size_runs`), so every batch is a plain tensor."""

ValueRange = tuple[float, float]

_UINT16 = getattr(torch, "uint16", None)  # torch >= 2.3


@dataclass
class ImageSource:
    """A re-iterable stream of uint8 image batches.

    Every iteration starts again from the beginning (a generator source redraws the same
    latents from its seed).  ``num_images`` is how many images an iteration yields, ``None``
    when unknown in advance (iterables without ``num_samples``).  ``shard``: which images of the
    whole set (``description``) this process yields — its ``j``-th is ``shard.global_index(j)``
    (:mod:`ganmetrics.distributed`); all of them by default.  ``total_images``: the size of the
    whole set (``num_images`` without sharding; None when unknown).
    """

    description: str
    num_images: int | None
    iterate: Callable[[], Iterator[ImageBatch]] = field(repr=False, compare=False)
    shard: Shard = LOCAL
    total_images: int | None = None
    #: the name of image ``i`` of the whole set (a file path, an archive member ...), for error messages
    name_of: Callable[[int], str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.total_images is None and not self.shard.active:
            self.total_images = self.num_images

    def image_name(self, index: int) -> str:
        """What error messages call image ``index`` of the whole set."""
        return self.name_of(index) if self.name_of is not None else f"image {index} of {self.description}"

    def __iter__(self) -> Iterator[ImageBatch]:
        return iter(self.iterate())


def _check_count(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _take(available: int, num_samples: int | None, what: str) -> int:
    """How many images to use: all, or the first ``num_samples`` (error when fewer exist)."""
    if num_samples is None:
        return available
    if num_samples > available:
        raise InputError(
            f"{what}: {spelled(f'num_samples={num_samples}', f'--num-samples {num_samples}')} requested but only "
            f"{available} images found; lower {spelled('num_samples', '--num-samples')} (at most {available}) or add "
            "images"
        )
    return num_samples


def _count_text(n: int, available: int) -> str:
    return f"{n} images" if n == available else f"first {n} of {available} images"


def _local_items(items: list, total: int, shard: Shard) -> list:
    """This rank's items among the first ``total`` (all of them without sharding)."""
    return items[:total] if not shard.active else [items[i] for i in shard.indices(total)]


def _local_rows(total: int, batch_size: int, shard: Shard) -> Iterator[slice | torch.Tensor]:
    """Row selections of this rank's images among ``total``, ``batch_size`` at a time: slices without
    sharding, index tensors with it."""
    if not shard.active:
        for start in range(0, total, batch_size):
            yield slice(start, min(start + batch_size, total))
        return
    indices = torch.from_numpy(shard.indices(total))
    for start in range(0, len(indices), batch_size):
        yield indices[start:start + batch_size]


def _first_row(rows: slice | torch.Tensor) -> int:
    return rows.start if isinstance(rows, slice) else int(rows[0])


def _article(noun: str) -> str:
    """``noun`` with "a" or "an": "an int", "a str", "an ndarray"."""
    return f"{'an' if noun[:1].lower() in 'aeio' or noun.startswith(('nd', 'NaN')) else 'a'} {noun}"


def same_size_runs(images: torch.Tensor | list[torch.Tensor]) -> Iterator[torch.Tensor]:
    """A batch as tensors of consecutive same-size images: the tensor itself, or a list of ``[3, H, W]`` images
    split where the size changes."""
    if isinstance(images, torch.Tensor):
        yield images
        return
    start = 0
    for end in range(1, len(images) + 1):
        if end == len(images) or images[end].shape != images[start].shape:
            yield torch.stack(list(images[start:end]))
            start = end
