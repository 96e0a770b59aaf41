"""How to train: :class:`TrainConfig`, plain data without torch, so that the command line is built without importing
the trainer or the zoo."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..data.builtin import DEFAULT_DATASET
from ..errors import InputError

#: Settings that a resumed run may change with ``--set`` (a schedule, a regulariser, the minibatch-stddev group, the
#: D steps per G step: none shapes a parameter, and the data order follows the count of D steps done, so the
#: networks and the state stay valid); each change is recorded with its step in the checkpoint and the shipped
#: model's manifest.
RESUMABLE_SETTINGS = ("g_lr", "d_lr", "ema_half_life_kimg", "r1_gamma", "mixing_prob", "mbstd_group_size", "d_steps")


@dataclass
class TrainConfig:
    """How to train (the model's own settings live in its :class:`~ganmetrics.zoo.config.ModelConfig`)."""

    model: str
    data: str = DEFAULT_DATASET
    out: str = ""  # default: runs/<model>
    #: generator steps to reach (a resumed run continues up to this)
    steps: int = 1000
    #: images per rank per step; None: the model config's batch_size
    batch_size: int | None = None
    seed: int = 0
    #: images of a built-in set to train on (or the first N of a folder); None: 50,000 / all
    num_images: int | None = None
    #: conditional variant with this many classes (needs a labelled set); None: the model's default
    num_classes: int | None = None
    checkpoint_every: int = 500
    #: FID of the EMA generator every N steps (0: only at the end; -1: never)
    fid_every: int = 0
    fid_samples: int = 2000
    #: real statistics for that FID: a stats file or bundled name; None: the bundled statistics of a built-in set,
    #: else the first fid_samples training images
    fid_reference: str | None = None
    log_every: int = 50
    device: str | None = None
    #: train G and D in channels-last (NHWC) layout: oneDNN's faster convolutions, 1–35 % shorter steps than NCHW on
    #: CPU (benchmarks/README.md); the EMA generator and checkpoints keep the standard layout
    channels_last: bool = True
    #: continue from out/checkpoint.pt when it exists
    resume: bool = True
    progress: bool = True
    #: extra ModelConfig fields (e.g. {"width": 32})
    model_overrides: dict = field(default_factory=dict)

    def output_dir(self) -> Path:
        return Path(self.out or f"runs/{self.model}")

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first option out of range."""
        minimums = {"steps": 0, "batch_size": 1, "num_images": 1, "num_classes": 0, "checkpoint_every": 1,
                    "fid_every": -1, "fid_samples": 2, "log_every": 1}
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if value is not None and value < minimum:
                raise InputError(f"--{name.replace('_', '-')} must be >= {minimum}, got {value}")
