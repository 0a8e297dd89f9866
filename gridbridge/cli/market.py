"""``gridbridge market ...``: make, validate and summarise market bundles."""

from __future__ import annotations

import typer

app = typer.Typer(help="Make, validate and summarise market bundles.", no_args_is_help=True)
