"""The exceptions ganmetrics raises.

Every error a user can cause is a :class:`GanmetricsError`; the CLI prints its
message on one line and exits with code 2.  Subclasses also derive from the
builtin that fits (``ValueError``, ``FileNotFoundError``) so that generic
``except`` clauses keep working.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator


class GanmetricsError(Exception):
    """Base class of every error ganmetrics raises on bad input or set-up."""


class InputError(GanmetricsError, ValueError):
    """An image source (folder, zip, array, tensor, generator ...) is unusable."""


class SourceNotFoundError(InputError, FileNotFoundError):
    """A path given as an image source or statistics file does not exist."""


class WeightsError(GanmetricsError):
    """Inception weights could not be found, downloaded, verified or parsed."""


class StatsError(GanmetricsError, ValueError):
    """A statistics file is unreadable, incomplete or incompatible with another."""


class ProtocolError(GanmetricsError, ValueError):
    """An unknown protocol name, or two statistics computed under different protocols."""


class CheckpointError(GanmetricsError):
    """A training checkpoint or a shipped model checkpoint is missing, corrupted or of another model."""


# -- messages in the words of the interface in use ------------------------------------------------

_CLI_WORDS: contextvars.ContextVar[bool] = contextvars.ContextVar("ganmetrics_cli_words", default=False)


def spelled(python: str, cli: str) -> str:
    """``python`` (e.g. ``"value_range=(0, 1)"``) in messages to Python callers, ``cli`` (``"--value-range 0 1"``)
    while the ``ganmetrics`` command runs: advice names what the user can actually type."""
    return cli if _CLI_WORDS.get() else python


@contextlib.contextmanager
def cli_words() -> Iterator[None]:
    """Within this block, :func:`spelled` gives the command line's words (the CLI wraps each command in it)."""
    token = _CLI_WORDS.set(True)
    try:
        yield
    finally:
        _CLI_WORDS.reset(token)
