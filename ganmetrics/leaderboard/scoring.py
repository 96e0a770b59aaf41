"""Scoring a tier's entries: everything checked first, then one pass per reference and one per entry.

For each entry: its images (generated with the entry's seed, or its sample files) pass once through what the
chosen metrics need (:func:`ganmetrics.stream.stream_set`), and every metric of the registry is computed against
the reference pass its settings share with other entries (statistics-only metrics, FID, against
``fid_reference`` when set).  The one-set metrics are also computed for the reference images (the yardstick:
the real images' MS-SSIM or IS).

Stored samples (``store_samples``, on by default): ``--update`` keeps each generated uint8 set (and a rendered
built-in reference) in ``<results>-<tier>-samples.npz``; ``--check`` makes them again and, when they equal the
stored ones up to float32 rounding (:func:`drift`), scores the *stored* images, so the numbers see identical
inputs on every machine and their tolerances cover only the metrics' own arithmetic.  Images that changed beyond
rounding are a change of the generator: they are scored, and the numbers say whether it is a regression.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write
from ..bootstrap import bootstrap_metrics, bootstrappable
from ..devices import resolve_device
from ..errors import InputError
from ..features import INCEPTION, Extractor, resolve_extractor
from ..inputs import is_statistics, load_statistics
from ..metrics.base import FEATURES, IMAGES, KEPT_FEATURES, Context, SetData, registry, split_options
from ..provenance import run_environment
from ..sources import ImageSource, open_source
from ..stats import FeatureStats, meta_differences
from ..stream import stream_set
from ..weights import sha256_file
from .config import BUILTIN_PREFIX, Config, Entry, Settings
from .entries import artefact_sha256, load_generator, tree_sha256

#: Largest fraction of the uint8 values of a regenerated set that may differ (by one level, never more) from the
#: stored set: float32 rounding flips a value only where it lies within ~1e-6 relative of a quantisation
#: boundary; measured: at most 3.1e-5 (19 of 614,400 values, SAGAN, every kernel held to SSE vs AVX-512), so 1e-3
#: is 30 times that, while a real change of a generator moves far more values, by more than one level.
MAX_DRIFT_FRACTION = 1e-3


def drift(stored: np.ndarray, now: np.ndarray, fraction: float = MAX_DRIFT_FRACTION) -> str | None:
    """Why ``now`` is not ``stored`` up to float32 rounding (at most ``fraction`` of the values one level apart), or
    None (pure)."""
    if stored.shape != now.shape:
        return f"shape {now.shape}, stored {stored.shape}"
    diff = np.abs(now.astype(np.int16) - stored.astype(np.int16))
    changed, worst = int(np.count_nonzero(diff)), int(diff.max(initial=0))
    if worst > 1 or changed > fraction * diff.size:
        return (f"{changed:,} of {diff.size:,} uint8 values differ from the stored ones, by up to {worst} level(s) "
                f"(float32 rounding moves at most {fraction:g} of them, by one level)")
    return None


class _Digest:
    """A stream consumer: the SHA-256 of the uint8 images in set order (provenance: which images were scored)."""

    full = False

    def __init__(self):
        self.hash = hashlib.sha256()

    def update(self, batch: torch.Tensor, indices) -> None:
        self.hash.update(batch.permute(0, 2, 3, 1).contiguous().cpu().numpy().tobytes())

    def merged(self, shard) -> _Digest:
        return self


@dataclass
class Reference:
    """A reference side after its pass: its data, the statistics of ``fid_reference`` and its record."""

    data: SetData
    fid: SetData | None
    record: dict


@dataclass
class Run:
    """What scoring a tier produced."""

    records: dict[str, dict] = field(default_factory=dict)  #: entry → its results record
    images: dict[str, np.ndarray] = field(default_factory=dict)  #: sets to store: entry / reference key → uint8
    problems: list[str] = field(default_factory=list)  #: failures that are not numbers (a re-rendered reference)
    notes: list[str] = field(default_factory=list)  #: entry → what changed but may pass (its images)
    weights_sha256: str | None = None


def portable(path: str | None, folder: Path) -> str | None:
    """A path as the results file stores it: relative to the config's folder (bundled names unchanged)."""
    if path is None or not os.path.isabs(path):
        return path
    return Path(os.path.relpath(path, folder)).as_posix()


