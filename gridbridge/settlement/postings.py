"""A cleared round's ledger lines: double-entry, integer euro cents, summing to exactly 0.

**Rounding rule (the only one):** every line's amount is its EUR figure, as written to the
clearing's files (to 1/10,000 EUR), rounded to the cent half-to-even. The two sides of a
transfer are the same rounded number, so they cancel exactly; the only residue comes from
splitting one amount across members by pledge share, and it goes to ``alliance:rounding``.

Lines per accepted bid (member ``m`` of the bid, site ``s`` that runs it; positive = the
account receives):

* ``energy`` — m pays, s receives the energy cost (wholesale + tariff adder; negative
  wholesale prices make it a credit to m, so the sign follows the figure);
* ``ask`` — m pays, s receives the site's asks for the GPU-hours served;
* ``capacity`` — m pays, s receives the capacity prices of those GPU-hours;
* ``carbon_fee`` — m pays, ``alliance:carbon-fund`` receives carbon price × emissions;
* ``uplift`` — where those four charges exceed the bid's value (in cents), m receives the
  excess back from ``alliance:uplift``, so m never pays more than its value and s is still
  paid in full.

Round-level lines (no bid): ``alliance:uplift`` is refunded first from this round's carbon
fees (``alliance:carbon-fund`` pays, at most what it took in this round), and any remainder is
charged to the members in proportion to their ``pledge_share`` (one ``uplift`` line each),
with the split's rounding residue posted to ``alliance:rounding`` (kind ``rounding``). Every
line carries the round's own timestamp, so a re-run posts identical lines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

import polars as pl

from gridbridge.errors import InputError, LedgerError
from gridbridge.hours import HOUR_FORMAT
from gridbridge.ledger.schema import CARBON_FUND, POSTING_SCHEMA, ROUNDING, UPLIFT

#: Charge kinds of a bid, in posting order, with the placements column each comes from.
CHARGES = (("energy", "energy_cost_eur"), ("ask", "ask_eur"), ("capacity", "capacity_eur"),
           ("carbon_fee", "carbon_fee_eur"))


def cents(eur: float) -> int:
    """EUR to integer cents by the ledger's one rounding rule: the figure to 1/10,000 EUR
    (as the clearing writes it), then to the cent half-to-even."""
    try:
        return int(Decimal(f"{eur:.4f}").quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
                   * 100)
    except (InvalidOperation, ValueError, OverflowError):
        # NaN, infinity, or more digits than the 28 a Decimal holds (about 1e24 EUR).
        raise LedgerError(f"{eur!r} EUR cannot be posted: a ledger line is a finite amount "
                          "below 1e24 EUR — fix: check the figures the amount came from "
                          "(prices, metering, values)") from None


def hour_stamp(t: datetime) -> str:
    """The ledger's timestamp form, ``2023-07-03T00:00Z``."""
    return t.strftime(HOUR_FORMAT)


