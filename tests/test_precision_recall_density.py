"""Precision, recall, density and coverage through the metric registry: on images, equal to torch-fidelity 0.4.0's
``prc`` (inception-v3-compat, layer "2048", k = 3) and to prdc 0.2 on the same pool3 features; the same values
from every entry point (gm.precision_recall / gm.density_coverage, gm.evaluate, a stats file with kept features,
``ganmetrics eval``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ganmetrics as gm
from ganmetrics.cli import main
from ganmetrics.data.synthetic import render_images
from ganmetrics.metrics.manifold import knn_radii
from peers import import_peer, write_pngs

N = 24  # images per set; two sets = 48 Inception forwards per pass


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """real: 24 crisp shapes; gen: 12 other shapes and 12 blobs, so precision and recall lie strictly inside (0, 1).
    (Seeds 5 and 6: every ball test at k = 2, 3, 5 is at least 3e-4 relative from its edge; with seeds 3 and 4 one
    lies 1e-5 from it, where float32 feature noise may flip it in either implementation.)"""
    root = tmp_path_factory.mktemp("prdc")
    real = write_pngs(root / "real", render_images("shapes", N, seed=1))
    gen = write_pngs(root / "gen", np.concatenate([render_images("shapes", N // 2, seed=5),
                                                  render_images("blobs", N // 2, seed=6)]))
    return gen, real


@pytest.fixture(scope="module")
def ours(sets, peer_weights_file):
    gen, real = sets
    return gm.evaluate(gen, real, metrics="precision,recall,density,coverage", weights=peer_weights_file,
                       progress=False, num_workers=0)


@pytest.fixture(scope="module")
def stats(sets, peer_weights_file):
    """Both sets' statistics with their pool3 features (float32, set order): (gen, real)."""
    return [gm.compute_stats(s, keep_features=True, weights=peer_weights_file, progress=False, num_workers=0)
            for s in sets]


@pytest.fixture(scope="module")
def features(stats):
    return [torch.as_tensor(s.features) for s in stats]


def edge_margin(real: torch.Tensor, fake: torch.Tensor, k: int) -> float:
    """Smallest relative gap between a cross distance and a k-NN radius: how far every ball test is from its edge.
    Our features and the peer's differ by ~1e-6 relative (float32 convolutions in another order), so the counts
    are equal only when no test is that close to its edge; the parity test checks this margin first."""
    d = torch.cdist(fake.double(), real.double())
    gaps = [((d - knn_radii(real, k)[None, :]).abs() / knn_radii(real, k)[None, :]).min(),
            ((d - knn_radii(fake, k)[:, None]).abs() / knn_radii(fake, k)[:, None]).min()]
    return float(min(gaps))


@pytest.mark.peer
def test_precision_and_recall_equal_torch_fidelity_on_images(sets, ours, features, peer_weights_file):
    torch_fidelity = import_peer("torch_fidelity")
    gen, real = sets
    theirs = torch_fidelity.calculate_metrics(
        input1=str(gen), input2=str(real), prc=True, cuda=False, cache=False, verbose=False, batch_size=16,
        feature_extractor="inception-v3-compat", feature_layer_prc="2048", prc_neighborhood=3,
        feature_extractor_weights_path=str(peer_weights_file))
    assert edge_margin(features[1], features[0], 3) > 1e-4
    assert 0 < ours["precision"] < 1 and 0 < ours["recall"] < 1
    assert ours["precision"] == pytest.approx(theirs["precision"], abs=1e-7)  # the peer's float32 mean
    assert ours["recall"] == pytest.approx(theirs["recall"], abs=1e-7)


@pytest.mark.peer
def test_density_and_coverage_equal_prdc_on_the_same_features(ours, features):
    prdc = import_peer("prdc")
    fake, real = features
    expected = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    assert ours["density"] == pytest.approx(expected["density"], abs=1e-9)
    assert ours["coverage"] == pytest.approx(expected["coverage"], abs=1e-9)
    assert 0 < ours["coverage"] < 1


def test_every_entry_point_gives_the_same_values(sets, ours, stats, peer_weights_file, tmp_path, capsys):
    gen, real = sets
    assert gm.precision_recall(gen, real, weights=peer_weights_file, progress=False, num_workers=0) == (
        ours["precision"], ours["recall"])
    # statistics saved with their features serve either side, without the network
    assert gm.density_coverage(*stats) == pytest.approx((ours["density"], ours["coverage"]), abs=1e-12)
    paths = [s.save(tmp_path / f"{role}.npz") for s, role in zip(stats, ("gen", "real"))]
    assert main(["eval", *map(str, paths), "--metrics", "precision,recall,density,coverage", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for name in ("precision", "recall", "density", "coverage"):
        assert printed[name] == pytest.approx(ours[name], abs=1e-12), name


def test_k_is_an_option_of_every_interface(stats, features, tmp_path, capsys):
    fake, reals = features
    prdc = import_peer("prdc")
    expected = prdc.compute_prdc(reals.numpy(), fake.numpy(), nearest_k=2)
    density, coverage = gm.density_coverage(*stats, k=2)
    assert (density, coverage) == pytest.approx((expected["density"], expected["coverage"]), abs=1e-9)
    paths = [s.save(tmp_path / f"{role}.npz") for s, role in zip(stats, ("gen", "real"))]
    capsys.readouterr()  # prdc prints its sample counts
    assert main(["eval", *map(str, paths), "--metrics", "density", "--dc-k", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["density"] == density


def test_bad_k_and_statistics_without_features_are_clear_errors(sets, peer_weights_file, tmp_path, capsys):
    gen, real = sets
    kwargs = dict(weights=peer_weights_file, progress=False, num_workers=0)
    with pytest.raises(gm.InputError, match="pr_k must be an integer >= 1"):
        gm.precision_recall(gen, real, k=0, **kwargs)
    stats = gm.FeatureStats.from_moments(np.zeros(2048), np.eye(2048), 20)
    with pytest.raises(gm.InputError, match="Precision needs the reference set's features.*keep_features"):
        gm.precision_recall(gen, stats, strict=False, **kwargs)
    few = tmp_path / "few.npy"
    np.save(few, render_images("shapes", 3, seed=9))
    with pytest.raises(gm.InputError, match="k=3 nearest neighbours needs more than 3 images.*got 3 and 24"):
        gm.precision_recall(few, real, **kwargs)
    # known before any image is read: the generated set's size (no network run for this error)
    tiny = gm.FeatureStats(2048, keep_features=True)
    tiny.update(np.ones((2, 2048), dtype=np.float32))
    with pytest.raises(gm.InputError, match="k=5 nearest neighbours needs more than 5 images.*got 2"):
        gm.density_coverage(tiny, real, weights=peer_weights_file, progress=False, num_workers=0, strict=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(gen), str(real), "--metrics", "coverage", "--dc-k", "0"])
    assert exit_info.value.code == 2 and "--dc-k: must be a positive integer" in capsys.readouterr().err
