"""ganmetrics.stats: streaming moments, statistics files, compatibility checks."""

from __future__ import annotations

import json
import pickle
import re
import warnings

import numpy as np
import pytest
import torch

from ganmetrics import _version
from ganmetrics.errors import ProtocolError, SourceNotFoundError, StatsError
from ganmetrics.stats import FEATURE_NAME, META_KEYS, STATS_FORMAT, FeatureStats, check_compatible, load_stats

D = 12


def features(seed: int, n: int, d: int = D, offset: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """``n`` correlated float64 feature vectors."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) @ (np.eye(d) + 0.3 * rng.standard_normal((d, d))) * scale + offset


def streamed(data: np.ndarray, batch_sizes, **kwargs) -> FeatureStats:
    """FeatureStats of ``data`` fed in consecutive batches of the given sizes (cycled)."""
    stats = FeatureStats(data.shape[1], **kwargs)
    start, i = 0, 0
    while start < len(data):
        size = batch_sizes[i % len(batch_sizes)]
        stats.update(data[start:start + size])
        start, i = start + size, i + 1
    return stats


def assert_moments(stats: FeatureStats, data: np.ndarray, rtol: float = 1e-12) -> None:
    """mu, sigma equal np.mean / np.cov(ddof=1) of ``data`` up to ``rtol`` of their largest entry."""
    expected_sigma = np.cov(data, rowvar=False, ddof=1)
    assert stats.num_samples == len(data)
    assert stats.mu.dtype == stats.sigma.dtype == np.float64
    np.testing.assert_allclose(stats.mu, data.mean(axis=0), rtol=0, atol=rtol * np.abs(data.mean(axis=0)).max())
    np.testing.assert_allclose(stats.sigma, expected_sigma, rtol=0, atol=rtol * np.abs(expected_sigma).max())


def saved_stats(tmp_path, name="stats.npz", *, protocol="tf", weights="ab" * 32, keep_features=False, n=50):
    stats = streamed(features(0, n), [16], keep_features=keep_features,
                     meta={"protocol": protocol, "feature": FEATURE_NAME, "weights_sha256": weights, "source": "unit"})
    return stats, stats.save(tmp_path / name)


# -- streaming moments --------------------------------------------------------------------------

@pytest.mark.parametrize("batch_sizes", [[1000], [1], [7, 100, 3, 389], [64]])
def test_streaming_equals_numpy(batch_sizes):
    data = features(1, 1000, offset=2.0)
    assert_moments(streamed(data, batch_sizes), data)


def test_torch_and_numpy_batches_agree():
    data = features(2, 300)
    from_torch = FeatureStats(D)
    for chunk in torch.from_numpy(data).float().split(64):
        from_torch.update(chunk)
    from_numpy = streamed(data.astype(np.float32), [64])
    np.testing.assert_array_equal(from_torch.sigma, from_numpy.sigma)
    assert_moments(from_torch, data.astype(np.float32).astype(np.float64))


def test_merge_equals_whole():
    data = features(3, 500)
    left, right = streamed(data[:123], [50]), streamed(data[123:], [77])
    merged = left.merge(right)
    assert merged is not left and merged is not right
    assert left.num_samples == 123  # inputs untouched
    assert_moments(merged, data)


def test_order_independent():
    data = features(4, 400)
    permuted = data[np.random.default_rng(0).permutation(len(data))]
    a, b = streamed(data, [33]), streamed(permuted, [128, 5])
    np.testing.assert_allclose(a.sigma, b.sigma, rtol=0, atol=1e-12 * np.abs(a.sigma).max())
    ab, ba = streamed(data[:100], [10]).merge(streamed(data[100:], [10])), \
        streamed(data[100:], [10]).merge(streamed(data[:100], [10]))
    np.testing.assert_allclose(ab.sigma, ba.sigma, rtol=0, atol=1e-12 * np.abs(a.sigma).max())


def test_large_offset_keeps_covariance_accurate():
    """Mean 1e4, std ~1: summing x xᵀ loses ~1e-7 here; Chan's centred update stays near ε."""
    data = features(5, 20000, offset=1e4, scale=0.3)
    stats = streamed(data, [1000, 37])
    assert_moments(stats, data, rtol=1e-10)
    naive = (data.T @ data - len(data) * np.outer(data.mean(0), data.mean(0))) / (len(data) - 1)
    expected = np.cov(data, rowvar=False)
    assert np.abs(naive - expected).max() > 1e3 * np.abs(stats.sigma - expected).max()  # the test can tell


def test_fewer_than_two_samples():
    stats = FeatureStats(D)
    with pytest.raises(StatsError, match="at least 1 images"):
        stats.mu  # noqa: B018
    stats.update(features(6, 1))
    assert stats.mu.shape == (D,)
    with pytest.raises(StatsError, match="at least 2 images are needed"):
        stats.sigma  # noqa: B018
    with pytest.raises(StatsError, match="at least 2 images are needed"):
        stats.save("unused.npz")


@pytest.mark.parametrize("bad", ["nan", "inf", "shape", "1d"])
def test_update_rejects_bad_batches(bad):
    batch = features(7, 10)
    if bad == "nan":
        batch[3, 4] = np.nan
    elif bad == "inf":
        batch[0, 0] = -np.inf
    elif bad == "shape":
        batch = batch[:, :-1]
    else:
        batch = batch[0]
    stats = FeatureStats(D)
    with pytest.raises(StatsError, match="NaN or infinite" if bad in ("nan", "inf") else r"shape \[N, 12\]"):
        stats.update(batch)
    assert stats.num_samples == 0


def test_keep_features_stores_float32_copies():
    data = features(8, 40).astype(np.float32)
    tensor = torch.from_numpy(data.copy())
    stats = FeatureStats(D, keep_features=True)
    stats.update(tensor[:25])
    stats.update(data[25:])
    tensor.zero_()  # the caller's buffer is reused: the kept features must not change
    assert stats.features.dtype == np.float32
    np.testing.assert_array_equal(stats.features, data)
    assert FeatureStats(D).features is None


def test_meta_is_mutable_and_saved(tmp_path):
    stats = streamed(features(9, 10), [4])
    stats.meta["source"] = "folder/x"
    stats.meta["extra"] = 3
    loaded = load_stats(stats.save(tmp_path / "s.npz"))
    assert loaded.meta["source"] == "folder/x" and loaded.meta["extra"] == 3


# -- files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("keep_features", [False, True])
def test_save_load_round_trip(tmp_path, keep_features):
    stats, path = saved_stats(tmp_path, keep_features=keep_features)
    loaded = load_stats(path)
    np.testing.assert_array_equal(loaded.mu, stats.mu)
    np.testing.assert_array_equal(loaded.sigma, stats.sigma)
    assert loaded.mu.dtype == loaded.sigma.dtype == np.float64
    assert loaded.num_samples == 50
    assert loaded.meta == {"format": STATS_FORMAT, "protocol": "tf", "feature": FEATURE_NAME,
                           "weights_sha256": "ab" * 32, "num_samples": 50, "covariance": "unbiased",
                           "source": "unit", "ganmetrics_version": _version.__version__}
    assert list(loaded.meta)[:len(META_KEYS)] == list(META_KEYS)
    if keep_features:
        assert loaded.features.dtype == np.float32
        np.testing.assert_array_equal(loaded.features, stats.features)
    else:
        assert loaded.features is None
    # saving the loaded statistics again changes nothing
    again = load_stats(loaded.save(tmp_path / "again.npz"))
    np.testing.assert_array_equal(again.sigma, stats.sigma)
    assert again.meta == loaded.meta


def test_compact_files_store_sigma_as_float32(tmp_path):
    stats, full = saved_stats(tmp_path, keep_features=False)
    compact = stats.save(tmp_path / "compact.npz", compact=True)
    with np.load(compact, allow_pickle=False) as data:
        assert data["sigma"].dtype == np.float32 and data["mu"].dtype == np.float64
    loaded = load_stats(compact)
    assert loaded.sigma.dtype == np.float64 and loaded.meta["sigma_dtype"] == "float32"
    np.testing.assert_array_equal(loaded.sigma, stats.sigma.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(loaded.mu, stats.mu)
    assert "sigma_dtype" not in load_stats(loaded.save(tmp_path / "full.npz")).meta  # saved in full again


def test_file_layout(tmp_path):
    """Keys and dtypes as DESIGN.md §4 says; meta is a plain (unpickled) JSON string."""
    _, path = saved_stats(tmp_path, keep_features=True)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["features", "meta", "mu", "sigma"]
        assert data["meta"].dtype.kind == "U" and data["meta"].shape == ()
        assert json.loads(str(data["meta"]))["format"] == STATS_FORMAT


def test_loaded_stats_merge_exactly(tmp_path):
    data = features(10, 200)
    first = streamed(data[:80], [20])
    loaded = load_stats(first.save(tmp_path / "first.npz"))
    assert_moments(loaded.merge(streamed(data[80:], [30])), data)
    loaded.update(data[80:])
    assert_moments(loaded, data)


def test_save_appends_npz_suffix(tmp_path):
    path = streamed(features(11, 10), [10]).save(tmp_path / "stats")
    assert path == tmp_path / "stats.npz" and path.is_file()


@pytest.mark.peer
def test_readable_by_pytorch_fid(tmp_path):
    from peers import import_peer

    fid_score = import_peer("pytorch_fid.fid_score")
    stats, path = saved_stats(tmp_path)
    mu, sigma = fid_score.compute_statistics_of_path(str(path), None, 1, 2048, "cpu")
    np.testing.assert_array_equal(mu, stats.mu)
    np.testing.assert_array_equal(sigma, stats.sigma)
    with np.load(path) as data:  # TTUR / clean-fid style
        np.testing.assert_array_equal(data["sigma"], stats.sigma)


def test_plain_npz_loads_with_warning(tmp_path):
    data = features(12, 30).astype(np.float32)
    path = tmp_path / "pytorch_fid_stats.npz"
    np.savez(path, mu=data.mean(0), sigma=np.cov(data, rowvar=False))
    with pytest.warns(UserWarning, match="no ganmetrics metadata"):
        stats = load_stats(path)
    assert stats.mu.dtype == np.float64
    assert stats.meta["protocol"] is None and stats.meta["weights_sha256"] is None
    assert stats.num_samples is None and stats.meta["source"] == str(path)
    np.testing.assert_array_equal(stats.sigma, np.cov(data, rowvar=False))
    with pytest.raises(StatsError, match="unknown sample count"):
        stats.merge(stats)
    # unknown protocol/weights never block a comparison
    check_compatible(stats, FeatureStats.from_moments(stats.mu, stats.sigma, 10,
                                                      meta={"protocol": "tf", "weights_sha256": "cd" * 32}))


def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(SourceNotFoundError, match="nope.npz"):
        load_stats(path)
    with pytest.raises(FileNotFoundError):
        load_stats(path)


@pytest.mark.parametrize("missing", ["mu", "sigma"])
def test_missing_key(tmp_path, missing):
    arrays = {"mu": np.zeros(3), "sigma": np.eye(3)}
    del arrays[missing]
    path = tmp_path / "partial.npz"
    np.savez(path, **arrays)
    with pytest.raises(StatsError, match=rf"partial\.npz: no '{missing}' array"):
        load_stats(path)


def _write(path, kind: str) -> None:
    if kind == "object array":
        np.savez(path, mu=np.zeros(3), sigma=np.array([np.eye(3), None], dtype=object))
    elif kind == "pickled meta":
        np.savez(path, mu=np.zeros(3), sigma=np.eye(3), meta=np.array({"format": STATS_FORMAT}, dtype=object))
    elif kind == "pickle file":
        path.write_bytes(pickle.dumps({"mu": np.zeros(3), "sigma": np.eye(3)}))
    elif kind == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif kind == "single array":
        with open(path, "wb") as handle:
            np.save(handle, np.zeros(3))
    elif kind == "wrong shape":
        np.savez(path, mu=np.zeros(3), sigma=np.eye(4))
    elif kind == "nan":
        np.savez(path, mu=np.array([0.0, np.nan, 0.0]), sigma=np.eye(3))
    elif kind == "bad meta":
        np.savez(path, mu=np.zeros(3), sigma=np.eye(3), meta=np.array("{not json"))
    elif kind == "future format":
        np.savez(path, mu=np.zeros(3), sigma=np.eye(3), meta=np.array(json.dumps({"format": "ganmetrics-stats/9"})))


@pytest.mark.parametrize("kind, message", [
    ("object array", "pickled object array"),
    ("pickled meta", "pickled object array"),
    ("pickle file", "not a readable .npz"),
    ("garbage", "not a readable .npz"),
    ("single array", "a single array"),
    ("wrong shape", r"sigma must be a \[3, 3\]"),
    ("nan", "mu contains NaN"),
    ("bad meta", "not a JSON string"),
    ("future format", "unsupported statistics format"),
])
def test_bad_files_raise_stats_error_naming_the_file(tmp_path, kind, message):
    path = tmp_path / "bad.npz"
    _write(path, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plain-file warning is not what is tested here
        with pytest.raises(StatsError, match=message) as info:
            load_stats(path)
    assert str(path) in str(info.value)


def test_save_is_atomic(tmp_path, monkeypatch):
    stats, path = saved_stats(tmp_path)
    before = path.read_bytes()

    def failing_savez(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        stats.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


# -- compatibility -----------------------------------------------------------------------------

def _with_meta(**meta) -> FeatureStats:
    return FeatureStats.from_moments(np.zeros(3), np.eye(3), 10, meta=meta)


def test_check_compatible_accepts_same_and_unknown():
    check_compatible(_with_meta(protocol="tf", weights_sha256="a"), _with_meta(protocol="tf", weights_sha256="a"))
    check_compatible(_with_meta(protocol="tf", weights_sha256="a"), _with_meta())
    check_compatible(_with_meta(protocol=None), _with_meta(protocol="clean"))


@pytest.mark.parametrize("key, error", [("protocol", ProtocolError), ("weights_sha256", StatsError),
                                        ("feature", StatsError)])
def test_check_compatible_refuses_differences(key, error):
    a, b = _with_meta(**{key: "one", "source": "A"}), _with_meta(**{key: "two", "source": "B"})
    advice = ("; numbers from different feature extractors are not comparable: compute both sides with the same "
              "feature_extractor=" if key == "feature" else "")
    with pytest.raises(error, match=re.escape(f"different {key}: 'one' (A) and 'two' (B){advice}; pass strict=False")):
        check_compatible(a, b)
    with pytest.warns(UserWarning, match=f"different {key}"):
        check_compatible(a, b, strict=False)


def test_check_compatible_dimensions_always_error():
    other = FeatureStats.from_moments(np.zeros(4), np.eye(4), 10)
    for strict in (True, False):
        with pytest.raises(StatsError, match="dimension 3 .* and 4"):
            check_compatible(_with_meta(), other, strict=strict)


def test_merge_refuses_incompatible():
    with pytest.raises(ProtocolError):
        _with_meta(protocol="tf").merge(_with_meta(protocol="clean"))


def test_saved_files_get_ordinary_permissions(tmp_path):
    """Atomic writes go through an owner-only temporary file; the result must be readable like open() makes it."""
    import os

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    path = streamed(features(12, 10), [10]).save(tmp_path / "stats.npz")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    os.chmod(path, 0o640)
    streamed(features(13, 10), [10]).save(path)  # replacing keeps the file's mode
    assert path.stat().st_mode & 0o777 == 0o640
