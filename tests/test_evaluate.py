"""The one-pass evaluation: all five metrics from Python and the CLI, each image decoded and
run through Inception once, and the per-metric functions agreeing with it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ganmetrics as gm
import ganmetrics.features
import ganmetrics.sources.files
from conftest import write_pngs
from ganmetrics.cli import main
from ganmetrics.data.synthetic import render_images

N = 24
OPTIONS = {"kid_subset_size": 12, "kid_subsets": 20, "is_splits": 4, "seed": 3}


@pytest.fixture(scope="module")
def folders64(tmp_path_factory):
    """Two folders of 24 PNGs at 64×64 (MS-SSIM needs sides divisible by 16, SWD powers of two)."""
    root = tmp_path_factory.mktemp("images64")
    return (write_pngs(root / "gen", render_images("blobs", N, seed=11, size=64)),
            write_pngs(root / "real", render_images("shapes", N, seed=12, size=64)))


@pytest.fixture(scope="module")
def counted_result(folders64, peer_weights_file):
    """evaluate() of all five metrics, counting decoded images and Inception forwards."""
    counts = {"decoded": 0, "forwarded": 0}
    decode, forward = ganmetrics.sources.files.decode_image, ganmetrics.features.FeatureExtractor.__call__

    def counting_decode(*args, **kwargs):
        counts["decoded"] += 1
        return decode(*args, **kwargs)

    def counting_forward(self, images):
        counts["forwarded"] += len(images)
        return forward(self, images)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ganmetrics.sources.files, "decode_image", counting_decode)
        patch.setattr(ganmetrics.features.FeatureExtractor, "__call__", counting_forward)
        result = gm.evaluate(*folders64, weights=peer_weights_file, progress=False, num_workers=0, **OPTIONS)
    return result, counts


def test_all_five_metrics_in_one_pass(counted_result):
    result, counts = counted_result
    assert set(result) >= {"fid", "kid", "is", "swd", "ms_ssim", "protocol", "num_samples"}
    assert result["num_samples"] == [N, N]
    assert counts == {"decoded": 2 * N, "forwarded": 2 * N}  # each image decoded once, through Inception once
    assert list(result["swd"]["levels"]) == [64, 32, 16]
    assert 0 < result["ms_ssim"] < 1 and result["fid"] > 0 and result["is"]["mean"] > 1


def test_cli_eval_json_equals_python(capsys, folders64, peer_weights_file, counted_result):
    code = main(["eval", str(folders64[0]), str(folders64[1]), "--metrics", "fid,kid,is,swd,ms_ssim", "--json",
                 "--weights", str(peer_weights_file), "--num-workers", "0", "--no-progress",
                 "--kid-subset-size", "12", "--kid-subsets", "20", "--is-splits", "4", "--seed", "3"])
    assert code == 0
    cli = json.loads(capsys.readouterr().out)
    python = counted_result[0]
    for key in ("fid", "kid", "is", "ms_ssim", "num_samples", "protocol"):
        assert cli[key] == python[key]
    assert cli["swd"]["avg"] == python["swd"]["avg"]
    assert {int(k): v for k, v in cli["swd"]["levels"].items()} == python["swd"]["levels"]


def test_metric_functions_equal_the_one_pass(folders64, peer_weights_file, counted_result):
    result = counted_result[0]
    gen, real = folders64
    kwargs = {"progress": False, "num_workers": 0}
    assert gm.swd(gen, real, num_images=N, seed=OPTIONS["seed"], **kwargs) == result["swd"]
    assert gm.ms_ssim_diversity(gen, num_pairs=N // 2, **kwargs) == pytest.approx(result["ms_ssim"], abs=1e-12)
    assert gm.fid(gen, real, weights=peer_weights_file, **kwargs) == pytest.approx(result["fid"], abs=1e-9)


def test_metric_subsets_and_gen_only_metrics(folders64):
    result = gm.evaluate(folders64[0], None, metrics="ms_ssim", progress=False, num_workers=0)
    assert set(result) == {"ms_ssim", "protocol", "num_samples"}


def test_swd_needs_images_not_statistics(tmp_path, folders64):
    stats_file = gm.FeatureStats.from_moments(np.zeros(2048), np.eye(2048), 10).save(tmp_path / "real.npz")
    with pytest.raises(gm.InputError, match="SWD"):
        gm.evaluate(folders64[0], stats_file, metrics="swd", progress=False)


@pytest.mark.parametrize("metrics, message", [("fid,bogus", "unknown metric"), ("fid", "real=")])
def test_bad_metric_requests(folders64, metrics, message):
    with pytest.raises(gm.InputError, match=message):
        gm.evaluate(folders64[0], None, metrics=metrics, progress=False)


def test_cli_eval_bad_input_exits_2(capsys, folders64):
    code = main(["eval", str(folders64[0]), str(folders64[1]), "--metrics", "fid,nope"])
    err = capsys.readouterr().err
    assert code == 2 and "nope" in err and "Traceback" not in err
