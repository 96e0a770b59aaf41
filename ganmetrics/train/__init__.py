"""The zoo's trainer: one DDP loop for every model (``ganmetrics train`` / ``torchrun -m ganmetrics.train``).

``TrainState`` and ``train`` load the loop (and the zoo) on first use, so that importing
``ganmetrics.train.options`` to build the command line stays light.
"""

from __future__ import annotations

from .config import TrainConfig

__all__ = ["TrainConfig", "TrainState", "train"]


def __getattr__(name: str):
    if name in ("TrainState", "train"):
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
