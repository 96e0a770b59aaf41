"""Images from a generator: ``G(z)`` or ``G(z, labels)`` on seeded latents, in eval mode, leaving the module and
the caller's RNG untouched (:mod:`ganmetrics.untouched`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from ..distributed import LOCAL, Shard
from ..errors import InputError
from ..untouched import UntouchedCall
from .base import ImageBatch, ImageSource, ValueRange, _article, _check_count, _first_row, _local_rows
from .convert import _check_nchw, _tensor_to_uint8


def _attribute(G: Any, name: str) -> Any:
    value = getattr(G, name, None)
    if value is None and isinstance(getattr(G, "module", None), nn.Module):  # DataParallel / DDP
        value = getattr(G.module, name, None)
    return value


def _module_placement(G: Any) -> tuple[torch.device, torch.dtype]:
    """Where (and in which float dtype) a module's parameters live; the CPU and float32 otherwise."""
    if isinstance(G, nn.Module):
        tensors = list(itertools.chain(G.parameters(), G.buffers()))
        for tensor in tensors:
            if tensor.is_floating_point():
                return tensor.device, tensor.dtype
        if tensors:
            return tensors[0].device, torch.float32
    return torch.device("cpu"), torch.float32


def _generator_source(G: Callable, *, num_samples: int | None, batch_size: int, seed: int,
                      value_range: ValueRange, device: torch.device | None, z_dim: int | None,
                      shard: Shard = LOCAL) -> ImageSource:
    name = type(G).__name__ if isinstance(G, nn.Module) else getattr(G, "__name__", type(G).__name__)
    if num_samples is None:
        raise InputError(f"generator {name}: pass num_samples= (how many images to generate)")
    if z_dim is None:
        z_dim = _attribute(G, "z_dim")
        if z_dim is None:
            raise InputError(f"generator {name} has no z_dim attribute; pass z_dim= (the latent size)")
    z_dim = _check_count(int(z_dim) if isinstance(z_dim, torch.Tensor) else z_dim, "z_dim", minimum=1)
    num_classes = int(_attribute(G, "num_classes") or 0)
    c_dim = int(_attribute(G, "c_dim") or 0) if not num_classes else 0
    target, dtype = _module_placement(G)
    if device is not None:
        target = device
    conditioning = (f", {num_classes} classes" if num_classes else "") + (f", c_dim={c_dim}" if c_dim else "")
    description = f"generator {name} (z_dim={z_dim}{conditioning}, seed={seed}, {num_samples} samples)"

    def iterate() -> Iterator[ImageBatch]:
        call = UntouchedCall(G, seed, target)
        rng = torch.Generator().manual_seed(seed)
        latents = torch.randn(num_samples, z_dim, generator=rng)  # 50,000 × 512 float32: 100 MB
        labels = torch.randint(0, num_classes or c_dim, (num_samples,), generator=rng) if num_classes or c_dim \
            else None
        for rows in _local_rows(num_samples, batch_size, shard):
            z = latents[rows]
            size, first = len(z), _first_row(rows)
            args = [z.to(target, dtype)]
            if num_classes:
                args.append(labels[rows].to(target))
            elif c_dim:  # StyleGAN2-ADA convention: one-hot float labels
                args.append(torch.nn.functional.one_hot(labels[rows], c_dim).to(target, dtype))
            out = call(*args)
            what = f"generator {name} (batch of {size} starting at sample {first})"
            if not isinstance(out, torch.Tensor):
                raise InputError(f"{what} returned {_article(type(out).__name__)}; expected a float tensor N×C×H×W in "
                                 f"value_range — wrap G to return only the images")
            if not out.is_floating_point():
                raise InputError(f"{what} returned dtype {out.dtype}; expected float images in value_range")
            _check_nchw(out.shape, f"{what} output", single_image_hint=False)
            if out.shape[0] != size:
                raise InputError(f"{what} returned {out.shape[0]} images (shape {list(out.shape)}) for {size} latents")
            if not bool(torch.isfinite(out).all()):
                raise InputError(f"{what} returned NaN or infinite values; check the model/checkpoint")
            yield _tensor_to_uint8(out, value_range)

    return ImageSource(description, shard.count(num_samples), iterate, shard, num_samples,
                       lambda i: f"sample {i} (seed {seed}) of generator {name}")


# ---------------------------------------------------------------------------------------------
