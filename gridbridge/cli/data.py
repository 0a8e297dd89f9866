"""``gridbridge data ...``: import raw grid data and build the bundled dataset."""

from __future__ import annotations

import typer

app = typer.Typer(help="Import grid data (carbon, prices, tariffs) and build datasets.",
                  no_args_is_help=True)