def reference_key(s: Settings) -> str:
    """What a reference pass depends on (entries with equal keys share one pass)."""
    return json.dumps([s.reference, s.reference_images, s.fid_reference, s.protocol, s.device, s.batch_size, s.seed,
                       s.metrics, s.options], sort_keys=True, default=str)


def builtin_key(s: Settings) -> str:
    """The stored-samples key of a rendered built-in reference."""
    return f"{s.reference}.{s.reference_images}"


def render_builtin(s: Settings) -> np.ndarray:
    from ..data.builtin import render_dataset

    return render_dataset(s.reference[len(BUILTIN_PREFIX):], s.reference_images, seed=0)[0]


def generate(G: Any, s: Settings, device: torch.device, z_dim: int | None) -> np.ndarray:
    """The generator's ``num_samples`` uint8 samples ``[n, H, W, 3]`` (latents and labels from ``seed``)."""
    batches = open_source(G, num_samples=s.num_samples, batch_size=s.batch_size, seed=s.seed, device=device,
                          num_workers=0, z_dim=z_dim)
    return torch.cat([batch.cpu() for batch in batches]).permute(0, 2, 3, 1).numpy()


class Scorer:
    """Scores entries of one config; extractors, references and stored samples are shared between them."""

    def __init__(self, config: Config, *, weights: str | None = None, progress: bool = True,
                 stored_images: dict[str, np.ndarray] | None = None, max_drift: float = MAX_DRIFT_FRACTION):
        self.config, self.weights, self.progress = config, weights, progress
        self.stored_images, self.max_drift = stored_images, max_drift
        self.extractors: dict[tuple, Extractor] = {}
        self.references: dict[str, Reference] = {}
        self.rendered: dict[str, np.ndarray] = {}  #: built-in references rendered now
        self.statistics: dict[str, FeatureStats] = {}  #: statistics files and bundled names, read once
        self.run = Run()

    def extractor(self, s: Settings) -> Extractor:
        device = resolve_device(s.device)
        key = (s.feature_extractor, s.protocol, str(device))
        if key not in self.extractors:
            weights = self.weights if s.feature_extractor in (None, INCEPTION) else None
            self.extractors[key] = resolve_extractor(s.feature_extractor, protocol=s.protocol, device=device,
                                                     weights=weights, progress=self.progress,
                                                     folder=self.config.folder)
        extractor = self.extractors[key]
        self.run.weights_sha256 = extractor.weights_sha256
        return extractor

    # -- before any image is read
    def plan(self, entries: list[Entry]) -> list[tuple[Entry, Any, Any]]:
        """Each entry's generator (or opened samples) and reference side, after every check that needs no image:
        files, imports, the weights, each metric's ``unavailable``.  Errors name the entry."""
        known, plans = registry(), []
        for entry in entries:
            s = entry.settings
            try:
                device = resolve_device(s.device)
                extractor = self.extractor(s)
                ctx = Context(seed=s.seed, device=device, has_classifier=extractor.has_classifier)
                options = split_options(s.metrics, s.options)
                if entry.kind == "samples":
                    made = open_source(entry.target, num_samples=s.num_samples, batch_size=s.batch_size,
                                       device=device, num_workers=0)
                    if made.num_images < s.num_samples:
                        raise InputError(f"{entry.target} has {made.num_images} images, fewer than num_samples "
                                         f"{s.num_samples}")
                    side = made
                else:
                    made = load_generator(entry, self.config.folder, device)
                    side = open_source(made, num_samples=s.num_samples, batch_size=s.batch_size, seed=s.seed,
                                       device=device, num_workers=0, z_dim=entry.z_dim)
                    next(iter(open_source(made, num_samples=1, seed=s.seed, device=device, num_workers=0,
                                          z_dim=entry.z_dim)))  # one sample: it runs, and gives images
                reference = self.reference_side(s, extractor)
                for name in s.metrics:
                    reason = known[name].unavailable(side, reference if known[name].sides == 2 else None,
                                                     options[name], ctx)
                    if reason:
                        raise reason if isinstance(reason, Exception) else InputError(reason)
            except InputError as exc:
                raise InputError(f"entry {entry.name} ({self.config.path.name}): {exc}") from None
            plans.append((entry, made, reference))
        return plans

    def reference_side(self, s: Settings, extractor: Extractor) -> ImageSource | FeatureStats | None:
        """The reference opened (images) or loaded (statistics); a built-in set rendered now."""
        if s.reference is None:
            return None
        if s.fid_reference is not None:
            self.checked_stats(s.fid_reference, extractor, "fid_reference")
        if s.reference.startswith(BUILTIN_PREFIX):
            key = builtin_key(s)
            if key not in self.rendered:
                self.rendered[key] = render_builtin(s)
            return open_source(self.rendered[key], batch_size=s.batch_size, device=resolve_device(s.device),
                               num_workers=0)
        if is_statistics(s.reference):
            return self.checked_stats(s.reference, extractor, "reference")
        return open_source(s.reference, num_samples=s.reference_images, batch_size=s.batch_size,
                           device=resolve_device(s.device), num_workers=0)

    def checked_stats(self, source: str, extractor: Extractor, key: str) -> FeatureStats:
        """The statistics at ``source`` (read once per scorer), after checking they were made with this extractor,
        protocol and weights."""
        if source not in self.statistics:
            self.statistics[source] = load_statistics(source)
        stats = self.statistics[source]
        differences = meta_differences(stats.meta, extractor.stats_meta(""))
        if differences:
            raise InputError(f"{key} {source} was computed with " + ", ".join(
                f"{name.replace('_sha256', ' sha256')} {theirs} (the entries: {ours})" for name, theirs, ours in
                differences) + "; recompute the statistics as the entries are scored, or use the statistics' "
                "weights (--weights)")
        return stats

    # -- the passes
    def reference(self, s: Settings) -> Reference:
        """The reference pass of ``s`` (shared by every entry with the same :func:`reference_key`)."""
        key = reference_key(s)
        if key in self.references:
            return self.references[key]
        began, known, extractor = time.perf_counter(), registry(), self.extractor(s)
        device = resolve_device(s.device)
        ctx = Context(seed=s.seed, device=device, has_classifier=extractor.has_classifier)
        side = self.reference_side(s, extractor)
        label = portable(s.reference, self.config.folder)
        if isinstance(side, FeatureStats):
            data = SetData(role="real", description=label, num_images=side.num_samples or 0, stats=side)
            yardsticks, sha = {}, (sha256_file(s.reference) if os.path.isfile(s.reference) else
                                   side.meta.get("sha256"))
        else:
            if s.reference.startswith(BUILTIN_PREFIX):  # rendered now: checked against the stored images
                bkey = builtin_key(s)
                now, kept = self.rendered[bkey], (self.stored_images or {}).get(bkey)
                if kept is not None and (why := drift(kept, now, self.max_drift)) is not None:
                    self.run.problems.append(f"the reference {s.reference} rendered now moved: {why}")
                if s.store_samples:
                    self.run.images[bkey] = now
            one_set = tuple(name for name in s.metrics if known[name].sides == 1)
            data = self.stream(side, "real", [(m, "real") for m in s.metrics if known[m].sides == 2]
                               + [(m, "gen") for m in one_set], s, extractor, ctx, label=f"reference {label}")
            yardsticks = self.compute(one_set, data, None, None, s, ctx)
            sha = data.accumulators.pop("_digest").hash.hexdigest()
        fid = None
        if s.fid_reference is not None:
            stats = self.checked_stats(s.fid_reference, extractor, "fid_reference")
            fid = SetData(role="real", description=s.fid_reference, num_images=stats.num_samples or 0, stats=stats)
        record = {"source": label, "images_sha256": sha, "num_images": data.num_images, "yardsticks": yardsticks,
                  **({"fid_reference": portable(s.fid_reference, self.config.folder)} if fid else {}),
                  "scored": scored(device, began)}
        self.references[key] = Reference(data=data, fid=fid, record=record)
        return self.references[key]

    def stream(self, images: ImageSource, role: str, plan: list[tuple[str, str]], s: Settings,
               extractor: Extractor, ctx: Context, *, label: str, gen: SetData | None = None) -> SetData:
        """One pass over ``images`` for ``plan`` (metric, as which role); the images' SHA-256 on the side."""
        known, options = registry(), split_options(tuple(dict.fromkeys(m for m, _ in plan)), s.options)
        needs = frozenset().union(*(known[m].set_needs(r) for m, r in plan))
        if s.bootstrap and any(bootstrappable(m) for m, _ in plan):
            needs |= {KEPT_FEATURES}  # the bootstrap resamples them
        consumers = {m: known[m].accumulator(r, options[m], ctx, gen=gen)
                     for m, r in plan if IMAGES in known[m].set_needs(r)}
        consumers["_digest"] = _Digest()
        return stream_set(images, role=role, needs=needs, extractor=extractor, consumers=consumers,
                          label=f"{label} [{s.protocol}]", progress=self.progress)

    def compute(self, metrics: tuple[str, ...], gen: SetData, reference: SetData | None, fid: SetData | None,
                s: Settings, ctx: Context) -> dict:
        """Each metric's value (statistics-only metrics against ``fid`` when given)."""
        known, options = registry(), split_options(metrics, s.options)
        for name in metrics:
            known[name].prepare(options[name], ctx)
        out = {}
        for name in metrics:
            metric = known[name]
            other = _against(metric, reference, fid) if metric.sides == 2 else None
            out[name] = jsonable(metric.compute(gen, other, options[name], ctx))
        return out

    def bootstrap(self, s: Settings, gen: SetData, reference: SetData | None, fid: SetData | None,
                  ctx: Context) -> dict:
        """Each metric of features: the mean, std and ``ci`` interval over ``s.bootstrap`` replicates that resample
        the generated features and the reference's when kept (statistics-only metrics against ``fid`` when given,
        as :meth:`compute` scores them); ``"resampled"``: metric → the sides drawn."""
        known = registry()
        names = tuple(m for m in s.metrics if bootstrappable(m))
        options, out, sides = split_options(names, s.options), {}, {}
        groups: dict[int, tuple[SetData | None, list[str]]] = {}  # the metrics scored against one set
        for name in names:
            against = _against(known[name], reference, fid)
            groups.setdefault(id(against), (against, []))[1].append(name)
        for against, group in groups.values():
            drawn = bootstrap_metrics(tuple(group), gen, against, options, ctx, replicates=s.bootstrap,
                                      confidence=s.ci)
            sides.update(dict.fromkeys(group, drawn.pop("resampled")))
            out.update(jsonable(drawn))
        return {**out, "resampled": sides} if out else {}

    def close(self) -> None:
        """Release what the reference passes hold (spilled SWD descriptors ...)."""
        for reference in self.references.values():
            _close(reference.data)

    def score(self, entry: Entry, made: Any) -> None:
        """Score one planned entry into ``self.run`` (an error names the entry)."""
        try:
            self._score(entry, made)
        except InputError as exc:
            raise InputError(f"entry {entry.name} ({self.config.path.name}): {exc}") from None

    def _score(self, entry: Entry, made: Any) -> None:
        s, known = entry.settings, registry()
        reference = self.reference(s) if s.reference is not None else None  # its pass is timed on its own
        began, device, extractor = time.perf_counter(), resolve_device(s.device), self.extractor(s)
        ctx = Context(seed=s.seed, device=device, has_classifier=extractor.has_classifier)
        if entry.kind == "samples" or not s.store_samples:
            images = made if entry.kind == "samples" else open_source(
                made, num_samples=s.num_samples, batch_size=s.batch_size, seed=s.seed, device=device, num_workers=0,
                z_dim=entry.z_dim)
        else:
            now = generate(made, s, device, entry.z_dim)
            kept = (self.stored_images or {}).get(entry.name)
            if kept is not None and (why := drift(kept, now, self.max_drift)) is None:
                now = kept  # the numbers of the stored images: identical inputs on every machine
            elif kept is not None:
                self.run.notes.append(f"{entry.name}: its samples changed ({why}); scored as made now")
            self.run.images[entry.name] = now
            images = open_source(now, batch_size=s.batch_size, device=device, num_workers=0)
        gen = self.stream(images, "gen", [(m, "gen") for m in s.metrics], s, extractor, ctx, label=entry.name,
                          gen=None)
        digest = gen.accumulators.pop("_digest").hash.hexdigest()
        ref_data = reference.data if reference else None
        fid = reference.fid if reference else None
        try:
            scores = self.compute(s.metrics, gen, ref_data, fid, s, ctx)
            uncertainty = self.bootstrap(s, gen, ref_data, fid, ctx) if s.bootstrap else None
        finally:
            _close(gen)
        sizes = (gen.num_images, ref_data.num_images if ref_data else 0)
        options = split_options(s.metrics, s.options)
        self.run.records[entry.name] = {
            "source": {"kind": entry.kind, "target": portable(entry.target, self.config.folder),
                       **({"checkpoint": portable(entry.checkpoint, self.config.folder)} if entry.checkpoint else {}),
                       **({"kwargs": entry.kwargs} if entry.kwargs else {}),
                       "sha256": artefact_sha256(entry), "images_sha256": digest},
            "settings": portable_settings(s, self.config.folder),
            "scores": scores,
            "tolerances": {**{m: known[m].tolerance_for(options[m], sizes) for m in s.metrics}, **s.tolerances},
            "reference": reference.record if reference else None,
            "provenance": {"protocol": s.protocol, "feature": extractor.name, "weights_sha256": extractor.weights_sha256,
                           "num_samples": gen.num_images, "seed": s.seed, **scored(device, began)},
            **({"bootstrap": uncertainty} if uncertainty else {}),
        }


