"""The results file and the verdict: each stored number against the one scored now.

Two limits per metric (the registry gives each metric's direction and its reproduction tolerance):

* the **tolerance**: a change within it is the same number (float32 arithmetic on another machine);
* optional **gates** on the worse direction (``max_increase`` for a lower-is-better metric, ``max_decrease`` for a
  higher-is-better one, either for a metric without a direction), absolute or ``%`` of the stored value.

Beyond the tolerance, a better headline number passes with a notice to run ``--update``; a worse one passes with
a notice within its gate and fails beyond it (without a gate, any worse change beyond the tolerance fails).
When the headline is within its tolerance, every other number of the metric (KID's std, SWD's levels) must be
too.  NaN never passes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_write
from ..errors import InputError
from ..metrics.base import HIGHER, LOWER, registry
from .config import Gate, Settings

RESULTS_FORMAT = "ganmetrics-leaderboard/2"
PASSED, IMPROVED, WITHIN_GATE, FAILED = "passed", "improved", "within gate", "failed"
#: settings that do not change the numbers: where they ran, and how a check judges them (taken from the config now)
JUDGING = frozenset({"device", "tolerances", "gates"})


def read_results(path: str | os.PathLike) -> dict:
    """The results file; an empty one when it does not exist yet."""
    path = Path(path)
    if not path.is_file():
        return {"format": RESULTS_FORMAT, "tiers": {}}
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable results file ({exc}); restore it from git") from None
    if not isinstance(results, dict) or results.get("format") != RESULTS_FORMAT:
        raise InputError(f"{path} is not a {RESULTS_FORMAT} file (format {results.get('format')!r}); rescore with "
                         "`ganmetrics leaderboard --update`")
    return results


def write_results(results: dict, path: str | os.PathLike) -> Path:
    """Write ``results`` atomically (the old file stays whole until the new one is complete)."""
    with atomic_write(path, "w") as handle:
        json.dump(results, handle, indent=2)
        handle.write("\n")
    return Path(path)


def flatten(value, prefix: str = "") -> dict[str, float]:
    """``{"": x}`` for a number; ``{".mean": ..., ".levels.32": ...}`` for a dict (pure)."""
    if isinstance(value, dict):
        return {k: v for key, inner in value.items() for k, v in flatten(inner, f"{prefix}.{key}").items()}
    return {} if value is None else {prefix: float(value)}


@dataclass(frozen=True)
class Finding:
    """One metric of one entry: the stored and the new headline number and the verdict."""

    entry: str
    metric: str
    status: str  #: PASSED, IMPROVED, WITHIN_GATE or FAILED
    stored: float | None
    now: float | None
    message: str

    @property
    def failed(self) -> bool:
        return self.status == FAILED


def _gate(gates: dict, metric: str, increased: bool) -> tuple[str, Gate] | None:
    which = "max_increase" if increased else "max_decrease"
    spec = gates.get(metric, {}).get(which)
    return None if spec is None else (which, spec)


def judge(entry: str, metric: str, stored, now, tolerance: float, gates: dict) -> Finding:
    """The verdict on one metric of one entry (pure): see the module docstring."""
    known = registry()[metric]
    title = known.label or known.title
    if stored is None or now is None:
        what = "not stored (run `ganmetrics leaderboard --update`)" if stored is None else "not scored now"
        return Finding(entry, metric, FAILED, None, None, f"{entry} {title}: {what}")
    old, new = known.headline(stored), known.headline(now)
    delta = new - old
    where = f"{entry} {title}: stored {old:.6g}, now {new:.6g}"
    if not math.isfinite(new) or not math.isfinite(old):
        return Finding(entry, metric, FAILED, old, new, f"{where} (not finite)")
    if abs(delta) <= tolerance:
        a, b = flatten(stored), flatten(now)
        moved = [key for key in sorted(a.keys() | b.keys())
                 if key not in a or key not in b or not abs(a[key] - b[key]) <= tolerance]
        if moved:
            detail = ", ".join(f"{metric}{k}: {a.get(k, math.nan):.6g} → {b.get(k, math.nan):.6g}" for k in moved)
            return Finding(entry, metric, FAILED, old, new, f"{where}, but {detail} moved beyond the tolerance "
                                                            f"{tolerance:g}")
        return Finding(entry, metric, PASSED, old, new, f"{where} (within the tolerance {tolerance:g})")
    better = {LOWER: delta < 0, HIGHER: delta > 0}.get(known.direction, False)
    if better:
        return Finding(entry, metric, IMPROVED, old, new, f"{where}: better by {abs(delta):.3g} (beyond the tolerance "
                                                          f"{tolerance:g}); run `ganmetrics leaderboard --update` to "
                                                          "record it")
    gate = _gate(gates, metric, delta > 0)
    worse = "worse" if known.direction else "changed"
    if gate is not None and abs(delta) <= gate[1].limit(old):
        return Finding(entry, metric, WITHIN_GATE, old, new, f"{where}: {worse} by {abs(delta):.3g}, within its gate "
                                                             f"{gate[0]} = {gate[1]}")
    limit = (f"beyond its gate {gate[0]} = {gate[1]} ({gate[1].limit(old):.3g})" if gate is not None else
             f"beyond the tolerance {tolerance:g}; no gate allows it")
    return Finding(entry, metric, FAILED, old, new, f"{where}: {worse} by {abs(delta):.3g}, {limit}")


def judge_entry(name: str, stored: dict, now: dict, settings: Settings) -> list[Finding]:
    """Every metric of an entry: its stored record against the one scored now (the tolerances and gates of the
    code and config now)."""
    return [judge(name, metric, stored["scores"].get(metric), now["scores"].get(metric), now["tolerances"][metric],
                  settings.gates) for metric in settings.metrics]


def stale(name: str, stored: dict, now: dict) -> list[str]:
    """Why an entry's stored record no longer describes what is scored now: its settings (but :data:`JUDGING`), its
    artefact (SHA-256).  Each is a failure: the results must be rescored with ``--update``."""
    problems = []
    # a setting added to ganmetrics after the entry was scored was, then, its default
    old, new = {**Settings().stored(), **stored["settings"]}, now["settings"]
    changed = [f"{key} {old.get(key)!r} → {new.get(key)!r}" for key in sorted(old.keys() | new.keys())
               if old.get(key) != new.get(key) and key not in JUDGING]
    if changed:
        problems.append(f"{name}: its settings changed since it was scored ({'; '.join(changed)}); run "
                        "`ganmetrics leaderboard --update`")
    a, b = stored["source"].get("sha256"), now["source"].get("sha256")
    if a != b:
        problems.append(f"{name}: its {now['source']['kind']} artefact changed since it was scored (sha256 "
                        f"{(a or 'none')[:12]}… → {(b or 'none')[:12]}…); rescore it with `ganmetrics leaderboard "
                        "--update`")
    return problems


def record_tier(results: dict, tier: str, records: dict[str, dict], *, entries: list[str], samples: dict | None,
                replace: bool, note: str | None = None) -> dict:
    """``results`` with ``tier``'s entries set (``replace``: exactly ``entries``; otherwise the others kept), in
    the config's order ``entries``."""
    results = json.loads(json.dumps(results))
    old = results.setdefault("tiers", {}).get(tier, {})
    merged = {} if replace else {k: v for k, v in old.get("entries", {}).items() if k in entries}
    merged.update(records)
    results["format"] = RESULTS_FORMAT
    results["tiers"][tier] = {
        **({"note": note} if note else {}),
        "tolerance_basis": {name: metric.tolerance_basis for name, metric in registry().items()
                            if any(name in r["scores"] for r in merged.values())},
        **({"samples": samples} if samples else {}),
        "entries": {name: merged[name] for name in entries if name in merged},
    }
    return results


__all__ = ["FAILED", "IMPROVED", "PASSED", "RESULTS_FORMAT", "WITHIN_GATE", "Finding", "flatten", "judge",
           "judge_entry", "read_results", "record_tier", "stale", "write_results"]
