"""Errors a user can act on. Each message is one line that names the file and the problem."""

from __future__ import annotations


class GanevalError(Exception):
    """Base class: the CLI prints the message on one line and exits with code 2."""


class BadInputError(GanevalError):
    """An input (image, archive, array, stats file) cannot be used as given."""

    index: int | None = None
    """The position in its source of the image that failed, where the extraction knows it."""


class IncompatibleStatsError(GanevalError):
    """Two sets of statistics were made with different weights or preprocessing."""


class WeightsError(GanevalError):
    """The Inception weights are missing, corrupted or of the wrong layout."""
