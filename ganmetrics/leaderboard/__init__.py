"""Leaderboards: a config of entries and settings (:mod:`.config`), a results file beside it that ``--update``
writes and ``--check`` compares against (:mod:`.results`), scored through the metric registry (:mod:`.scoring`).

The zoo's leaderboard is one such config, shipped as ``reference_stats/leaderboard.toml`` with its results
``reference_stats/leaderboard.json``; a user's repository keeps its own (``ganmetrics-leaderboard.toml`` or
``[tool.ganmetrics.leaderboard]`` in ``pyproject.toml``).  See ``docs/leaderboard-ci.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..reference import reference_dir
from .config import CONFIG_NAME, Config, ConfigError, Entry, Tier, find_config, read_config
from .results import (
    FAILED,
    IMPROVED,
    RESULTS_FORMAT,
    WITHIN_GATE,
    Finding,
    judge_entry,
    read_results,
    record_tier,
    stale,
    write_results,
)
from .scoring import MAX_DRIFT_FRACTION, Scorer, drift, read_images, samples_path, write_images

ZOO_CONFIG = "leaderboard.toml"


def zoo_config_path() -> Path:
    """The shipped config of the zoo's leaderboard (``reference_stats/leaderboard.toml``)."""
    folder = reference_dir()
    if folder is None:
        raise InputError("no reference_stats folder is shipped with this installation of ganmetrics")
    return folder / ZOO_CONFIG


def default_config(folder: str | os.PathLike = ".") -> Path:
    """Without ``--config``: the config in ``folder`` (or its pyproject.toml), else the zoo's."""
    return find_config(folder) or zoo_config_path()


def select(tier: Tier, names: list[str] | None) -> list[Entry]:
    """The tier's entries named in ``names`` (all when None), in the config's order."""
    if not names:
        return list(tier.entries)
    known = [entry.name for entry in tier.entries]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InputError(f"--entries: {', '.join(unknown)} not in the config (entries: {', '.join(known)})")
    return [entry for entry in tier.entries if entry.name in names]


@dataclass
class Report:
    """What a check (or an update) found."""

    config: Config
    tier: str
    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  #: failures that are not one metric's number
    notes: list[str] = field(default_factory=list)
    records: dict = field(default_factory=dict)  #: the entries' records scored now

    @property
    def passed(self) -> bool:
        return not self.problems and not any(f.failed for f in self.findings)

    @property
    def notices(self) -> list[Finding]:
        return [f for f in self.findings if f.status in (IMPROVED, WITHIN_GATE)]

    def to_json(self) -> dict:
        return {"passed": self.passed, "config": str(self.config.path), "tier": self.tier,
                "problems": self.problems, "notes": self.notes,
                "findings": [f.__dict__ for f in self.findings], "entries": self.records}


def _score(scorer: Scorer, plans: list) -> Scorer:
    """Score planned entries (:meth:`Scorer.plan`: every check that needs no image came first)."""
    try:
        for entry, made, _ in plans:
            scorer.score(entry, made)
    finally:
        scorer.close()
    return scorer


def check(config: Config, tier: str | None = None, *, entries: list[str] | None = None, weights: str | None = None,
          progress: bool = True) -> Report:
    """Rescore the tier's entries and judge every metric against the stored results (:mod:`.results`).  Also
    failures: an entry not scored yet, a stored entry no longer in the config, an entry whose settings or artefact
    changed since it was scored, a re-rendered built-in reference that moved."""
    chosen_tier = config.tier(tier)
    chosen = select(chosen_tier, entries)
    results = read_results(config.results)
    stored = results["tiers"].get(chosen_tier.name)
    if stored is None:
        raise InputError(f"{config.results}: no results of tier {chosen_tier.name!r} yet; create them with "
                         f"`ganmetrics leaderboard --update --config {config.path}`")
    images = read_images(samples_path(config.results, chosen_tier.name), stored["samples"]["sha256"]) \
        if stored.get("samples") else None
    scorer = Scorer(config, weights=weights, progress=progress, stored_images=images,
                    max_drift=stored.get("max_drift_fraction", MAX_DRIFT_FRACTION))
    plans = scorer.plan(chosen)
    for entry, _, _ in plans:
        scored_with = stored["entries"].get(entry.name, {}).get("provenance", {}).get("weights_sha256")
        if scored_with is not None and scored_with != scorer.run.weights_sha256:
            raise InputError(f"{entry.name} was scored with Inception weights sha256 {scored_with}, but these are "
                             f"{scorer.run.weights_sha256}: the numbers are not comparable; pass those weights with "
                             "--weights")
    _score(scorer, plans)
    report = Report(config, chosen_tier.name, problems=list(scorer.run.problems), notes=list(scorer.run.notes),
                    records=scorer.run.records)
    for entry in chosen:
        now, old = scorer.run.records[entry.name], stored["entries"].get(entry.name)
        if old is None:
            report.problems.append(f"{entry.name}: not scored yet; run `ganmetrics leaderboard --update`")
            continue
        report.problems += stale(entry.name, old, now)
        report.findings += judge_entry(entry.name, old, now, entry.settings)
    if not entries:
        report.problems += [f"{name}: in the results but no longer in the config; run `ganmetrics leaderboard "
                            "--update` to drop it" for name in stored["entries"]
                            if name not in {e.name for e in chosen_tier.entries}]
    return report


def update(config: Config, tier: str | None = None, *, entries: list[str] | None = None, weights: str | None = None,
           progress: bool = True) -> tuple[dict, Report]:
    """Score the tier's entries (all, or ``entries``: the others' stored records kept) and write the results file
    and its stored samples; returns the new results and how they compare with the old ones (informative)."""
    chosen_tier = config.tier(tier)
    chosen = select(chosen_tier, entries)
    try:
        results = read_results(config.results)
    except InputError:  # a damaged file, or one of an older format: this update writes it anew
        results = {"format": RESULTS_FORMAT, "tiers": {}}
    old = results.get("tiers", {}).get(chosen_tier.name, {})
    scorer = Scorer(config, weights=weights, progress=progress)
    _score(scorer, scorer.plan(chosen))
    images = dict(scorer.run.images)
    path = samples_path(config.results, chosen_tier.name)
    if entries and old.get("samples") and path.is_file():  # a partial update keeps the other entries' sets
        kept = read_images(path, old["samples"]["sha256"])
        names = {e.name for e in chosen_tier.entries}
        images = {**{k: v for k, v in kept.items() if k in names and k not in images}, **images}
    samples = write_images(path, images) if images else None
    new = record_tier(results, chosen_tier.name, scorer.run.records, entries=[e.name for e in chosen_tier.entries],
                      samples=samples, replace=not entries, note=chosen_tier.note)
    if samples:
        new["tiers"][chosen_tier.name]["max_drift_fraction"] = MAX_DRIFT_FRACTION
    write_results(new, config.results)
    report = Report(config, chosen_tier.name, notes=list(scorer.run.notes), records=scorer.run.records)
    for entry in chosen:
        if entry.name in old.get("entries", {}):
            report.findings += judge_entry(entry.name, old["entries"][entry.name], scorer.run.records[entry.name],
                                           entry.settings)
    return new, report


__all__ = ["CONFIG_NAME", "FAILED", "MAX_DRIFT_FRACTION", "Config", "ConfigError", "Report", "check",
           "default_config", "drift", "find_config", "read_config", "read_results", "update", "zoo_config_path"]
