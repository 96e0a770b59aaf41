"""The zoo leaderboard: its comparison logic, the stored file against the shipped checkpoints, the CLI's
check / update cycle on a tiny tier, and the check's sensitivity to a changed model or protocol."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from ganmetrics import leaderboard as lb
from ganmetrics.cli import main
from ganmetrics.errors import InputError
from ganmetrics.features import FeatureExtractor
from ganmetrics.leaderboard_report import format_board, markdown_page
from ganmetrics.weights import sha256_file
from ganmetrics.zoo.checkpoints import load, read_manifest

#: A tier small enough for a unit test: 16 generated and 16 real images through Inception.
TINY = lb.Tier(num_samples=16, real_images=16, kid_subsets=10, kid_subset_size=8, ms_ssim_pairs=8, swd_images=16,
               batch_size=8)
SCORES = {"fid": 100.0, "kid": {"mean": 0.1, "std": 0.01}, "is": None,
          "swd": {"levels": {"32": 60.0, "16": 50.0}, "avg": 55.0}, "ms_ssim": 0.09}
SCORED = {"machine": "m", "device": "cpu", "threads": 1, "date": "2026-11-30", "seconds": 1.0}


def _moved_keys(stored, now, tolerances=lb.TOLERANCES) -> list[str]:
    return [m.key for m in lb.compare_scores("m", stored, now, tolerances)]


# --- pure logic ---------------------------------------------------------------------------------------


def test_flatten_scores_names_every_number_and_skips_unscored_metrics():
    assert lb.flatten_scores(SCORES) == {"fid": 100.0, "kid.mean": 0.1, "kid.std": 0.01, "swd.levels.32": 60.0,
                                         "swd.levels.16": 50.0, "swd.avg": 55.0, "ms_ssim": 0.09}


def test_compare_scores_flags_exactly_the_numbers_beyond_their_tolerance():
    now = json.loads(json.dumps(SCORES))
    assert _moved_keys(SCORES, now) == []
    now["fid"] += 0.9 * lb.TOLERANCES["fid"]  # within
    now["swd"]["levels"]["16"] += 2 * lb.TOLERANCES["swd"]  # beyond
    now["kid"]["std"] -= 2 * lb.TOLERANCES["kid"]
    assert _moved_keys(SCORES, now) == ["kid.std", "swd.levels.16"]
    now["ms_ssim"] = math.nan  # a NaN never passes
    assert "ms_ssim" in _moved_keys(SCORES, now)
    moved = lb.compare_scores("dcgan", SCORES, {**SCORES, "fid": 101.5}, lb.TOLERANCES)
    assert [str(m) for m in moved] == ["dcgan fid: stored 100, now 101.5 (|Δ| 1.5 > tolerance 0.002)"]


def test_compare_scores_flags_a_number_scored_on_one_side_only():
    with_is = {**SCORES, "is": {"mean": 2.0, "std": 0.1}}
    assert _moved_keys(SCORES, with_is) == ["is.mean", "is.std"]
    assert _moved_keys(with_is, SCORES) == ["is.mean", "is.std"]


def test_drift_allows_float32_rounding_only():
    stored = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    assert lb.drift(stored, stored.copy()) is None
    flipped = stored.copy().reshape(-1)
    allowed = int(lb.MAX_DRIFT_FRACTION * flipped.size)  # 1 of 1,920
    flipped[:allowed] = np.where(flipped[:allowed] < 255, flipped[:allowed] + 1, 254)
    assert lb.drift(stored, flipped.reshape(stored.shape)) is None
    two = stored.copy()
    two[0, 0, 0, 0] = (int(two[0, 0, 0, 0]) + 2) % 256
    assert "by up to 2 level(s)" in lb.drift(stored, two)
    many = stored.reshape(-1).copy()
    many[: allowed + 5] ^= 1  # one level apart, but too many values
    assert "differ from the stored ones" in lb.drift(stored, many.reshape(stored.shape))
    assert "shape" in lb.drift(stored, stored[:5])


def _record(models: dict, settings=TINY, weights="a" * 64) -> dict:
    return {"settings": asdict(settings), "tolerances": dict(lb.TOLERANCES), "weights_sha256": weights,
            "real": {"ms_ssim": 0.07, "ms_ssim_pairs": 8, "scored": SCORED},
            "models": {name: {"checkpoint_sha256": "x", "scores": SCORES, "scored": SCORED} for name in models}}


def test_updated_keeps_other_models_only_on_the_same_basis():
    board = lb.updated({}, "ci", _record(["sagan", "dcgan"]), replace_models=True)
    assert list(board["tiers"]["ci"]["models"]) == ["dcgan", "sagan"]  # the registry's order
    merged = lb.updated(board, "ci", _record(["stylegan2"]), replace_models=False)
    assert list(merged["tiers"]["ci"]["models"]) == ["dcgan", "sagan", "stylegan2"]
    assert list(lb.updated(board, "ci", _record(["dcgan"]), replace_models=True)["tiers"]["ci"]["models"]) == ["dcgan"]
    with pytest.raises(InputError, match="weights_sha256 changed.*sagan"):
        lb.updated(board, "ci", _record(["dcgan"], weights="b" * 64), replace_models=False)
    full = lb.updated(board, "full", _record(["dcgan"]), replace_models=True)
    assert list(full["tiers"]) == ["ci", "full"] and board["tiers"].keys() == {"ci"}  # the input is not modified


def test_tier_settings_are_validated():
    with pytest.raises(InputError, match="kid_subset_size"):
        lb.Tier(num_samples=10, real_images=10, kid_subsets=10, kid_subset_size=20, ms_ssim_pairs=5, swd_images=10)
    with pytest.raises(InputError, match="num_samples must be a positive"):
        lb.Tier(num_samples=0, real_images=10, kid_subsets=10, kid_subset_size=5, ms_ssim_pairs=5, swd_images=10)
    with pytest.raises(InputError, match="no 'full' tier"):
        lb.tier_settings({"tiers": {"ci": {}}}, "full")
    with pytest.raises(InputError, match="unknown leaderboard tier"):
        lb.settings_for("huge")


# --- the stored leaderboard ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored() -> dict:
    return lb.read_leaderboard()


def test_stored_leaderboard_covers_every_shipped_checkpoint(stored, offline_weights):
    manifest = read_manifest()
    assert list(stored["tiers"]) == ["ci", "full"]
    for name, tier in stored["tiers"].items():
        assert tier["models"].keys() == manifest.keys(), f"{name} tier: rerun ganmetrics leaderboard --update"
        for model, entry in tier["models"].items():
            assert entry["checkpoint_sha256"] == manifest[model]["sha256"], f"{name}/{model} scored another file"
        # --check rescores with the stored settings; --update scores with the code's: they must agree
        assert lb.Tier(**tier["settings"]) == lb.TIERS[name]
        assert tier["tolerances"] == lb.TOLERANCES
        assert tier["weights_sha256"] == sha256_file(offline_weights)
        if name in lb.SAMPLE_TIERS:  # the check scores these stored uint8 inputs
            samples = lb.samples_path(lb.leaderboard_path(), name)
            assert tier["samples"]["sha256"] == sha256_file(samples), "rerun ganmetrics leaderboard --update"
            assert tier["samples"]["sets"] == ["real", *manifest]


def test_docs_page_is_the_one_generated_from_the_stored_file(stored):
    docs = lb.repository_docs()
    assert docs is not None
    assert (docs / "leaderboard.md").read_text() == markdown_page(stored), "rerun ganmetrics leaderboard --update"
    assert (docs / "leaderboard.png").stat().st_size > 10_000
    assert "dcgan" in format_board(stored)


# --- scoring, the check and the CLI on a tiny tier ------------------------------------------------------


@pytest.fixture(scope="module")
def extractor(offline_weights) -> FeatureExtractor:
    return FeatureExtractor(device="cpu", weights=str(offline_weights), progress=False)


def test_check_catches_a_changed_model_and_a_changed_resize(extractor, monkeypatch):
    """The tolerances are not so loose that a real change passes: a generator whose weights moved by 0.1 %,
    or the tf protocol's resize silently replaced by pytorch-fid's (half-pixel) one, move numbers beyond them."""
    real, reference = lb.real_pass(TINY, extractor, device="cpu", progress=False), lb.fid_reference(extractor)
    generator = load("dcgan")
    base = lb.score_generator(generator, TINY, real, reference, extractor, device="cpu", progress=False)
    again = lb.score_generator(generator, TINY, real, reference, extractor, device="cpu", progress=False)
    assert lb.compare_scores("dcgan", base, again, lb.TOLERANCES) == []  # deterministic
    rebatched = lb.score_generator(generator, replace(TINY, batch_size=5), real, reference, extractor, device="cpu",
                                   progress=False)
    assert lb.compare_scores("dcgan", base, rebatched, lb.TOLERANCES) == []  # float32 noise stays within
    with torch.no_grad():
        next(generator.parameters()).mul_(1.001)
    perturbed = lb.score_generator(generator, TINY, real, reference, extractor, device="cpu", progress=False)
    assert {"fid", "kid.mean", "swd.avg"} <= set(_moved_keys(base, perturbed))
    import ganmetrics.features

    monkeypatch.setattr(ganmetrics.features, "preprocess",
                        lambda images, protocol, _original=ganmetrics.features.preprocess: _original(images, "pytorch-fid"))
    real = lb.real_pass(TINY, extractor, device="cpu", progress=False)
    resized = lb.score_generator(load("dcgan"), TINY, real, reference, extractor, device="cpu", progress=False)
    assert {"fid", "kid.mean"} <= set(_moved_keys(base, resized))
    assert resized["swd"] == base["swd"] and resized["ms_ssim"] == base["ms_ssim"]  # no Inception in these


def test_inception_score_is_scored_with_classifier_weights(peer_weights_file):
    """Weights with the classifier bring IS; the bundled statistics were made with other weights, so they are
    refused as the FID reference (statistics of the real images made with these weights serve instead)."""
    with_classifier = FeatureExtractor(device="cpu", weights=str(peer_weights_file), progress=False)
    with pytest.raises(InputError, match="drop --weights"):
        lb.fid_reference(with_classifier)
    real = lb.real_pass(TINY, with_classifier, device="cpu", progress=False)
    scores = lb.score_generator(load("dcgan"), TINY, real, real.stats, with_classifier, device="cpu", progress=False)
    assert scores["is"]["mean"] >= 1.0 and scores["is"]["std"] >= 0.0


@pytest.fixture
def tiny_ci(monkeypatch):
    monkeypatch.setitem(lb.TIERS, "ci", TINY)
    monkeypatch.delenv("CI", raising=False)


def test_cli_update_then_check_passes_and_a_moved_number_fails_by_name(tmp_path, capsys, tiny_ci):
    board_file, docs = tmp_path / "leaderboard.json", tmp_path / "docs"
    assert main(["leaderboard", "--update", "--file", str(board_file), "--docs", str(docs), "--no-progress"]) == 0
    board = json.loads(board_file.read_text())
    entry = board["tiers"]["ci"]["models"]["dcgan"]
    assert entry["checkpoint_sha256"] == read_manifest()["dcgan"]["sha256"] and entry["scores"]["is"] is None
    assert (docs / "leaderboard.md").read_text() == markdown_page(board) and (docs / "leaderboard.png").is_file()
    capsys.readouterr()

    assert main(["leaderboard", "--check", "--file", str(board_file), "--no-progress", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["rescored"]["models"]["dcgan"]["scores"] == entry["scores"]

    entry["scores"]["fid"] += 0.01
    board["tiers"]["ci"]["models"]["retired_model"] = {**entry, "checkpoint_sha256": "0" * 64}
    board_file.write_text(json.dumps(board))
    assert main(["leaderboard", "--check", "--file", str(board_file), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "dcgan fid: stored" in err and "> tolerance 0.002" in err
    assert "retired_model: on the leaderboard but no checkpoint is shipped" in err

    assert main(["leaderboard", "--file", str(board_file), "--tier", "ci", "--chart", str(tmp_path / "c.png")]) == 0
    assert "dcgan" in capsys.readouterr().out
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_scores_the_stored_samples_and_checks_the_generator_separately(tmp_path, capsys, tiny_ci,
                                                                             monkeypatch):
    """Another CPU may round a few generated pixels the other way: the check then still scores the stored samples
    (the numbers do not move), while a generator whose samples really changed fails by name."""
    board_file = tmp_path / "leaderboard.json"
    assert main(["leaderboard", "--update", "--file", str(board_file), "--docs",
                 str(tmp_path / "docs"), "--no-progress"]) == 0
    board = json.loads(board_file.read_text())
    samples = lb.samples_path(board_file, "ci")
    assert board["tiers"]["ci"]["samples"]["sha256"] == sha256_file(samples)
    with np.load(samples) as data:
        assert sorted(data.files) == sorted(["real", *lb.shipped_models()]) and data["dcgan"].shape == (16, 32, 32, 3)
        stored = {name: data[name] for name in data.files}
    capsys.readouterr()

    def rounded_elsewhere(name, tier, **kwargs):  # one level on 4 of 49,152 values
        images = stored[name].copy()
        images.reshape(-1)[:4] = np.where(images.reshape(-1)[:4] < 255, images.reshape(-1)[:4] + 1, 254)
        return images
    monkeypatch.setattr(lb, "generate_samples", rounded_elsewhere)
    assert main(["leaderboard", "--check", "--file", str(board_file), "--no-progress", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rescored"]["models"]["dcgan"]["scores"] == board["tiers"]["ci"]["models"]["dcgan"]["scores"]

    monkeypatch.setattr(lb, "generate_samples", lambda name, tier, **kwargs: np.clip(stored[name].astype(int) + 3,
                                                                                     0, 255).astype(np.uint8))
    assert main(["leaderboard", "--check", "--file", str(board_file), "--no-progress"]) == 1
    assert "dcgan: the generator's samples moved: " in capsys.readouterr().err

    samples.write_bytes(samples.read_bytes()[:-10])  # a damaged samples file is an input error, not a pass
    assert main(["leaderboard", "--check", "--file", str(board_file), "--no-progress"]) == 2
    assert "is not the samples file the leaderboard records" in capsys.readouterr().err


def test_cli_refusals(tmp_path, capsys, monkeypatch, tiny_ci):
    board_file = tmp_path / "leaderboard.json"
    monkeypatch.setenv("CI", "true")
    assert main(["leaderboard", "--update", "--file", str(board_file)]) == 2
    assert "refusing under CI" in capsys.readouterr().err and not board_file.exists()
    assert main(["leaderboard", "--check", "--file", str(board_file)]) == 2
    assert "no 'ci' tier" in capsys.readouterr().err
    assert main(["leaderboard", "--num-samples", "8", "--models", "nope"]) == 2
    assert "--models: nope not shipped" in capsys.readouterr().err
    board_file.write_text(json.dumps(lb.updated({}, "ci", _record(["dcgan"], weights="f" * 64), replace_models=True)))
    assert main(["leaderboard", "--check", "--file", str(board_file), "--no-progress"]) == 2
    assert "not comparable" in capsys.readouterr().err
    board_file.write_text("{not json")
    assert main(["leaderboard", "--file", str(board_file)]) == 2
    assert "not a readable leaderboard file" in capsys.readouterr().err
