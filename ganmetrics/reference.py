"""Bundled reference statistics: names such as ``shapes32`` that resolve to shipped ``.npz`` files.

The registry is ``reference_stats/manifest.json`` (a list of entries with at least ``name`` and
``file``, plus protocol, weights hash, sample count and source).  It is read from the package
folder ``ganmetrics/reference_stats`` when installed, else from the repository's top-level
``reference_stats/``.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError

_PACKAGE_DIR = Path(__file__).resolve().parent


def reference_dir() -> Path | None:
    """The folder holding ``manifest.json``, or ``None`` when none is shipped."""
    for candidate in (_PACKAGE_DIR / "reference_stats", _PACKAGE_DIR.parent / "reference_stats"):
        if (candidate / "manifest.json").is_file():
            return candidate
    return None


def available_references() -> dict[str, dict]:
    """Manifest entries of the bundled reference statistics, by name."""
    folder = reference_dir()
    if folder is None:
        return {}
    entries = json.loads((folder / "manifest.json").read_text())
    entries = entries.get("stats", []) if isinstance(entries, dict) else entries
    return {entry["name"]: dict(entry, path=str(folder / entry["file"])) for entry in entries}


def reference_path(name: str) -> Path:
    """Path of the statistics file of the bundled reference set ``name``."""
    refs = available_references()
    if name not in refs:
        known = ", ".join(sorted(refs)) or "none are bundled in this version"
        raise InputError(
            f"{name!r} is not an existing file or folder, and not a bundled reference set "
            f"(available reference sets: {known})."
        )
    return Path(refs[name]["path"])


def looks_like_reference_name(value: object) -> bool:
    """True for a plain name (a string without path separators or a file extension) that is not a path."""
    if not isinstance(value, str) or Path(value).exists():
        return False
    return "/" not in value and "\\" not in value and "." not in value
