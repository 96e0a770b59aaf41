"""A leaderboard's configuration: shared settings, optional tiers, and the entries to score, read from TOML.

A file ``ganmetrics-leaderboard.toml`` (keys at the top level) or the table ``[tool.ganmetrics.leaderboard]``
of ``pyproject.toml``::

    results = "leaderboard-results.json"     # written by --update, read by --check (default: beside the config)
    reference = "data/real"                  # what the two-set metrics compare against (see below)
    metrics = ["fid", "kid", "precision", "recall"]
    num_samples = 500

    [gates]                                  # optional quality gates, direction-aware
    fid = { max_increase = "2%" }
    precision = { max_decrease = 0.02 }

    [entries.my-gan]
    generator = "mypkg.models:load_generator"   # or zoo = "dcgan", torchscript = "g.pt", samples = "out/"
    checkpoint = "checkpoints/g.pt"
    kwargs = { width = 64 }

    [tiers.full]                             # optional: named overlays of the settings (--tier full)
    num_samples = 10000

Every setting may also be given per entry (an entry's own value wins over its tier's, which wins over the
shared one).  Paths are relative to the config file.  Every error names the file, the table and the key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..metrics.base import HIGHER, LOWER, all_options, parse_metrics, registry, split_options

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "ganmetrics-leaderboard.toml"
DEFAULT_TIER = "default"  #: the one tier of a config without [tiers]
ENTRY_KINDS = ("zoo", "generator", "torchscript", "samples")
GATE_KEYS = ("max_increase", "max_decrease")
BUILTIN_PREFIX = "builtin:"  #: ``reference = "builtin:shapes32"``: images rendered from a built-in set


@dataclass(frozen=True)
class Gate:
    """A quality limit on one direction of change: ``amount`` absolute, or a fraction of the stored value when
    ``relative`` (``"2%"`` → 0.02)."""

    amount: float
    relative: bool = False

    def limit(self, stored: float) -> float:
        return self.amount * abs(stored) if self.relative else self.amount

    def __str__(self) -> str:
        return f"{self.amount * 100:g}%" if self.relative else f"{self.amount:g}"


@dataclass(frozen=True)
class Settings:
    """How an entry is scored.  Every field is a key of the config (shared, per tier or per entry)."""

    metrics: tuple[str, ...] = ("fid",)
    num_samples: int = 1000  #: generated images per entry (latents and labels from ``seed``)
    seed: int = 0  #: latents, labels, KID subsets, SWD patches and directions
    protocol: str = "tf"
    #: the features of FID, KID, precision ...: a built-in extractor ("dinov2-vit-l-14") or "module:attribute";
    #: default Inception
    feature_extractor: str | None = None
    batch_size: int = 50
    device: str | None = None  #: default: cuda if available
    truncation: float | None = None  #: ψ, passed to a generator as ``truncation=``
    reference: str | None = None  #: images (folder, zip, npz), statistics (file or bundled name), or "builtin:NAME"
    reference_images: int | None = None  #: the first N images of the reference (required for "builtin:")
    fid_reference: str | None = None  #: statistics for the metrics of pool3 statistics alone (FID) instead
    store_samples: bool = True  #: store the generated uint8 samples beside the results (the check scores them)
    bootstrap: int = 0  #: B >= 2: each feature metric's bootstrap mean, std and ``ci`` interval over B replicates
    ci: float = 0.95  #: the bootstrap's percentile interval
    options: dict = field(default_factory=dict)  #: the metrics' options, evaluate()'s keywords (kid_subset_size ...)
    tolerances: dict = field(default_factory=dict)  #: metric → largest |change| that is not a regression
    gates: dict = field(default_factory=dict)  #: metric → {"max_increase": Gate, "max_decrease": Gate}

    def stored(self) -> dict:
        """The settings as the results file records them (JSON)."""
        out = dataclasses.asdict(self)
        out["metrics"] = list(self.metrics)
        out["gates"] = {m: {k: str(g) for k, g in gates.items()} for m, gates in self.gates.items()}
        return out


SETTING_KEYS = tuple(f.name for f in dataclasses.fields(Settings))


@dataclass(frozen=True)
class Entry:
    """One thing the leaderboard scores."""

    name: str
    kind: str  #: one of ENTRY_KINDS
    target: str  #: the zoo model, "module:callable", or the path (absolute)
    settings: Settings
    checkpoint: str | None = None  #: absolute path, passed to the generator callable as ``checkpoint=``
    kwargs: dict = field(default_factory=dict)
    z_dim: int | None = None

    def describe(self) -> str:
        return {"zoo": f"zoo model {self.target}", "generator": f"generator {self.target}",
                "torchscript": f"TorchScript {self.target}", "samples": f"samples {self.target}"}[self.kind]


@dataclass(frozen=True)
class Tier:
    name: str
    entries: tuple[Entry, ...]
    note: str | None = None


@dataclass(frozen=True)
class Config:
    """A parsed leaderboard config."""

    path: Path  #: the TOML file
    results: Path
    title: str
    description: str
    tiers: dict[str, Tier]
    docs: Path | None = None  #: where --update writes the page (``docs = "docs"``), if anywhere

    @property
    def folder(self) -> Path:
        return self.path.parent

    def tier(self, name: str | None) -> Tier:
        """The named tier (default: the first)."""
        if name is None:
            return next(iter(self.tiers.values()))
        if name not in self.tiers:
            raise InputError(f"{self.path}: no tier {name!r} (tiers: {', '.join(self.tiers)}); pass one of them to "
                             "--tier")
        return self.tiers[name]


class ConfigError(InputError):
    """A config that cannot be used (exit 2); the message names the file, the table and the key."""


def find_config(folder: str | os.PathLike = ".") -> Path | None:
    """The config of ``folder``: ``ganmetrics-leaderboard.toml``, else a ``pyproject.toml`` with a
    ``[tool.ganmetrics.leaderboard]`` table, else None."""
    folder = Path(folder)
    if (folder / CONFIG_NAME).is_file():
        return folder / CONFIG_NAME
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        try:
            table = tomllib.loads(pyproject.read_text())
        except (OSError, ValueError):
            return None
        if isinstance(table.get("tool", {}).get("ganmetrics", {}).get("leaderboard"), dict):
            return pyproject
    return None


def read_config(path: str | os.PathLike) -> Config:
    """Parse and check the config at ``path`` (a leaderboard TOML or a pyproject.toml)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: no such leaderboard config; pass --config PATH or create {CONFIG_NAME}")
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    where = ""
    if path.name == "pyproject.toml":
        raw = raw.get("tool", {}).get("ganmetrics", {}).get("leaderboard")
        where = "tool.ganmetrics.leaderboard."
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: no [tool.ganmetrics.leaderboard] table")
    return _Parser(path, where).config(raw)


