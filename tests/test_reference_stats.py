"""The statistics shipped in reference_stats/: what the manifest says they are, loadable by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ganmetrics.api import as_stats
from ganmetrics.reference import available_references, reference_dir
from ganmetrics.stats import FEATURE_NAME
from ganmetrics.weights import sha256_file

STORAGE_TOLERANCE = 1e-4  # largest FID change the compact (float32 sigma) storage may cause


@pytest.fixture(scope="module")
def manifest() -> dict:
    return {entry["name"]: entry for entry in json.loads((reference_dir() / "manifest.json").read_text())["stats"]}


def test_shapes32_is_bundled_and_loads_by_name(manifest, offline_weights):
    entry = manifest["shapes32"]
    assert "shapes32" in available_references()
    stats = as_stats("shapes32")
    assert stats.num_samples == entry["num_samples"] == 10_000
    assert stats.meta["protocol"] == entry["protocol"] == "tf"
    assert stats.meta["feature"] == FEATURE_NAME
    assert stats.meta["weights_sha256"] == entry["weights_sha256"] == sha256_file(offline_weights)
    assert stats.meta["sigma_dtype"] == entry["sigma_dtype"] == "float32"
    assert stats.mu.shape == (2048,) and stats.sigma.shape == (2048, 2048) and stats.sigma.dtype == np.float64
    assert np.array_equal(stats.sigma, stats.sigma.T) and np.all(np.diag(stats.sigma) >= 0)
    assert (reference_dir() / entry["file"]).stat().st_size == entry["bytes"] <= 20_000_000


def test_compact_storage_error_was_measured_below_tolerance(manifest):
    errors = manifest["shapes32"]["storage_fid_error"]
    assert len(errors) >= 2
    for probe in errors.values():
        assert probe["abs_error"] == pytest.approx(abs(probe["fid_float64"] - probe["fid_float32_storage"]))
        assert probe["abs_error"] < STORAGE_TOLERANCE
