"""What an entry is made of: its generator (zoo model, ``module:callable``, TorchScript file) or its samples, and
the SHA-256 of the artefact scored (checkpoint, TorchScript file, sample files) for the results' provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import GanmetricsError, InputError
from ..imports import import_attribute
from ..weights import sha256_file
from .config import Entry


class _Truncated(nn.Module):
    """``G(z, *labels, truncation=ψ)``, keeping what the sampler reads of ``G`` (z_dim, num_classes, c_dim)."""

    def __init__(self, G: Any, psi: float):
        super().__init__()
        self.G, self.psi = G, psi
        for name in ("z_dim", "num_classes", "c_dim"):
            if getattr(G, name, None) is not None:
                setattr(self, name, getattr(G, name))

    def forward(self, z: torch.Tensor, *labels: torch.Tensor) -> torch.Tensor:
        return self.G(z, *labels, truncation=self.psi)


def load_generator(entry: Entry, folder: Path, device: torch.device) -> Any:
    """The entry's generator (an ``nn.Module`` or callable), on ``device``, with its truncation applied."""
    where = f"entry {entry.name}"
    if entry.kind == "zoo":
        from ..zoo.checkpoints import load

        G = load(entry.target, device=device)
    elif entry.kind == "torchscript":
        # runs the archive's code, as importing a generator module does: for a project's own files only
        try:
            G = torch.jit.load(entry.target, map_location=device)
        except Exception as exc:  # noqa: BLE001 - any failure of the archive is the file's
            raise InputError(f"{where}: {entry.target} is not a TorchScript module ({exc})") from None
    else:
        factory = import_attribute(entry.target, folder)
        kwargs = dict(entry.kwargs)
        if entry.checkpoint is not None:
            kwargs["checkpoint"] = entry.checkpoint
        try:
            G = factory(**kwargs)
        except GanmetricsError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's factory: its error, named
            raise InputError(f"{where}: {entry.target}({', '.join(kwargs)}) failed: {type(exc).__name__}: {exc}") \
                from exc
        if not callable(G):
            raise InputError(f"{where}: {entry.target} returned {type(G).__name__}, not an nn.Module or callable")
        if isinstance(G, nn.Module):
            G = G.to(device)
    if entry.z_dim is None and getattr(G, "z_dim", None) is None:
        raise InputError(f"{where}: the generator has no z_dim attribute; add z_dim = N to [entries.{entry.name}]")
    if entry.settings.truncation is not None:
        G = _Truncated(G, entry.settings.truncation)
    return G


def artefact_sha256(entry: Entry) -> str | None:
    """The SHA-256 of what the entry scores: the zoo checkpoint (its manifest's), the generator's checkpoint, the
    TorchScript file, the samples file; a folder of samples: the SHA-256 of its files' relative paths and SHA-256s.
    None for a generator without a checkpoint (its code is the artefact: the stored samples check it)."""
    if entry.kind == "zoo":
        from ..zoo.checkpoints import read_manifest

        return read_manifest()[entry.target]["sha256"]
    path = entry.checkpoint if entry.kind == "generator" else entry.target
    return None if path is None else tree_sha256(Path(path))


def tree_sha256(path: Path) -> str:
    """A file's SHA-256, or a folder's: over its files' sorted relative paths and their SHA-256s."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path).as_posix()}\0{sha256_file(item)}\n".encode())
    return digest.hexdigest()


__all__ = ["artefact_sha256", "load_generator", "tree_sha256"]
