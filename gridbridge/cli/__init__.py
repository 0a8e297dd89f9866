"""The ``gridbridge`` command line (typer + rich).

Each command group lives in its own module and is mounted here. Errors from the project's
exception tree become one clear message on stderr and a non-zero exit status; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from gridbridge import __version__
from gridbridge.cli import agent, clearing, data, demo, exchange, ledger, market, report, settle
from gridbridge.cli.app import app_command
from gridbridge.errors import GridBridgeError

app = typer.Typer(
    name="gridbridge",
    help="GridBridge: place AI training jobs across the alliance's pooled GPU sites.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(market.app, name="market")
app.add_typer(ledger.app, name="ledger")
app.add_typer(exchange.app, name="exchange")
app.add_typer(agent.app, name="agent")
app.command("clear")(clearing.clear_command)
app.command("check")(clearing.check_command)
app.command("frontier")(clearing.frontier_command)
app.command("report")(report.report_command)
app.command("trueup")(settle.trueup_command)
app.command("demo")(demo.demo_command)
app.command("app")(app_command)


@app.command()
def version() -> None:
    """Print GridBridge's version."""
    typer.echo(__version__)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=False)
    except GridBridgeError as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {exc}")
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
