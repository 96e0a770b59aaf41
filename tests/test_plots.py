"""Sample grids (pixel for pixel) and the FID-against-N curve, from Python and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ganmetrics.cli import main
from ganmetrics.data.builtin import render_dataset
from ganmetrics.errors import InputError
from ganmetrics.metrics.fid import curve_counts, fid_curve, fid_from_stats
from ganmetrics.plots import image_grid
from ganmetrics.sources import quantize
from ganmetrics.stats import FeatureStats
from ganmetrics.zoo import load


def test_image_grid_tiles_row_by_row_with_white_padding():
    images = np.stack([np.full((2, 3, 3), value, np.uint8) for value in (10, 20, 30)])
    grid = image_grid(images, columns=2, padding=1)
    assert grid.shape == (2 * 2 + 1, 2 * 3 + 1, 3)
    assert (grid[:2, :3] == 10).all() and (grid[:2, 4:] == 20).all() and (grid[3:, :3] == 30).all()
    assert (grid[2] == 255).all() and (grid[:, 3] == 255).all() and (grid[3:, 4:] == 255).all()  # padding, empty tile
    assert image_grid(images).shape == (4, 6, 3)  # default: ceil(sqrt(3)) = 2 columns, no padding
    with pytest.raises(InputError, match="uint8 images"):
        image_grid(images.astype(np.float32))


def test_curve_counts_double_up_to_the_total():
    assert curve_counts(1000) == [50, 100, 200, 400, 800, 1000]
    assert curve_counts(50) == [50] and curve_counts(20) == [20]


def test_fid_curve_points_are_fids_of_the_first_n_features():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 8))
    gen = FeatureStats(8, keep_features=True)
    for start in range(0, 300, 64):
        gen.update(features[start:start + 64])
    real = FeatureStats(8)
    real.update(rng.normal(0.5, 1.0, size=(400, 8)))
    curve = fid_curve(gen, real)
    assert [p["num_samples"] for p in curve] == [50, 100, 200, 300]
    # the kept features are float32 copies, the streamed statistics saw float64: equal to float32 rounding
    assert curve[-1]["fid"] == pytest.approx(fid_from_stats(gen, real), rel=1e-6)
    first = FeatureStats(8)
    first.update(features[:100].astype(np.float32))
    assert curve[1]["fid"] == pytest.approx(fid_from_stats(first, real), rel=1e-12)
    with pytest.raises(InputError, match="keep_features"):
        fid_curve(real, gen)


def test_cli_grid_of_a_folder_and_of_a_zoo_model(tmp_path, capsys, image_folders):
    shapes = image_folders[0]
    assert main(["grid", str(shapes), "-o", str(tmp_path / "g.png"), "-n", "20", "--json"]) == 0
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid.shape == (4 * 32 + 3 * 2, 5 * 32 + 4 * 2, 3)  # 20 images: 5 columns, 4 rows, padding 2
    first = sorted(shapes.rglob("*.png"))[0]
    assert np.array_equal(grid[:32, :32], np.asarray(Image.open(first).convert("RGB")))
    assert json.loads(capsys.readouterr().out)["grid"] == str(tmp_path / "g.png")

    assert main(["grid", "dcgan", "-o", str(tmp_path / "z.png"), "-n", "4", "--padding", "0"]) == 0
    samples = quantize(load("dcgan").sample(4, seed=0)).permute(0, 2, 3, 1).numpy()  # = `ganmetrics sample`
    assert np.array_equal(np.asarray(Image.open(tmp_path / "z.png")), image_grid(samples))

    assert main(["grid", str(tmp_path / "missing"), "-o", str(tmp_path / "x.png")]) == 2
    assert "missing" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


def test_cli_fid_curve(tmp_path, capsys, offline_weights):
    images, _ = render_dataset("shapes32", 60, seed=3)
    np.save(tmp_path / "gen.npy", images)
    code = main(["fid", str(tmp_path / "gen.npy"), "shapes32", "--curve", str(tmp_path / "curve.png"), "--json",
                 "--weights", str(offline_weights), "--no-progress", "--num-workers", "0"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert [p["num_samples"] for p in result["curve"]] == [50, 60]
    assert result["curve"][-1]["fid"] == pytest.approx(result["fid"], rel=1e-6)
    assert result["curve"][0]["fid"] > result["curve"][-1]["fid"]  # fewer samples, larger (biased) FID
    assert Image.open(tmp_path / "curve.png").size[0] > 300
