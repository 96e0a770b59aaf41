"""The shipped checkpoints: each zoo model's trained EMA generator, and their manifest.

``ganmetrics/zoo/checkpoints/<name>.pt`` holds ``{"format", "model", "config", "G_ema"}`` (a weights-only
``torch.save``: loading runs no code from it) and ``manifest.json`` lists each with what produced it:
steps, images seen, wall time, machine, seed, the FID before and after training, and its SHA-256, which
:func:`load` checks.  :func:`export_generator` makes such a file from a training run's checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from ..atomic import atomic_write
from ..errors import CheckpointError
from ..provenance import machine_description
from ..train.checkpoint import load_training_checkpoint, read_checkpoint
from .base import Generator
from .config import config_from_dict
from .registry import get_spec

MODEL_FORMAT = "ganmetrics-model/1"
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(folder: Path | None = None) -> dict[str, dict]:
    """Manifest entries by model name (empty when nothing is shipped); ``folder`` defaults to the shipped one."""
    path = (folder or CHECKPOINT_DIR) / MANIFEST
    if not path.is_file():
        return {}
    return {entry["model"]: entry for entry in json.loads(path.read_text())["models"]}


def generator_from_checkpoint(path: str | os.PathLike) -> Generator:
    """The EMA generator of a shipped-format file (``ganmetrics-model/1``) or a training checkpoint, in eval mode."""
    path = Path(path)
    try:
        data = read_checkpoint(path, MODEL_FORMAT)
    except CheckpointError as model_error:
        try:
            data = load_training_checkpoint(path)
        except CheckpointError:
            raise model_error from None
        data = {"config": data["model_config"], "G_ema": data["G_ema"]}
    config = config_from_dict(data["config"])
    generator = get_spec(config.model).build_generator(config)
    try:
        generator.load_state_dict(data["G_ema"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match the {config.model} architecture: {exc}") from None
    return generator.eval().requires_grad_(False)


def load(name: str, *, device: torch.device | str | None = None, folder: Path | None = None) -> Generator:
    """The shipped, trained EMA generator of zoo model ``name`` (eval mode), SHA-256-checked against the manifest."""
    get_spec(name)  # unknown names: a clear error listing the models
    folder = folder or CHECKPOINT_DIR
    entry = read_manifest(folder).get(name)
    if entry is None:
        raise CheckpointError(f"no trained checkpoint of {name!r} is shipped in {folder}; train one with "
                              f"`ganmetrics train {name}` and load it with ganmetrics.zoo.generator_from_checkpoint")
    path = folder / entry["file"]
    if not path.is_file() or _sha256(path) != entry["sha256"]:
        raise CheckpointError(f"{path} is missing or does not match its SHA-256 in {folder / MANIFEST}; "
                              "reinstall ganmetrics")
    return generator_from_checkpoint(path).to(device or "cpu")


def export_generator(training_checkpoint: str | os.PathLike, dest: str | os.PathLike, *,
                     extra: dict | None = None) -> dict:
    """Write the EMA generator of a training run as a shipped checkpoint; return its manifest entry.

    ``extra`` (e.g. the FIDs before and after training) is merged into the entry.
    """
    run = load_training_checkpoint(training_checkpoint)
    config = run["model_config"]
    dest = Path(dest)
    with atomic_write(dest) as handle:
        torch.save({"format": MODEL_FORMAT, "model": config["model"], "config": config, "G_ema": run["G_ema"]}, handle)
    train_config = run["train_config"]
    batch = train_config["batch_size"] or config["batch_size"]
    return {
        "model": config["model"], "file": dest.name, "sha256": _sha256(dest), "bytes": dest.stat().st_size,
        "steps": run["step"], "images_seen": run["step"] * batch * run["world_size"] * config["d_steps"],
        "wall_seconds": round(run["elapsed_seconds"], 1), "processes": run["world_size"],
        "machine": machine_description(),
        "seed": train_config["seed"], "data": train_config["data"], "config": config,
        **({"changes": run["changes"]} if run.get("changes") else {}), **(extra or {}),
    }


def write_manifest(entries: list[dict], folder: Path | None = None) -> None:
    with atomic_write((folder or CHECKPOINT_DIR) / MANIFEST, "w") as handle:
        json.dump({"format": "ganmetrics-zoo-manifest/1", "models": entries}, handle, indent=2)
        handle.write("\n")
