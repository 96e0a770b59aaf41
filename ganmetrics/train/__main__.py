"""``torchrun --nproc-per-node K -m ganmetrics.train MODEL --data SOURCE ...``: the trainer on K processes.

The same options as ``ganmetrics train``; without torchrun it runs as one process.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import GanmetricsError
from .distributed import exit_process
from .loop import train
from .options import add_train_arguments, config_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganmetrics.train", description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        train(config_from_args(args))
    except GanmetricsError as exc:
        print(f"ganmetrics train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    exit_process(main())
