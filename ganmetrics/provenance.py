"""Where and with what a number was produced: the machine, the thread count and the library versions.

Recorded beside every shipped artefact (zoo checkpoints, the leaderboard) so that a reader can tell
a number measured on a 2-core CPU from one measured on a GPU.
"""

from __future__ import annotations

import os
import platform

import torch

from ._version import __version__


def machine_description() -> str:
    """e.g. ``"x86_64, 2 cores, torch 2.13.0+cpu"``."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def run_environment(device: torch.device | str) -> dict:
    """The machine, the device, torch's CPU thread count and the versions of ganmetrics, torch and Python."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"machine": machine_description(), "device": name, "threads": torch.get_num_threads(),
            "ganmetrics": __version__, "torch": torch.__version__, "python": platform.python_version()}