def _against(metric, reference: SetData | None, fid: SetData | None) -> SetData | None:
    """What a two-set metric compares the entry with: the ``fid_reference`` statistics for a metric of statistics
    alone (FID) when given, else the reference set."""
    return fid if fid is not None and metric.needs <= {FEATURES} else reference


def _close(data: SetData) -> None:
    for accumulator in data.accumulators.values():
        getattr(accumulator, "close", lambda: None)()


def portable_settings(s: Settings, folder: Path) -> dict:
    """The settings as stored: paths relative to the config's folder."""
    out = s.stored()
    for key in ("reference", "fid_reference"):
        out[key] = portable(out[key], folder)
    return out


def jsonable(value: Any) -> Any:
    """A metric's value as JSON stores it (dict keys as strings, numpy scalars as floats)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return None if value is None else float(value)


def scored(device, began: float) -> dict:
    """Where, when and in how many seconds (since ``began``) something was scored."""
    return {**run_environment(device), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": round(time.perf_counter() - began, 1)}


def samples_path(results: Path, tier: str) -> Path:
    """Where a tier's stored uint8 sets live, beside the results file."""
    return results.with_name(f"{results.stem}-{tier}-samples.npz")


def read_images(path: Path, sha256: str) -> dict[str, np.ndarray]:
    """The stored sets of a tier, after checking the file is the one the results record."""
    if not path.is_file():
        raise InputError(f"{path}: the stored samples of this tier are missing; restore the file from git or "
                         "rescore with `ganmetrics leaderboard --update`")
    if sha256_file(path) != sha256:
        raise InputError(f"{path} is not the samples file the results record (sha256 {sha256[:12]}…); restore it "
                         "from git or rescore with `ganmetrics leaderboard --update`")
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def write_images(path: Path, images: dict[str, np.ndarray]) -> dict:
    """Store a tier's uint8 sets (compressed, atomically); returns the tier's ``samples`` record."""
    with atomic_write(path) as handle:
        np.savez_compressed(handle, **images)
    return {"file": path.name, "sha256": sha256_file(path), "sets": sorted(images)}


__all__ = ["MAX_DRIFT_FRACTION", "Run", "Scorer", "drift", "read_images", "samples_path", "tree_sha256",
           "write_images"]
