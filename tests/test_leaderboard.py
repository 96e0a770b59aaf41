"""Leaderboards: the verdict logic and the config (pure), the zoo's shipped config and results, and the
update / check cycle of small boards through the CLI (every entry kind, stored samples, exit codes 0/1/2)."""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

import ganmetrics as gm
from ganmetrics import leaderboard as lb
from ganmetrics.cli import main
from ganmetrics.leaderboard import report as out
from ganmetrics.leaderboard import scoring
from ganmetrics.leaderboard.config import Gate, Settings, read_config
from ganmetrics.leaderboard.results import FAILED, IMPROVED, PASSED, WITHIN_GATE, judge, record_tier, stale
from ganmetrics.weights import sha256_file
from ganmetrics.zoo.checkpoints import read_manifest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "leaderboard"


@pytest.fixture(autouse=True)
def _outside_ci(monkeypatch):
    """These tests run ``--update`` as on a developer's machine, whatever ``$CI`` says: under CI it refuses to
    rewrite stored results (the test of that refusal sets ``CI`` itself)."""
    monkeypatch.delenv("CI", raising=False)


# --- the verdict (pure) -------------------------------------------------------------------------------


def test_judge_follows_tolerance_direction_and_gates():
    kid = {"mean": 0.1, "std": 0.01}
    assert judge("g", "fid", 100.0, 100.001, 2e-3, {}).status == PASSED
    moved_std = judge("g", "kid", kid, {"mean": 0.1, "std": 0.02}, 5e-6, {})  # headline same, a detail moved
    assert moved_std.status == FAILED and "kid.std: 0.01 → 0.02 moved" in moved_std.message
    better = judge("g", "fid", 100.0, 90.0, 2e-3, {})
    assert better.status == IMPROVED and "run `ganmetrics leaderboard --update`" in better.message
    assert judge("g", "precision", 0.5, 0.6, 0.01, {}).status == IMPROVED  # higher is better
    worse = judge("g", "fid", 100.0, 101.0, 2e-3, {})
    assert worse.status == FAILED and worse.message == ("g FID: stored 100, now 101: worse by 1, beyond the "
                                                        "tolerance 0.002; no gate allows it")
    gates = {"fid": {"max_increase": Gate(0.02, relative=True)}, "precision": {"max_decrease": Gate(0.05)}}
    assert judge("g", "fid", 100.0, 101.9, 2e-3, gates).status == WITHIN_GATE  # 2 % of 100
    beyond = judge("g", "fid", 100.0, 102.1, 2e-3, gates)
    assert beyond.status == FAILED and "beyond its gate max_increase = 2% (2)" in beyond.message
    assert judge("g", "precision", 0.5, 0.46, 0.01, gates).status == WITHIN_GATE
    assert judge("g", "precision", 0.5, 0.44, 0.01, gates).status == FAILED
    # MS-SSIM has no better side: either direction beyond the tolerance fails unless a gate allows it
    assert judge("g", "ms_ssim", 0.1, 0.09, 1e-5, {}).status == FAILED
    assert judge("g", "ms_ssim", 0.1, 0.09, 1e-5, {"ms_ssim": {"max_decrease": Gate(0.02)}}).status == WITHIN_GATE
    assert judge("g", "fid", 100.0, math.nan, 2e-3, {}).status == FAILED
    assert judge("g", "swd", {"levels": {"32": 1.0}, "avg": 1.0}, None, 5e-4, {}).status == FAILED


def test_drift_allows_float32_rounding_only():
    stored = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    assert scoring.drift(stored, stored.copy()) is None
    flipped = stored.copy().reshape(-1)
    allowed = int(scoring.MAX_DRIFT_FRACTION * flipped.size)  # 1 of 1,920
    flipped[:allowed] = np.where(flipped[:allowed] < 255, flipped[:allowed] + 1, 254)
    assert scoring.drift(stored, flipped.reshape(stored.shape)) is None
    two = stored.copy()
    two[0, 0, 0, 0] = (int(two[0, 0, 0, 0]) + 2) % 256
    assert "by up to 2 level(s)" in scoring.drift(stored, two)
    many = stored.reshape(-1).copy()
    many[: allowed + 5] ^= 1  # one level apart, but too many values
    assert "differ from the stored ones" in scoring.drift(stored, many.reshape(stored.shape))
    assert "shape" in scoring.drift(stored, stored[:5])