def round_id_for(bundle: Path, carbon_price_eur_per_t: float,
                 emissions_cap_kg: float | None, window_start_utc: datetime) -> str:
    """A round id for a clearing made offline from a bundle: the window start and a digest of
    the bundle's files and the round's options, so the same inputs give the same id."""
    digest = hashlib.sha256()
    for path in sorted(p for p in bundle.iterdir() if p.is_file()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(f"{carbon_price_eur_per_t!r}|{emissions_cap_kg!r}".encode())
    return f"R-{window_start_utc:%Y%m%dT%H}Z-{digest.hexdigest()[:10]}"


@dataclass
class Lines:
    round_id: str
    posted_at_utc: str
    rows: list[tuple[str | None, str, str, int]]
    prefix: str | None = None  # of posting ids; default the round id

    def add(self, bid_id: str | None, account: str, kind: str, amount: int) -> None:
        if amount:
            self.rows.append((bid_id, account, kind, amount))

    def transfer(self, bid_id: str | None, payer: str, payee: str, kind: str,
                 amount: int) -> None:
        self.add(bid_id, payer, kind, -amount)
        self.add(bid_id, payee, kind, amount)

    def frame(self) -> pl.DataFrame:
        n = len(self.rows)
        return pl.DataFrame({
            "posting_id": [f"{self.prefix or self.round_id}:{i:06d}" for i in range(1, n + 1)],
            "round_id": [self.round_id] * n,
            "bid_id": [r[0] for r in self.rows],
            "account": [r[1] for r in self.rows],
            "kind": [r[2] for r in self.rows],
            "amount_cents": [r[3] for r in self.rows],
            "posted_at_utc": [self.posted_at_utc] * n,
        }, schema=POSTING_SCHEMA)


def _split(total: int, shares: Iterable[tuple[str, float]]) -> list[tuple[str, int]]:
    """``total`` cents split by share, each part rounded half-to-even (residue not placed)."""
    items = [(m, Decimal(repr(float(s)))) for m, s in shares if s > 0]
    whole = sum((s for _, s in items), Decimal(0))
    if total == 0 or whole == 0:
        return []
    return [(m, int((Decimal(total) * s / whole).quantize(Decimal(1), ROUND_HALF_EVEN)))
            for m, s in items]


def round_postings(round_id: str, posted_at_utc: datetime, placements: pl.DataFrame,
                   members: pl.DataFrame) -> pl.DataFrame:
    """The round's ledger lines (module docstring) from its priced placements.

    ``placements`` needs ``bid_id``, ``member``, ``site_id``, ``value_eur`` and the charge
    columns (EUR); ``members`` needs ``member`` and ``pledge_share``.
    """
    missing = [c for c in ("bid_id", "member", "site_id", "value_eur", *dict(CHARGES).values())
               if c not in placements.columns]
    if missing:
        raise InputError(f"placements lack column(s) {', '.join(missing)}; re-run "
                         "gridbridge clear (pricing fills them)")
    if placements["capacity_eur"].null_count():
        raise InputError("placements have no capacity prices: the round was cleared without "
                         "pricing; re-run gridbridge clear with pricing on")
    lines = Lines(round_id, hour_stamp(posted_at_utc), [])
    uplift_total = fees_total = 0
    for row in placements.sort("bid_id").iter_rows(named=True):
        member, site, bid = f"member:{row['member']}", f"site:{row['site_id']}", row["bid_id"]
        charged = 0
        for kind, column in CHARGES:
            amount = cents(row[column])
            charged += amount
            payee = CARBON_FUND if kind == "carbon_fee" else site
            if kind == "carbon_fee":
                fees_total += amount
            lines.transfer(bid, member, payee, kind, amount)
        # In cents, so the member's net payment never exceeds its value, to the cent.
        uplift = max(0, charged - cents(row["value_eur"]))
        uplift_total += uplift
        lines.transfer(bid, UPLIFT, member, "uplift", uplift)
    from_fund = min(uplift_total, max(fees_total, 0))
    lines.transfer(None, CARBON_FUND, UPLIFT, "uplift", from_fund)
    remainder = uplift_total - from_fund
    if remainder:
        parts = _split(remainder, members.select("member", "pledge_share").iter_rows())
        if not parts:
            raise InputError("members.csv gives no member a pledge_share > 0, so the round's "
                             f"uplift of {remainder} cents cannot be charged; set pledge_share")
        lines.add(None, UPLIFT, "uplift", remainder)
        for member, part in parts:
            lines.add(None, f"member:{member}", "uplift", -part)
        lines.add(None, ROUNDING, "rounding", sum(p for _, p in parts) - remainder)
    frame = lines.frame()
    total = int(frame["amount_cents"].sum())
    if total != 0:  # cannot happen: every transfer cancels and the split's residue is posted
        raise LedgerError(f"round {round_id}'s postings sum to {total} cents, not 0; "
                          "this is a bug, please report it")
    return frame


__all__ = ["CARBON_FUND", "ROUNDING", "UPLIFT", "cents", "hour_stamp", "round_id_for",
           "round_postings"]
