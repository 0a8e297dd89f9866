"""The root of GridBridge's one exception tree.

It lives in ``optim`` because imports run ``apps -> gridbridge -> optim``: the core must be
able to raise project errors without importing ``gridbridge``. ``gridbridge.errors``
re-exports it and adds the exchange's own branches. Every message says what went wrong and
what to do about it.
"""

from __future__ import annotations


class GridBridgeError(Exception):
    """Base class of every error GridBridge raises on purpose.

    Catch this to handle any GridBridge failure; the CLI turns it into a clear message and a
    non-zero exit status instead of a traceback.
    """

    exit_code: int = 1


class MarketInputError(GridBridgeError, ValueError):
    """Market inputs handed to the core are inconsistent (a programming error upstream)."""

    exit_code = 2


class SolveError(GridBridgeError, RuntimeError):
    """The solver ended without a usable result (no incumbent, an error status)."""

    exit_code = 3


class SolveTimeLimitError(SolveError):
    """The solver reached its time limit before it had a usable result."""


class CheckFailedError(GridBridgeError):
    """An independent check found a clearing that breaks a constraint or misreports a figure."""

    exit_code = 4
