"""What every generator of the zoo is: an ``nn.Module`` with ``z_dim``, ``num_classes``, ``resolution``
and :meth:`Generator.sample`.

``G(z)`` (``G(z, labels)`` for a conditional model) returns float images ``[N, 3, R, R]`` in
[-1, 1], the convention :func:`ganmetrics.fid` and the other metrics expect of a generator
(``value_range=(-1, 1)``).  ``labels`` are int64 class indices.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from ..errors import InputError


class Generator(nn.Module):
    """Base class of the zoo's generators.

    Subclasses set ``z_dim``, ``num_classes`` (0: unconditional) and ``resolution`` in ``__init__``
    and implement ``forward(z, labels=None, truncation=None)``.  Truncation is each model's own
    trick: BigGAN draws ``z`` from a truncated normal (override :meth:`draw_latents`), the StyleGANs
    pull ``w`` towards their tracked mean inside ``forward``.
    """

    z_dim: int
    num_classes: int
    resolution: int

    def draw_latents(self, n: int, generator: torch.Generator, truncation: float | None = None) -> torch.Tensor:
        """``n`` latents ``[n, z_dim]`` from ``generator`` (CPU, float32): standard normal by default."""
        return torch.randn(n, self.z_dim, generator=generator)

    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        return torch.device("cpu")

    def _latents_and_labels(self, n: int, seed: int, truncation: float | None, labels
                            ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """All ``n`` latents, then all labels, from one CPU generator seeded with ``seed``."""
        if n < 0:
            raise InputError(f"n must be >= 0, got {n}")
        rng = torch.Generator().manual_seed(int(seed))
        z = self.draw_latents(n, rng, truncation)
        if not self.num_classes:
            if labels is not None:
                raise InputError(f"{type(self).__name__} is unconditional: it takes no labels")
            return z, None
        if labels is None:
            return z, torch.randint(0, self.num_classes, (n,), generator=rng)
        y = torch.as_tensor(labels, dtype=torch.int64)
        y = y.expand(n) if y.ndim == 0 else y
        if y.shape != (n,) or bool(((y < 0) | (y >= self.num_classes)).any()):
            raise InputError(f"labels must be one class index or {n} of them, each in [0, {self.num_classes})")
        return z, y

    @torch.no_grad()
    def iter_samples(self, n: int, seed: int = 0, truncation: float | None = None, labels=None,
                     batch_size: int = 256) -> Iterator[torch.Tensor]:
        """:meth:`sample`'s images in consecutive chunks of at most ``batch_size`` (same images, bounded memory)."""
        z, y = self._latents_and_labels(n, seed, truncation, labels)
        device = self.device()
        was_training = self.training
        self.eval()
        try:
            for start in range(0, n, batch_size):
                args = [z[start:start + batch_size].to(device)]
                if y is not None:
                    args.append(y[start:start + batch_size].to(device))
                yield self(*args, truncation=truncation).float()
        finally:
            self.train(was_training)

    def sample(self, n: int, seed: int = 0, truncation: float | None = None, labels=None,
               batch_size: int = 256) -> torch.Tensor:
        """``n`` images ``[n, 3, R, R]``, nominally in [-1, 1] (float32, on the model's device), a pure function
        of the seed.

        All latents, then all labels (when conditional and ``labels`` is None, uniform over the
        classes), come from one CPU ``torch.Generator`` seeded with ``seed``, so every ``batch_size`` and
        device generates from the same latents; the float outputs agree up to the convolutions' rounding
        (~1e-6: oneDNN and cuDNN pick algorithms by batch shape); after the metrics' uint8 quantisation a
        pixel that lies on a level boundary may differ by one level (1 of 49,152 for the shipped SAGAN at
        batch 1 vs 16), so the same batch size gives the same images.  ``labels``: one class index, or ``n``
        of them.
        Runs in eval mode (StyleGAN noise inputs fixed) and restores the previous mode.
        """
        chunks = list(self.iter_samples(n, seed, truncation, labels, batch_size))
        if not chunks:
            return torch.zeros(0, 3, self.resolution, self.resolution, device=self.device())
        return torch.cat(chunks)
