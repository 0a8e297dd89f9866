"""The postings table: the one shape every ledger line has, and the rules a posting obeys.

A posting is a polars DataFrame with exactly the columns of :data:`POSTING_SCHEMA`, in that
order (they are also the columns of ``ledger.csv``). Money is integer euro cents; a positive
``amount_cents`` is money the account receives, a negative one money it pays. Every posting
(a round, or one batch of corrections to a round) balances: its amounts sum to exactly 0
cents, so the ledger as a whole always sums to 0.

:func:`validate_postings` checks one posting and raises :class:`LedgerError` listing every
problem, each naming the field, the row, the offending ``posting_id`` and the fix. Its parts
serve whoever else reads ledger lines (a report, :mod:`gridbridge.ledger.files`):
:func:`line_problems` checks any lines of one round (a posting, or a round with its
corrections), :func:`whole_cents` turns text or float amounts into integer cents,
:func:`row_problems` lists the rows a check finds and :func:`refusal` makes one message of
the problems.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from gridbridge.errors import MAX_ROWS_REPORTED, LedgerError, Problem
from gridbridge.hours import HOUR_FORMAT

__all__ = [
    "ACCOUNT_PATTERN",
    "ALLIANCE_ACCOUNTS",
    "CARBON_FUND",
    "KINDS",
    "POSTING_SCHEMA",
    "ROUNDING",
    "UPLIFT",
    "empty_postings",
    "line_problems",
    "refusal",
    "row_problems",
    "validate_postings",
    "whole_cents",
]

#: The postings table, column by column in order. ``bid_id`` is null for round-level lines
#: (rounding, uplift); ``posted_at_utc`` is the round's own time stamp (ISO 8601, UTC,
#: ``2023-07-03T00:00Z``), never the wall clock, so posting the same round is reproducible.
POSTING_SCHEMA: dict[str, pl.DataType] = {
    "posting_id": pl.String(),
    "round_id": pl.String(),
    "bid_id": pl.String(),
    "account": pl.String(),
    "kind": pl.String(),
    "amount_cents": pl.Int64(),
    "posted_at_utc": pl.String(),
}

#: The carbon fund: receives carbon fees (and refunds the round's uplift from them).
CARBON_FUND = "alliance:carbon-fund"
#: Makes whole what prices alone do not pay a bid's site.
UPLIFT = "alliance:uplift"
#: Receives the cent residue of splitting an amount across members.
ROUNDING = "alliance:rounding"
#: The alliance's own accounts.
ALLIANCE_ACCOUNTS = (CARBON_FUND, UPLIFT, ROUNDING)

#: ``member:<ISO code>``, ``site:<site_id>`` or one of :data:`ALLIANCE_ACCOUNTS`.
ACCOUNT_PATTERN = re.compile(
    r"member:[A-Z]{2,3}|site:[A-Za-z0-9._-]+|" + "|".join(map(re.escape, ALLIANCE_ACCOUNTS))
)

#: What a line is for. ``correction`` is a metered true-up posted after the round.
KINDS = ("energy", "ask", "capacity", "carbon_fee", "uplift", "rounding", "correction")

_ACCOUNT_FIX = (
    "use member:<2-3 capital letters>, site:<site_id> (letters, digits, '.', '_', '-'), "
    + ", ".join(ALLIANCE_ACCOUNTS)
)


def empty_postings() -> pl.DataFrame:
    """A postings table with no rows (what reading an empty ledger returns)."""
    return pl.DataFrame(schema=POSTING_SCHEMA)


def row_problems(
    file: str,
    frame: pl.DataFrame,
    mask: pl.Series,
    field: str,
    describe: Callable[[dict[str, Any]], str],
    fix: str,
) -> list[Problem]:
    """One problem per row of ``frame`` where ``mask`` is true or null (at most
    MAX_ROWS_REPORTED, then a count); rows are 1-based, as a CSV's data rows.

    ``describe`` says what is wrong from the row's values; where ``frame`` has a
    ``posting_id`` column the message starts with it, so each line says which posting to
    look at.
    """
    problems: list[Problem] = []
    rows = frame.with_row_index("_row", offset=1).filter(mask.fill_null(True))
    for row in rows.head(MAX_ROWS_REPORTED).iter_rows(named=True):
        message = describe(row)
        if "posting_id" in row:
            pid = row["posting_id"]
            who = "posting_id (null)" if pid is None else f"posting_id '{pid}'"
            message = f"{who}: {message}"
        problems.append(Problem(file, row["_row"], field, message, fix))
    if rows.height > MAX_ROWS_REPORTED:
        problems.append(
            Problem(
                file,
                None,
                field,
                f"... and {rows.height - MAX_ROWS_REPORTED} more rows like these",
                fix,
            )
        )
    return problems


def refusal(heading: str, problems: Sequence[Problem]) -> str:
    """One message for ``problems`` (at least one): ``heading: problem``, or the heading
    with a count and one indented line per problem."""
    if len(problems) == 1:
        return f"{heading}: {problems[0]}"
    return "\n".join([f"{heading} ({len(problems)} problems):", *(f"  - {p}" for p in problems)])


def whole_cents(frame: pl.DataFrame, file: str) -> tuple[pl.DataFrame, list[Problem]]:
    """``frame`` with its ``amount_cents`` (text, float or any integer) as Int64 cents.

    Returns the problems too: one per value that is not a whole number of cents (``'12.5'``,
    ``12.5``, ``'abc'``), naming its row and posting_id; such a value becomes null. A null
    stays null (:func:`line_problems` refuses it). A frame without ``amount_cents`` is
    returned as it is.
    """
    if "amount_cents" not in frame.columns or frame.schema["amount_cents"] == pl.Int64:
        return frame, []
    raw = frame["amount_cents"]
    if raw.dtype.is_float():  # a cast would truncate 12.5 to 12: refuse fractions instead
        whole = pl.select(pl.when(raw == raw.floor()).then(raw).alias(raw.name)).to_series()
    else:
        whole = raw
    cents = whole.cast(pl.Int64, strict=False)
    problems = row_problems(file, frame, raw.is_not_null() & cents.is_null(), "amount_cents",
                            lambda r: f"'{r['amount_cents']}' is not a whole number of cents",
                            "write amounts as integer euro cents (1234 for 12.34 EUR; "
                            "negative when the account pays)")
    return frame.with_columns(cents), problems


def _quoted(value: object) -> str:
    return "null" if value is None else f"'{value}'"


def _column_problems(file: str, frame: pl.DataFrame) -> list[Problem]:
    problems: list[Problem] = []
    expected = list(POSTING_SCHEMA)
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in POSTING_SCHEMA]
    order = ", ".join(expected)
    if missing:
        problems.append(
            Problem(file, None, None, f"missing column(s): {', '.join(missing)}",
                    f"a posting has exactly the columns {order}")
        )
    if extra:
        problems.append(
            Problem(file, None, None, f"unexpected column(s): {', '.join(extra)}",
                    f"drop them; a posting has exactly the columns {order}")
        )
    if not missing and not extra and frame.columns != expected:
        problems.append(
            Problem(file, None, None, f"columns are in the order {', '.join(frame.columns)}",
                    f"reorder them: frame.select({expected})")
        )
    for name, dtype in POSTING_SCHEMA.items():
        if name in frame.columns and frame.schema[name] != dtype:
            problems.append(
                Problem(file, None, name, f"has dtype {frame.schema[name]}, not {dtype}",
                        f"cast it: pl.col('{name}').cast(pl.{dtype})")
            )
    return problems




def _value_problems(file: str, frame: pl.DataFrame, round_id: str) -> list[Problem]:
    pid = frame["posting_id"]
    problems = row_problems(file, frame, pid.is_null(), "posting_id", lambda r: "missing",
                            "give every line a unique posting_id, e.g. '<round_id>:000001'")
    problems += row_problems(file, frame, pid.is_duplicated() & pid.is_not_null(), "posting_id",
                             lambda r: "appears more than once",
                             "give every line its own posting_id")

    problems += row_problems(
        file, frame, frame["round_id"].ne_missing(round_id), "round_id",
        lambda r: f"round_id is {_quoted(r['round_id'])}, not the round being posted "
        f"('{round_id}')",
        f"post each round's lines on their own, all with round_id '{round_id}'")

    account_ok = frame["account"].str.contains(f"^(?:{ACCOUNT_PATTERN.pattern})$")
    problems += row_problems(file, frame, ~account_ok, "account",
                             lambda r: f"{_quoted(r['account'])} is not a ledger account",
                             _ACCOUNT_FIX)

    problems += row_problems(file, frame, ~frame["kind"].is_in(KINDS), "kind",
                             lambda r: f"{_quoted(r['kind'])} is not a kind of line",
                             f"use one of {', '.join(KINDS)}")

    problems += row_problems(
        file, frame, frame["amount_cents"].is_null(), "amount_cents",
        lambda r: "amount is null",
        "give every line a whole number of euro cents (positive: the account receives)")

    stamps = frame["posted_at_utc"]
    # Only the written form round-trips: this refuses 2023-7-3, 00:00+01:00 and 2023-02-30.
    canonical = stamps.str.to_datetime(HOUR_FORMAT, strict=False).dt.strftime(HOUR_FORMAT)
    problems += row_problems(
        file, frame, stamps.is_null() | canonical.ne_missing(stamps), "posted_at_utc",
        lambda r: f"{_quoted(r['posted_at_utc'])} is not a UTC time like 2023-07-03T00:00Z",
        "write the round's own time (not the wall clock) as YYYY-MM-DDTHH:MMZ")

    if frame["amount_cents"].null_count() == 0:
        # Python ints: a sum of Int64 amounts cannot overflow here and silently wrap.
        total = sum(frame["amount_cents"].to_list())
        if total != 0:
            problems.append(
                Problem(file, None, "amount_cents",
                        f"amounts sum to {total} cents, not 0 (the posting does not balance)",
                        "every posting balances: add the missing counter-lines, and book a "
                        "rounding residue to alliance:rounding")
            )
    return problems


def _one_time(file: str, frame: pl.DataFrame) -> list[Problem]:
    distinct = frame["posted_at_utc"].drop_nulls().unique().sort()
    if distinct.len() <= 1:
        return []
    shown = ", ".join(distinct.head(5).to_list()) + (", ..." if distinct.len() > 5 else "")
    return [Problem(file, None, "posted_at_utc", f"holds {distinct.len()} time stamps ({shown})",
                    "a posting happens at one time: give all its lines the same posted_at_utc")]


def line_problems(lines: pl.DataFrame, round_id: str, *, file: str) -> list[Problem]:
    """Every problem with ledger lines of round ``round_id``: one posting, or a round with
    its corrections (so neither "no lines" nor several time stamps is a problem here).

    Columns first: missing, extra, out of order or of the wrong dtype. Where they are right,
    each line: a null or repeated ``posting_id``, a ``round_id`` other than ``round_id``,
    an account not matching :data:`ACCOUNT_PATTERN`, a kind not in :data:`KINDS`, a null
    amount, a ``posted_at_utc`` not in the form ``2023-07-03T00:00Z``; and amounts not
    summing to exactly 0 cents. Rows are 1-based; ``file`` names the source.
    """
    return _column_problems(file, lines) or _value_problems(file, lines, round_id)


def validate_postings(postings: pl.DataFrame, round_id: str, *, file: str | None = None) -> None:
    """Check one posting (a round, or one batch of corrections) of round ``round_id``.

    Raises :class:`LedgerError` listing every problem: those of :func:`line_problems`, no
    rows, and a ``posted_at_utc`` not the same on every line. ``file`` names the source in
    the messages (default: "postings of round <round_id>").
    """
    name = file or f"postings of round {round_id}"
    if not round_id or round_id != round_id.strip():
        raise LedgerError(f"ledger refuses the posting: round id {round_id!r} is empty or has "
                          "surrounding spaces — fix: pass the round's id as the clearing wrote "
                          "it (summary.json, round_id)")
    problems = _column_problems(name, postings)
    if not problems and postings.is_empty():
        problems.append(Problem(name, None, None, "has no lines",
                                "post a round with at least one pair of balancing lines"))
    if not problems:
        problems = _value_problems(name, postings, round_id) + _one_time(name, postings)
    if problems:
        raise LedgerError(refusal("ledger refuses the posting", problems))
