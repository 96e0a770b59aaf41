"""Every checkpoint shipped in ganmetrics/zoo/checkpoints: intact, compact, trained, and usable."""

from __future__ import annotations

import pytest
import torch

from conftest import assert_float32_close
from ganmetrics.sources import quantize
from ganmetrics.zoo import load, model_names
from ganmetrics.zoo.checkpoints import CHECKPOINT_DIR, read_manifest

SHIPPED = read_manifest()


def test_manifest_names_only_zoo_models():
    assert set(SHIPPED) <= set(model_names())


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_checkpoint(name):
    entry = SHIPPED[name]
    assert (CHECKPOINT_DIR / entry["file"]).stat().st_size == entry["bytes"] <= 3_000_000
    generator = load(name)  # checks the SHA-256
    assert not generator.training and generator.resolution == 32
    # the condition, measured by zoo.release (FID, tf protocol, 2,000 samples vs the bundled statistics)
    assert entry["fid_samples"] == 2000 and entry["fid_reference"] == "shapes32"
    assert entry["fid_trained"] < entry["fid_init"] / 2 and entry["trained_under_half_of_init"]
    images = generator.sample(16, seed=0)
    assert images.shape == (16, 3, 32, 32) and torch.isfinite(images).all()
    one_by_one = generator.sample(16, seed=0, batch_size=1)  # the same latents; convolutions round per batch shape
    assert_float32_close(one_by_one, images)
    # the images the metrics and `sample` see: a pixel on a quantisation boundary may round the other way
    levels = (quantize(images).int() - quantize(one_by_one).int()).abs()
    assert levels.max() <= 1 and (levels > 0).float().mean() < 1e-3
    assert torch.equal(quantize(generator.sample(16, seed=0)), quantize(images))  # same batch size: same images
