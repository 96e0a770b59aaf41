"""Inception Score and KID against torch-fidelity 0.4, and their math against hand-made cases.

The peer run computes IS (on input1), KID and FID in one call on the same PNG folders, with the
real FID conv weights plus a seeded classifier layer (``conftest.peer_state_dict``: default_1.pt
has no classifier, and IS needs one — parity of the IS *computation* holds for any classifier).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ganmetrics as gm
from ganmetrics.metrics.inception_score import inception_score_from_logits
from ganmetrics.metrics.kid import kid_from_features, polynomial_kernel, unbiased_mmd2
from peers import import_peer

IS_SPLITS, KID_SUBSETS, KID_SUBSET_SIZE, SEED = 4, 50, 12, 7


@pytest.fixture(scope="module")
def torch_fidelity_metrics(image_folders, peer_weights_file) -> dict:
    torch_fidelity = import_peer("torch_fidelity")
    a, b = image_folders
    return torch_fidelity.calculate_metrics(
        input1=str(b), input2=str(a), isc=True, fid=True, kid=True, cuda=False, cache=False, verbose=False,
        batch_size=16, feature_extractor_weights_path=str(peer_weights_file), isc_splits=IS_SPLITS,
        kid_subsets=KID_SUBSETS, kid_subset_size=KID_SUBSET_SIZE, rng_seed=SEED,
    )


@pytest.fixture(scope="module")
def ours(image_folders, peer_weights_file) -> dict:
    a, b = image_folders
    # torch-fidelity's one rng_seed seeds both the IS shuffle and the KID subsets.
    return gm.evaluate(b, a, metrics="fid,kid,is", weights=peer_weights_file, seed=SEED, is_splits=IS_SPLITS,
                       is_shuffle_seed=SEED, kid_subsets=KID_SUBSETS, kid_subset_size=KID_SUBSET_SIZE, progress=False, num_workers=0)


@pytest.mark.peer
def test_inception_score_equals_torch_fidelity(ours, torch_fidelity_metrics):
    theirs = torch_fidelity_metrics
    assert ours["is"]["mean"] == pytest.approx(theirs["inception_score_mean"], rel=1e-4)
    assert ours["is"]["std"] == pytest.approx(theirs["inception_score_std"], rel=1e-3, abs=1e-5)
    assert ours["is"]["mean"] > 1.5  # a peaked classifier, so the comparison is not trivially 1 == 1


@pytest.mark.peer
def test_kid_equals_torch_fidelity(ours, torch_fidelity_metrics):
    theirs = torch_fidelity_metrics
    assert ours["kid"]["mean"] == pytest.approx(theirs["kernel_inception_distance_mean"], abs=1e-6)
    assert ours["kid"]["std"] == pytest.approx(theirs["kernel_inception_distance_std"], abs=1e-6)


@pytest.mark.peer
def test_one_pass_fid_equals_torch_fidelity(ours, torch_fidelity_metrics):
    assert ours["fid"] == pytest.approx(torch_fidelity_metrics["frechet_inception_distance"], abs=1e-3)
    assert ours["num_samples"] == [20, 20]


def test_wrappers_equal_the_one_pass(image_folders, peer_weights_file, ours):
    a, b = image_folders
    kwargs = dict(weights=peer_weights_file, progress=False, num_workers=0)
    assert gm.inception_score(b, splits=IS_SPLITS, shuffle_seed=SEED, **kwargs) == (
        ours["is"]["mean"], ours["is"]["std"])
    assert gm.kid(b, a, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=SEED, **kwargs) == (
        ours["kid"]["mean"], ours["kid"]["std"])


def test_kid_from_saved_stats_with_features(tmp_path, image_folders, peer_weights_file, ours):
    a, b = image_folders
    path = gm.compute_stats(a, keep_features=True, weights=peer_weights_file, progress=False,
                            num_workers=0).save(tmp_path / "a.npz")
    result = gm.evaluate(b, path, metrics="kid", weights=peer_weights_file, seed=SEED,
                         kid_subsets=KID_SUBSETS, kid_subset_size=KID_SUBSET_SIZE, progress=False, num_workers=0)
    assert result["kid"]["mean"] == pytest.approx(ours["kid"]["mean"], abs=1e-9)


def test_kid_needs_features_in_stats(tmp_path, image_folders, peer_weights_file):
    a, b = image_folders
    stats = gm.FeatureStats.from_moments(np.zeros(2048), np.eye(2048), 20)
    with pytest.raises(gm.InputError, match="keep_features"):
        gm.evaluate(b, stats, metrics="kid", weights=peer_weights_file, progress=False, num_workers=0, strict=False)


def test_feature_only_weights_refuse_inception_score(image_folders, offline_weights):
    with pytest.raises(gm.WeightsError, match="classifier"):
        gm.inception_score(image_folders[0], weights=offline_weights, progress=False, num_workers=0)


# --- the math on hand-made cases -------------------------------------------------------------------

def test_is_of_confident_uniform_predictions_is_the_class_count():
    # Each sample certain of its own class, classes balanced in every split: IS = number of classes per split.
    logits = torch.full((40, 8), -1e4, dtype=torch.float64)
    logits[torch.arange(40), torch.arange(40) % 8] = 0
    mean, std = inception_score_from_logits(logits, splits=5, shuffle=False)
    assert mean == pytest.approx(8.0) and std == pytest.approx(0.0, abs=1e-12)


def test_is_of_identical_predictions_is_one():
    mean, _ = inception_score_from_logits(torch.randn(1, 10).repeat(30, 1), splits=3)
    assert mean == pytest.approx(1.0)


def test_is_too_few_images():
    with pytest.raises(gm.InputError, match="splits"):
        inception_score_from_logits(torch.randn(5, 10), splits=10)


def test_mmd_of_a_hand_computed_case():
    # x = [[1], [2]], y = [[0], [1]], k(a, b) = (a·b/1 + 1)^1 (linear + 1):
    # Kxx off-diagonal: 2·(1·2+1) = 6; Kyy: 2·(0·1+1) = 2; Kxy sum: (1)+(2)+(1)+(3) = 7.
    # MMD² = (6 + 2)/(2·1) − 2·7/4 = 4 − 3.5 = 0.5
    x = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    kernel = dict(degree=1, gamma=1.0, coef0=1.0)
    value = unbiased_mmd2(polynomial_kernel(x, x, **kernel), polynomial_kernel(y, y, **kernel),
                          polynomial_kernel(x, y, **kernel))
    assert value == pytest.approx(0.5)


def test_kid_clamps_subset_size_with_a_warning():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 16)), rng.normal(size=(25, 16)) + 1
    with pytest.warns(UserWarning, match="subsets of 25"):
        mean, _ = kid_from_features(x, y, subsets=5, subset_size=1000)
    assert mean > 0 and math.isfinite(mean)


def test_kid_of_one_distribution_is_near_zero_and_unbiased():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    mean, std = kid_from_features(x, y, subsets=50, subset_size=100)
    assert abs(mean) < 3 * std + 1e-3
