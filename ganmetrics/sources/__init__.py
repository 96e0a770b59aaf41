"""Turning any image input into uint8 ``N×3×H×W`` batches.

:func:`open_source` accepts a folder (recursive), a ``.zip`` of images, a ``.npz``/``.npy``
array file, a numpy array, a ``torch.Tensor``, a ``DataLoader`` or any other iterable of
batches, or a generator (``nn.Module`` or callable taking ``z`` [and labels]), and returns an
:class:`ImageSource`: a re-iterable sequence of :data:`ImageBatch` es.

Conversions, the same for every kind of source:

* grayscale (1 channel) is repeated to 3 channels;
* RGBA (4 channels) drops the alpha channel — it is *not* composited over a background;
* 16-bit values (uint16 arrays/tensors, 16-bit PNGs) are scaled with ``round(x * 255 / 65535)``
  (Pillow's ``convert("RGB")`` would clip or truncate them instead);
* float values in ``value_range`` are quantised the StyleGAN way, see :func:`quantize`;
* 8-bit image files decode exactly as ``np.asarray(Image.open(f).convert("RGB"))``, like the
  peer libraries (see :mod:`ganmetrics.imageio`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..devices import check_device
from ..distributed import LOCAL, Shard
from ..errors import InputError, SourceNotFoundError
from ..imageio import IMAGE_EXTENSIONS, decode_image
from .base import ImageBatch, ImageSource, _article, _check_count, same_size_runs
from .convert import _check_value_range, quantize
from .files import _array_file_source, _default_workers, _folder_source, _zip_source, list_image_files
from .generators import _generator_source
from .memory import _array_source, _iterable_source, _tensor_source, to_uint8_batch


def _reference_names() -> str:
    try:
        from ..reference import available_references

        names = sorted(available_references())
    except (OSError, ValueError, KeyError, TypeError):  # an unreadable manifest only loses the hint
        names = []
    return f"; bundled reference sets: {', '.join(names)}" if names else ""


def _path_source(source: str | os.PathLike, **kwargs: Any) -> ImageSource:
    text = os.fspath(source)
    path = Path(os.path.expanduser(text))
    file_kwargs = {k: kwargs[k] for k in ("num_samples", "batch_size", "num_workers", "shard")}
    array_kwargs = {k: kwargs[k] for k in ("num_samples", "batch_size", "value_range", "shard")}
    if path.is_dir():
        return _folder_source(path, **file_kwargs)
    if path.exists():
        suffix = path.suffix.lower()
        if suffix == ".zip":
            return _zip_source(path, **file_kwargs)
        if suffix in (".npz", ".npy"):
            return _array_file_source(path, **array_kwargs)
        if not path.is_file():
            raise InputError(f"{path} is not a regular file or folder")
        raise InputError(f"{path} is a file but not a folder of images, a .zip, .npz or .npy; "
                         "put single images in a folder")
    separators = {"/", os.sep, os.altsep or "/"}
    looks_like_file = path.suffix.lower() in (".zip", ".npz", ".npy") + IMAGE_EXTENSIONS
    if isinstance(source, str) and not any(s in text for s in separators) and not looks_like_file:
        raise InputError(
            f"{text!r}: no such file or folder in {os.getcwd()}; expected a folder of images, a .zip, "
            f".npz or .npy file, a statistics file, or a bundled reference set name{_reference_names()}"
        )
    raise SourceNotFoundError(f"{path}: no such file or folder; check the path (relative paths start at {os.getcwd()})")


def _has_distributed_sampler(loader: DataLoader) -> bool:
    from torch.utils.data.distributed import DistributedSampler

    samplers = (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None))
    return any(isinstance(sampler, DistributedSampler) for sampler in samplers)


def is_generator(source: Any) -> bool:
    """True when :func:`open_source` samples ``source`` as a generator (an ``nn.Module``, or a callable
    that is not an iterable, array, tensor or path); such sources need ``num_samples``."""
    if isinstance(source, (ImageSource, str, os.PathLike, torch.Tensor, np.ndarray, bytes, bytearray)):
        return False
    return isinstance(source, nn.Module) or (callable(source) and not isinstance(source, Iterable))


def open_source(source: Any, *, num_samples: int | None = None, batch_size: int = 64, seed: int = 0,
                value_range: Sequence[float] = (-1.0, 1.0), device: torch.device | str | None = None,
                num_workers: int | None = None, z_dim: int | None = None, shard: Shard = LOCAL) -> ImageSource:
    """Any image input → an :class:`ImageSource` of uint8 N×3×H×W batches (at most ``batch_size`` each).

    ``source``: a folder (recursive, sorted by relative path), a ``.zip``, a ``.npz``/``.npy``
    uint8 N×H×W[×C] array, a numpy array (NHWC; uint8, uint16 or float in ``value_range``), a
    ``torch.Tensor`` (NCHW; same dtypes), a ``DataLoader``/iterable of such batches (or of
    tuples/lists/dicts holding them first / under "image", "images", "img"), or a generator:
    an ``nn.Module`` or callable called as ``G(z)``, or ``G(z, labels)`` when it has
    ``num_classes`` (int labels) or ``c_dim`` (one-hot labels, the StyleGAN2-ADA convention).

    ``num_samples`` takes the first N images (required for generators).  Files are decoded in
    ``num_workers`` DataLoader worker processes (default ``min(4, cpu_count)``; 0 decodes in
    this process) and yielded on the CPU; tensors and generator samples are yielded on
    ``device`` (default: where the tensor / the module's parameters live).

    Generators: all latents ``z ~ N(0, I)`` ``[num_samples, z_dim]``, then all labels, are drawn
    on the CPU from ``torch.Generator().manual_seed(seed)`` before the first batch, so the images
    depend on the seed alone — not on the device or the batch size — and are exactly those of a
    zoo model's ``G.sample(num_samples, seed)`` (``ganmetrics sample`` writes them as PNGs).
    ``G`` is called in eval mode under ``torch.inference_mode()``, its noise (if it draws any from the global
    RNG) from a stream seeded by ``seed``; the module's mode, parameters and buffers and the caller's RNG
    states are left exactly as they were (:mod:`ganmetrics.untouched`).

    ``shard``: yield only this process's images of the set (:class:`ganmetrics.distributed.Shard`;
    ``num_samples`` still counts the whole set).  Files, arrays and tensors are read only for the
    rank's images; a generator draws every latent but generates only its rank's images; an iterable
    is read whole by every rank, each keeping its own images — so a DataLoader given under sharding
    must not have a ``DistributedSampler`` (an error says so).
    """
    batch_size = _check_count(batch_size, "batch_size", minimum=1)
    if num_samples is not None:
        num_samples = _check_count(num_samples, "num_samples", minimum=1)
    value_range = _check_value_range(value_range)
    workers = _default_workers(num_workers)
    target = check_device(device) if device is not None else None
    seed = _check_count(seed, "seed", minimum=0)

    if isinstance(source, ImageSource):
        if source.shard.active:
            raise InputError(f"{source.description} is already one rank's share of a set; pass the source itself")
        return _iterable_source(source, source.description, num_images=source.num_images, num_samples=num_samples,
                                batch_size=batch_size, value_range=value_range, device=target, shard=shard)
    if isinstance(source, (str, os.PathLike)):
        return _path_source(source, num_samples=num_samples, batch_size=batch_size, num_workers=workers,
                            value_range=value_range, shard=shard)
    if isinstance(source, torch.Tensor):
        return _tensor_source(source, num_samples=num_samples, batch_size=batch_size, value_range=value_range,
                              device=target, shard=shard)
    if isinstance(source, np.ndarray):
        what = f"{source.dtype} array"
        return _array_source(source, what, num_samples=num_samples, batch_size=batch_size, value_range=value_range,
                             shard=shard)
    if is_generator(source):
        return _generator_source(source, num_samples=num_samples, batch_size=batch_size, seed=seed,
                                 value_range=value_range, device=target, z_dim=z_dim, shard=shard)
    if isinstance(source, (bytes, bytearray)):
        raise InputError("got bytes as an image source; pass a path, an array or a tensor")
    if isinstance(source, Iterable):
        name = type(source).__name__
        description = f"{name} of batches" if not isinstance(source, DataLoader) else (
            f"DataLoader over {type(source.dataset).__name__}")
        if shard.active and isinstance(source, DataLoader) and _has_distributed_sampler(source):
            raise InputError(
                f"{description} uses a DistributedSampler, but ganmetrics shards the images itself under torchrun: "
                "pass a DataLoader without it (every rank reads it and keeps its own images), or feed each rank's "
                "batches to a metric object (ganmetrics.FID(...).update) instead")
        return _iterable_source(source, description, num_images=None, num_samples=num_samples,
                                batch_size=batch_size, value_range=value_range, device=target, shard=shard)
    raise InputError(
        f"cannot read images from {_article(type(source).__name__)}; expected a folder, .zip, .npz/.npy path, a numpy "
        "array, a torch.Tensor, a DataLoader/iterable of batches, or a generator (nn.Module / callable)"
    )


__all__ = ["IMAGE_EXTENSIONS", "ImageBatch", "ImageSource", "decode_image", "is_generator", "list_image_files",
           "open_source", "quantize", "same_size_runs", "to_uint8_batch"]
