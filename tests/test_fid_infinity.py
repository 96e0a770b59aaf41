"""FD∞ (Chong & Forsyth 2020): equal to a plain NumPy oracle of the paper's procedure on the same subsets, close to
0 where FID_N is not, deterministic for a seed; through gm.fid_infinity, gm.evaluate and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg

import ganmetrics as gm
from ganmetrics.cli import main
from ganmetrics.errors import InputError
from ganmetrics.metrics.fid import fid_from_stats
from ganmetrics.metrics.fid_infinity import (
    default_smallest,
    fid_infinity,
    intercept_weights,
    subset_sizes,
    subsets,
)
from ganmetrics.stats import FeatureStats


def _stats(x: np.ndarray, keep: bool = False) -> FeatureStats:
    stats = FeatureStats(x.shape[1], keep_features=keep)
    for start in range(0, len(x), 97):
        stats.update(x[start:start + 97])
    return stats


def _oracle_fid(x: np.ndarray, mu_r: np.ndarray, sigma_r: np.ndarray) -> float:
    """TTUR's formula on float64 numpy: means, np.cov, scipy's sqrtm."""
    mu, sigma = x.mean(axis=0), np.cov(x, rowvar=False)
    covmean = scipy.linalg.sqrtm(sigma @ sigma_r).real
    return float(((mu - mu_r) ** 2).sum() + np.trace(sigma) + np.trace(sigma_r) - 2 * np.trace(covmean))


def test_subset_sizes_are_evenly_spaced_in_one_over_n():
    sizes = subset_sizes(50_000)
    assert len(sizes) == 15 and sizes[0] == 5000 and sizes[-1] == 50_000
    assert np.allclose(np.diff(1 / sizes), np.diff(1 / sizes)[0], rtol=2e-3)  # even in 1/N up to rounding
    assert default_smallest(50_000) == 5000 and default_smallest(9_999) == 4999 and default_smallest(3) == 2
    assert subset_sizes(200, points=5, smallest=50).tolist() == [50, 62, 80, 114, 200]
    with pytest.raises(InputError, match="smallest subset must lie in 2..40"):
        subset_sizes(40, smallest=50)


def test_equal_to_a_numpy_oracle_of_the_papers_procedure_on_the_same_subsets():
    rng = np.random.default_rng(0)
    d = 12
    real = rng.normal(size=(3000, d))
    gen = (rng.normal(0.3, 1.1, size=(400, d))).astype(np.float32)
    result = fid_infinity(_stats(gen, keep=True), _stats(real), seed=7)
    mu_r, sigma_r = real.mean(axis=0), np.cov(real, rowvar=False)
    sizes = subset_sizes(400)
    fids = [_oracle_fid(gen[rows].astype(np.float64), mu_r, sigma_r) for rows in subsets(400, sizes, 7)]
    slope, intercept = np.polyfit(1 / sizes, fids, 1)  # the authors fit sklearn's LinearRegression: the same line
    assert list(result["fid_n"]) == [str(n) for n in sizes]
    assert np.allclose(list(result["fid_n"].values()), fids, rtol=1e-9)
    assert result["fid_inf"] == pytest.approx(intercept, rel=1e-9)
    assert result["fid_inf"] == pytest.approx(float(intercept_weights(sizes) @ fids), rel=1e-9)


def test_near_zero_for_two_samples_of_one_distribution_where_fid_n_is_not():
    rng = np.random.default_rng(1)
    real, gen = _stats(rng.normal(size=(50_000, 64))), _stats(rng.normal(size=(2000, 64)), keep=True)
    biased = fid_from_stats(gen, real)
    unbiased = fid_infinity(gen, real)["fid_inf"]
    assert biased > 0.5 and abs(unbiased) < 0.05 * biased  # measured: 0.58 and 0.0096


def test_deterministic_for_a_seed_and_the_seed_matters():
    rng = np.random.default_rng(2)
    real, gen = _stats(rng.normal(size=(1000, 8))), _stats(rng.normal(0.2, 1, size=(300, 8)), keep=True)
    assert fid_infinity(gen, real, seed=3) == fid_infinity(gen, real, seed=3)
    assert fid_infinity(gen, real, seed=3)["fid_inf"] != fid_infinity(gen, real, seed=4)["fid_inf"]
    with pytest.raises(InputError, match="keep_features=True"):
        fid_infinity(real, gen)


def test_through_the_api_evaluate_and_the_cli(image_folders, tmp_path, capsys):
    shapes, blobs = image_folders
    result = gm.evaluate(shapes, blobs, metrics="fid,fid_inf", progress=False, num_workers=0)
    assert result["fid_inf"]["fid_n"]["20"] == pytest.approx(result["fid"], rel=1e-9)  # the last subset: all 20
    value, points = gm.fid_infinity(shapes, blobs, progress=False, num_workers=0, return_points=True)
    assert value == result["fid_inf"]["fid_inf"] and points == {int(n): f for n, f in result["fid_inf"]["fid_n"].items()}
    stats = tmp_path / "blobs.npz"
    assert main(["stats", str(blobs), "-o", str(stats), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(shapes), str(stats), "--metrics", "fid_inf", "--fid-inf-points", "4", "--json",
                 "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["fid_inf"]["fid_n"]) == ["10", "12", "15", "20"]
    assert main(["eval", str(shapes), str(stats), "--metrics", "fid_inf", "--fid-inf-smallest", "30"]) == 2
    assert "FD∞'s smallest subset must lie in 2..20" in capsys.readouterr().err
