"""What a metric is, and the registry that finds them.

A metric is one :class:`Metric` subclass in one module of :mod:`ganmetrics.metrics`, registered with
:func:`register`.  It declares what one pass over each image set must collect for it (:data:`FEATURES`,
:data:`KEPT_FEATURES`, :data:`LOGITS`, or its own accumulator of the uint8 batches, :data:`IMAGES`), how many
sets it compares (``sides``), its options (a dataclass, each field an option named ``{prefix}_{field}`` in
:func:`ganmetrics.evaluate` and ``--{flag}`` on the command line), its direction, and how its value prints.
:func:`ganmetrics.evaluate`, the CLI, the HTML report and the leaderboards iterate over :func:`registry`;
none of them names a metric.  This module imports nothing above :mod:`ganmetrics.metrics`.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..distributed import LOCAL, Shard
from ..errors import InputError
from ..stats import FeatureStats

FEATURES = "features"  #: pool3 mean and covariance (a FeatureStats)
KEPT_FEATURES = "kept_features"  #: the pool3 features themselves, ``[N, 2048]`` float32, in set order
LOGITS = "logits"  #: the classifier's logits (without bias), ``[N, 1008]``
IMAGES = "images"  #: the uint8 batches, fed to the metric's own accumulator

LOWER, HIGHER = "lower", "higher"  #: directions: which way is better

#: How the metrics' reproduction tolerances were measured (each metric's ``tolerance_basis`` goes on from here).
ISA_MEASURED = ("Measured on the zoo's stored CI-tier images (dcgan, sagan; 2026-12-06, AMD EPYC with AVX-512): "
                "oneDNN held to SSE4.1 or AVX2 kernels moved ")


def option(default: Any, *, flag: str | None = None, help: str = "", minimum: int | None = 1, kind: type = int,
           cli: bool = True) -> Any:
    """A metric option: ``default``; ``flag`` its CLI flag (default ``--{prefix}-{field}``, none when ``cli`` is
    False); ``kind`` its type; ``minimum``: an integer option's least value (None: no bound)."""
    return field(default=default, metadata={"flag": flag, "help": help, "minimum": minimum, "kind": kind,
                                            "cli": cli})


@dataclass(frozen=True)
class NoOptions:
    """A metric without options."""


@dataclass
class SetData:
    """One set as the metrics see it: after its pass (every rank's share merged) or loaded statistics."""

    role: str  #: "gen" or "real"
    description: str
    num_images: int
    stats: FeatureStats | None = None  #: with ``features`` when a metric needs KEPT_FEATURES
    logits: torch.Tensor | None = None
    accumulators: dict[str, Any] = field(default_factory=dict)  #: metric name → its accumulator of this set


@dataclass
class Context:
    """What every metric of one evaluation shares."""

    seed: int = 0
    device: torch.device = torch.device("cpu")
    shard: Shard = LOCAL
    strict: bool = True
    has_classifier: bool | None = None  #: whether the Inception weights have the classifier (None: not loaded)
    image_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  #: role → (H, W) when known
    cache: dict[Any, Any] = field(default_factory=dict)  #: results metrics share (precision and recall ...)


class Metric:
    """One metric: its declaration (class attributes) and its three steps: :meth:`unavailable` before any image
    is read, :meth:`accumulator` per set (IMAGES metrics), :meth:`compute` from the sets' data."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    title: ClassVar[str]  #: "Inception Score" (the report)
    label: ClassVar[str | None] = None  #: "IS" (the terminal; default: the title)
    meaning: ClassVar[str]  #: one sentence for the report
    direction: ClassVar[str | None]  #: LOWER, HIGHER or None (no better side, e.g. MS-SSIM diversity)
    order: ClassVar[int]  #: position in outputs (fid, kid, is, swd, ms_ssim, precision, ...)
    sides: ClassVar[int] = 2  #: 2: ``gen`` against ``real``; 1: ``gen`` alone
    needs: ClassVar[frozenset[str]]  #: what each compared set's pass collects
    Options: ClassVar[type] = NoOptions
    prefix: ClassVar[str | None] = None  #: option keys ``{prefix}_{field}`` (default: the name)
    #: the largest change of any of its numbers that is not a regression when the same uint8 images are scored on
    #: another machine (absolute; leaderboards), and where that value comes from
    tolerance: ClassVar[float] = 0.0
    tolerance_basis: ClassVar[str] = ""

    # -- declaration helpers
    @classmethod
    def option_prefix(cls) -> str:
        return cls.prefix or cls.name

    @classmethod
    def option_keys(cls) -> dict[str, str]:
        """``{"kid_subsets": "subsets", ...}``: evaluate()'s keyword → the Options field."""
        return {f"{cls.option_prefix()}_{f.name}": f.name for f in dataclasses.fields(cls.Options)}

    def set_needs(self, role: str) -> frozenset[str]:
        """What the pass over ``role``'s set collects for this metric."""
        return self.needs if role == "gen" or self.sides == 2 else frozenset()

    # -- the steps
    def unavailable(self, gen: Any, real: Any, options: Any, ctx: Context) -> str | Exception | None:
        """Why this metric cannot apply to these inputs (each an opened ImageSource, a FeatureStats or None),
        checked before any image is read: a message (or the error to raise); None when it can."""
        name = self.label or self.title
        if self.sides == 2 and real is None:
            return f"{name} compares two sets: give the reference set"
        for role, side in (("gen", gen), ("real", real)):
            needs = self.set_needs(role)
            if not isinstance(side, FeatureStats) or not needs:
                continue
            what = "the reference set" if role == "real" else "the generated set"
            if IMAGES in needs or LOGITS in needs:
                return f"{name} compares images, but {what} is statistics"
            if KEPT_FEATURES in needs and side.features is None:
                return (f"{name} needs {what}'s features, but these statistics were saved without them; recompute "
                        "them with keep_features=True (ganmetrics stats --keep-features) or give images")
        return None

    def accumulator(self, role: str, options: Any, ctx: Context, gen: SetData | None = None) -> Any:
        """A fresh accumulator of ``role``'s uint8 batches (IMAGES metrics): ``update(batch, indices)``, ``full``,
        ``merged(shard)``.  ``gen``: the generated set's data, when ``role`` is "real"."""
        raise NotImplementedError

    def prepare(self, options: Any, ctx: Context) -> None:
        """Called for every chosen metric before any computes: announce work to share through ``ctx.cache``."""

    def compute(self, gen: SetData, real: SetData | None, options: Any, ctx: Context) -> Any:
        """The value (a float, or a dict of floats) from the sets' data."""
        raise NotImplementedError

    def tolerance_for(self, options: Any, num_images: tuple[int, int]) -> float:
        """The reproduction tolerance of its numbers for sets of ``num_images`` (generated, reference) images."""
        return self.tolerance

    def headline(self, value: Any) -> float | None:
        """The one number a quality gate judges (a dict's ``mean``)."""
        return value.get("mean") if isinstance(value, dict) else value

    # -- presentation
    def short(self, value: Any) -> str:
        """The value in a table cell."""
        if isinstance(value, dict) and "mean" in value:
            std = value.get("std")
            return f"{value['mean']:.6f} ± " + ("n/a" if std is None else f"{std:.6f}")
        return f"{value:.6f}"

    def line(self, value: Any) -> str:
        """The value on the terminal: ``TITLE    value``."""
        return f"{self.label or self.title:<8} {self.short(value)}"

    def detail(self, options: Any, protocol: str, num_images: list[int]) -> str:
        """How the value was computed, for the report (``num_images``: of each compared set)."""
        return ", ".join(f"{f.name.replace('_', ' ')} {getattr(options, f.name)}"
                         for f in dataclasses.fields(options)) or "—"


