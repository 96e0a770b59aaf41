"""The zoo's trainer: one DDP loop for every model (``ganmetrics train`` / ``torchrun -m ganmetrics.train``)."""

from __future__ import annotations

from .loop import TrainConfig, TrainState, train

__all__ = ["TrainConfig", "TrainState", "train"]
