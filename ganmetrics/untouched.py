"""Calling a user's generator the way a scorer must: without changing it or the caller's random state.

A generator is scored as it samples, not as it trains: in eval mode (BatchNorm uses its running
statistics, dropout is off, spectral norm does no power iteration) and under ``torch.inference_mode``.
:class:`UntouchedCall` switches an ``nn.Module`` to eval mode for each call and puts every
submodule's ``training`` flag back afterwards, so the caller's module keeps its mode, parameters and
buffers (``tests/test_untouched.py``).  A generator that draws noise from the global RNG (``torch.randn``
inside ``forward``) draws it from a stream of its own, seeded from the scoring seed and carried from
call to call, while the caller's CPU and CUDA RNG states are restored after each call: its samples
depend on the seed alone and the caller's random state is as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

#: odd 64-bit constant (the golden ratio's) mixed into the scoring seed for the generator's own RNG stream, so
#: its noise is not the latents' stream (drawn from ``manual_seed(seed)``) again
_NOISE_SEED_MIX = 0x9E3779B97F4A7C15


def noise_seed(seed: int) -> int:
    """The seed of a scored generator's global-RNG stream, derived from the scoring ``seed``."""
    return (int(seed) * _NOISE_SEED_MIX + 1) % (1 << 63)


class UntouchedCall:
    """``call(*args)`` runs ``G(*args)`` in eval and inference mode on its own RNG stream; ``G`` and the
    caller's RNG state are left exactly as they were (see the module docstring)."""

    def __init__(self, G: Callable, seed: int, device: torch.device) -> None:
        self.G = G
        self.seed = noise_seed(seed)
        self.cuda = device.type == "cuda"
        self._cpu_state = torch.Generator().manual_seed(self.seed).get_state()
        self._cuda_state: list[torch.Tensor] | None = None

    def __call__(self, *args: Any) -> Any:
        modules = list(self.G.modules()) if isinstance(self.G, nn.Module) else []
        modes = [module.training for module in modules]
        devices = list(range(torch.cuda.device_count())) if self.cuda else []
        try:
            with torch.random.fork_rng(devices=devices):  # restores the caller's states on exit
                torch.set_rng_state(self._cpu_state)
                if devices:
                    if self._cuda_state is None:
                        torch.cuda.manual_seed_all(self.seed)
                    else:
                        torch.cuda.set_rng_state_all(self._cuda_state)
                for module in modules:
                    module.training = False  # = G.eval(), without calling a train() a user may have overridden
                with torch.inference_mode():
                    out = self.G(*args)
                self._cpu_state = torch.get_rng_state()
                if devices:
                    self._cuda_state = torch.cuda.get_rng_state_all()
        finally:
            for module, mode in zip(modules, modes, strict=True):
                module.training = mode
        return out
