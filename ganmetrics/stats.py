"""Feature statistics: streaming mean and covariance, and the ``.npz`` statistics files (DESIGN.md §4).

The mean and covariance are accumulated batch by batch with the parallel update of Chan, Golub &
LeVeque (1979): each batch contributes its mean ``m_b`` and centred co-moment
``M2_b = (x − m_b)ᵀ (x − m_b)``, combined with the running ``(n, m, M2)`` as

    ``δ = m_b − m``,  ``m ← m + δ·n_b/(n + n_b)``,  ``M2 ← M2 + M2_b + δδᵀ·n·n_b/(n + n_b)``,

and ``Σ = M2 / (n − 1)``.  Unlike sums of ``x xᵀ`` this stays accurate when the mean is large
compared with the spread, and it uses O(d²) memory whatever N.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from ._version import __version__
from .atomic import atomic_write
from .distributed import Shard, all_gather_concat, all_gather_counts, all_gather_tensor, gather_rows
from .errors import ProtocolError, SourceNotFoundError, StatsError, spelled
from .frechet import as_moments, check_positive_semidefinite

STATS_FORMAT = "ganmetrics-stats/1"
FEATURE_NAME = "inception-2015-12-05/pool3"
#: The keys of a statistics file's ``meta``, in the order they are written.
META_KEYS = ("format", "protocol", "feature", "weights_sha256", "num_samples", "covariance", "source",
             "ganmetrics_version")

#: ``(n, mean [d], M2 [d, d])``, float64 tensors.
Moments = tuple[int, torch.Tensor, torch.Tensor]


def combine_moments(a: Moments, b: Moments) -> Moments:
    """``(n, mean, M2)`` of the union of two sets from theirs (Chan et al. 1979 parallel update)."""
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    if n_a == 0:
        return n_b, mean_b.clone(), m2_b.clone()
    if n_b == 0:
        return n_a, mean_a.clone(), m2_a.clone()
    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    return n, mean, torch.addr(m2_a + m2_b, delta, delta, alpha=n_a * n_b / n)


def batch_moments(x: torch.Tensor) -> Moments:
    """``(n, mean, M2)`` of one float64 batch ``x [n, d]``: ``M2 = (x − mean)ᵀ (x − mean)``."""
    mean = x.mean(dim=0)
    centred = x - mean
    return x.shape[0], mean, centred.T @ centred


def _accumulation_device(device) -> torch.device:
    """The device to accumulate on; MPS has no float64, so it accumulates on the CPU."""
    device = torch.device(device)
    return torch.device("cpu") if device.type == "mps" else device


def _float32_copy(features) -> np.ndarray:
    """A float32 numpy copy on the CPU (never a view of the caller's data)."""
    if isinstance(features, torch.Tensor):
        return features.detach().to("cpu", torch.float32, copy=True).numpy()
    return np.array(features, dtype=np.float32, copy=True)


class FeatureStats:
    """Streaming mean and covariance of feature vectors, float64, O(d²) memory whatever N.

    ``update`` accumulates on the features' device (or ``device``) with Chan et al.'s parallel
    update; ``mu`` and ``sigma`` (unbiased, N − 1) come back as float64 numpy arrays.  With
    ``keep_features=True`` float32 copies of the features are also kept on the CPU (for KID).
    ``meta`` is a free dict merged into the metadata written by :meth:`save`.
    """

    def __init__(self, dim: int = 2048, *, keep_features: bool = False, meta: dict | None = None,
                 device=None) -> None:
        if int(dim) < 1:
            raise StatsError(f"the feature dimension must be positive, got {dim}")
        self.dim = int(dim)
        self.keep_features = keep_features
        self.meta: dict = dict(meta or {})
        self._device = None if device is None else _accumulation_device(device)
        self._n: int | None = 0
        self._mean: torch.Tensor | None = None
        self._m2: torch.Tensor | None = None
        self._sigma: np.ndarray | None = None  # sigma as given to from_moments, returned bit-exact
        self._features: list[np.ndarray] = []

    def __repr__(self) -> str:
        return (f"FeatureStats(dim={self.dim}, num_samples={self._n}, keep_features={self.keep_features}, "
                f"protocol={self.meta.get('protocol')!r})")

    # -- accumulation -------------------------------------------------------------------------

    def _state(self) -> Moments:
        if self._n is None:
            raise StatsError("these statistics have an unknown sample count (loaded from a file without "
                             "ganmetrics metadata), so they cannot be updated or merged")
        if self._m2 is None and self._sigma is not None:
            self._m2 = torch.from_numpy(self._sigma * (self._n - 1))
        if self._mean is None:
            zeros = torch.zeros(self.dim, dtype=torch.float64, device=self._device)
            return 0, zeros, torch.zeros(self.dim, self.dim, dtype=torch.float64, device=self._device)
        return self._n, self._mean, self._m2

    def _as_batch(self, features) -> torch.Tensor:
        """``features`` as a float64 tensor ``[N, dim]`` on the accumulation device, checked finite."""
        x = features.detach() if isinstance(features, torch.Tensor) else torch.as_tensor(np.asarray(features))
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise StatsError(f"features must have shape [N, {self.dim}], got {tuple(x.shape)}")
        if self._device is None:
            self._device = _accumulation_device(x.device)
        x = x.to(self._device, torch.float64)
        if not bool(torch.isfinite(x).all()):
            raise StatsError("features contain NaN or infinite values")
        return x

    def update(self, features) -> None:
        """Add a batch of features (``torch.Tensor`` or array ``[N, dim]``); non-finite values raise StatsError."""
        state = self._state()
        x = self._as_batch(features)
        if x.shape[0] == 0:
            return
        self._n, self._mean, self._m2 = combine_moments(state, batch_moments(x))
        self._sigma = None
        if self.keep_features:
            self._features.append(_float32_copy(features))

    def merged_across_ranks(self, shard: Shard, *, set_order: bool = True) -> FeatureStats:
        """Statistics of the whole set from every rank's share (collective: all ranks call it).

        Each rank's ``(n, mean, M2)`` is gathered and combined in rank order with Chan et al.'s update,
        the same arithmetic on every rank, so all ranks hold identical results; kept features are
        gathered in the order of the whole set (:func:`ganmetrics.distributed.gather_rows`), or with
        ``set_order=False`` (each rank fed its own data) rank after rank.
        """
        if not shard.active:
            return self
        n, mean, m2 = self._state()
        state: Moments = (0, torch.zeros_like(mean), torch.zeros_like(m2))
        for count, part_mean, part_m2 in zip(all_gather_counts(n), all_gather_tensor(mean), all_gather_tensor(m2),
                                             strict=True):
            state = combine_moments(state, (count, part_mean, part_m2))
        merged = FeatureStats(self.dim, keep_features=self.keep_features, meta=self.meta, device=mean.device)
        if state[0]:
            merged._n, merged._mean, merged._m2 = state
        if self.keep_features:
            features = torch.from_numpy(self.features)
            merged._features = [(gather_rows(features, shard) if set_order else all_gather_concat(features, shard))
                                .numpy()]
        return merged

    def merge(self, other: FeatureStats) -> FeatureStats:
        """New statistics of the union of both sets (same as concatenating the data); checks compatibility."""
        check_compatible(self, other)
        a, b = self._state(), other._state()
        device = a[1].device
        n, mean, m2 = combine_moments(a, (b[0], b[1].to(device), b[2].to(device)))
        keep = self.keep_features and other.keep_features
        merged = FeatureStats(self.dim, keep_features=keep, meta=self.meta, device=device)
        if n:
            merged._n, merged._mean, merged._m2 = n, mean, m2
        if keep:
            merged._features = [f for f in (self.features, other.features) if len(f)]
        return merged

    @classmethod
    def from_moments(cls, mu, sigma, num_samples: int | None, meta: dict | None = None,
                     features=None) -> FeatureStats:
        """Statistics from a known mean, unbiased covariance and sample count (e.g. loaded from a file).

        ``num_samples=None`` (unknown, as in pytorch-fid files) gives statistics that can be
        compared but not updated or merged; otherwise ``M2 = (n − 1)·sigma`` keeps :meth:`merge` exact.
        """
        mu, sigma = as_moments(mu, sigma)
        if num_samples is not None and (not isinstance(num_samples, (int, np.integer)) or num_samples < 2):
            raise StatsError(f"num_samples must be an integer of at least 2 (or None if unknown), got {num_samples!r}")
        stats = cls(mu.shape[0], keep_features=features is not None, meta=meta, device="cpu")
        stats._n = None if num_samples is None else int(num_samples)
        stats._mean = torch.from_numpy(mu.copy())
        stats._sigma = sigma.copy()  # M2 = (n − 1)·sigma is derived when needed (update, merge)
        if features is not None:
            features = np.asarray(features, dtype=np.float32)
            if features.ndim != 2 or features.shape[1] != stats.dim or \
                    (num_samples is not None and features.shape[0] != stats._n):
                raise StatsError(f"features must have shape [{num_samples}, {stats.dim}], got {features.shape}")
            stats._features = [features]
        return stats

    # -- results ------------------------------------------------------------------------------

    @property
    def num_samples(self) -> int | None:
        """Number of feature vectors seen (None when loaded from a file that does not say)."""
        return self._n

    def _require(self, minimum: int, what: str) -> None:
        if self._n is not None and self._n < minimum:
            raise StatsError(f"{self.meta.get('source') or 'these statistics'}: at least {minimum} images are needed "
                             f"to estimate {what}, got {self._n}")

    @property
    def mu(self) -> np.ndarray:
        """Mean, float64 ``[dim]``."""
        self._require(1, "a mean")
        return self._mean.cpu().numpy().copy()

    @property
    def sigma(self) -> np.ndarray:
        """Unbiased covariance ``M2 / (N − 1)``, float64 ``[dim, dim]``, exactly symmetric."""
        self._require(2, "a covariance")
        if self._sigma is not None:
            return self._sigma.copy()
        sigma = self._m2.cpu().numpy() / (self._n - 1)
        return (sigma + sigma.T) / 2

    @property
    def features(self) -> np.ndarray | None:
        """The kept features, float32 ``[N, dim]``, or None when ``keep_features`` is off."""
        if not self.keep_features:
            return None
        if len(self._features) != 1:
            parts = self._features or [np.empty((0, self.dim), dtype=np.float32)]
            self._features = [np.concatenate(parts, axis=0)]
        return self._features[0]

    def full_meta(self) -> dict:
        """The metadata :meth:`save` writes: the standard keys, then anything else in ``meta``."""
        meta = {"format": STATS_FORMAT, "protocol": None, "feature": None, "weights_sha256": None,
                "source": None, "ganmetrics_version": __version__}
        meta.update(self.meta)
        meta.update(format=STATS_FORMAT, num_samples=self._n, covariance="unbiased")
        return {**{key: meta[key] for key in META_KEYS}, **meta}

    def save(self, path: str | os.PathLike, *, compact: bool = False) -> Path:
        """Write an ``.npz`` atomically (``.npz`` appended when missing) and return its path.

        Keys: ``mu``, ``sigma`` (float64; pytorch-fid and TTUR read these), ``meta`` (a JSON string)
        and, with ``keep_features``, ``features`` (float32).  ``compact=True`` stores ``sigma`` as
        float32 in a compressed archive (16.8 instead of 33.6 MB at d = 2048, still readable by the
        peers) and records ``"sigma_dtype": "float32"`` in ``meta`` (absent: float64); loading widens it
        back to float64.
        Its effect on FID is measured where such files are shipped (``reference_stats/manifest.json``).
        """
        path = Path(path)
        if path.suffix.lower() != ".npz":
            path = path.with_name(path.name + ".npz")
        meta = self.full_meta()
        meta.pop("sigma_dtype", None)  # a loaded compact file saved again in full keeps no stale note
        if compact:
            meta["sigma_dtype"] = "float32"
        arrays = {"mu": self.mu, "sigma": self.sigma.astype(np.float32) if compact else self.sigma,
                  "meta": np.array(json.dumps(meta, default=str))}
        if self.keep_features:
            arrays["features"] = self.features
        with atomic_write(path, "wb") as handle:
            (np.savez_compressed if compact else np.savez)(handle, **arrays)
        return path


# -- files ------------------------------------------------------------------------------------

def _read_key(data, path: Path, key: str) -> np.ndarray:
    if key not in data.files:
        raise StatsError(f"{path}: no '{key}' array in this statistics file (keys: {', '.join(data.files)})")
    try:
        return data[key]
    except ValueError as exc:  # object arrays need pickle
        raise StatsError(f"{path}: '{key}' is a pickled object array; refusing to unpickle it ({exc})") from exc


def _read_meta(data, path: Path) -> dict | None:
    if "meta" not in data.files:
        return None
    raw = _read_key(data, path, "meta")
    try:
        meta = json.loads(str(raw[()]))
    except (ValueError, TypeError, IndexError) as exc:
        raise StatsError(f"{path}: 'meta' is not a JSON string ({exc})") from exc
    if not isinstance(meta, dict):
        raise StatsError(f"{path}: 'meta' is not a JSON object")
    if meta.get("format") != STATS_FORMAT:
        raise StatsError(f"{path}: unsupported statistics format {meta.get('format')!r} (expected {STATS_FORMAT!r})")
    return meta


def _unknown_meta(path: Path) -> dict:
    warnings.warn(f"{path} has no ganmetrics metadata (a pytorch-fid, TTUR or clean-fid file?): its protocol "
                  "and Inception weights are unknown, so they cannot be checked against the other statistics",
                  UserWarning, stacklevel=3)
    return {**dict.fromkeys(META_KEYS), "source": str(path)}


def load_stats(path: str | os.PathLike) -> FeatureStats:
    """Load a ganmetrics statistics file, or a plain pytorch-fid / TTUR / clean-fid ``.npz`` (``mu``, ``sigma``).

    Plain files load with a warning and ``protocol``, ``weights_sha256``, ``num_samples`` ... set to
    None.  Never unpickles.  Raises SourceNotFoundError for a missing file and StatsError for
    anything unreadable, incomplete or malformed, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"statistics file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise StatsError(f"{path}: not a readable .npz statistics file ({exc})") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise StatsError(f"{path}: a single array, not an .npz statistics file with 'mu' and 'sigma'")
    with data:
        mu, sigma = _read_key(data, path, "mu"), _read_key(data, path, "sigma")
        meta = _read_meta(data, path)
        features = _read_key(data, path, "features") if "features" in data.files else None
    if meta is None:
        meta = _unknown_meta(path)
    # the storage's rounding bounds how far below 0 an eigenvalue of a true covariance can lie
    stored_eps = float(np.finfo(sigma.dtype if sigma.dtype.kind == "f" else np.float64).eps)
    check_positive_semidefinite(as_moments(mu, sigma, name=str(path))[1], stored_eps, name=str(path))
    num_samples = meta.get("num_samples")
    try:
        return FeatureStats.from_moments(mu, sigma, num_samples, meta=meta, features=features)
    except StatsError as exc:
        raise StatsError(f"{path}: {exc}") from exc


def _describe(meta: dict) -> str:
    return str(meta.get("source") or "statistics")


#: what statistics must share to be compared, and the error a difference raises
COMPARED_META = (("feature", StatsError), ("protocol", ProtocolError), ("weights_sha256", StatsError))


def meta_differences(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """``(key, a's value, b's value)`` for each of :data:`COMPARED_META` that both sides know and that differ."""
    return [(key, a.get(key), b.get(key)) for key, _ in COMPARED_META
            if a.get(key) is not None and b.get(key) is not None and a.get(key) != b.get(key)]


def check_meta_compatible(a: dict, b: dict, *, strict: bool = True) -> None:
    """Refuse statistics (given by their ``meta``) computed differently: a different ``feature`` extractor
    (StatsError), ``protocol`` (ProtocolError) or ``weights_sha256`` (StatsError), where both sides know theirs, is an
    error, or with ``strict=False`` a warning."""
    errors = dict(COMPARED_META)
    for key, value_a, value_b in meta_differences(a, b):
        message = (f"statistics computed with different {key}: {value_a!r} ({_describe(a)}) and {value_b!r} "
                   f"({_describe(b)})")
        if key == "feature":
            message += (f"; numbers from different feature extractors are not comparable: compute both sides with "
                        f"the same {spelled('feature_extractor=', '--feature-extractor')}")
        if strict:
            raise errors[key](f"{message}; pass {spelled('strict=False', '--no-strict')} to compare anyway")
        warnings.warn(f"{message}; comparing anyway ({spelled('strict=False', '--no-strict')})", UserWarning,
                      stacklevel=3)


def check_compatible(a: FeatureStats, b: FeatureStats, *, strict: bool = True) -> None:
    """Refuse to compare statistics computed differently (:func:`check_meta_compatible`); different dimensions are
    always a StatsError."""
    check_meta_compatible(a.meta, b.meta, strict=strict)
    if a.dim != b.dim:
        raise StatsError(f"cannot compare statistics of dimension {a.dim} ({_describe(a.meta)}) and {b.dim} "
                         f"({_describe(b.meta)})")