def test_stale_names_changed_settings_and_artefacts_but_not_the_device_or_the_limits():
    def record(sha: str = "a", **settings) -> dict:
        return {"settings": Settings(**settings).stored(), "source": {"kind": "generator", "sha256": sha * 64}}

    stored = record(num_samples=10, device="cpu")
    assert stale("g", stored, record(num_samples=10, device="cuda", tolerances={"fid": 1},
                                     gates={"fid": {"max_increase": Gate(0.02, True)}})) == []
    moved = stale("g", stored, record("b", num_samples=20, device="cpu"))
    assert moved[0].startswith("g: its settings changed since it was scored (num_samples 10 → 20)")
    assert moved[1].startswith("g: its generator artefact changed since it was scored (sha256 aaaaaaaaaaaa… → bbbb")
    # a results file written before a setting existed: the entry was scored with that setting's default
    older = {**stored, "settings": {k: v for k, v in stored["settings"].items() if k not in ("bootstrap", "ci")}}
    assert stale("g", older, stored) == []
    assert "bootstrap 0 → 100" in stale("g", older, record(num_samples=10, device="cpu", bootstrap=100))[0]


def test_a_partial_update_keeps_the_other_entries_in_config_order():
    def entry(fid):
        return {"scores": {"fid": fid}, "tolerances": {"fid": 2e-3}}
    results = record_tier({}, "ci", {"a": entry(1.0), "b": entry(2.0)}, entries=["a", "b"], samples=None, replace=True)
    results = record_tier(results, "ci", {"b": entry(3.0)}, entries=["a", "b", "c"], samples=None, replace=False)
    assert list(results["tiers"]["ci"]["entries"]) == ["a", "b"]
    assert results["tiers"]["ci"]["entries"]["a"]["scores"]["fid"] == 1.0
    assert results["tiers"]["ci"]["entries"]["b"]["scores"]["fid"] == 3.0
    assert "Measured on the zoo's stored" in results["tiers"]["ci"]["tolerance_basis"]["fid"]
    dropped = record_tier(results, "ci", {"b": entry(3.0)}, entries=["b"], samples=None, replace=False)
    assert list(dropped["tiers"]["ci"]["entries"]) == ["b"]  # an entry gone from the config goes from the results


# --- the config (pure) --------------------------------------------------------------------------------

BASE = """metrics = ["fid", "kid"]
reference = "shapes32"
num_samples = 10
[entries.g]
generator = "tinygan:make_generator"
"""


def _config(tmp_path: Path, text: str, name: str = "ganmetrics-leaderboard.toml") -> Path:
    (tmp_path / "ckpt.pt").write_bytes(b"x")
    path = tmp_path / name
    path.write_text(text)
    return path


def test_settings_layer_shared_tier_entry(tmp_path):
    path = _config(tmp_path, BASE.replace('reference = "shapes32"', 'reference = "builtin:shapes32"\n'
                                          'reference_images = 10\nseed = 3\n')
                   + 'num_samples = 30\ncheckpoint = "ckpt.pt"\nkwargs = { mix = 0.5 }\n'
                   + '[tiers.ci]\nnum_samples = 20\nbatch_size = 5\n[tiers.full]\nseed = 4\n'
                   + '[gates]\nfid = { max_increase = "2%" }\n')
    config = read_config(path)
    assert list(config.tiers) == ["ci", "full"] and config.tier(None).name == "ci"
    ci, full = config.tier("ci").entries[0], config.tier("full").entries[0]
    assert (ci.settings.num_samples, ci.settings.batch_size, ci.settings.seed) == (20, 5, 3)  # the tier's key wins
    assert (full.settings.num_samples, full.settings.seed) == (30, 4)  # the entry's own over the shared 10
    assert ci.checkpoint == str(tmp_path / "ckpt.pt") and ci.kwargs == {"mix": 0.5}
    assert ci.settings.gates["fid"]["max_increase"] == Gate(0.02, relative=True)
    assert config.results == tmp_path / "ganmetrics-leaderboard-results.json"
    with pytest.raises(lb.InputError, match=r"no tier 'nope' \(tiers: ci, full\)"):
        config.tier("nope")


