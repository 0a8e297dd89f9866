"""Hand-made, balanced postings for the ledger tests (no clearing needed)."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import sqlalchemy as sa

from gridbridge.ledger import POSTING_SCHEMA, Ledger
from gridbridge.ledger.store import metadata

ROUND = "R-20230703-ab12cd34"
POSTED_AT = "2023-07-03T00:00Z"
MEMBERS = ("DE", "KR", "GB", "CA", "SG")


def sample_round(round_id: str = ROUND, bids: int = 2, posted_at: str = POSTED_AT,
                 prefix: str | None = None) -> pl.DataFrame:
    """Six lines per bid plus a round-level rounding pair; every amount known by hand.

    Bid ``i`` (0-based) of member ``MEMBERS[i % 5]`` on site ``SITE-<i % 3>`` pays energy
    ``1000 + i`` cents, an ask of ``500 + i`` cents and a carbon fee of ``30 + i`` cents;
    the site receives energy and ask, the carbon fund the fee. The rounding pair moves 1
    cent from member:KR to alliance:rounding. Posting ids are ``<prefix>:<n:06>`` (prefix
    defaults to the round id), n from 1.
    """
    rows: list[tuple[str | None, str, str, int]] = []
    for i in range(bids):
        bid, member, site = f"B{i:04d}", f"member:{MEMBERS[i % 5]}", f"site:SITE-{i % 3}"
        rows += [(bid, member, "energy", -(1000 + i)), (bid, site, "energy", 1000 + i),
                 (bid, member, "ask", -(500 + i)), (bid, site, "ask", 500 + i),
                 (bid, member, "carbon_fee", -(30 + i)),
                 (bid, "alliance:carbon-fund", "carbon_fee", 30 + i)]
    rows += [(None, "member:KR", "rounding", -1), (None, "alliance:rounding", "rounding", 1)]
    head = prefix or round_id
    return pl.DataFrame(
        {
            "posting_id": [f"{head}:{n:06d}" for n in range(1, len(rows) + 1)],
            "round_id": [round_id] * len(rows),
            "bid_id": [r[0] for r in rows],
            "account": [r[1] for r in rows],
            "kind": [r[2] for r in rows],
            "amount_cents": [r[3] for r in rows],
            "posted_at_utc": [posted_at] * len(rows),
        },
        schema=POSTING_SCHEMA,
    )


def corrections(round_id: str, batch_id: str, cents: int,
                posted_at: str = "2023-07-10T00:00Z") -> pl.DataFrame:
    """A metered true-up: member:DE pays ``cents`` more to site:SITE-0 for bid B0000."""
    return pl.DataFrame(
        {
            "posting_id": [f"{round_id}:{batch_id}:{n:04d}" for n in (1, 2)],
            "round_id": [round_id] * 2,
            "bid_id": ["B0000"] * 2,
            "account": ["member:DE", "site:SITE-0"],
            "kind": ["correction"] * 2,
            "amount_cents": [-cents, cents],
            "posted_at_utc": [posted_at] * 2,
        },
        schema=POSTING_SCHEMA,
    )


def write_out_dir(folder: Path, frame: pl.DataFrame, round_id: str | None = ROUND) -> Path:
    """A clearing's folder as ``gridbridge ledger post`` reads it (ledger.csv, summary.json);
    ``round_id=None`` leaves the round id out of the summary."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_csv(folder / "ledger.csv")
    summary: dict[str, str] = {"status": "optimal"}
    if round_id is not None:
        summary["round_id"] = round_id
    (folder / "summary.json").write_bytes(orjson.dumps(summary))
    return folder


def counts(ledger: Ledger) -> dict[str, int]:
    """Rows per ledger table, read straight from the database."""
    with ledger.engine.connect() as conn:
        return {t: conn.execute(sa.select(sa.func.count()).select_from(metadata.tables[t]))
                .scalar_one() for t in ("ledger_rounds", "ledger_batches", "ledger_postings")}
