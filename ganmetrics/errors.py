"""The exceptions ganmetrics raises.

Every error a user can cause is a :class:`GanmetricsError`; the CLI prints its
message on one line and exits with code 2.  Subclasses also derive from the
builtin that fits (``ValueError``, ``FileNotFoundError``) so that generic
``except`` clauses keep working.
"""

from __future__ import annotations


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