def test_config_is_found_in_the_folder_or_its_pyproject(tmp_path):
    assert lb.find_config(tmp_path) is None and lb.default_config(tmp_path) == lb.zoo_config_path()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert lb.find_config(tmp_path) is None
    body = "\n".join(line if not line.startswith("[entries") else "[tool.ganmetrics.leaderboard.entries.g]"
                     for line in BASE.splitlines())
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.ganmetrics.leaderboard]\n' + body)
    assert lb.find_config(tmp_path) == tmp_path / "pyproject.toml"
    assert read_config(tmp_path / "pyproject.toml").tier(None).entries[0].name == "g"
    _config(tmp_path, BASE)
    assert lb.find_config(tmp_path) == tmp_path / "ganmetrics-leaderboard.toml"  # the dedicated file first


@pytest.mark.parametrize("change, where, says", [
    ("num_samples = 10", "num_samples", "must be an integer >= 1, got 0"),
    ('metrics = ["fid", "kid"]', "metrics", "unknown metric 'fdi'"),
    ('reference = "shapes32"', "reference", "does not exist, and 'nope.npz' is not a bundled statistics name"),
    ('generator = "tinygan:make_generator"', "entries.g.generator", "is not \"module:callable\""),
    ('generator = "tinygan:make_generator"', "entries.g", "give exactly one of zoo, generator, torchscript, samples"),
    ('generator = "tinygan:make_generator"', "entries.g.zoo", "unknown zoo model 'nope'"),
    ('[entries.g]', "entries.g.colour", "unknown key"),
    ('metrics = ["fid", "kid"]', "gates.fid.max_decrease", "fid is better lower: a decrease is an improvement"),
    ('metrics = ["fid", "kid"]', "gates.fid.max_increase", "a percentage such as \"2%\", got 'lots'"),
    ('metrics = ["fid", "kid"]', "tolerances", "swd not among the metrics (fid, kid)"),
    ('metrics = ["fid", "kid"]', "options", "unknown option(s) kid_subset"),
    ('reference = "shapes32"', "reference_images", "builtin:shapes32 needs reference_images"),
    ('[entries.g]', "entries.g.checkpoint", "does not exist"),
    ("num_samples = 10", "feature_extractor", "'dino' is neither a built-in extractor (inception, dinov2-vit-l-14) "
                                              "nor module:attribute"),
    ("num_samples = 10", "bootstrap", "must be 0 (none) or >= 2 replicates, got 1"),
])
def test_a_broken_config_names_the_file_and_the_key(tmp_path, change, where, says):
    replacement = {
        "num_samples": "num_samples = 0", "metrics": 'metrics = ["fdi"]', "reference": 'reference = "nope.npz"',
        "entries.g.generator": 'generator = "tinygan.make_generator"',
        "entries.g": 'generator = "a:b"\nzoo = "dcgan"', "entries.g.zoo": 'zoo = "nope"',
        "entries.g.colour": '[entries.g]\ncolour = "red"',
        "gates.fid.max_decrease": 'metrics = ["fid"]\ngates = { fid = { max_decrease = 1 } }',
        "gates.fid.max_increase": 'metrics = ["fid"]\ngates = { fid = { max_increase = "lots" } }',
        "tolerances": 'metrics = ["fid", "kid"]\ntolerances = { swd = 1 }',
        "options": 'metrics = ["fid", "kid"]\noptions = { kid_subset = 3 }',
        "reference_images": 'reference = "builtin:shapes32"',
        "entries.g.checkpoint": '[entries.g]\ncheckpoint = "missing.pt"',
        "feature_extractor": 'num_samples = 10\nfeature_extractor = "dino"',
        "bootstrap": "num_samples = 10\nbootstrap = 1",
    }[where]
    path = _config(tmp_path, BASE.replace(change, replacement, 1))
    with pytest.raises(lb.ConfigError) as caught:
        read_config(path)
    assert str(caught.value).startswith(f"{path}: {where}: ") and says in str(caught.value)