_REGISTRY: dict[str, Metric] = {}
_ALIASES: dict[str, str] = {}
_LOADED = False


def register(cls: type[Metric]) -> type[Metric]:
    """Class decorator: add a metric to the registry (its name and aliases must be new)."""
    metric = cls()
    for key in (cls.name, *cls.aliases):
        if key in _ALIASES and _ALIASES[key] != cls.name:
            raise RuntimeError(f"metric name {key!r} registered twice")
        _ALIASES[key] = cls.name
    _REGISTRY[cls.name] = metric
    return cls


def registry() -> dict[str, Metric]:
    """Every metric, in output order; the modules of :mod:`ganmetrics.metrics` are imported on first use, so a new
    metric is one new module."""
    global _LOADED
    if not _LOADED:
        package = importlib.import_module("ganmetrics.metrics")
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"ganmetrics.metrics.{info.name}")
        _LOADED = True
    return dict(sorted(_REGISTRY.items(), key=lambda item: item[1].order))


def parse_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise ``"fid,kid"`` or ``["fid", "KID"]`` to registered metric names, in output order."""
    known = registry()
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    chosen = set()
    for name in names:
        key = _ALIASES.get(name.strip().lower())
        if key is None:
            raise InputError(f"unknown metric {name!r}; choose from {', '.join(known)}")
        chosen.add(key)
    if not chosen:
        raise InputError(f"no metric requested; choose from {', '.join(known)}")
    return tuple(m for m in known if m in chosen)


def split_options(chosen: Iterable[str], given: dict[str, Any]) -> dict[str, Any]:
    """Each chosen metric's Options from evaluate()'s keywords (``kid_subsets=50`` ...); a keyword no registered
    metric has is an error naming it."""
    values = all_options(given)
    known = registry()
    return {name: check_options(known[name], known[name].Options(**{field_name: values[key] for key, field_name
                                                                     in known[name].option_keys().items()}))
            for name in chosen}


def option_fields() -> dict[str, dataclasses.Field]:
    """Every registered metric's options: ``{"kid_subsets": its dataclass field, ...}`` (shared keys once)."""
    fields: dict[str, dataclasses.Field] = {}
    for metric in registry().values():
        for spec in dataclasses.fields(metric.Options):
            fields.setdefault(f"{metric.option_prefix()}_{spec.name}", spec)
    return fields


def option_flag(key: str) -> str:
    """The command-line flag of option ``key`` (``kid_subsets`` → ``--kid-subsets``, unless it declares another)."""
    return option_fields()[key].metadata.get("flag") or "--" + key.replace("_", "-")


def all_options(given: dict[str, Any]) -> dict[str, Any]:
    """Every registered option's value: ``given`` over the defaults (an unknown key is an error naming it)."""
    fields = option_fields()
    unknown = set(given) - set(fields)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(sorted(unknown))}; the metrics' options are "
                         + ", ".join(fields))
    return {key: given.get(key, spec.default) for key, spec in fields.items()}


def check_options(metric: Metric, options: Any) -> Any:
    """``options`` after checking each integer against its declared minimum (an error names the option)."""
    for f in dataclasses.fields(options):
        value, minimum = getattr(options, f.name), f.metadata.get("minimum")
        if minimum is None or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InputError(f"{metric.option_prefix()}_{f.name} must be an integer >= {minimum}, got {value!r}")
    return options


__all__ = ["FEATURES", "HIGHER", "ISA_MEASURED", "IMAGES", "KEPT_FEATURES", "LOGITS", "LOWER", "Context", "Metric", "NoOptions",
           "SetData", "all_options", "option", "option_fields", "option_flag", "parse_metrics",
           "register", "registry", "split_options"]