class _Parser:
    def __init__(self, path: Path, where: str):
        self.path, self.where = path, where

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.where}{key}: {message}")

    def config(self, raw: dict) -> Config:
        top = {"results", "title", "description", "docs", "entries", "tiers", *SETTING_KEYS}
        self.unknown(raw, top, "")
        base = self.settings(raw, Settings(), "")
        entries = raw.get("entries")
        if not isinstance(entries, dict) or not entries:
            raise self.fail("entries", "list at least one entry, e.g. [entries.my-gan] with generator = "
                                       "\"pkg.module:callable\" (or zoo, torchscript, samples)")
        tiers_raw = raw.get("tiers", {DEFAULT_TIER: {}})
        if not isinstance(tiers_raw, dict) or not tiers_raw:
            raise self.fail("tiers", "a table of named tiers, e.g. [tiers.ci] num_samples = 200")
        tiers = {}
        for tier_name, overlay in tiers_raw.items():
            key = f"tiers.{tier_name}"
            if not isinstance(overlay, dict):
                raise self.fail(key, "must be a table of settings")
            self.unknown(overlay, {*SETTING_KEYS, "note"}, key + ".")
            settings = self.settings(overlay, base, key + ".")
            tiers[tier_name] = Tier(tier_name, tuple(self.entry(name, spec, settings, overlay, tier_name)
                                                     for name, spec in entries.items()),
                                    note=self.string(overlay, "note", key + "."))
        results = self.path_of(raw, "results", "") or self.path.with_name(
            (self.path.stem if self.path.name != "pyproject.toml" else "ganmetrics-leaderboard") + "-results.json")
        return Config(path=self.path, results=Path(results), title=self.string(raw, "title", "") or "Leaderboard",
                      description=self.string(raw, "description", "") or "", tiers=tiers,
                      docs=Path(d) if (d := self.path_of(raw, "docs", "", must_exist=False)) and Path(d).is_dir()
                      else None)  # a docs folder that is not there (an installed package) is not written

    def entry(self, name: str, spec: Any, tier_settings: Settings, tier_overlay: dict, tier_name: str) -> Entry:
        key = f"entries.{name}"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
            raise self.fail(key, "an entry's name is letters, digits and _ . + - (it names the entry in reports)")
        if not isinstance(spec, dict):
            raise self.fail(key, "must be a table, e.g. [entries.my-gan] with generator = \"pkg.module:callable\"")
        self.unknown(spec, {*ENTRY_KINDS, "checkpoint", "kwargs", "z_dim", *SETTING_KEYS}, key + ".")
        kinds = [kind for kind in ENTRY_KINDS if kind in spec]
        if len(kinds) != 1:
            raise self.fail(key, f"give exactly one of {', '.join(ENTRY_KINDS)} (got {', '.join(kinds) or 'none'})")
        kind = kinds[0]
        target = self.string(spec, kind, key + ".")
        if kind == "zoo":
            from ..zoo.registry import model_names  # the zoo only when a config names it

            if target not in model_names():
                raise self.fail(f"{key}.zoo", f"unknown zoo model {target!r}; choose from {', '.join(model_names())}")
        elif kind == "generator":
            if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", target):
                raise self.fail(f"{key}.generator", f"{target!r} is not \"module:callable\" (e.g. "
                                                    "\"mypkg.models:load_generator\")")
        else:
            target = self.path_of(spec, kind, key + ".")
        checkpoint = self.path_of(spec, "checkpoint", key + ".")
        if checkpoint is not None and kind != "generator":
            raise self.fail(f"{key}.checkpoint", "only a generator entry takes a checkpoint")
        kwargs = spec.get("kwargs", {})
        if not isinstance(kwargs, dict) or (kwargs and kind != "generator"):
            raise self.fail(f"{key}.kwargs", "a table of keyword arguments, for a generator entry only")
        z_dim = spec.get("z_dim")
        if z_dim is not None and (isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim < 1):
            raise self.fail(f"{key}.z_dim", f"must be a positive integer, got {z_dim!r}")
        # the entry's own settings win over its tier's; a tier's override of a key wins over the entry's shared one
        own = {k: v for k, v in spec.items() if k in SETTING_KEYS and k not in tier_overlay}
        settings = self.settings(own, tier_settings, key + ".")
        if kind == "samples" and settings.truncation is not None:
            raise self.fail(f"{key}.truncation", "samples have no truncation; remove the key")
        self.check_against_reference(settings, lambda name: (f"{key}." if name in own else
                                                             f"tiers.{tier_name}." if name in tier_overlay else ""))
        return Entry(name=name, kind=kind, target=target, settings=settings, checkpoint=checkpoint,
                     kwargs=dict(kwargs), z_dim=z_dim)

    # -- settings
    def settings(self, raw: dict, base: Settings, prefix: str) -> Settings:
        values: dict[str, Any] = {}
        for name in ("num_samples", "batch_size", "reference_images"):
            if name in raw:
                values[name] = self.integer(raw, name, prefix, minimum=1)
        if "seed" in raw:
            values["seed"] = self.integer(raw, "seed", prefix, minimum=0)
        for name in ("protocol", "device", "feature_extractor"):
            if name in raw:
                values[name] = self.string(raw, name, prefix)
        if "feature_extractor" in values:
            from ..features import BUILTIN

            if values["feature_extractor"] not in BUILTIN and ":" not in values["feature_extractor"]:
                raise self.fail(prefix + "feature_extractor", f"{values['feature_extractor']!r} is neither a built-in "
                                f"extractor ({', '.join(BUILTIN)}) nor module:attribute")
        if "protocol" in values:
            from ..preprocess import PROTOCOLS

            if values["protocol"] not in PROTOCOLS:
                raise self.fail(prefix + "protocol", f"unknown protocol {values['protocol']!r}; choose one of "
                                                     f"{', '.join(PROTOCOLS)}")
        if "truncation" in raw:
            value = raw["truncation"]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(prefix + "truncation", f"must be a number (ψ), got {value!r}")
            values["truncation"] = float(value)
        if "bootstrap" in raw:
            values["bootstrap"] = self.integer(raw, "bootstrap", prefix, minimum=0)
            if values["bootstrap"] == 1:
                raise self.fail(prefix + "bootstrap", "must be 0 (none) or >= 2 replicates, got 1")
        if "ci" in raw:
            value = raw["ci"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise self.fail(prefix + "ci", f"must be a fraction between 0 and 1 (e.g. 0.95), got {value!r}")
            values["ci"] = float(value)
        if "store_samples" in raw:
            if not isinstance(raw["store_samples"], bool):
                raise self.fail(prefix + "store_samples", f"must be true or false, got {raw['store_samples']!r}")
            values["store_samples"] = raw["store_samples"]
        for name in ("reference", "fid_reference"):
            if name in raw:
                values[name] = self.reference(raw, name, prefix)
        if "metrics" in raw:
            names = raw["metrics"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise self.fail(prefix + "metrics", f"a list of metric names, e.g. [\"fid\", \"kid\"], got {names!r}")
            try:
                values["metrics"] = parse_metrics(names)
            except InputError as exc:
                raise self.fail(prefix + "metrics", str(exc)) from None
        if "options" in raw:
            options = raw["options"]
            if not isinstance(options, dict):
                raise self.fail(prefix + "options", "a table of metric options, e.g. { kid_subset_size = 100 }")
            try:
                all_options(options)
            except InputError as exc:
                raise self.fail(prefix + "options", str(exc)) from None
            values["options"] = {**base.options, **options}
        if "tolerances" in raw:
            values["tolerances"] = {**base.tolerances, **self.tolerances(raw["tolerances"], prefix + "tolerances")}
        if "gates" in raw:
            values["gates"] = {**base.gates, **self.gates(raw["gates"], prefix + "gates")}
        settings = dataclasses.replace(base, **values)
        for table in ("tolerances", "gates"):
            stray = set(getattr(settings, table)) - set(settings.metrics)
            if stray:
                raise self.fail(prefix + table, f"{', '.join(sorted(stray))} not among the metrics "
                                                f"({', '.join(settings.metrics)})")
        return settings

    def check_against_reference(self, settings: Settings, prefix: Callable[[str], str]) -> None:
        """What can be checked of an entry's settings before any file is read; ``prefix(key)``: the table that
        set ``key`` (the entry's, its tier's or the shared one)."""
        known = registry()
        if settings.reference is None and any(known[m].sides == 2 for m in settings.metrics):
            raise self.fail(prefix("reference") + "reference", "the two-set metrics need a reference: images "
                            "(folder, zip, npz), statistics (file or bundled name) or \"builtin:NAME\"")
        if settings.reference and settings.reference.startswith(BUILTIN_PREFIX) and not settings.reference_images:
            raise self.fail(prefix("reference") + "reference_images", f"{settings.reference} needs "
                            "reference_images (how many of its images to render)")
        try:
            split_options(settings.metrics, settings.options)
        except InputError as exc:
            raise self.fail(prefix("options") + "options", str(exc)) from None

    def tolerances(self, raw: Any, key: str) -> dict[str, float]:
        if not isinstance(raw, dict):
            raise self.fail(key, "a table metric = number, e.g. { fid = 0.01 }")
        out = {}
        for metric, value in raw.items():
            name = self.metric_name(metric, f"{key}.{metric}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise self.fail(f"{key}.{metric}", f"must be a number >= 0, got {value!r}")
            out[name] = float(value)
        return out

    def gates(self, raw: Any, key: str) -> dict[str, dict[str, Gate]]:
        if not isinstance(raw, dict):
            raise self.fail(key, "a table metric = { max_increase = ... }, e.g. fid = { max_increase = \"2%\" }")
        known, out = registry(), {}
        for metric, spec in raw.items():
            name, at = self.metric_name(metric, f"{key}.{metric}"), f"{key}.{metric}"
            if not isinstance(spec, dict) or not spec:
                raise self.fail(at, "a table with max_increase and/or max_decrease")
            self.unknown(spec, set(GATE_KEYS), at + ".")
            direction = known[name].direction
            for which in spec:
                worse = (which == "max_increase") == (direction == LOWER)
                if direction in (LOWER, HIGHER) and not worse:
                    better = "lower" if direction == LOWER else "higher"
                    raise self.fail(f"{at}.{which}", f"{name} is better {better}: a "
                                                     f"{'decrease' if which == 'max_decrease' else 'increase'} is an "
                                                     f"improvement, never gated; use "
                                                     f"{'max_increase' if direction == LOWER else 'max_decrease'}")
            out[name] = {which: self.gate(value, f"{at}.{which}") for which, value in spec.items()}
        return out

    def gate(self, value: Any, key: str) -> Gate:
        if isinstance(value, str) and (match := re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*", value)):
            return Gate(float(match.group(1)) / 100, relative=True)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise self.fail(key, f"an absolute amount (a number >= 0) or a percentage such as \"2%\", got {value!r}")
        return Gate(float(value))

    # -- values
    def metric_name(self, name: str, key: str) -> str:
        try:
            return parse_metrics([name])[0]
        except InputError as exc:
            raise self.fail(key, str(exc)) from None

    def unknown(self, raw: dict, allowed: set[str], prefix: str) -> None:
        stray = [k for k in raw if k not in allowed]
        if stray:
            raise self.fail(prefix + stray[0], f"unknown key; the keys here are {', '.join(sorted(allowed))}")

    def integer(self, raw: dict, name: str, prefix: str, *, minimum: int) -> int:
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(prefix + name, f"must be an integer >= {minimum}, got {value!r}")
        return value

    def string(self, raw: dict, name: str, prefix: str) -> str | None:
        value = raw.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self.fail(prefix + name, f"must be a non-empty string, got {value!r}")
        return value

    def path_of(self, raw: dict, name: str, prefix: str, *, must_exist: bool = True) -> str | None:
        value = self.string(raw, name, prefix)
        if value is None:
            return None
        path = (self.path.parent / value).resolve()
        if must_exist and name not in ("results",) and not path.exists():
            raise self.fail(prefix + name, f"{path} does not exist")
        return str(path)

    def reference(self, raw: dict, name: str, prefix: str) -> str:
        """A bundled statistics name or "builtin:NAME" as given; a path made absolute (it must exist)."""
        value = self.string(raw, name, prefix)
        if value.startswith(BUILTIN_PREFIX):
            from ..data.builtin import DATASETS

            if name == "fid_reference" or value[len(BUILTIN_PREFIX):] not in DATASETS:
                raise self.fail(prefix + name, f"{value!r}: the built-in sets are "
                                               f"{', '.join(BUILTIN_PREFIX + d for d in DATASETS)} (reference only)")
            return value
        path = (self.path.parent / value).resolve()
        if path.exists():
            return str(path)
        from ..reference import available_references

        if value in available_references():
            return value
        raise self.fail(prefix + name, f"{path} does not exist, and {value!r} is not a bundled statistics name "
                                       f"({', '.join(available_references()) or 'none shipped'})")


__all__ = ["CONFIG_NAME", "Config", "ConfigError", "Entry", "Gate", "Settings", "Tier", "find_config",
           "read_config"]
