"""Reading a clearing's folder: its ``ledger.csv`` and the round id in its ``summary.json``.

The one reader of ``ledger.csv`` (``gridbridge ledger post``, ``gridbridge trueup``, the
reports). It is read by :mod:`gridbridge.textcsv` (every cell as text, a ragged row or a
broken quote reported with its row, where polars' reader would pad a short row with nulls)
and then cast to :data:`~gridbridge.ledger.schema.POSTING_SCHEMA`'s dtypes; an empty cell is
null. A missing file is a :class:`NotFoundError` (exit 2) saying how to get it; an
unreadable or malformed ``ledger.csv`` a :class:`LedgerError` (exit 5) unless the caller
names another error; a ``summary.json`` without a round id an :class:`InputError`.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl

from gridbridge.errors import GridBridgeError, InputError, LedgerError, NotFoundError
from gridbridge.ledger.schema import POSTING_SCHEMA, refusal, whole_cents
from gridbridge.textcsv import read_csv_text

__all__ = ["LEDGER_CSV", "SUMMARY_JSON", "read_postings_csv", "read_round_id"]

LEDGER_CSV = "ledger.csv"
SUMMARY_JSON = "summary.json"

_CLEAR_FIX = "run `gridbridge clear BUNDLE --out OUT_DIR` and post that OUT_DIR"
_UNREADABLE = "cannot read the ledger lines"


def _require(path: Path, fix: str) -> None:
    if not path.is_file():
        raise NotFoundError(f"{path}: file not found — fix: {fix}")


def read_postings_csv(path: str | Path, *, fix: str = _CLEAR_FIX,
                      error: type[GridBridgeError] = LedgerError) -> pl.DataFrame:
    """``ledger.csv`` as a postings frame (its columns as written, dtypes as in the schema).

    Columns the schema does not know are kept as text, so that
    :func:`~gridbridge.ledger.schema.validate_postings` names them. A missing file raises
    :class:`NotFoundError` with ``fix`` (how to get the file); a file that is not CSV, or an
    ``amount_cents`` that is not a whole number (each named with its row and posting_id),
    raises ``error``: :class:`LedgerError` where the lines are to be posted, an
    :class:`InputError` where they are only read.
    """
    path = Path(path)
    _require(path, fix)
    frame, problems = read_csv_text(
        path, header_fix=f"write the header {','.join(POSTING_SCHEMA)}"
    )
    if frame is None:
        raise error(refusal(_UNREADABLE, problems))
    # textcsv keeps empty cells as "", polars' own reader would give null: a ledger line's
    # empty cell means "no value" (a round-level line's bid_id).
    frame = frame.with_columns(pl.when(pl.col(c) != "").then(pl.col(c)) for c in frame.columns)
    frame, problems = whole_cents(frame, str(path))
    if problems:
        raise error(refusal(_UNREADABLE, problems))
    return frame


def read_round_id(path: str | Path, *, fix: str = _CLEAR_FIX) -> str:
    """The ``round_id`` recorded in a clearing's ``summary.json``.

    Raises :class:`NotFoundError` (missing file) or :class:`InputError` (not JSON, no
    non-empty round id), each ending with ``fix`` (how to get a good summary.json).
    """
    path = Path(path)
    _require(path, fix)
    try:
        summary = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as JSON ({exc}) — fix: {fix}") from None
    round_id = summary.get("round_id") if isinstance(summary, dict) else None
    if not isinstance(round_id, str) or not round_id.strip():
        raise InputError(f"{path}: has no round_id (a non-empty text) — fix: {fix} "
                         "with a GridBridge that records the round id")
    return round_id
