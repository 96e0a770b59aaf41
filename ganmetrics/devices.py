"""Which device computes: resolved and checked once, up front, so a device that does not exist is one clear
:class:`~ganmetrics.errors.InputError` before any work — not an AssertionError from deep inside torch."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .distributed import local_device
from .errors import InputError, spelled


def available_devices() -> list[str]:
    """What this torch can run on here: ``cpu``, each ``cuda:i``, and ``mps`` where present."""
    names = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def check_device(device: torch.device | str) -> torch.device:
    """``device`` as a :class:`torch.device` after checking that it exists here; InputError otherwise."""
    where = spelled("device", "--device")
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"{where} {str(device)!r} is not a device name; available: "
                         f"{', '.join(available_devices())}") from None
    available = ", ".join(available_devices())
    if target.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch was built without CUDA" if torch.version.cuda is None
                   else "torch sees no CUDA GPU (driver, CUDA_VISIBLE_DEVICES?)")
            raise InputError(f"{where} {str(device)!r}: {why} (torch {torch.__version__}); available: {available}")
        if target.index is not None and target.index >= torch.cuda.device_count():
            raise InputError(f"{where} {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA "
                             f"device(s); available: {available}")
    elif target.type == "mps":
        if "mps" not in available_devices():
            raise InputError(f"{where} {str(device)!r}: Apple's MPS is not available here; available: {available}")
    elif target.type != "cpu":
        raise InputError(f"{where} {str(device)!r}: ganmetrics runs on cpu, cuda or mps; available: {available}")
    return target


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``None`` → ``cuda:LOCAL_RANK`` under torchrun, else the first CUDA device when there is one, else the CPU;
    anything else checked by :func:`check_device`."""
    if device is None:
        return local_device() or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(device)


@contextlib.contextmanager
def tf32_disabled() -> Iterator[None]:
    """Disable TF32 in cuBLAS and cuDNN for the duration (float32 convolutions and matmuls)."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
