"""Every malformed posting is refused with a LedgerError that says where and how to fix it,
and the database is left exactly as it was."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import polars as pl
import pytest

from gridbridge.errors import LedgerError
from gridbridge.ledger import Ledger, validate_postings
from tests.databases import Databases
from tests.ledger.sample import ROUND, counts, sample_round

NEW = "R-20230704-newround"
Mutation = Callable[[pl.DataFrame], pl.DataFrame]


def cell(frame: pl.DataFrame, column: str, row: int, value: object) -> pl.DataFrame:
    """``frame`` with one cell replaced (row 0-based), keeping the column's dtype."""
    values = frame[column].to_list()
    values[row] = value
    return frame.with_columns(pl.Series(column, values, dtype=frame.schema[column]))


# (mutation of a valid round, text the message must hold: field, posting_id, fix)
CASES: dict[str, tuple[Mutation, list[str]]] = {
    "missing-column": (lambda f: f.drop("kind"), ["missing column(s): kind", "fix:"]),
    "extra-column": (lambda f: f.with_columns(pl.lit("x").alias("note")),
                     ["unexpected column(s): note", "drop them"]),
    "column-order": (lambda f: f.select(list(reversed(f.columns))),
                     ["columns are in the order posted_at_utc", "reorder them"]),
    "amount-dtype": (lambda f: f.with_columns(pl.col("amount_cents").cast(pl.Float64)),
                     ["field 'amount_cents': has dtype Float64, not Int64", "cast it"]),
    "all-null-bid-id": (lambda f: f.with_columns(pl.lit(None).alias("bid_id")),
                        ["field 'bid_id': has dtype Null, not String"]),
    "empty": (lambda f: f.clear(), ["has no lines", "fix:"]),
    "other-round": (lambda f: cell(f, "round_id", 3, ROUND),
                    ["row 4, field 'round_id'", f"posting_id '{NEW}:000004'",
                     f"round_id is '{ROUND}', not the round being posted ('{NEW}')"]),
    "null-posting-id": (lambda f: cell(f, "posting_id", 2, None),
                        ["row 3, field 'posting_id': posting_id (null): missing",
                         "give every line a unique posting_id"]),
    "duplicate-posting-id": (lambda f: cell(f, "posting_id", 5, f"{NEW}:000001"),
                             [f"row 1, field 'posting_id': posting_id '{NEW}:000001': appears "
                              "more than once", "row 6,", "fix: give every line its own"]),
    "lowercase-member": (lambda f: cell(f, "account", 0, "member:de"),
                         [f"row 1, field 'account': posting_id '{NEW}:000001': 'member:de' is "
                          "not a ledger account", "fix: use member:<2-3 capital letters>"]),
    "long-member": (lambda f: cell(f, "account", 0, "member:DEUT"), ["'member:DEUT' is not"]),
    "site-with-space": (lambda f: cell(f, "account", 1, "site:SITE 0"), ["'site:SITE 0' is not"]),
    "empty-site": (lambda f: cell(f, "account", 1, "site:"), ["'site:' is not"]),
    "unknown-alliance": (lambda f: cell(f, "account", 5, "alliance:bank"),
                         ["'alliance:bank' is not"]),
    "account-prefix-only": (lambda f: cell(f, "account", 0, "xmember:DE"),
                            ["'xmember:DE' is not"]),
    "null-account": (lambda f: cell(f, "account", 0, None), ["null is not a ledger account"]),
    "bad-kind": (lambda f: cell(f, "kind", 2, "fee"),
                 [f"row 3, field 'kind': posting_id '{NEW}:000003': 'fee' is not a kind",
                  "fix: use one of energy, ask, capacity, carbon_fee, uplift, rounding, "
                  "correction"]),
    "null-amount": (lambda f: cell(f, "amount_cents", 4, None),
                    [f"row 5, field 'amount_cents': posting_id '{NEW}:000005': amount is null",
                     "fix: give every line a whole number of euro cents"]),
    "bad-timestamp": (lambda f: f.with_columns(pl.lit("2023-07-04 00:00").alias("posted_at_utc")),
                      ["field 'posted_at_utc'", "'2023-07-04 00:00' is not a UTC time",
                       "YYYY-MM-DDTHH:MMZ"]),
    "impossible-date": (lambda f: f.with_columns(pl.lit("2023-02-30T00:00Z")
                                                 .alias("posted_at_utc")),
                        ["'2023-02-30T00:00Z' is not a UTC time"]),
    "two-timestamps": (lambda f: cell(f, "posted_at_utc", 0, "2023-07-04T01:00Z"),
                       ["holds 2 time stamps (2023-07-04T00:00Z, 2023-07-04T01:00Z)",
                        "give all its lines the same posted_at_utc"]),
    "unbalanced": (lambda f: cell(f, "amount_cents", 1, 999),
                   ["field 'amount_cents': amounts sum to -1 cents, not 0",
                    "alliance:rounding"]),
    # Four amounts of 2**62 wrap to exactly 0 in Int64 arithmetic; the check must not.
    "sum-overflows-int64": (lambda f: f.head(4).with_columns(
        pl.lit(2**62, pl.Int64).alias("amount_cents")),
                            ["amounts sum to 18446744073709551616 cents"]),
}


@pytest.fixture
def ledger(databases: Databases) -> Iterator[Ledger]:
    with Ledger.open(databases.fresh("ledger-validation")) as opened:
        opened.post_round(ROUND, sample_round())
        yield opened


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_posting_is_refused_and_changes_nothing(ledger: Ledger, case: str) -> None:
    mutate, expected = CASES[case]
    frame = mutate(sample_round(NEW, posted_at="2023-07-04T00:00Z"))
    before = counts(ledger)
    with pytest.raises(LedgerError) as caught:
        ledger.post_round(NEW, frame)
    message = str(caught.value)
    for text in expected:
        assert text in message, message
    assert "postings of round " + NEW in message
    assert counts(ledger) == before
    assert ledger.rounds()["round_id"].to_list() == [ROUND]
    # The same frame is refused as a batch of corrections too, again writing nothing.
    with pytest.raises(LedgerError):
        ledger.post_corrections(NEW, "b1", frame)
    assert counts(ledger) == before


def test_valid_round_passes() -> None:
    validate_postings(sample_round(NEW, bids=10), NEW)


@pytest.mark.parametrize("account", ["member:DE", "member:KOR", "site:DE-JUWELS_2.a",
                                     "alliance:carbon-fund", "alliance:uplift",
                                     "alliance:rounding"])
def test_accounts_accepted(account: str) -> None:
    frame = sample_round(NEW).with_columns(pl.lit(account).alias("account"))
    validate_postings(frame, NEW)


def test_many_problems_are_listed_then_counted() -> None:
    frame = sample_round(NEW, bids=30).with_columns(pl.lit("nobody").alias("account"))
    with pytest.raises(LedgerError) as caught:
        validate_postings(frame, NEW)
    message = str(caught.value)
    assert message.count("'nobody' is not a ledger account") == 20
    assert "... and 162 more rows like these" in message


@pytest.mark.parametrize("round_id", ["", " R-1"])
def test_round_id_must_be_given(round_id: str) -> None:
    with pytest.raises(LedgerError, match="is empty or has surrounding spaces"):
        validate_postings(sample_round("R-1"), round_id)
