"""Training checkpoints: one file with everything needed to continue a run exactly, written atomically.

The file is a ``torch.save`` of plain containers, tensors, numbers and strings only, so it loads with
``torch.load(weights_only=True)``: opening a checkpoint never runs code from it.  A truncated or
foreign file is a :class:`~ganmetrics.errors.CheckpointError` that names it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..atomic import atomic_write
from ..errors import CheckpointError

CHECKPOINT_NAME = "checkpoint.pt"
TRAINING_FORMAT = "ganmetrics-training-checkpoint/1"


def save_training_checkpoint(path: str | os.PathLike, state: dict) -> None:
    with atomic_write(path) as handle:
        torch.save({"format": TRAINING_FORMAT, **state}, handle)


def read_checkpoint(path: str | os.PathLike, expected_format: str) -> dict:
    """Load ``path`` safely (weights only) and check its ``format`` field."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # truncated zip, pickle refused by weights_only, not a torch file ...
        raise CheckpointError(f"cannot read checkpoint {path} ({type(exc).__name__}: {exc}); the file is corrupted "
                              "or not a ganmetrics checkpoint: delete it (training restarts) or restore a copy") from None
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path} is not a {expected_format} file (found {found!r})")
    return data


def load_training_checkpoint(path: str | os.PathLike) -> dict:
    return read_checkpoint(path, TRAINING_FORMAT)
