"""FID through the Python API and the CLI: inputs, statistics files, determinism, bad input.

Every FID here is computed by ganmetrics itself; the peers are compared in test_parity.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

import ganmetrics as gm
from conftest import write_pngs
from ganmetrics.cli import main
from ganmetrics.data.synthetic import render_images


@pytest.fixture(scope="module")
def real_stats(image_folders, offline_weights) -> gm.FeatureStats:
    return gm.compute_stats(image_folders[0], weights=offline_weights, progress=False, num_workers=0)


@pytest.fixture(scope="module")
def blob_stats(image_folders, offline_weights) -> gm.FeatureStats:
    return gm.compute_stats(image_folders[1], weights=offline_weights, progress=False, num_workers=0)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_stats_carry_their_provenance(real_stats, offline_weights):
    from ganmetrics.weights import sha256_file

    assert real_stats.num_samples == 20
    assert real_stats.meta["protocol"] == "tf"
    assert real_stats.meta["weights_sha256"] == sha256_file(offline_weights)
    assert real_stats.mu.dtype == np.float64 and real_stats.sigma.shape == (2048, 2048)


def test_fid_of_a_set_with_itself_is_zero(image_folders, real_stats, offline_weights):
    value = gm.fid(image_folders[0], real_stats, weights=offline_weights, progress=False, num_workers=0)
    assert abs(value) < 1e-6


def test_batch_size_does_not_change_fid(image_folders, real_stats, blob_stats, offline_weights):
    reference = gm.fid(blob_stats, real_stats)  # blob_stats used batch_size 64 (one batch of 20)
    value = gm.fid(image_folders[1], real_stats, weights=offline_weights, batch_size=3, progress=False,
                   num_workers=0)
    assert value == pytest.approx(reference, abs=1e-4)


def test_generator_equals_its_saved_pngs(tmp_path, real_stats, offline_weights):
    """A generator scored directly and its samples saved as PNG give the same FID (StyleGAN quantisation)."""
    pool = torch.from_numpy(render_images("blobs", 12, seed=3)).permute(0, 3, 1, 2).float() / 127.5 - 1

    class Generator(torch.nn.Module):
        z_dim = 4

        def forward(self, z):  # deterministic in z, outputs float in (-1, 1) with off-grid values
            index = (z[:, 0].abs() * 1000).long() % len(pool)
            return (pool[index] * 0.97 + 0.01 * torch.tanh(z[:, 1:2, None, None])).clamp(-1, 1)

    generator = Generator()
    samples = gm.sources.open_source(generator, num_samples=12, batch_size=5, seed=7)
    images = torch.cat(list(samples)).permute(0, 2, 3, 1).numpy()
    folder = write_pngs(tmp_path / "samples", images)
    direct = gm.fid(generator, real_stats, num_samples=12, batch_size=5, seed=7, weights=offline_weights,
                    progress=False)
    saved = gm.fid(folder, real_stats, weights=offline_weights, progress=False, num_workers=0)
    assert direct == pytest.approx(saved, abs=1e-6)


def test_cli_stats_then_fid_against_the_file(capsys, tmp_path, image_folders, offline_weights, real_stats,
                                             blob_stats):
    out = tmp_path / "real.npz"
    code, stdout, _ = run_cli(capsys, "stats", image_folders[0], "-o", out, "--weights", offline_weights,
                              "--num-workers", "0", "--no-progress", "--json")
    assert code == 0 and json.loads(stdout)["num_samples"] == 20
    loaded = gm.load_stats(out)
    np.testing.assert_allclose(loaded.mu, real_stats.mu, rtol=0, atol=1e-6)
    # pytorch-fid and TTUR read the same file:
    with np.load(out) as data:
        assert data["mu"].shape == (2048,) and data["sigma"].shape == (2048, 2048)
    code, stdout, _ = run_cli(capsys, "fid", image_folders[1], out, "--weights", offline_weights,
                              "--num-workers", "0", "--no-progress", "--json")
    result = json.loads(stdout)
    assert code == 0 and result["num_samples"] == [20, 20] and result["protocol"] == "tf"
    # The CLI number is the API's number: same statistics, same Fréchet distance.
    assert result["fid"] == pytest.approx(gm.frechet_distance(blob_stats.mu, blob_stats.sigma, loaded.mu,
                                                              loaded.sigma), abs=1e-6)
    assert result["fid"] > 10


def test_zip_and_npy_inputs_equal_the_folder(tmp_path, image_folders, real_stats, offline_weights):
    folder = image_folders[1]
    archive = tmp_path / "blobs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for png in sorted(folder.glob("*.png")):
            zf.write(png, png.name)
    array = tmp_path / "blobs.npy"
    np.save(array, render_images("blobs", 20, seed=2))
    kwargs = {"weights": offline_weights, "progress": False, "num_workers": 0}
    values = [gm.fid(source, real_stats, **kwargs) for source in (folder, archive, array)]
    assert values[0] == pytest.approx(values[1], abs=1e-9)
    assert values[0] == pytest.approx(values[2], abs=1e-9)


def test_protocol_mismatch_is_refused_unless_not_strict(tmp_path, real_stats, offline_weights):
    other = gm.FeatureStats.from_moments(real_stats.mu, real_stats.sigma, real_stats.num_samples,
                                         meta=dict(real_stats.meta, protocol="clean"))
    with pytest.raises(gm.ProtocolError, match="strict=False"):
        gm.fid(real_stats, other)
    assert abs(gm.fid(real_stats, other, strict=False)) < 1e-6


# --- bad input from the CLI: one line on stderr, exit code 2, nothing written -----------------------

def assert_clean_error(code, stderr, *needles):
    assert code == 2
    assert "Traceback" not in stderr
    assert stderr.strip().count("\n") == 0, stderr
    for needle in needles:
        assert needle in stderr, stderr


def test_cli_missing_path(capsys, tmp_path, offline_weights):
    code, _, err = run_cli(capsys, "fid", tmp_path / "nope", tmp_path / "nada", "--weights", offline_weights)
    assert_clean_error(code, err, "nope")


def test_cli_empty_folder(capsys, tmp_path, image_folders, offline_weights):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    code, _, err = run_cli(capsys, "fid", tmp_path / "empty", image_folders[0], "--weights", offline_weights)
    assert_clean_error(code, err, "empty")


def test_cli_corrupt_image_names_the_file(capsys, tmp_path, image_folders, offline_weights):
    folder = write_pngs(tmp_path / "bad", render_images("shapes", 3))
    (folder / "00001.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "zero.png").write_bytes(b"")
    code, _, err = run_cli(capsys, "fid", folder, image_folders[0], "--weights", offline_weights,
                           "--num-workers", "0", "--no-progress")
    assert_clean_error(code, err)
    assert "00001.png" in err or "zero.png" in err


def test_cli_single_image_is_too_few(capsys, tmp_path, image_folders, offline_weights):
    folder = write_pngs(tmp_path / "one", render_images("shapes", 1))
    code, _, err = run_cli(capsys, "fid", folder, image_folders[0], "--weights", offline_weights,
                           "--num-workers", "0", "--no-progress")
    assert_clean_error(code, err, "2")


def test_cli_stats_file_with_missing_keys(capsys, tmp_path, image_folders, offline_weights):
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu=np.zeros(2048))
    code, _, err = run_cli(capsys, "fid", bad, image_folders[0], "--weights", offline_weights)
    assert_clean_error(code, err, "bad.npz")


def test_cli_truncated_weights(capsys, tmp_path, image_folders, peer_weights_file):
    truncated = tmp_path / "w.pth"
    truncated.write_bytes(peer_weights_file.read_bytes()[:4096])
    code, _, err = run_cli(capsys, "fid", image_folders[0], image_folders[1], "--weights", truncated)
    assert_clean_error(code, err, "w.pth")


def test_cli_stats_writes_nothing_on_failure(capsys, tmp_path, offline_weights):
    out = tmp_path / "out.npz"
    code, _, err = run_cli(capsys, "stats", tmp_path / "missing", "-o", out, "--weights", offline_weights)
    assert_clean_error(code, err, "missing")
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fid", "only-one-argument"])
    assert exc.value.code == 2


def test_demo_console_script_runs(offline_weights):
    """The README's main command, run as a user would (a fresh interpreter through `python -m`)."""
    result = subprocess.run([sys.executable, "-m", "ganmetrics", "demo", "-n", "6", "--json", "--no-progress",
                             "--weights", str(offline_weights)], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["num_samples"] == [6, 6] and payload["fid"] > 0
