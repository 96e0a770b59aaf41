"""Images in memory: numpy arrays (N×H×W×C), tensors (N×C×H×W) and iterables of such batches (a DataLoader, a
list), checked and converted by :mod:`.convert`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..distributed import LOCAL, Shard
from ..errors import InputError
from .base import (
    ImageBatch,
    ImageSource,
    ValueRange,
    _article,
    _count_text,
    _local_rows,
    _take,
    same_size_runs,
)
from .convert import (
    _array_to_uint8,
    _as_tensor,
    _check_array_dtype,
    _check_dtype,
    _check_floats,
    _check_nchw,
    _check_nhwc,
    _check_value_range,
    _tensor_to_uint8,
)

_IMAGE_KEYS = ("image", "images", "img")


def _array_source(a: np.ndarray, what: str, *, num_samples: int | None, batch_size: int,
                  value_range: ValueRange, shard: Shard = LOCAL) -> ImageSource:
    _check_array_dtype(a.dtype, what)
    _check_nhwc(a.shape, what)
    if a.shape[0] == 0:
        raise InputError(f"{what} holds no images (shape {tuple(a.shape)})")
    n = _take(a.shape[0], num_samples, what)
    if a.dtype.kind == "f":
        _check_floats(_as_tensor(a[:n]), value_range, what)

    def iterate() -> Iterator[ImageBatch]:
        for rows in _local_rows(n, batch_size, shard):
            yield _array_to_uint8(a[rows if isinstance(rows, slice) else rows.numpy()], value_range)

    return ImageSource(f"{what} {tuple(a.shape)} ({_count_text(n, a.shape[0])})", shard.count(n), iterate, shard, n)


def _tensor_source(x: torch.Tensor, *, num_samples: int | None, batch_size: int, value_range: ValueRange,
                   device: torch.device | None, shard: Shard = LOCAL) -> ImageSource:
    what = f"{str(x.dtype).replace('torch.', '')} tensor"
    _check_dtype(x.dtype, what)
    _check_nchw(x.shape, what)
    if x.shape[0] == 0:
        raise InputError(f"{what} holds no images")
    x = x.detach()
    n = _take(x.shape[0], num_samples, what)
    if x.is_floating_point():
        _check_floats(x[:n], value_range, what)
    target = device if device is not None else x.device

    def iterate() -> Iterator[ImageBatch]:
        for rows in _local_rows(n, batch_size, shard):
            rows = rows if isinstance(rows, slice) else rows.to(x.device)
            yield _tensor_to_uint8(x[rows], value_range).to(target)

    return ImageSource(f"{what} {tuple(x.shape)} on {x.device} ({_count_text(n, x.shape[0])})", shard.count(n),
                       iterate, shard, n)


# ---------------------------------------------------------------------------------------------


def _batch_images(raw: Any, what: str) -> torch.Tensor | np.ndarray | list:
    """The image part of one batch: a tensor, an array, or a list of C×H×W tensors."""
    if isinstance(raw, (torch.Tensor, np.ndarray)):
        return raw
    if isinstance(raw, dict):
        key = next((k for k in _IMAGE_KEYS if k in raw), None)
        if key is None:
            raise InputError(f"{what} is a dict with keys {list(raw)}; expected the images under "
                             f"{', '.join(map(repr, _IMAGE_KEYS))}")
        return _batch_images(raw[key], f"{what}[{key!r}]")
    if isinstance(raw, (list, tuple)) and raw:
        if all(isinstance(item, torch.Tensor) and item.ndim == 3 for item in raw):
            return list(raw)  # a list of single images
        first = raw[0]
        if isinstance(first, (torch.Tensor, np.ndarray)):
            return first
        if isinstance(first, (list, tuple)) and first and all(
                isinstance(item, torch.Tensor) and item.ndim == 3 for item in first):
            return list(first)
        raise InputError(f"{what} is {_article(type(raw).__name__)} whose first element is "
                         f"{_article(type(first).__name__)}; "
                         "expected images (a tensor N×C×H×W or an array N×H×W×C) first, e.g. (images, labels)")
    raise InputError(f"{what} is {_article(type(raw).__name__)}; expected a tensor N×C×H×W, an array N×H×W×C, "
                     "or a tuple/list/dict holding one")


def _convert_batch(images: torch.Tensor | np.ndarray | list, value_range: ValueRange,
                   what: str, warn: bool = False) -> ImageBatch:
    """Check and convert one batch; ``warn`` allows the "[0, 1] data with value_range (-1, 1)" warning."""
    if isinstance(images, np.ndarray):
        _check_array_dtype(images.dtype, what)
        _check_nhwc(images.shape, what)
        if images.dtype.kind == "f":
            _check_floats(_as_tensor(images), value_range, what, warn)
        return _array_to_uint8(images, value_range)
    if isinstance(images, torch.Tensor):
        _check_dtype(images.dtype, what)
        _check_nchw(images.shape, what)
        images = images.detach()
        if images.is_floating_point():
            _check_floats(images, value_range, what, warn)
        return _tensor_to_uint8(images, value_range)
    if isinstance(images, (list, tuple)) and not images:
        raise InputError(f"{what} is an empty {type(images).__name__}: no images")
    if not isinstance(images, (list, tuple)) or not all(isinstance(image, torch.Tensor) for image in images):
        found = type(images).__name__ if not isinstance(images, (list, tuple)) else (
            f"{type(images).__name__} of {', '.join(sorted({type(i).__name__ for i in images}))}")
        raise InputError(f"{what} is {_article(found)}; expected a batch of images: a tensor N×C×H×W, an array "
                         "N×H×W×C or a list of C×H×W tensors (a folder, file or generator is scored with "
                         "gm.fid / gm.evaluate, not fed batch by batch)")
    converted = [_convert_batch(image[None], value_range, f"{what} image {i}", warn and i == 0)[0]
                 for i, image in enumerate(images)]
    if converted and all(image.shape == converted[0].shape for image in converted):
        return torch.stack(converted)
    return converted


def _select(chunk: ImageBatch, keep: np.ndarray) -> ImageBatch:
    """The images of ``chunk`` where ``keep`` (bool per image) is true."""
    if isinstance(chunk, torch.Tensor):
        return chunk[torch.from_numpy(keep).to(chunk.device)]
    return [image for image, kept in zip(chunk, keep, strict=True) if kept]


def to_uint8_batch(images: torch.Tensor | np.ndarray | list, value_range: Sequence[float] = (-1.0, 1.0),
                   what: str = "images", warn: bool = False) -> ImageBatch:
    """One batch as uint8 ``N×3×H×W``: a tensor N×C×H×W (uint8, uint16 or float in ``value_range``), an
    array N×H×W×C, or a list of C×H×W tensors — checked and converted as every source's batches are.
    ``warn``: warn when floats lie in [0, 1] while ``value_range`` is (-1, 1) (a source warns on its first batch)."""
    return _convert_batch(images, _check_value_range(value_range), what, warn)


def _iterable_source(iterable: Iterable, description: str, *, num_images: int | None, num_samples: int | None,
                     batch_size: int, value_range: ValueRange, device: torch.device | None,
                     shard: Shard = LOCAL) -> ImageSource:
    """Batches of an iterable; with sharding every rank reads all of it and keeps its own images."""
    one_shot = isinstance(iterable, Iterator)

    def iterate() -> Iterator[ImageBatch]:
        count = 0  # images of the whole set so far
        for index, raw in enumerate(iterable):
            what = f"batch {index} of {description}"
            batch = _convert_batch(_batch_images(raw, what), value_range, what, warn=index == 0)
            for start in range(0, len(batch), batch_size):
                chunk = batch[start:start + batch_size]
                if num_samples is not None:
                    chunk = chunk[:num_samples - count]
                first, count = count, count + len(chunk)
                if shard.active:
                    chunk = _select(chunk, shard.owns(np.arange(first, count)))
                if device is not None:
                    chunk = chunk.to(device) if isinstance(chunk, torch.Tensor) else [c.to(device) for c in chunk]
                if len(chunk):
                    yield from same_size_runs(chunk)
                if count == num_samples:
                    return
        if count == 0:
            hint = (" (it is a one-shot iterator, already used up; pass a re-iterable such as a list or a "
                    "DataLoader)") if one_shot else ""
            raise InputError(f"{description} yielded no images{hint}")
        if num_samples is not None and count < num_samples:
            raise InputError(f"{description} yielded only {count} images but num_samples={num_samples} was "
                             f"requested; lower num_samples or give more data")

    total = num_samples if num_samples is not None else num_images
    return ImageSource(description, None if total is None else shard.count(total), iterate, shard, total)


# ---------------------------------------------------------------------------------------------
