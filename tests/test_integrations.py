"""The torchmetrics adapters: values equal to the plain metric functions on the same images, states that
torchmetrics merges (what it does across processes) to the value of one metric fed everything."""

from __future__ import annotations

import pytest
import torch

import ganmetrics as gm
from ganmetrics.data.builtin import render_dataset
from peers import import_torchvision

import_torchvision()  # torchmetrics imports torchvision (see peers.import_torchvision)
tm = pytest.importorskip("ganmetrics.integrations.torchmetrics")


@pytest.fixture(scope="module")
def sets():
    fake = torch.from_numpy(render_dataset("shapes32", 16, seed=1)[0]).permute(0, 3, 1, 2)
    real = torch.from_numpy(render_dataset("shapes32", 16, seed=2)[0]).permute(0, 3, 1, 2)
    return fake, real


def test_fid_equals_gm_fid_and_merges_like_one_metric(sets):
    fake, real = sets
    expected = gm.fid(fake, real, progress=False)
    fed = tm.FID()
    fed.update(fake[:7])
    fed.update(fake[7:])
    fed.update(real, real=True)
    assert float(fed.compute()) == pytest.approx(expected, rel=1e-9)
    given = tm.FID(real=real.permute(0, 2, 3, 1).numpy())  # a reference given up front
    other = tm.FID(real=real.permute(0, 2, 3, 1).numpy())
    given.update(fake[:9])
    other.update(fake[9:])
    given.merge_state(other)  # torchmetrics' reduction of the states, as across processes
    assert float(given.compute()) == pytest.approx(expected, rel=1e-9)
    given.reset()
    with pytest.raises(gm.InputError, match="at least 2 fake images"), pytest.warns(UserWarning, match="before"):
        given.compute()


def test_kid_precision_recall_equal_the_plain_functions(sets):
    fake, real = sets
    kid = tm.KID(subsets=5, subset_size=8)
    pr = tm.PrecisionRecall(k=3)
    for metric in (kid, pr):
        metric.update(fake)
        metric.update(real, real=True)
    mean, std = kid.compute()
    # gm.kid runs Inception in batches of 64, the adapter in the batches it is fed: float32 features differ by
    # rounding (2.7e-6 relative at most, docs/reliability.md), which the std over 5 subsets amplifies
    assert (float(mean), float(std)) == pytest.approx(gm.kid(fake, real, subsets=5, subset_size=8, progress=False),
                                                      rel=1e-6)
    assert tuple(float(v) for v in pr.compute()) == gm.precision_recall(fake, real, progress=False)
    with pytest.raises(gm.InputError, match="feed both sides first"), pytest.warns(UserWarning, match="before"):
        tm.KID().compute()


def test_inception_score_with_classifier_weights(sets, peer_weights_file):
    fake, _ = sets
    metric = tm.InceptionScore(splits=2, weights=str(peer_weights_file))
    metric.update(fake.float() / 127.5 - 1)  # floats in value_range
    mean, std = metric.compute()
    expected = gm.inception_score(fake, splits=2, weights=str(peer_weights_file), progress=False)
    assert (float(mean), float(std)) == pytest.approx(expected, rel=1e-9)


def test_a_users_feature_extractor(sets):
    """``feature_extractor=`` as gm.fid takes it: the states have its dimension, the value equals gm.fid's, and
    reference statistics of another extractor are refused."""
    fake, real = sets

    def color_means(batch: torch.Tensor) -> torch.Tensor:
        return batch.float().mean(dim=(2, 3))

    expected = gm.fid(fake, real, feature_extractor=color_means, progress=False)
    fid = tm.FID(feature_extractor=color_means)
    fid.update(fake)
    fid.update(real, real=True)
    assert fid.fake_sum.shape == (3,) and float(fid.compute()) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(gm.StatsError, match="different feature: 'inception-2015-12-05/pool3'"):
        tm.FID(real="shapes32", feature_extractor=color_means)  # the bundled statistics are Inception's
