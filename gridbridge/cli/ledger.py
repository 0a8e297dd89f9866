"""``gridbridge ledger ...``: post a clearing's settlement to the ledger and show balances.

Exit status: 0 when done; 2 when a file or option is wrong (a missing ``ledger.csv`` or
``summary.json``, a summary without ``round_id``, an unknown ``--round``); 5 when the ledger
refuses the posting (malformed or unbalanced lines, a round posted twice) or its database
cannot be opened. A refused posting writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridbridge.cli.output import make_console
from gridbridge.errors import NotFoundError
from gridbridge.ledger import (
    DEFAULT_URL,
    Ledger,
    read_postings_csv,
    read_round_id,
    validate_postings,
)
from gridbridge.ledger.files import LEDGER_CSV, SUMMARY_JSON

app = typer.Typer(help="Post settlements to the ledger and show balances.",
                  no_args_is_help=True)
console = make_console()

DbOption = Annotated[str, typer.Option(
    "--db", help="Ledger database URL (SQLite file relative to the current directory, or "
                 "postgresql+psycopg://...).")]


def euros(cents: int) -> str:
    """Exact euros for integer cents, with thousands separators: -123456 -> '-1,234.56'."""
    whole, part = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole:,}.{part:02d}"


@app.command()
def post(
    out_dir: Annotated[Path, typer.Argument(
        help="Folder a clearing wrote (ledger.csv and summary.json).")],
    db: DbOption = DEFAULT_URL,
) -> None:
    """Post a clearing's ledger.csv as its round (once: a posted round is never reposted)."""
    round_id = read_round_id(out_dir / SUMMARY_JSON)
    csv_path = out_dir / LEDGER_CSV
    postings = read_postings_csv(csv_path)
    # Validated here too so that problems name the CSV file and its rows.
    validate_postings(postings, round_id, file=str(csv_path))
    with Ledger.open(db) as ledger:
        lines = ledger.post_round(round_id, postings, source=str(out_dir))
    total = sum(postings["amount_cents"].to_list())
    console.print(f"posted round {round_id}: {lines} lines, sum {total} cents")


@app.command()
def show(
    db: DbOption = DEFAULT_URL,
    round_id: Annotated[str | None, typer.Option(
        "--round", help="Only this round (with its corrections).")] = None,
) -> None:
    """Print each account's balance (positive: it has received more than it paid).

    Opening a SQLite file that does not exist creates an empty ledger there.
    """
    with Ledger.open(db) as ledger:
        if round_id is not None and round_id not in ledger.rounds()["round_id"].to_list():
            raise NotFoundError(f"round {round_id} is not in the ledger at {ledger.url} — fix: "
                                "check the id (gridbridge ledger show lists every account) or "
                                "post the round first")
        balances = ledger.balances(round_id)
        where = ledger.url
    scope = f"round {round_id}" if round_id else "all rounds"
    if balances.is_empty():
        console.print(f"the ledger at {where} has no postings yet")
        return
    table = Table(title=f"balances, {scope}", title_justify="left")
    table.add_column("account")
    table.add_column("EUR", justify="right")
    table.add_column("cents", justify="right")
    for account, cents in balances.iter_rows():
        table.add_row(account, euros(cents), f"{cents:,}")
    total = sum(balances["amount_cents"].to_list())
    table.add_section()
    table.add_row("total", euros(total), f"{total:,}", style="bold")
    console.print(table)
    console.print(f"{balances.height} accounts in the ledger at {where}")
