"""Metric objects (ganmetrics.FID, KID, InceptionScore) against the functions, and non-finite feature reports.

The objects and the functions share the feature pass and the metric math, so on the same batches the
values are equal exactly; what these tests pin down is the objects' bookkeeping (update, reset,
the kept reference) and their errors.  Under DDP they are checked by tests/test_distributed.py.
"""

from __future__ import annotations

import pytest
import torch

import ganmetrics as gm
from ganmetrics.data.synthetic import render_images
from ganmetrics.errors import InputError, StatsError, WeightsError
from ganmetrics.features import FeatureExtractor


@pytest.fixture(scope="module")
def fake() -> torch.Tensor:
    return torch.from_numpy(render_images("blobs", 8, seed=5)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def real() -> torch.Tensor:
    return torch.from_numpy(render_images("shapes", 8, seed=6)).permute(0, 3, 1, 2).contiguous()


def test_fid_object_equals_the_function_and_keeps_its_reference(fake, real, offline_weights, monkeypatch):
    expected = gm.fid(fake, real, weights=offline_weights, batch_size=4, progress=False)
    metric = gm.FID(real=real, weights=offline_weights, batch_size=4)  # batch_size: how the reference is read
    metric.update(fake[:4])
    metric.update(fake[4:])
    assert metric.compute() == expected
    assert metric.num_samples == 8

    metric.reset()
    assert metric.num_samples == 0
    with pytest.raises(InputError, match="before any update"):
        metric.compute()
    passes = []
    original = FeatureExtractor.__call__
    monkeypatch.setattr(FeatureExtractor, "__call__", lambda self, images: passes.append(len(images))
                        or original(self, images))
    metric.update(fake[:4])
    metric.update(fake[4:])
    assert metric.compute() == expected
    assert passes == [4, 4]  # the reference was not computed again
    with pytest.raises(InputError, match="only for a FID built with real=None"):
        metric.update(real, real=True)


def test_fid_object_with_reference_updates(fake, real, offline_weights):
    expected = gm.fid(fake, real, weights=offline_weights, batch_size=8, progress=False)
    metric = gm.FID(weights=offline_weights)
    metric.update(real, real=True)
    metric.update(fake)
    assert metric.compute() == expected
    metric.reset()  # the reference updates stay ...
    metric.update(fake)
    assert metric.compute() == expected
    clearing = gm.FID(weights=offline_weights, reset_real=True)
    clearing.update(real, real=True)
    clearing.update(fake)
    clearing.reset()  # ... unless reset_real=True
    clearing.update(fake)
    with pytest.raises(InputError, match="no reference images yet"):
        clearing.compute()


def test_fid_object_accepts_float_batches_in_value_range(fake, real, offline_weights):
    as_uint8 = gm.FID(real=real, weights=offline_weights)
    as_uint8.update(fake)
    as_float = gm.FID(real=real, weights=offline_weights)
    as_float.update(fake.float() / 127.5 - 1)  # the generator convention, quantised back exactly
    assert as_float.compute() == as_uint8.compute()
    with pytest.raises(InputError, match="value_range"):
        as_float.update(fake.float())  # 0..255 floats with value_range (-1, 1)


def test_kid_object_equals_the_function(fake, real, offline_weights):
    settings = dict(subsets=5, subset_size=6, seed=3)
    expected = gm.kid(fake, real, weights=offline_weights, batch_size=4, progress=False, **settings)
    metric = gm.KID(real=real, weights=offline_weights, batch_size=4, **settings)
    metric.update(fake[:4])
    metric.update(fake[4:])
    assert metric.compute() == expected
    stats = gm.compute_stats(real, weights=offline_weights, progress=False)  # saved without features
    with pytest.raises(InputError, match="keep_features=True"):
        gm.KID(real=stats, weights=offline_weights)


def test_inception_score_object_equals_the_function(fake, peer_weights_file, offline_weights):
    expected = gm.inception_score(fake, splits=2, weights=peer_weights_file, batch_size=3, progress=False)
    metric = gm.InceptionScore(splits=2, weights=peer_weights_file)
    for start in range(0, 8, 3):
        metric.update(fake[start:start + 3])
    assert metric.compute() == expected
    with pytest.raises(WeightsError, match="no classifier layer"):
        gm.InceptionScore(weights=offline_weights)


def poison(monkeypatch, row_of_call: dict[int, int]) -> None:
    """Make the extractor's ``k``-th call return NaN features in row ``row_of_call[k]``."""
    original, calls = FeatureExtractor.__call__, []

    def poisoned(self, images):
        features = original(self, images).clone()
        if len(calls) in row_of_call:
            features[row_of_call[len(calls)], 7] = float("nan")
        calls.append(len(images))
        return features

    monkeypatch.setattr(FeatureExtractor, "__call__", poisoned)


def test_non_finite_features_name_the_file(tmp_path, offline_weights, monkeypatch):
    from conftest import write_pngs

    folder = write_pngs(tmp_path / "images", render_images("shapes", 8, seed=1))
    poison(monkeypatch, {1: 1})  # second batch of 4, its second image: 00005.png
    with pytest.raises(StatsError, match=r"NaN or infinite: .*images/00005\.png\. "):
        gm.compute_stats(folder, weights=offline_weights, batch_size=4, num_workers=0, progress=False)


def test_non_finite_features_name_the_sample_and_the_zip_member(tmp_path, offline_weights, monkeypatch):
    import zipfile

    from conftest import write_pngs

    folder = write_pngs(tmp_path / "images", render_images("shapes", 4, seed=1))
    with zipfile.ZipFile(tmp_path / "set.zip", "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"inner/{path.name}")
    poison(monkeypatch, {0: 2})
    with pytest.raises(StatsError, match=r"set\.zip:inner/00002\.png"):
        gm.evaluate(tmp_path / "set.zip", folder, metrics="fid", weights=offline_weights, num_workers=0,
                    progress=False)
    generator = gm.zoo.build("dcgan")[0].eval()
    poison(monkeypatch, {0: 3})
    with pytest.raises(StatsError, match=r"sample 3 \(seed 7\) of generator DCGANGenerator"):
        gm.fid(generator, folder, num_samples=4, seed=7, weights=offline_weights, progress=False)
    poison(monkeypatch, {0: 0})
    with pytest.raises(StatsError, match=r"image 0 of FID.update\(\) batch"):
        gm.FID(weights=offline_weights).update(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
