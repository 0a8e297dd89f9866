"""The settlement ledger: who pays whom for each market round, in integer euro cents.

Double-entry and append-only: every posting (a round, or a batch of corrections to one)
sums to exactly 0 cents; nothing posted is ever changed or removed. A positive amount is
money the account receives, a negative one money it pays. See :mod:`gridbridge.ledger.schema`
for the postings table and :mod:`gridbridge.ledger.store` for storage and its guarantees.

The storage names (:class:`Ledger` and its constants) load SQLAlchemy on first use, so the
schema and the ledger.csv reader serve :mod:`gridbridge.settlement` and
:mod:`gridbridge.reports` without the database layer. This package imports neither of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gridbridge.ledger.files import read_postings_csv, read_round_id
from gridbridge.ledger.schema import (
    ACCOUNT_PATTERN,
    ALLIANCE_ACCOUNTS,
    CARBON_FUND,
    KINDS,
    POSTING_SCHEMA,
    ROUNDING,
    UPLIFT,
    empty_postings,
    line_problems,
    validate_postings,
)

if TYPE_CHECKING:
    from gridbridge.ledger.store import DEFAULT_URL, LEDGER_SCHEMA_VERSION, ROUNDS_SCHEMA, Ledger

__all__ = [
    "ACCOUNT_PATTERN",
    "ALLIANCE_ACCOUNTS",
    "CARBON_FUND",
    "DEFAULT_URL",
    "KINDS",
    "LEDGER_SCHEMA_VERSION",
    "POSTING_SCHEMA",
    "ROUNDING",
    "ROUNDS_SCHEMA",
    "UPLIFT",
    "Ledger",
    "empty_postings",
    "line_problems",
    "read_postings_csv",
    "read_round_id",
    "validate_postings",
]

_STORE_NAMES = ("DEFAULT_URL", "LEDGER_SCHEMA_VERSION", "ROUNDS_SCHEMA", "Ledger")


def __getattr__(name: str) -> Any:
    """The storage names, imported from :mod:`gridbridge.ledger.store` when first asked for."""
    if name in _STORE_NAMES:
        from gridbridge.ledger import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
