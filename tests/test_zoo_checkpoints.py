"""Shipped-model checkpoints and sampling: export, SHA-256-checked loading, ``ganmetrics sample``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganmetrics.cli import main
from ganmetrics.errors import CheckpointError
from ganmetrics.imageio import decode_image
from ganmetrics.sources import open_source, quantize
from ganmetrics.train import TrainConfig, train
from ganmetrics.train.checkpoint import CHECKPOINT_NAME
from ganmetrics.zoo.checkpoints import (
    MODEL_FORMAT,
    export_generator,
    generator_from_checkpoint,
    load,
    read_manifest,
    write_manifest,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 2-step DCGAN run (its checkpoint holds G, D, the EMA and the optimisers)."""
    out = tmp_path_factory.mktemp("run")
    train(TrainConfig(model="dcgan", data="shapes32", num_images=64, out=str(out), steps=2, batch_size=8,
                      fid_every=-1, progress=False))
    return out


@pytest.fixture(scope="module")
def shipped(run_dir, tmp_path_factory):
    """The run exported like a shipped model: folder with dcgan.pt and manifest.json."""
    folder = tmp_path_factory.mktemp("checkpoints")
    entry = export_generator(run_dir / CHECKPOINT_NAME, folder / "dcgan.pt", extra={"fid_trained": 1.0})
    write_manifest([entry], folder)
    return folder


def test_export_keeps_only_the_ema_generator(run_dir, shipped):
    data = torch.load(shipped / "dcgan.pt", weights_only=True)
    assert data["format"] == MODEL_FORMAT and set(data) == {"format", "model", "config", "G_ema"}
    run = torch.load(run_dir / CHECKPOINT_NAME, weights_only=True)
    for name, tensor in run["G_ema"].items():
        assert torch.equal(data["G_ema"][name], tensor)
    entry = read_manifest(shipped)["dcgan"]
    assert entry["steps"] == 2 and entry["images_seen"] == 16 and entry["seed"] == 0 and entry["fid_trained"] == 1.0
    assert entry["bytes"] == (shipped / "dcgan.pt").stat().st_size < 3_000_000
    assert json.loads((shipped / "manifest.json").read_text())["format"] == "ganmetrics-zoo-manifest/1"


def test_load_checks_the_sha256(shipped, tmp_path):
    generator = load("dcgan", folder=shipped)
    assert not generator.training and generator.z_dim == 64 and generator.resolution == 32
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "manifest.json").write_text((shipped / "manifest.json").read_text())
    data = bytearray((shipped / "dcgan.pt").read_bytes())
    data[-100] ^= 1
    (tampered / "dcgan.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its SHA-256"):
        load("dcgan", folder=tampered)


def test_load_without_a_shipped_checkpoint_says_how_to_get_one(tmp_path):
    with pytest.raises(CheckpointError, match="ganmetrics train sngan"):
        load("sngan", folder=tmp_path)


def test_a_training_checkpoint_loads_as_its_ema_generator(run_dir, shipped):
    from_run = generator_from_checkpoint(run_dir / CHECKPOINT_NAME)
    from_export = generator_from_checkpoint(shipped / "dcgan.pt")
    torch.testing.assert_close(from_run.sample(4, seed=1), from_export.sample(4, seed=1), rtol=0, atol=0)


def test_sample_cli_writes_what_the_metrics_see(run_dir, tmp_path, capsys):
    """PNGs from `ganmetrics sample` decode to exactly the uint8 images the metrics make of the generator."""
    out = tmp_path / "samples"
    code = main(["sample", "dcgan", "--checkpoint", str(run_dir / CHECKPOINT_NAME), "-n", "10", "-o", str(out),
                 "--seed", "3", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["num_images"] == 10
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(10)]
    generator = generator_from_checkpoint(run_dir / CHECKPOINT_NAME)
    expected = quantize(generator.sample(10, seed=3)).permute(0, 2, 3, 1).numpy()
    decoded = np.stack([decode_image(str(f), f.name) for f in files])
    assert np.array_equal(decoded, expected)
    # ... and the images scored straight from the generator (ganmetrics.fid(G, num_samples=10, seed=3)) are these too
    direct = torch.cat(list(open_source(generator, num_samples=10, batch_size=10, seed=3)))
    assert np.array_equal(direct.permute(0, 2, 3, 1).numpy(), expected)


def test_sample_cli_without_shipped_model_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import ganmetrics.zoo.checkpoints as checkpoints

    monkeypatch.setattr(checkpoints, "CHECKPOINT_DIR", tmp_path)  # as if nothing were shipped
    code = main(["sample", "stylegan2", "-n", "2", "-o", str(tmp_path / "out")])
    assert code == 2
    assert "no trained checkpoint of 'stylegan2'" in capsys.readouterr().err


def test_zoo_and_train_are_reachable_from_the_top_level_package():
    """``import ganmetrics; ganmetrics.zoo.load(...)`` as the docs write it (a fresh interpreter: nothing imported)."""
    import subprocess
    import sys

    code = ("import ganmetrics, sys; assert 'ganmetrics.zoo' not in sys.modules; "
            "print(ganmetrics.zoo.load.__module__, ganmetrics.train.train.__module__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ganmetrics.zoo.checkpoints", "ganmetrics.train.loop"]


@pytest.mark.parametrize(("args", "message"), [
    (["--truncation", "0.5"], "has no truncation trick"),
    (["--label", "3"], "is unconditional: it takes no labels"),
])
def test_sample_cli_bad_options_for_the_model(run_dir, tmp_path, capsys, args, message):
    code = main(["sample", "dcgan", "--checkpoint", str(run_dir / CHECKPOINT_NAME), "-n", "2", "-o", str(tmp_path),
                 *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
