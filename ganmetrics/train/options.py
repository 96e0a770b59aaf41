"""The trainer's command-line options, shared by ``ganmetrics train`` and ``python -m ganmetrics.train``."""

from __future__ import annotations

import argparse
import json

from ..data.builtin import DEFAULT_DATASET
from ..errors import InputError
from .config import RESUMABLE_SETTINGS, TrainConfig


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig(model="")
    parser.add_argument("model", metavar="MODEL", help="dcgan, wgan_gp, sngan, sagan, biggan, stylegan, stylegan2")
    parser.add_argument("--data", default=DEFAULT_DATASET, metavar="SOURCE",
                        help="a built-in set (shapes32) or a folder / zip / npz of square images (default: %(default)s)")
    parser.add_argument("--out", default="", metavar="DIR", help="run folder (default: runs/MODEL)")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="generator steps to reach (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=None, help="images per process per step (default: the model's)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--num-images", type=int, default=None, help="training images (default: 50,000 / all)")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="conditional variant with K classes; 0 for unconditional (default: the model's)")
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    parser.add_argument("--fid-every", type=int, default=defaults.fid_every,
                        help="FID of the EMA generator every N steps (0: at the end only; -1: never)")
    parser.add_argument("--fid-samples", type=int, default=defaults.fid_samples)
    parser.add_argument("--fid-reference", default=None, metavar="STATS",
                        help="real statistics for that FID (default: a built-in set's bundled statistics, else "
                             "the first --fid-samples training images)")
    parser.add_argument("--log-every", type=int, default=defaults.log_every)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--no-channels-last", action="store_true",
                        help="train in the standard NCHW layout instead of channels-last (slower; for comparisons)")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if DIR/checkpoint.pt exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")
    parser.add_argument("--set", default="{}", metavar="JSON",
                        help=f"model config overrides, e.g. '{{\"width\": 32}}'; on resume only "
                             f"{', '.join(RESUMABLE_SETTINGS)} may change (recorded with the step)")


def _overrides(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--set must be a JSON object such as '{{\"width\": 32}}': {exc}") from None
    if not isinstance(value, dict):
        raise InputError(f"--set must be a JSON object such as '{{\"width\": 32}}', got {text!r}")
    return value


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(model=args.model, data=args.data, out=args.out, steps=args.steps, batch_size=args.batch_size,
                       seed=args.seed, num_images=args.num_images, num_classes=args.num_classes,
                       checkpoint_every=args.checkpoint_every, fid_every=args.fid_every, fid_samples=args.fid_samples,
                       fid_reference=args.fid_reference, log_every=args.log_every, device=args.device,
                       channels_last=not args.no_channels_last,
                       resume=not args.no_resume, progress=not args.no_progress, model_overrides=_overrides(args.set))
