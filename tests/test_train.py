"""The trainer end to end: exact resume, two gloo processes under torchrun, clear errors.

Runs are tiny (64 training images, batch 4–8, a few steps) so that the file stays well under a minute
on 2 CPU cores; what is checked is bit-for-bit equality, which does not need long runs.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils.parametrizations import _SpectralNorm

from ganmetrics.cli import main
from ganmetrics.errors import InputError
from ganmetrics.train import TrainConfig, distributed, train
from ganmetrics.train.checkpoint import CHECKPOINT_NAME, load_training_checkpoint
from ganmetrics.train.loop import Trainer
from ganmetrics.zoo.checkpoints import export_generator

REPO = Path(__file__).resolve().parent.parent
#: (model, batch size, extra config) — small and fast, yet each exercises its own loss and regulariser
CASES = {
    "dcgan": (8, {}),  # BatchNorm in G and D, non-saturating loss
    "wgan_gp": (4, {"d_steps": 2}),  # gradient penalty, several D steps
    "stylegan2": (4, {"r1_interval": 2}),  # lazy R1 every 2nd D step, style mixing, noise inputs, EMA half-life
    "biggan": (4, {}),  # labels, spectral-norm buffers in G and D, attention, hierarchical z, 2 D steps
}


def config(model: str, out: Path, steps: int, **kwargs) -> TrainConfig:
    batch, overrides = CASES[model]
    return TrainConfig(model=model, data="shapes32", num_images=64, out=str(out), steps=steps, batch_size=batch,
                       checkpoint_every=2, fid_every=-1, progress=False, seed=5, model_overrides=overrides, **kwargs)


def assert_same_state(a: dict, b: dict) -> None:
    """Networks, EMA, optimisers and counters equal bit for bit."""
    assert (a["step"], a["d_step"]) == (b["step"], b["d_step"])
    for key in ("G", "D", "G_ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs"
    for key in ("opt_G", "opt_D"):
        for index, state in a[key]["state"].items():
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b[key]["state"][index][name])), \
                    f"{key} state {index}.{name} differs"


@pytest.mark.parametrize("model", list(CASES))
def test_resumed_run_equals_uninterrupted_run(tmp_path, model):
    straight = train(config(model, tmp_path / "straight", steps=4))
    assert straight.step == 4
    train(config(model, tmp_path / "resumed", steps=2))
    train(config(model, tmp_path / "resumed", steps=4))  # continues from the step-2 checkpoint
    assert_same_state(load_training_checkpoint(tmp_path / "straight" / CHECKPOINT_NAME),
                      load_training_checkpoint(tmp_path / "resumed" / CHECKPOINT_NAME))


def test_a_resumed_run_takes_schedule_changes_and_refuses_network_changes(tmp_path):
    """On resume ``--set`` may change the learning rates, the EMA half-life, R1's γ, style mixing, the
    minibatch-stddev group and the D steps per G step (recorded with their step, and Adam continues its moments at
    the new rate); a setting that shapes the networks is refused by name."""
    train(config("stylegan2", tmp_path / "run", steps=2))
    before = load_training_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    lowered = {**CASES["stylegan2"][1], "g_lr": 0.001, "d_lr": 0.0005, "mixing_prob": 0.0,
               "mbstd_group_size": 2, "d_steps": 2}
    world = distributed.setup("cpu")
    try:
        trainer = Trainer(dataclasses.replace(config("stylegan2", tmp_path / "run", steps=4),
                                              model_overrides=lowered), world)
        assert [group["lr"] for group in trainer.opt_G.param_groups] == [0.001]
        assert [group["lr"] for group in trainer.opt_D.param_groups] == [pytest.approx(0.0005 * 2 / 3)]  # lazy R1
        assert before["model_config"]["mixing_prob"] == 0.9 and trainer.G.module.mixing_prob == 0.0
        assert trainer.D.module.epilogue.mbstd.group_size == 2  # the D of the run, its group changed
        del trainer
        gc.collect()
    finally:
        distributed.teardown(world)
    train(dataclasses.replace(config("stylegan2", tmp_path / "run", steps=4), model_overrides=lowered))
    after = load_training_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    assert (after["model_config"]["g_lr"], after["model_config"]["d_lr"]) == (0.001, 0.0005)
    assert after["changes"] == [{"step": 2, "settings": {"g_lr": 0.001, "d_lr": 0.0005, "mixing_prob": 0.0,
                                              "mbstd_group_size": 2, "d_steps": 2},
                                 "previous": {"g_lr": before["model_config"]["g_lr"],
                                              "d_lr": before["model_config"]["d_lr"], "mixing_prob": 0.9,
                                              "mbstd_group_size": 4, "d_steps": 1}}]
    assert (before["d_step"], after["d_step"]) == (2, 2 + 2 * 2)  # two more iterations of two D steps each
    assert after["opt_G"]["param_groups"][0]["lr"] == 0.001
    shipped = export_generator(tmp_path / "run" / CHECKPOINT_NAME, tmp_path / "stylegan2.pt")
    assert shipped["changes"] == after["changes"] and shipped["config"]["g_lr"] == 0.001  # into the manifest
    train(dataclasses.replace(config("stylegan2", tmp_path / "run", steps=6), model_overrides=lowered))
    assert load_training_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)["changes"] == after["changes"]  # no change
    with pytest.raises(InputError, match=r"--set width 32 \(the run has 48\): .*checkpoint.pt continues a run whose "
                                         r"networks are fixed; on resume only g_lr, d_lr, ema_half_life_kimg, "
                                         r"r1_gamma, mixing_prob, mbstd_group_size, d_steps may change"):
        train(dataclasses.replace(config("stylegan2", tmp_path / "run", steps=8),
                                  model_overrides={**lowered, "width": 32}))


def test_training_changes_the_networks_and_logs(tmp_path):
    train(config("dcgan", tmp_path / "run", steps=2))
    first = load_training_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    train(config("dcgan", tmp_path / "run", steps=4))
    second = load_training_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    changed = [name for name in first["G"] if not torch.equal(first["G"][name], second["G"][name])]
    assert changed, "two more steps left G unchanged"
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 4 and "loss_d" in records[-1] and "loss_g" in records[-1]


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
                           "--standalone", "-m", "ganmetrics.train", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def torchrun_args(out: Path, steps: int) -> list[str]:
    return ["dcgan", "--data", "shapes32", "--num-images", "64", "--batch-size", "4", "--steps", str(steps),
            "--checkpoint-every", "2", "--fid-every", "-1", "--seed", "5", "--out", str(out), "--no-progress",
            "--device", "cpu"]


def test_two_gloo_processes_stay_in_sync_and_resume_exactly(tmp_path):
    """torchrun with 2 processes: every checkpoint checks that both ranks hold identical networks (else the run
    fails), and a run stopped at step 2 and resumed ends exactly where an uninterrupted one does."""
    straight = torchrun(*torchrun_args(tmp_path / "straight", 4))
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = torchrun(*torchrun_args(tmp_path / "resumed", 2))
    assert first.returncode == 0, first.stderr[-3000:]
    second = torchrun(*torchrun_args(tmp_path / "resumed", 4))
    assert second.returncode == 0, second.stderr[-3000:]
    a = load_training_checkpoint(tmp_path / "straight" / CHECKPOINT_NAME)
    b = load_training_checkpoint(tmp_path / "resumed" / CHECKPOINT_NAME)
    assert a["world_size"] == b["world_size"] == 2 and len(a["rng"]) == 2
    assert_same_state(a, b)


def test_two_processes_differ_from_one_only_by_the_data_split(tmp_path):
    """Sanity of the comparison above: the same run on 1 process (other data split and noise) ends elsewhere."""
    two = torchrun(*torchrun_args(tmp_path / "two", 2))
    assert two.returncode == 0, two.stderr[-3000:]
    one = torchrun(*torchrun_args(tmp_path / "one", 2), nproc=1)
    assert one.returncode == 0, one.stderr[-3000:]
    a = load_training_checkpoint(tmp_path / "two" / CHECKPOINT_NAME)
    b = load_training_checkpoint(tmp_path / "one" / CHECKPOINT_NAME)
    assert any(not torch.equal(a["G"][k], b["G"][k]) for k in a["G"])


def test_training_frees_its_ddp_wrappers_before_the_group_is_destroyed(tmp_path):
    """The root cause of the rare "terminate called without an active exception" (SIGABRT) at the end of a
    2-process run: the DDP wrappers live in reference cycles, so they outlived train() until some later garbage
    collection — in an unlucky run the interpreter's shutdown, after the process group was destroyed.  With the
    cyclic collector off (so that no collection happens by chance), none may be left once train() returns."""
    gc.disable()
    try:
        train(config("dcgan", tmp_path / "run", steps=2))
        alive = sum(isinstance(obj, DistributedDataParallel) for obj in gc.get_objects())
    finally:
        gc.enable()
    assert alive == 0


def test_one_spectral_norm_power_iteration_per_discriminator_update(tmp_path, monkeypatch):
    """SNGAN's D step calls D on the real and on the fake batch: both share one spectral-norm estimate, so each
    SN layer of D runs one power iteration per update of D (Miyato et al. 2018, Algorithm 1), not one per call;
    SNGAN's G has no spectral norm, so every power iteration counted here is D's."""
    calls = []
    original = _SpectralNorm._power_method
    world = distributed.setup("cpu")
    try:
        trainer = Trainer(TrainConfig(model="sngan", num_images=64, out=str(tmp_path), batch_size=4, seed=5,
                                      progress=False), world)
        monkeypatch.setattr(_SpectralNorm, "_power_method",
                            lambda self, *args: (calls.append(id(self)), original(self, *args))[1])
        layers = [m for m in trainer.D.module.modules() if isinstance(m, _SpectralNorm)]
        assert not any(isinstance(m, _SpectralNorm) for m in trainer.G.module.modules())
        trainer.discriminator_step()
    finally:
        distributed.teardown(world)
    matrices = [m for m in layers if m._u.numel() > 0]  # 1-D weights are normalised exactly, without iterating
    assert len(matrices) > 5 and sorted(calls) == sorted(id(m) for m in matrices)


@pytest.mark.parametrize("entry", ["ganmetrics.train", "ganmetrics"])
def test_a_training_process_ends_without_finalising_the_interpreter(tmp_path, entry):
    """The root cause of the rare SIGABRT at the end of a 2-process run (exit_process): a gloo worker thread that
    torch leaves running frees Python tensors while the interpreter finalises.  A process that trained ends with
    os._exit after flushing its output — an atexit hook (run at finalisation) never runs, the exit code and
    every line printed still arrive, and the checkpoint is complete."""
    argv = (["train"] if entry == "ganmetrics" else []) + [
        "dcgan", "--data", "shapes32", "--num-images", "64", "--batch-size", "4", "--steps", "2", "--fid-every", "-1",
        "--out", str(tmp_path / "run"), "--no-progress", "--device", "cpu"]
    script = ("import atexit, runpy, sys; atexit.register(print, 'interpreter finalised', flush=True); "
              f"sys.argv = ['x'] + {argv!r}; runpy.run_module({entry!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "interpreter finalised" not in done.stdout
    assert "steps 0 → 2" in done.stderr
    if entry == "ganmetrics":
        assert "trained dcgan to step 2" in done.stdout
    assert load_training_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)["step"] == 2
    failed = subprocess.run([sys.executable, "-c", script.replace("'dcgan'", "'nogan'")], cwd=REPO,
                            capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert failed.returncode == 2 and "nogan" in failed.stderr


def test_resuming_with_another_process_count_is_refused(tmp_path):
    train(config("dcgan", tmp_path / "run", steps=2))
    result = torchrun(*torchrun_args(tmp_path / "run", 4))
    assert result.returncode != 0
    assert "written by 1 process(es); resume it with as many" in result.stderr


def test_corrupted_checkpoint_is_a_clear_cli_error(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT_NAME).write_bytes(b"PK\x03\x04 not really a checkpoint")
    code = main(["train", "dcgan", "--data", "shapes32", "--num-images", "64", "--steps", "1", "--out", str(out),
                 "--no-progress", "--fid-every", "-1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot read checkpoint" in err and str(out / CHECKPOINT_NAME) in err
    assert "Traceback" not in err


def test_conditional_model_on_unlabelled_data_is_refused(tmp_path, capsys):
    images = tmp_path / "flat"
    assert main(["dataset", "shapes32", "-n", "20", "-o", str(tmp_path / "classes")]) == 0
    images.mkdir()
    for i, path in enumerate(sorted((tmp_path / "classes").rglob("*.png"))):
        path.rename(images / f"{i:03d}.png")
    code = main(["train", "biggan", "--data", str(images), "--steps", "1", "--out", str(tmp_path / "run"),
                 "--no-progress", "--fid-every", "-1"])
    assert code == 2
    assert "has no labels; pass --num-classes 0" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--checkpoint-every", "0"], "--checkpoint-every must be >= 1"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--log-every", "0"], "--log-every must be >= 1"),
    (["--steps", "-1"], "--steps must be >= 0"),
    (["--set", '{"widht": 32}'], "unknown dcgan setting(s) widht in --set; known: "),
    (["--set", "{width: 32}"], "--set must be a JSON object"),
    (["--set", "[1]"], "--set must be a JSON object"),
])
def test_bad_options_are_clear_errors(tmp_path, capsys, args, message):
    code = main(["train", "dcgan", "--num-images", "64", "--out", str(tmp_path / "run"), "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_unknown_model_is_named(tmp_path, capsys):
    assert main(["train", "progan", "--out", str(tmp_path / "run")]) == 2
    assert "unknown model 'progan'; choose one of dcgan" in capsys.readouterr().err
