"""DINOv2 ViT-L/14 feature-extractor throughput: a batch of uint8 64×64 images → 1024-d class-token features.

The batch is 8 images on the CPU and 128 on CUDA (``--bench-device cuda``: float32, TF32 off, a device
synchronisation per timed call), already on the device; each call includes the resize to 224×224 and the
normalisation:

* ganmetrics: ``DINOv2Extractor`` (``feature_extractor="dinov2-vit-l-14"``);
* torch-fidelity 0.4.0: ``FeatureExtractorDinoV2("dinov2-vit-l-14", ["dinov2"])``, its ``torch.hub`` network built
  from DINOv2's own code (``tests/dinov2_hub``).

Both hold the same random weights of the architecture (the pretrained ones cannot be downloaded here; the speed
does not depend on the values), and their features must agree within float32 rounding.  Run ``python -m pytest
benchmarks/test_bench_dinov2.py --benchmark-only [--bench-device cuda]``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from benchmarks.conftest import synchronized
from ganmetrics.data.synthetic import render_images
from ganmetrics.extractors.dinov2 import DINOv2Extractor
from peers import hub_vitl14, import_peer, import_torchvision

GROUP = "dinov2-throughput"
BATCH = {"cpu": 8, "cuda": 128}
ROUNDS = {"cpu": 2, "cuda": 10}
SIZE = 64
REL_TOLERANCE = 2.0 ** -16  # of the largest feature: float32 rounding (tests/conftest.py FLOAT32_REL)


@pytest.fixture(scope="module")
def hub_network():
    return hub_vitl14()


@pytest.fixture(scope="module")
def ours(hub_network, bench_device, tmp_path_factory) -> DINOv2Extractor:
    path = tmp_path_factory.mktemp("dinov2") / "dinov2_vitl14_pretrain.pth"
    torch.save(hub_network.state_dict(), path)
    return DINOv2Extractor(weights=path, device=bench_device)


@pytest.fixture(scope="module")
def images(bench_device) -> torch.Tensor:
    batch = render_images("shapes", BATCH[bench_device], seed=0, size=SIZE)
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous().to(bench_device)


def torch_fidelity_method(hub_network, device: str, monkeypatch) -> Callable:
    import_torchvision()
    fidelity = import_peer("torch_fidelity.feature_extractor_dinov2")
    monkeypatch.setattr(torch.hub, "load", lambda repo, model: hub_network)
    model = fidelity.FeatureExtractorDinoV2("dinov2-vit-l-14", ["dinov2"]).to(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # as torch-fidelity's own feature loop
            return model(x)[0]

    return run


@pytest.mark.parametrize("name", ["ganmetrics", "torch-fidelity"])  # ganmetrics first
def test_dinov2_features_64px(benchmark, record_ratio, images, ours, hub_network, bench_device, monkeypatch, name):
    method = ours if name == "ganmetrics" else torch_fidelity_method(hub_network, bench_device, monkeypatch)

    benchmark.group = GROUP
    batch = BATCH[bench_device]
    features = benchmark.pedantic(synchronized(method, bench_device), args=(images,), rounds=ROUNDS[bench_device],
                                  iterations=1, warmup_rounds=1)
    assert features.shape == (batch, 1024)
    expected = ours(images)
    max_abs = float((features.float() - expected).abs().max())
    assert max_abs <= REL_TOLERANCE * float(expected.abs().max()), f"{name} differs from ganmetrics by {max_abs:.3g}"
    if not record_ratio(benchmark, name):  # --benchmark-disable
        return
    benchmark.extra_info.update(
        images_per_second=batch / benchmark.stats.stats.median, batch=batch, image_size=SIZE, device=bench_device,
        torch_threads=torch.get_num_threads(), max_abs_diff_vs_ganmetrics=max_abs,
        mean_feature=float(np.mean(features.cpu().numpy())))
