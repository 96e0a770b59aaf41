"""The CUDA path gives the CPU path's numbers.

Skipped where torch sees no GPU; run on a GPU machine by ``benchmarks/run_gpu.sh``, which records the
outcome in benchmarks/README.md.  On CUDA the network runs in float32 with TF32 off, so features
agree with the CPU's to float32 rounding (different kernels sum in different orders): ≤ 1e-4 per
feature, as the peers' features agree with ours.  Statistics, KID, MS-SSIM and SWD are computed from
those features or from the uint8 images themselves, and must agree to their own rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conftest import requires_cuda
from ganmetrics import evaluate, fid
from ganmetrics.data.synthetic import render_images
from ganmetrics.features import FeatureExtractor
from ganmetrics.inception import load_inception
from ganmetrics.sources import open_source
from ganmetrics.stats import FeatureStats

pytestmark = requires_cuda

FEATURE_TOLERANCE = 1e-4
FID_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """uint8 ``[16, 3, 64, 64]``."""
    return torch.from_numpy(render_images("shapes", 16, seed=3, size=64)).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize("protocol", ["tf", "clean", "pytorch-fid", "torchmetrics"])
def test_features_equal_the_cpu_features(inception, images, protocol):
    cpu = FeatureExtractor(protocol=protocol, device="cpu", model=load_inception(inception.weights_path))
    gpu = FeatureExtractor(protocol=protocol, device="cuda", model=load_inception(inception.weights_path))
    on_gpu = gpu(images)
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    assert (on_gpu.cpu() - cpu(images)).abs().max().item() <= FEATURE_TOLERANCE


def test_tf32_is_off_during_the_forward_and_restored_after(inception, images):
    extractor = FeatureExtractor(device="cuda", model=load_inception(inception.weights_path))
    seen = []
    hook = extractor.model.register_forward_hook(
        lambda *_: seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)))
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        extractor(images)
        assert seen == [(False, False)]
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        hook.remove()
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_fid_of_folders_equals_the_cpu_fid(image_folders, offline_weights):
    a, b = (str(f) for f in image_folders)
    kwargs = dict(weights=str(offline_weights), batch_size=16, num_workers=0, progress=False)
    on_cpu, on_gpu = fid(a, b, device="cpu", **kwargs), fid(a, b, device="cuda", **kwargs)
    assert on_gpu == pytest.approx(on_cpu, abs=FID_TOLERANCE)
    assert on_cpu > 10  # the sets differ, so agreement means something


def test_evaluate_on_cuda_equals_the_cpu(image_folders, offline_weights):
    """One pass, every metric that the offline weights allow (IS needs the classifier)."""
    a, b = (str(f) for f in image_folders)
    kwargs = dict(metrics=("fid", "kid", "swd", "ms_ssim"), weights=str(offline_weights), batch_size=8,
                  num_workers=0, progress=False, kid_subsets=10, kid_subset_size=10)
    cpu, gpu = evaluate(a, b, device="cpu", **kwargs), evaluate(a, b, device="cuda", **kwargs)
    assert gpu["fid"] == pytest.approx(cpu["fid"], abs=FID_TOLERANCE)
    assert gpu["kid"]["mean"] == pytest.approx(cpu["kid"]["mean"], abs=1e-6)
    assert gpu["kid"]["std"] == pytest.approx(cpu["kid"]["std"], abs=1e-6)
    assert gpu["ms_ssim"] == pytest.approx(cpu["ms_ssim"], abs=1e-6)
    # SWD: the same patches and directions (seeded on the CPU); float32 projections and sorts on each device.
    for resolution, value in cpu["swd"]["levels"].items():
        assert gpu["swd"]["levels"][resolution] == pytest.approx(value, rel=1e-4)


def test_statistics_accumulate_on_cuda_like_on_the_cpu():
    rng = np.random.default_rng(0)
    batches = [np.abs(rng.standard_normal((n, 256))).astype(np.float32) for n in (50, 7, 64, 1)]
    cpu, gpu = FeatureStats(256), FeatureStats(256)
    for x in batches:
        cpu.update(torch.from_numpy(x))
        gpu.update(torch.from_numpy(x).cuda())
    np.testing.assert_allclose(gpu.mu, cpu.mu, rtol=1e-12)
    np.testing.assert_allclose(gpu.sigma, cpu.sigma, rtol=1e-10, atol=1e-14)


class BlockGenerator(nn.Module):
    """z [n, 48] → 32×32 RGB blocks, ``clamp(z)`` repeated 8×8: exact on any device."""

    z_dim = 48

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        blocks = z.view(-1, 3, 4, 4).clamp(-1, 1)
        return blocks.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3)


def test_generator_on_cuda_draws_the_same_images():
    """Latents come from one seeded CPU generator whatever the model's device, so the images are equal."""
    kwargs = dict(num_samples=20, batch_size=8, seed=5)
    cpu = torch.cat(list(open_source(BlockGenerator(), device=torch.device("cpu"), **kwargs)))
    gpu = torch.cat([batch.cpu() for batch in open_source(BlockGenerator().cuda(), device=torch.device("cuda"),
                                                          **kwargs)])
    assert cpu.dtype == torch.uint8 and cpu.shape == (20, 3, 32, 32)
    assert torch.equal(cpu, gpu)
