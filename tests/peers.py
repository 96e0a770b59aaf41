"""Access to the peer implementations (torch-fidelity, pytorch-fid, clean-fid) in tests.

The peers are test references only.  Two things make them usable here:

* **torchvision on a CPU-only torch.**  The peers import torchvision, and PyPI's
  torchvision wheel ships a C extension built against CUDA torch, which does not
  load beside the CPU build of torch installed here.  torchvision then fails at
  import time in ``torchvision/_meta_registrations.py``, which registers fake
  kernels for ``torchvision::nms`` and ``torchvision::qnms`` unconditionally.
  :func:`import_torchvision` defines those two operator *schemas* (no kernels)
  before the import, so the pure-Python part of torchvision (models, transforms)
  imports and works.  No peer code path used by the tests calls these operators.
* **Local weights.**  The peers download Inception weights from URLs; the tests
  hand them the local file instead (see ``tests/conftest.py``).
"""

from __future__ import annotations

import importlib
import os

import pytest
import torch

_TORCHVISION_OPS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_torchvision_lib = None


def import_torchvision():
    """Import torchvision, defining the C-extension op schemas it needs when the extension cannot load."""
    global _torchvision_lib
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc) or _torchvision_lib is not None:
            raise
    _torchvision_lib = torch.library.Library("torchvision", "DEF")
    for schema in _TORCHVISION_OPS:
        _torchvision_lib.define(schema)
    import sys

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    return importlib.import_module("torchvision")


def import_peer(name: str):
    """Import a peer package (``torch_fidelity``, ``pytorch_fid``, ``cleanfid``).

    The peers are dev dependencies (``pip install -e .[dev]``).  A developer without
    them gets a skip; under CI (``CI`` set) a missing peer is a failure, so a parity
    test can never turn green by not running.
    """
    try:
        import_torchvision()
        return importlib.import_module(name)
    except ImportError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"peer library {name} is not installed (pip install -e .[dev]): {exc}")
