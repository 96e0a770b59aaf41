"""Make a shipped checkpoint: train a zoo model, measure it, export it, record it.

    python -m ganmetrics.zoo.release MODEL --steps N [--reference STATS] [--fid-samples 2000]

1. trains ``MODEL`` on the built-in ``shapes32`` set with the zoo's trainer into ``runs/zoo/MODEL``
   (resumable: rerun with more ``--steps`` to continue);
2. measures the FID (protocol ``tf``, ``--fid-samples`` samples, seed 0) of the generator as
   initialised (the same seed's weights before any step) and of the trained EMA generator, against
   ``--reference`` (default: the bundled ``shapes32`` statistics);
3. when the trained FID is under half the initial one (the zoo's condition), exports the EMA generator
   to ``ganmetrics/zoo/checkpoints/MODEL.pt`` and updates ``manifest.json`` (steps, images seen, wall
   time, machine, seed, SHA-256, both FIDs); otherwise it ships nothing and exits 1.  Either way the
   record goes to ``runs/zoo/MODEL/release.json`` (its initial FID is reused by the next release);
4. writes an 8×8 grid of samples (seed 0) to ``docs/zoo/MODEL.png`` and rewrites the table of shipped
   models, ``docs/zoo/checkpoints.md``, from the manifest (:func:`checkpoints_table`).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..api import fid
from ..atomic import atomic_write
from ..imageio import save_png
from ..plots import image_grid
from ..sources import quantize
from ..train import TrainConfig, train
from ..train.checkpoint import CHECKPOINT_NAME
from .base import Generator
from .checkpoints import (
    CHECKPOINT_DIR,
    export_generator,
    generator_from_checkpoint,
    read_manifest,
    write_manifest,
)
from .registry import build, default_config, model_names

REPO = Path(__file__).resolve().parents[2]
DEFAULT_REFERENCE = "shapes32"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (``fcntl.flock``) on ``path`` for the duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def initial_generator(model: str, seed: int, overrides: dict) -> Generator:
    """The generator exactly as the trainer initialises it (same seed, same config), in eval mode."""
    torch.manual_seed(seed)
    generator, _, _ = build(model, default_config(model, **overrides))
    return generator.eval()


def sample_grid(generator: Generator, rows: int = 8, seed: int = 0) -> np.ndarray:
    """uint8 ``[rows·R, rows·R, 3]``: ``rows²`` samples, quantised as the metrics do."""
    images = quantize(generator.sample(rows * rows, seed=seed)).permute(0, 2, 3, 1).cpu().numpy()
    return image_grid(images, columns=rows)


def release(model: str, steps: int, *, reference: str = DEFAULT_REFERENCE, fid_samples: int = 2000, seed: int = 0,
            overrides: dict | None = None, num_images: int | None = None, runs: Path = Path("runs/zoo"),
            checkpoints: Path = CHECKPOINT_DIR, docs: Path = REPO / "docs" / "zoo",
            require_condition: bool = True, batch_size: int | None = None) -> dict:
    """Steps 1–4 of the module docstring for one model; returns its record (``"shipped"``: whether it was exported).

    A run whose trained FID is not under half the initial one is not shipped (unless ``require_condition``
    is False): its record goes to ``runs/zoo/MODEL/release.json`` only, and more ``steps`` continue it.
    """
    overrides = dict(overrides or {})
    out = runs / model
    train(TrainConfig(model=model, data="shapes32", out=str(out), steps=steps, seed=seed, fid_every=-1,
                      model_overrides=overrides, num_images=num_images, batch_size=batch_size))
    trained = generator_from_checkpoint(out / CHECKPOINT_NAME)
    scores = {}
    recorded = out / "release.json"
    previous = json.loads(recorded.read_text()) if recorded.is_file() else read_manifest(checkpoints).get(model, {})
    config = json.loads(json.dumps(default_config(model, **overrides).to_dict()))  # as the manifest stores it
    if (previous.get("config") == config and previous.get("seed") == seed
            and previous.get("fid_samples") == fid_samples and previous.get("fid_reference") == reference):
        # the initial generator is a pure function of (model, config, seed): its FID was measured already
        scores["fid_init"] = previous["fid_init"]
        print(f"{model}: fid_init = {scores['fid_init']:.3f} (as recorded)", file=sys.stderr)
    generators = {"fid_init": lambda: initial_generator(model, seed, overrides), "fid_trained": lambda: trained}
    for name, make in generators.items():
        if name not in scores:
            scores[name] = fid(make(), reference, num_samples=fid_samples, seed=0, batch_size=100, device="cpu",
                               progress=True)
            print(f"{model}: {name} = {scores[name]:.3f}", file=sys.stderr)
    passed = scores["fid_trained"] < scores["fid_init"] / 2
    ship = passed or not require_condition
    dest = checkpoints / f"{model}.pt" if ship else out / f"{model}.candidate.pt"
    entry = export_generator(out / CHECKPOINT_NAME, dest, extra={
        **scores, "fid_samples": fid_samples, "fid_reference": reference, "fid_protocol": "tf",
        "trained_under_half_of_init": passed,
    })
    with atomic_write(recorded, "w") as handle:
        json.dump({**entry, "shipped": ship}, handle, indent=2)
    if not ship:
        print(f"{model}: trained FID {scores['fid_trained']:.3f} is not under half the initial "
              f"{scores['fid_init']:.3f}: not shipped; train longer (rerun with more --steps)", file=sys.stderr)
        return {**entry, "shipped": False}
    with _locked(checkpoints / ".manifest.lock"):  # releases of several models may run at once
        entries = read_manifest(checkpoints)
        entries[model] = entry
        write_manifest([entries[name] for name in model_names() if name in entries], checkpoints)
        save_png(docs / f"{model}.png", sample_grid(trained))
        with atomic_write(docs / "checkpoints.md", "w") as handle:
            handle.write(checkpoints_table(read_manifest(checkpoints)))
        board = REPO / "reference_stats" / "leaderboard.toml"
        if board.is_file() and add_zoo_entry(board, model):
            print(f"{model}: added to {board}; score it with `ganmetrics leaderboard --update --tier ci --entries "
                  f"{model}` and `--tier full`", file=sys.stderr)
    return {**entry, "shipped": True}


def add_zoo_entry(config: Path, model: str) -> bool:
    """Add ``[entries.MODEL] zoo = "MODEL"`` to the zoo's leaderboard config, in the zoo's order (False: there
    already)."""
    text = config.read_text()
    if re.search(rf"^\[entries\.{re.escape(model)}\]", text, flags=re.M):
        return False
    block = f'[entries.{model}]\nzoo = "{model}"\n\n'
    later = model_names()[model_names().index(model) + 1:]
    found = [m.start() for name in later if (m := re.search(rf"^\[entries\.{re.escape(name)}\]", text, flags=re.M))]
    text = text[:min(found)] + block + text[min(found):] if found else text.rstrip("\n") + "\n\n" + block[:-1]
    with atomic_write(config, "w") as handle:
        handle.write(text)
    return True


def changed_settings(model: str, entry: dict) -> str:
    """The manifest entry's config and batch size where they differ from the model's defaults, e.g.
    ``d_lr 0.0001 (default 0.0002)``, and the settings changed during training, e.g. ``g_lr 0.0025 → 0.001 at
    step 15000``."""
    defaults = json.loads(json.dumps(default_config(model).to_dict()))
    changes = entry.get("changes", [])
    changed_later = {key for change in changes for key in change["settings"]}
    changed = [f"{key} {value} (default {defaults.get(key)})" for key, value in entry.get("config", {}).items()
               if value != defaults.get(key) and key not in changed_later]
    changed += [f"{key} {change['previous'][key]} → {value} at step {change['step']}" for change in changes
                for key, value in change["settings"].items()]
    if entry.get("batch_size") not in (None, defaults["batch_size"]):
        changed.append(f"batch {entry['batch_size']} (default {defaults['batch_size']})")
    return ", ".join(changed)


def checkpoints_table(entries: dict[str, dict]) -> str:
    """The docs page of shipped models, written from the manifest: FIDs before/after, cost, and sample grids."""
    lines = ["# Shipped zoo checkpoints", "",
             "Written by `python -m ganmetrics.zoo.release` from `ganmetrics/zoo/checkpoints/manifest.json`. "
             "FID: protocol `tf`, 2,000 samples (seed 0) against the bundled `shapes32` statistics; "
             "\"images seen\" counts the real images shown to D; \"wall time\" is the training loop's elapsed time over "
             "all its resumed runs, with its periodic FID checks and any time the run was paused (an upper bound on "
             "what the steps cost).", "",
             "| model | steps | images seen | wall time | machine | settings changed from the defaults | FID at init "
             "| FID trained | trained < init / 2 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in model_names():
        if name in entries:
            e = entries[name]
            lines.append(f"| {name} | {e['steps']} | {e['images_seen']:,} | {e['wall_seconds'] / 60:.1f} min "
                         f"({e['processes']} process) | {e['machine']} | {changed_settings(name, e) or 'none'} | "
                         f"{e['fid_init']:.2f} | {e['fid_trained']:.2f} | "
                         f"{'yes' if e['trained_under_half_of_init'] else 'no'} |")
    missing = [name for name in model_names() if name not in entries]
    if missing:
        lines += ["", f"Not yet shipped: {', '.join(missing)}."]
    lines += ["", "## Samples (seed 0, EMA generator)", ""]
    lines += [f"**{name}**\n\n![{name} samples]({name}.png)\n" for name in model_names() if name in entries]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganmetrics.zoo.release", description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=model_names())
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--reference", default=DEFAULT_REFERENCE)
    parser.add_argument("--fid-samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", default="{}", metavar="JSON", help="model config overrides")
    parser.add_argument("--batch-size", type=int, default=None, help="images per step (default: the model's)")
    parser.add_argument("--runs", default="runs/zoo", metavar="DIR",
                        help="where the training runs live (DIR/MODEL; default: %(default)s); keep it outside the "
                             "repository to continue a run in a later checkout")
    args = parser.parse_args(argv)
    record = release(args.model, args.steps, reference=args.reference, fid_samples=args.fid_samples, seed=args.seed,
                     overrides=json.loads(args.set), runs=Path(args.runs), batch_size=args.batch_size)
    print(json.dumps({k: v for k, v in record.items() if k != "config"}, indent=2))
    return 0 if record["shipped"] else 1


if __name__ == "__main__":
    sys.exit(main())
