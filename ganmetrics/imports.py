"""``"package.module:attribute"`` → the attribute: how the CLI and the leaderboards name a user's generator or
feature extractor."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from .errors import InputError


def import_attribute(target: str, folder: Path | None = None) -> Any:
    """The attribute ``target`` names (``module:attr``, ``attr`` may be dotted), imported with ``folder`` first on
    ``sys.path`` while importing (a project's own modules are found as in its tests); InputError saying why not."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"{target!r} is not module:attribute")
    if folder is not None:
        sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"cannot import {module_name!r} ({exc}); install the package or put it beside the config") \
            from None
    finally:
        if folder is not None:
            sys.path.remove(str(folder))  # the caller's sys.path as it was
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            raise InputError(f"module {module_name} ({getattr(module, '__file__', '?')}) has no {attr!r}")
        value = getattr(value, part)
    return value
