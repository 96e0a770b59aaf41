"""Sample grids (pixel for pixel) and the FID-against-N curve, from Python and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ganmetrics.cli import main
from ganmetrics.data.builtin import render_dataset
from ganmetrics.errors import InputError
from ganmetrics.metrics.fid_infinity import subset_sizes
from ganmetrics.plots import image_grid
from ganmetrics.sources import quantize
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


def test_cli_fid_curve_draws_the_fd_infinity_fit(tmp_path, capsys, offline_weights):
    images, _ = render_dataset("shapes32", 60, seed=3)
    np.save(tmp_path / "gen.npy", images)
    code = main(["fid", str(tmp_path / "gen.npy"), "shapes32", "--curve", str(tmp_path / "curve.png"), "--json",
                 "--weights", str(offline_weights), "--no-progress", "--num-workers", "0"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    sizes = [p["num_samples"] for p in result["curve"]]
    assert sizes == subset_sizes(60).tolist() and sizes[0] == 30 and sizes[-1] == 60
    assert result["curve"][-1]["fid"] == pytest.approx(result["fid"], rel=1e-6)  # the whole set
    assert result["fid_inf"] < result["curve"][0]["fid"]  # fewer samples, larger (biased) FID
    assert Image.open(tmp_path / "curve.png").size[0] > 300