def test_cli_exit_2_on_a_broken_config(tmp_path, capsys):
    path = _config(tmp_path, BASE.replace("num_samples = 10", 'num_samples = "many"'))
    assert main(["leaderboard", "--check", "--config", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (f"ganmetrics leaderboard: error: {path}: num_samples: must be an "
                                               "integer >= 1, got 'many'")
    (tmp_path / "bad.toml").write_text("entries = [")
    assert main(["leaderboard", "--config", str(tmp_path / "bad.toml")]) == 2
    assert "not valid TOML" in capsys.readouterr().err


# --- the zoo's leaderboard: one such config ------------------------------------------------------------


def test_zoo_config_lists_every_shipped_model_and_its_results_describe_them():
    """Every shipped checkpoint is an entry of every tier; the stored results were scored from that checkpoint
    with the config's settings (else --check fails them as stale)."""
    config = read_config(lb.zoo_config_path())
    results = lb.read_results(config.results)
    manifest = read_manifest()
    assert list(config.tiers) == ["ci", "full"] and list(results["tiers"]) == ["ci", "full"]
    for name, tier in config.tiers.items():
        assert [e.name for e in tier.entries] == list(manifest), f"{name}: every shipped model, in zoo order"
        stored = results["tiers"][name]["entries"]
        assert list(stored) == list(manifest), f"{name} tier: rerun ganmetrics leaderboard --update --tier {name}"
        for entry in tier.entries:
            record = stored[entry.name]
            assert record["source"]["sha256"] == manifest[entry.name]["sha256"], f"{name}/{entry.name}: another file"
            now = scoring.portable_settings(entry.settings, config.folder)
            assert stale(entry.name, record, {"settings": now, "source": record["source"]}) == []
    assert results["tiers"]["ci"]["samples"]["sha256"] == sha256_file(scoring.samples_path(config.results, "ci"))


def test_zoo_docs_page_is_the_one_generated_from_the_stored_results():
    config = read_config(lb.zoo_config_path())
    page = (REPO / "docs" / "leaderboard.md").read_text()
    assert page == out.markdown_page(config, lb.read_results(config.results)), \
        "docs/leaderboard.md is stale: run ganmetrics leaderboard --update"


TINY_ZOO = """metrics = ["fid", "kid", "swd", "ms_ssim", "precision", "recall"]
reference = "builtin:shapes32"
reference_images = 16
fid_reference = "shapes32"
num_samples = 16
batch_size = 8
options = { kid_subsets = 10, kid_subset_size = 8, ms_ssim_num_pairs = 8, swd_num_images = 16 }
[entries.dcgan]
zoo = "dcgan"
"""


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory) -> Path:
    """The zoo's setup at 16 images a side, updated once (32 Inception forwards)."""
    folder = tmp_path_factory.mktemp("tiny-zoo")
    (folder / "ganmetrics-leaderboard.toml").write_text(TINY_ZOO)
    config = read_config(folder / "ganmetrics-leaderboard.toml")
    lb.update(config, progress=False)
    return folder


def _copy(folder: Path, tmp_path: Path) -> Path:
    shutil.copytree(folder, tmp_path / "board")
    return tmp_path / "board" / "ganmetrics-leaderboard.toml"


def test_check_scores_the_stored_samples_and_judges_changed_ones(tiny_zoo, tmp_path, capsys, monkeypatch):
    """Another CPU may round a few generated pixels the other way: the check then scores the stored samples (the
    numbers do not move); samples that really changed are scored as made and fail by name."""
    path = _copy(tiny_zoo, tmp_path)
    results = json.loads((path.parent / "ganmetrics-leaderboard-results.json").read_text())
    with np.load(scoring.samples_path(path.parent / "ganmetrics-leaderboard-results.json", "default")) as data:
        assert sorted(data.files) == ["builtin:shapes32.16", "dcgan"] and data["dcgan"].shape == (16, 32, 32, 3)
        stored = data["dcgan"]
    generate = scoring.generate

    def rounded_elsewhere(G, s, device, z_dim):  # one level on 4 of 49,152 values
        images = generate(G, s, device, z_dim).copy()
        images.reshape(-1)[:4] = np.where(images.reshape(-1)[:4] < 255, images.reshape(-1)[:4] + 1, 254)
        return images
    monkeypatch.setattr(scoring, "generate", rounded_elsewhere)
    assert main(["leaderboard", "--check", "--config", str(path), "--no-progress", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["entries"]["dcgan"]["scores"] == results["tiers"]["default"]["entries"]["dcgan"]["scores"]

    monkeypatch.setattr(scoring, "generate", lambda *a: stored // 2)  # a darker generator: a real change
    assert main(["leaderboard", "--check", "--config", str(path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "dcgan: its samples changed (" in err and re.search(r"FAILED dcgan FID: stored [\d.]+, now", err)

    samples = scoring.samples_path(path.parent / "ganmetrics-leaderboard-results.json", "default")
    samples.write_bytes(samples.read_bytes()[:-10])  # a damaged samples file is an input error, not a pass
    assert main(["leaderboard", "--check", "--config", str(path), "--no-progress"]) == 2
    assert "is not the samples file the results record" in capsys.readouterr().err


def test_the_tolerances_are_not_so_loose_that_a_real_change_passes(tiny_zoo, tmp_path, capsys, monkeypatch):
    """A generator whose weights moved by 0.1 %, or the tf protocol's resize silently replaced by pytorch-fid's
    (half-pixel) one, move the numbers beyond their tolerances (better or worse: either is seen)."""
    path = _copy(tiny_zoo, tmp_path)
    from ganmetrics.zoo import checkpoints

    original = checkpoints.load

    def nudged(*args, **kwargs):
        G = original(*args, **kwargs)
        with torch.no_grad():
            next(G.parameters()).mul_(1.001)
        return G
    monkeypatch.setattr(checkpoints, "load", nudged)
    main(["leaderboard", "--check", "--config", str(path), "--no-progress", "--json"])
    findings = {f["metric"]: f["status"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert all(findings[m] != PASSED for m in ("fid", "kid", "swd", "ms_ssim")), findings
    monkeypatch.setattr(checkpoints, "load", original)

    import ganmetrics.features

    monkeypatch.setattr(ganmetrics.features, "preprocess",
                        lambda images, protocol, _original=ganmetrics.features.preprocess: _original(images, "pytorch-fid"))
    main(["leaderboard", "--check", "--config", str(path), "--no-progress", "--json"])
    findings = {f["metric"]: f["status"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert findings["fid"] != PASSED and findings["kid"] != PASSED
    assert findings["swd"] == PASSED and findings["ms_ssim"] == PASSED  # no Inception in these


def test_cli_refusals(tiny_zoo, tmp_path, capsys, monkeypatch):
    path = _copy(tiny_zoo, tmp_path)
    results_file = path.parent / "ganmetrics-leaderboard-results.json"
    monkeypatch.setenv("CI", "true")
    before = results_file.read_bytes()
    assert main(["leaderboard", "--update", "--config", str(path)]) == 2
    assert "refusing under CI" in capsys.readouterr().err and results_file.read_bytes() == before
    assert main(["leaderboard", "--check", "--config", str(path), "--entries", "nope"]) == 2
    assert "--entries: nope not in the config (entries: dcgan)" in capsys.readouterr().err
    assert main(["leaderboard", "--config", str(path), "--markdown", str(tmp_path / "m.md")]) == 2
    assert "--markdown reports a check: add --check" in capsys.readouterr().err
    results = json.loads(before)
    results["tiers"]["default"]["entries"]["dcgan"]["provenance"]["weights_sha256"] = "f" * 64
    results_file.write_text(json.dumps(results))
    assert main(["leaderboard", "--check", "--config", str(path), "--no-progress"]) == 2
    assert "not comparable" in capsys.readouterr().err
    results_file.write_text("{not json")
    assert main(["leaderboard", "--config", str(path)]) == 2
    assert "not a readable results file" in capsys.readouterr().err
    results_file.unlink()
    assert main(["leaderboard", "--check", "--config", str(path)]) == 2
    assert "no results of tier 'default' yet" in capsys.readouterr().err


def test_inception_score_needs_classifier_weights(tmp_path, peer_weights_file, capsys):
    """IS is scored with weights that have the classifier; the bundled statistics were made with other weights,
    so they are refused as a reference of those weights, naming the key."""
    path = _config(tmp_path, TINY_ZOO.replace('metrics = ["fid", "kid", "swd", "ms_ssim", "precision", "recall"]',
                                              'metrics = ["is", "fid"]'))
    assert main(["leaderboard", "--update", "--config", str(path), "--weights", str(peer_weights_file)]) == 2
    assert re.search(r"fid_reference shapes32 was computed with weights sha256 [0-9a-f]{64} \(the entries: "
                     r"[0-9a-f]{64}\); recompute the statistics", capsys.readouterr().err)
    path.write_text(TINY_ZOO.replace('fid_reference = "shapes32"\n', "").replace(
        'metrics = ["fid", "kid", "swd", "ms_ssim", "precision", "recall"]', 'metrics = ["is", "fid"]'))
    assert main(["leaderboard", "--update", "--config", str(path), "--weights", str(peer_weights_file),
                 "--no-progress", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)["tiers"]["default"]["entries"]["dcgan"]
    assert record["scores"]["is"]["mean"] >= 1.0 and record["reference"]["yardsticks"]["is"]["mean"] >= 1.0
    assert main(["leaderboard", "--update", "--config", str(path)]) == 2  # the default weights have no classifier
    assert "Inception Score" in capsys.readouterr().err


# --- users' entries: every kind, through one config ------------------------------------------------------


class _Scripted(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.z_dim = 4
        self.layer = torch.nn.Linear(4, 3 * 32 * 32)

    def forward(self, z):
        return torch.tanh(self.layer(z)).view(-1, 3, 32, 32)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_every_entry_kind_updates_checks_and_records_provenance(tmp_path, capsys):
    folder = tmp_path / "project"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("*-results*"))
    torch.manual_seed(0)
    torch.jit.script(_Scripted()).save(str(folder / "scripted.pt"))
    from ganmetrics.data.builtin import render_dataset

    np.savez(folder / "real.npz", render_dataset("shapes32", 12, seed=5)[0])
    np.savez(folder / "samples.npz", render_dataset("shapes32", 12, seed=6)[0])
    (folder / "ganmetrics-leaderboard.toml").write_text("""
metrics = ["fid", "precision"]
num_samples = 12
batch_size = 6
reference = "real.npz"
store_samples = false
options = { pr_k = 2 }
[entries.tiny]
generator = "tinygan:make_generator"
checkpoint = "tinygan.pt"
kwargs = { mix = 0.7 }
store_samples = true
[entries.scripted]
torchscript = "scripted.pt"
[entries.drawn]
samples = "samples.npz"
[entries.dcgan]
zoo = "dcgan"
truncation = 0.5
""")
    path = folder / "ganmetrics-leaderboard.toml"
    assert main(["leaderboard", "--config", str(path), "--entries", "dcgan", "--update"]) == 2
    assert "entry dcgan (ganmetrics-leaderboard.toml): DCGANGenerator has no truncation trick" in capsys.readouterr().err
    path.write_text(path.read_text().replace("truncation = 0.5\n", ""))
    assert main(["leaderboard", "--config", str(path), "--update", "--no-progress", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    entries = results["tiers"]["default"]["entries"]
    assert list(entries) == ["tiny", "scripted", "drawn", "dcgan"]
    assert entries["tiny"]["source"] | {"images_sha256": None} == {
        "kind": "generator", "target": "tinygan:make_generator", "checkpoint": "tinygan.pt", "kwargs": {"mix": 0.7},
        "sha256": sha256_file(folder / "tinygan.pt"), "images_sha256": None}
    assert entries["scripted"]["source"]["sha256"] == sha256_file(folder / "scripted.pt")
    assert entries["drawn"]["source"]["sha256"] == sha256_file(folder / "samples.npz")
    assert entries["dcgan"]["source"]["sha256"] == read_manifest()["dcgan"]["sha256"]
    provenance = entries["drawn"]["provenance"]
    assert {"protocol", "weights_sha256", "num_samples", "seed", "ganmetrics", "torch", "machine", "date",
            "seconds"} <= provenance.keys() and provenance["num_samples"] == 12
    assert entries["drawn"]["tolerances"] == {"fid": 2e-3, "precision": 1.5 / 12}
    assert entries["drawn"]["reference"]["source"] == "real.npz"
    with np.load(scoring.samples_path(folder / "ganmetrics-leaderboard-results.json", "default")) as data:
        assert data.files == ["tiny"]  # store_samples only where set

    assert main(["leaderboard", "--config", str(path), "--check", "--no-progress",
                 "--junit-xml", str(tmp_path / "j.xml"), "--markdown", str(tmp_path / "m.md")]) == 0
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    cases = [(c.get("classname"), c.get("name")) for c in suite.iter("testcase")]
    assert ("leaderboard.default.drawn", "precision") in cases and suite.get("failures") == "0"
    assert len(cases) == 4 * 2 + 4 + 1  # entry × metric, each entry's inputs, the tier
    assert "| drawn | FID |" in (tmp_path / "m.md").read_text()

    np.savez(folder / "samples.npz", render_dataset("shapes32", 12, seed=7)[0])  # new samples, not rescored
    assert main(["leaderboard", "--config", str(path), "--check", "--entries", "drawn", "--no-progress",
                 "--junit-xml", str(tmp_path / "j.xml")]) == 1
    assert "drawn: its samples artefact changed since it was scored" in capsys.readouterr().err
    failures = [c for c in ET.parse(tmp_path / "j.xml").getroot().iter("testcase") if c.find("failure") is not None]
    assert ("leaderboard.default.drawn", "inputs") in [(c.get("classname"), c.get("name")) for c in failures]


# --- the example project: what .ci/run checks, perturbed both ways --------------------------------------


@pytest.mark.slow
def test_example_project_fails_a_worse_generator_by_name_and_passes_a_better_one(tmp_path, capsys):
    """The shipped example (examples/leaderboard) with its generator made worse (less of the shape kept) fails by
    name with exit 1; made better, it passes and says to record the new numbers."""
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder)
    path = folder / "ganmetrics-leaderboard.toml"
    text = path.read_text()
    path.write_text(text.replace("mix = 0.8", "mix = 0.6"))
    assert main(["leaderboard", "--check", "--config", str(path), "--no-progress",
                 "--junit-xml", str(tmp_path / "j.xml")]) == 1
    err = capsys.readouterr().err
    assert re.search(r"FAILED tinygan FID: stored [\d.]+, now [\d.]+: worse by [\d.]+, beyond its gate "
                     r"max_increase = 5%", err)
    failed = [c.get("name") for c in ET.parse(tmp_path / "j.xml").getroot().iter("testcase")
              if c.find("failure") is not None]
    assert "fid" in failed and "precision" in failed
    path.write_text(text.replace("mix = 0.8", "mix = 0.95"))
    assert main(["leaderboard", "--check", "--config", str(path), "--no-progress"]) == 0
    assert "notice: tinygan FID: stored" in capsys.readouterr().err


def test_a_board_scores_with_its_own_feature_extractor_and_a_bootstrap(tmp_path, capsys):
    """``feature_extractor = "module:attribute"`` imports from the config's folder; the results record the
    extractor's name, and a changed extractor moves the numbers, which the check reports.  ``bootstrap = B`` stores
    each feature metric's interval, equal to ``gm.evaluate``'s bootstrap of the same images, and the tables show
    it."""
    from ganmetrics.data.builtin import render_dataset

    (tmp_path / "colorfeat.py").write_text(
        "class ColorMeans:\n    name = 'color-means'\n    scale = 1.0\n\n"
        "    def __call__(self, batch):\n        return batch.float().mean(dim=(2, 3)) * self.scale\n\n"
        "extractor = ColorMeans()\n")
    np.savez(tmp_path / "real.npz", render_dataset("shapes32", 40, seed=5)[0])
    np.savez(tmp_path / "samples.npz", render_dataset("shapes32", 40, seed=6)[0])
    path = tmp_path / "ganmetrics-leaderboard.toml"
    path.write_text('metrics = ["fid", "fid_inf", "precision", "ms_ssim"]\nnum_samples = 40\nreference = "real.npz"\n'
                    'feature_extractor = "colorfeat:extractor"\nbootstrap = 20\nci = 0.9\n'
                    'options = { ms_ssim_num_pairs = 4 }\n[entries.drawn]\nsamples = "samples.npz"\n')
    assert main(["leaderboard", "--config", str(path), "--update", "--no-progress", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)["tiers"]["default"]["entries"]["drawn"]
    assert record["provenance"]["feature"] == "color-means" and record["provenance"]["weights_sha256"] is None
    assert record["settings"]["feature_extractor"] == "colorfeat:extractor" and record["scores"]["fid"] > 0
    sys.path.insert(0, str(tmp_path))
    try:
        expected = gm.evaluate(str(tmp_path / "samples.npz"), str(tmp_path / "real.npz"),
                               ("fid", "fid_inf", "precision"), feature_extractor="colorfeat:extractor", bootstrap=20,
                               ci=0.9, batch_size=50, progress=False)["bootstrap"]
    finally:
        sys.path.remove(str(tmp_path))
    assert record["bootstrap"] == {**{m: expected[m] for m in ("fid", "fid_inf", "precision")},
                                   "resampled": dict.fromkeys(("fid", "fid_inf", "precision"), ["gen", "real"])}
    assert record["scores"]["fid_inf"]["fid_inf"] < record["scores"]["fid"]  # FD∞ removes FID's upward bias
    assert main(["leaderboard", "--config", str(path), "--check", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--config", str(path)]) == 0  # the stored table
    fid = record["bootstrap"]["fid"]
    assert f"{record['scores']['fid']:.4g} [{fid['low']:.4g}, {fid['high']:.4g}]" in capsys.readouterr().out
    page = out.markdown_page(read_config(path), json.loads((tmp_path / "ganmetrics-leaderboard-results.json")
                                                          .read_text()))
    assert "the 90% percentile interval of a bootstrap of 20 replicates" in page
    (tmp_path / "colorfeat.py").write_text((tmp_path / "colorfeat.py").read_text().replace("1.0", "1.5"))
    sys.modules.pop("colorfeat", None)
    assert main(["leaderboard", "--config", str(path), "--check", "--no-progress"]) == 1
    assert "drawn" in capsys.readouterr().out
