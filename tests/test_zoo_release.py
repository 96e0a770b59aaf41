"""The release procedure of shipped checkpoints, at toy sizes (2 steps, FID on 20 samples)."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from ganmetrics.api import compute_stats
from ganmetrics.data.builtin import render_dataset
from ganmetrics.train import TrainConfig, distributed
from ganmetrics.train.loop import Trainer
from ganmetrics.zoo.checkpoints import load, read_manifest
from ganmetrics.zoo.release import initial_generator, release


def test_initial_generator_is_the_trainers_step_zero(tmp_path):
    world = distributed.setup("cpu")
    try:
        trainer = Trainer(TrainConfig(model="sngan", num_images=64, out=str(tmp_path), seed=7, progress=False), world)
        state = trainer.G.module.state_dict()
    finally:
        distributed.teardown(world)
    initial = initial_generator("sngan", 7, {}).state_dict()
    assert state.keys() == initial.keys()
    assert all(torch.equal(state[k], initial[k]) for k in state)


def test_release_trains_measures_exports_and_records(tmp_path, offline_weights):
    images, _ = render_dataset("shapes32", 20, seed=9)
    reference = tmp_path / "reference.npz"
    compute_stats(images, weights=str(offline_weights), progress=False).save(reference)
    entry = release("dcgan", 2, reference=str(reference), fid_samples=20, num_images=64, runs=tmp_path / "runs",
                    checkpoints=tmp_path / "checkpoints", docs=tmp_path / "docs", require_condition=False)
    assert entry["shipped"]
    assert entry["steps"] == 2 and entry["fid_samples"] == 20 and entry["fid_protocol"] == "tf"
    assert entry["fid_init"] > 0 and entry["fid_trained"] > 0 and entry["fid_init"] != entry["fid_trained"]
    assert entry["trained_under_half_of_init"] == (entry["fid_trained"] < entry["fid_init"] / 2)
    assert read_manifest(tmp_path / "checkpoints")["dcgan"]["sha256"] == entry["sha256"]
    assert load("dcgan", folder=tmp_path / "checkpoints").resolution == 32
    grid = np.asarray(Image.open(tmp_path / "docs" / "dcgan.png"))
    assert grid.shape == (256, 256, 3) and grid.std() > 0
    page = (tmp_path / "docs" / "checkpoints.md").read_text()
    assert f"| dcgan | 2 | {entry['images_seen']:,} |" in page and f"{entry['fid_trained']:.2f}" in page and "![dcgan samples](dcgan.png)" in page
    assert "Not yet shipped: wgan_gp, sngan" in page


def test_a_run_that_misses_the_condition_is_not_shipped_and_its_initial_fid_is_reused(tmp_path, monkeypatch):
    import ganmetrics.zoo.release as release_module

    measured = []

    def fake_fid(generator, reference, **kwargs):  # FID 100 at init, 80 trained: not under half
        measured.append(generator.training)
        return 100.0 if len(measured) == 1 else 80.0

    monkeypatch.setattr(release_module, "fid", fake_fid)
    kwargs = dict(fid_samples=20, num_images=64, runs=tmp_path / "runs", checkpoints=tmp_path / "checkpoints",
                  docs=tmp_path / "docs")
    record = release("dcgan", 1, **kwargs)
    assert not record["shipped"] and not record["trained_under_half_of_init"]
    assert not (tmp_path / "checkpoints" / "dcgan.pt").exists() and read_manifest(tmp_path / "checkpoints") == {}
    assert (tmp_path / "runs" / "dcgan" / "release.json").is_file()
    again = release("dcgan", 2, **kwargs)  # more steps: the initial FID comes from the record, one FID measured
    assert len(measured) == 3 and again["fid_init"] == 100.0 and again["steps"] == 2


def test_the_checkpoints_table_names_settings_changed_from_the_defaults():
    from ganmetrics.zoo.registry import default_config
    from ganmetrics.zoo.release import changed_settings, checkpoints_table

    config = default_config("dcgan", d_lr=1e-4, ema_half_life_kimg=50.0).to_dict()
    entry = {"steps": 6000, "images_seen": 384_000, "wall_seconds": 600.0, "processes": 1, "machine": "cpu",
             "config": json.loads(json.dumps(config)), "fid_init": 398.0, "fid_trained": 190.0,
             "trained_under_half_of_init": True}
    assert changed_settings("dcgan", entry) == "d_lr 0.0001 (default 0.0002), ema_half_life_kimg 50.0 (default 10.0)"
    assert "| d_lr 0.0001 (default 0.0002), ema_half_life_kimg 50.0 (default 10.0) |" in checkpoints_table(
        {"dcgan": entry})
    defaults = dict(entry, config=json.loads(json.dumps(default_config("dcgan").to_dict())))
    assert "| none |" in checkpoints_table({"dcgan": defaults})
    lowered = dict(entry, changes=[{"step": 3000, "settings": {"d_lr": 5e-5}, "previous": {"d_lr": 1e-4}}],
                   config=dict(entry["config"], d_lr=5e-5))
    assert changed_settings("dcgan", lowered) == ("ema_half_life_kimg 50.0 (default 10.0), "
                                                  "d_lr 0.0001 → 5e-05 at step 3000")


def test_a_released_model_joins_the_zoo_leaderboard_config_in_zoo_order(tmp_path):
    from ganmetrics.leaderboard import read_config, zoo_config_path
    from ganmetrics.zoo.release import add_zoo_entry

    # the shipped config's settings with two entries of its own, whatever has shipped since
    settings = zoo_config_path().read_text().split("\n[entries.")[0]
    config = tmp_path / "leaderboard.toml"
    config.write_text(settings + '\n[entries.dcgan]\nzoo = "dcgan"\n\n[entries.sagan]\nzoo = "sagan"\n')
    assert add_zoo_entry(config, "stylegan2") and add_zoo_entry(config, "wgan_gp") and add_zoo_entry(config, "biggan")
    assert not add_zoo_entry(config, "dcgan")  # there already
    assert [e.name for e in read_config(config).tier("ci").entries] == ["dcgan", "wgan_gp", "sagan", "biggan",
                                                                        "stylegan2"]
