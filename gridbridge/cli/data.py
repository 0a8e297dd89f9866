"""``gridbridge data ...``: import raw grid data and build the bundled dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from gridbridge.importers import ImportResult
from gridbridge.tables import check_table_path, write_table

app = typer.Typer(
    help="Import grid data (carbon, prices, tariffs) and build datasets.", no_args_is_help=True
)

OutOption = Annotated[
    Path,
    typer.Option(
        "--out", "-o", help="Output table: .csv (times as 2023-07-03T14:00Z) or .parquet."
    ),
]
YearOption = Annotated[
    int | None,
    typer.Option(help="Keep this UTC year and fill every missing hour (flagged estimated)."),
]


def _report(result: ImportResult, out: Path) -> None:
    """Write the table and print what the import did."""
    write_table(result.frame, out)
    console = Console(highlight=False, soft_wrap=True)
    for note in result.notes:
        console.print(f"  • {note}", markup=False)
    frame = result.frame
    estimated = int(frame["estimated"].sum()) if "estimated" in frame.columns else 0
    where = escape(str(out))
    console.print(
        f"[green]wrote[/] {frame.height} rows ({estimated} estimated) to [bold]{where}[/]"
    )


@app.command()
def carbon(
    file: Annotated[Path, typer.Argument(help="Electricity Maps hourly CSV export.")],
    out: OutOption,
    zone: Annotated[
        str | None, typer.Option(help="Zone id; defaults to the file's Zone Id.")
    ] = None,
    year: YearOption = None,
) -> None:
    """Import hourly carbon intensity (gCO2eq/kWh, direct and lifecycle)."""
    from gridbridge.importers.electricitymaps import read_electricitymaps_csv

    check_table_path(out)
    _report(read_electricitymaps_csv(file, zone=zone, year=year), out)


@app.command()
def prices(
    file: Annotated[Path, typer.Argument(help="Price CSV: Datetime, Price (<CUR>/MWh).")],
    zone: Annotated[str, typer.Option(help="Zone id, e.g. DE.")],
    clock: Annotated[
        str, typer.Option(help="Clock of the Datetime column: IANA zone or offset like -05:00.")
    ],
    fx: Annotated[float, typer.Option(help="Units of the local currency per 1 EUR (1 for EUR).")],
    out: OutOption,
    currency: Annotated[
        str | None, typer.Option(help="Expected currency code; must match the file header.")
    ] = None,
    year: YearOption = None,
) -> None:
    """Import hourly wholesale prices, converted to UTC hours and EUR/MWh."""
    from gridbridge.importers.prices import read_price_csv

    check_table_path(out)
    _report(read_price_csv(file, zone, clock, fx, currency=currency, year=year), out)


@app.command()
def tariff(
    zone: Annotated[str, typer.Option(help="Zone id, e.g. CA-QC.")],
    year: Annotated[int, typer.Option(help="UTC calendar year to cover.")],
    value: Annotated[float, typer.Option(help="Flat price in CURRENCY per MWh.")],
    currency: Annotated[str, typer.Option(help="Currency code of VALUE, e.g. CAD.")],
    fx: Annotated[float, typer.Option(help="Units of CURRENCY per 1 EUR (1 for EUR).")],
    out: OutOption,
) -> None:
    """Write a flat tariff (no wholesale market) for every UTC hour of a year, in EUR/MWh."""
    from gridbridge.importers.prices import flat_tariff

    check_table_path(out)
    _report(flat_tariff(zone, year, value, currency, fx), out)


@app.command()
def build(
    recipe: Annotated[Path, typer.Option(help="Dataset recipe (TOML).")] = Path(
        "datasets/bridge-2023.toml"
    ),
    source: Annotated[Path, typer.Option(help="Folder of the raw public files.")] = Path(
        "../shared/data"
    ),
    out: Annotated[Path, typer.Option(help="Dataset folder to write.")] = Path(
        "datasets/bridge-2023"
    ),
) -> None:
    """Build a dataset (grid, sites, gpus, members) from raw files with a recipe."""
    from gridbridge.dataset import build_dataset
    from gridbridge.recipe import load_recipe

    report = build_dataset(load_recipe(recipe), source, out)
    console = Console(highlight=False, soft_wrap=True)
    for note in report.notes:
        console.print(f"  • {note}", markup=False)
    for path in report.files:
        console.print(f"[green]wrote[/] {escape(str(path))} ({path.stat().st_size:,} bytes)")
