"""The bootstrap (uncertainty on every pool3-feature metric) and the paired comparison of two generators: equal to a
plain NumPy loop over the same draws, seeded, and right on sets whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from conftest import requires_cuda
from ganmetrics.bootstrap import bootstrap_metrics, compare_sets, draws
from ganmetrics.cli import main
from ganmetrics.metrics.base import Context, SetData, split_options
from ganmetrics.stats import FeatureStats


def _set(x: np.ndarray, role: str = "gen", keep: bool = True) -> SetData:
    stats = FeatureStats(x.shape[1], keep_features=keep)
    stats.update(x)
    return SetData(role=role, description=role, num_images=len(x), stats=stats)


def _fid(x: np.ndarray, y: np.ndarray) -> float:
    mu1, mu2, s1, s2 = x.mean(0), y.mean(0), np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real))


OPTIONS = split_options(("fid", "kid"), {"kid_subsets": 10, "kid_subset_size": 50})


@pytest.mark.parametrize("device", [pytest.param("cuda", marks=requires_cuda)])
def test_on_the_gpu_the_replicates_moments_are_accumulated_there_with_the_same_result(device):
    """With ``device="cuda"`` each replicate's float64 moments are accumulated on the GPU (what makes the bootstrap
    faster there); the values equal the CPU's up to float64 rounding of reordered sums."""
    rng = np.random.default_rng(1)
    gen, real = rng.normal(0.2, 1, (300, 6)).astype(np.float32), rng.normal(0, 1, (400, 6)).astype(np.float32)
    on = {where: bootstrap_metrics(("fid",), _set(gen), _set(real, "real"), OPTIONS,
                                   Context(seed=3, device=torch.device(where)), replicates=20)
          for where in ("cpu", device)}
    assert on[device]["fid"]["mean"] == pytest.approx(on["cpu"]["fid"]["mean"], rel=1e-9)
    assert on[device]["fid"]["std"] == pytest.approx(on["cpu"]["fid"]["std"], rel=1e-6)


def test_equal_to_a_numpy_loop_over_the_same_draws():
    rng = np.random.default_rng(0)
    gen, real = rng.normal(0.2, 1, (300, 6)).astype(np.float32), rng.normal(0, 1, (400, 6)).astype(np.float32)
    result = bootstrap_metrics(("fid",), _set(gen), _set(real, "real"), OPTIONS, Context(seed=3), replicates=40,
                               confidence=0.9)
    fids = [_fid(gen[a].astype(np.float64), real[b].astype(np.float64))
            for a, b in zip(draws(300, 40, 3, "gen"), draws(400, 40, 3, "real"))]
    assert result["fid"]["mean"] == pytest.approx(np.mean(fids), rel=1e-9)
    assert result["fid"]["std"] == pytest.approx(np.std(fids, ddof=1), rel=1e-7)
    assert [result["fid"]["low"], result["fid"]["high"]] == pytest.approx(np.quantile(fids, [0.05, 0.95]), rel=1e-9)
    assert result["resampled"] == ["gen", "real"] and result["fid"]["replicates"] == 40


def test_seeded_and_a_reference_without_features_is_held_fixed():
    rng = np.random.default_rng(1)
    gen, real = _set(rng.normal(size=(200, 4))), _set(rng.normal(size=(200, 4)), "real", keep=False)
    one = bootstrap_metrics(("fid",), gen, real, OPTIONS, Context(seed=5), replicates=10)
    assert one == bootstrap_metrics(("fid",), gen, real, OPTIONS, Context(seed=5), replicates=10)
    assert one != bootstrap_metrics(("fid",), gen, real, OPTIONS, Context(seed=6), replicates=10)
    assert one["resampled"] == ["gen"]


def test_compare_finds_the_better_generator_and_no_difference_between_equals():
    rng = np.random.default_rng(2)
    real = _set(rng.normal(size=(600, 8)), "real")
    same, other, shifted = (_set(rng.normal(size=(400, 8))), _set(rng.normal(size=(400, 8))),
                            _set(rng.normal(0.4, 1, size=(400, 8))))
    better = compare_sets("fid", same, shifted, real, OPTIONS["fid"], Context(seed=0), replicates=200)
    assert better["difference"] < 0 and better["high"] < 0 and better["p_value"] < 0.01
    assert better["verdict"].startswith("A is better in FID: A − B = ")
    worse = compare_sets("kid", shifted, same, real, OPTIONS["kid"], Context(seed=0), replicates=50)
    assert worse["verdict"].startswith("B is better in KID")
    equal = compare_sets("fid", same, other, real, OPTIONS["fid"], Context(seed=0), replicates=200)
    assert equal["low"] < 0 < equal["high"] and equal["p_value"] > 0.05
    assert equal["verdict"].startswith("no significant difference in FID")


def test_cli_eval_report_and_compare(tmp_path, capsys):
    from ganmetrics.data.builtin import render_dataset

    for name, seed in (("a", 1), ("b", 2), ("c", 9)):
        np.save(tmp_path / f"{name}.npy", render_dataset("shapes32", 20, seed=seed)[0])
    a, b, c = (str(tmp_path / f"{n}.npy") for n in "abc")
    common = ["--no-progress", "--num-workers", "0"]
    assert main(["eval", a, b, "--metrics", "fid,kid,ms_ssim", "--kid-subset-size", "10", "--bootstrap", "6",
                 "--ci", "0.8", "--json", *common]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["bootstrap"]) == {"fid", "kid", "resampled"}  # MS-SSIM reads images, not features
    assert result["bootstrap"]["fid"]["confidence"] == 0.8 and result["bootstrap"]["fid"]["replicates"] == 6
    assert main(["report", a, b, "-o", str(tmp_path / "r.html"), "--metrics", "fid", "--bootstrap", "4",
                 *common]) == 0
    capsys.readouterr()
    assert "bootstrap ±" in (tmp_path / "r.html").read_text()
    assert main(["compare", c, b, a, "--bootstrap", "8", "--json", *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"a", "b", "difference", "low", "high", "p_value", "verdict"} <= out.keys() and out["replicates"] == 8
    assert main(["compare", c, b, a, "--bootstrap", "1"]) == 2
    assert "--bootstrap must be an integer >= 2" in capsys.readouterr().err
    assert main(["compare", c, b, a, "--metric", "swd"]) == 2
    assert "swd is not a metric of pool3 features comparing two sets" in capsys.readouterr().err
