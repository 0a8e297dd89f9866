"""``gridbridge agent ...``: the site agent that reports a site's GPUs, carbon and price,
and (with a ``[metering]`` table) the metered energy of its placements.

``gridbridge agent run --config site.toml`` runs until Ctrl-C or SIGTERM (it finishes the
step in flight, then exits 0); ``--once`` runs one cycle. ``gridbridge agent example``
prints a complete, commented ``site.toml``; ``gridbridge agent spool --config site.toml``
shows the reports waiting in the spool and those the exchange refused.

Exit status: 0 done; 2 the configuration is wrong (every problem is listed with its fix);
6 ``--once`` ended with reports still in the spool (they are sent on the next run); 7
``--once`` could not build a report (an inventory, carbon or price chain failed); 8 the
exchange refused a report for its content (it is kept in the spool's dead letters: see
``gridbridge agent spool``).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from gridbridge.agent.config import EXAMPLE, load_config
from gridbridge.agent.errors import DeliveryError, NoReadingError, RefusedError
from gridbridge.agent.runner import Agent
from gridbridge.agent.spool import Spool

app = typer.Typer(help="The site agent: report free GPUs, carbon and price to the exchange.",
                  no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)
if not console.is_terminal:
    # Piped or captured output: rich would wrap tables at 80 columns; keep rows whole.
    console = Console(highlight=False, soft_wrap=True, width=200)

ConfigOption = Annotated[Path, typer.Option(
    "--config", "-c", help="The agent's site.toml (gridbridge agent example prints one).")]


def _setup_logging(verbose: bool) -> None:
    logger = logging.getLogger("gridbridge.agent")
    for old in [h for h in logger.handlers if getattr(h, "_gridbridge", False)]:
        logger.removeHandler(old)
    stderr = Console(stderr=True, highlight=False, soft_wrap=True)
    handler: logging.Handler
    if stderr.is_terminal:
        handler = RichHandler(console=stderr, show_path=False, markup=False)
    else:
        # Under systemd or a log collector: one plain line per event, UTC stamps.
        handler = logging.StreamHandler(sys.stderr)
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                      "%Y-%m-%dT%H:%M:%SZ")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    handler._gridbridge = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


@app.command()
def run(
    config: ConfigOption,
    once: Annotated[bool, typer.Option(
        "--once", help="Run one cycle and exit: 6 if reports remain in the spool, 7 if no "
                       "report could be built, 8 if the exchange refused one.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Every cycle: read inventory, carbon and price; spool a report; drain the spool."""
    settings = load_config(config)
    _setup_logging(verbose)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("gridbridge.agent").info(
            "%s: stopping after the current step", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Agent.from_config(settings, stop=stop) as agent:
            logging.getLogger("gridbridge.agent").info(
                "agent for site %s (zone %s, %s) reporting to %s; spool %s", settings.site_id,
                settings.zone, settings.signal, settings.exchange.url, settings.spool)
            result = agent.run(once=once)
            backlog = agent.spool.count()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not once or stop.is_set():
        console.print(f"agent stopped; {backlog} report(s) wait in the spool {settings.spool}")
        return
    assert result is not None
    if result.error is not None:
        raise NoReadingError(f"no report was built: {result.error}\n{backlog} report(s) wait "
                             f"in the spool {settings.spool}")
    if backlog:
        reason = result.drain.stopped_by if result.drain else "stopped"
        raise DeliveryError(
            f"{backlog} report(s) still wait in the spool {settings.spool}: the exchange at "
            f"{settings.exchange.url} did not acknowledge them ({reason}); they are sent on "
            "the next run")
    drained = result.drain
    if drained and drained.dead_lettered:
        raise RefusedError(
            f"the exchange refused {len(drained.dead_lettered)} report(s) "
            f"({', '.join(drained.dead_lettered)}); they are kept in the spool's dead letters "
            f"— see gridbridge agent spool --config {config}")
    console.print(f"report {result.report_id} ({result.hours} hours, carbon {result.provider}) "
                  f"delivered; {drained.stored if drained else 0} stored, "
                  f"{drained.duplicates if drained else 0} duplicate, spool empty")
    metered = result.metering
    if metered is not None:
        console.print(f"metering: {len(metered.reports)} report(s), {metered.rows} "
                      f"placement-hour(s), {metered.waiting} ended hour(s) waiting for the "
                      f"source" + (f"; not metered this cycle: {metered.error}"
                                   if metered.error else ""))


@app.command()
def example() -> None:
    """Print a complete, commented site.toml."""
    typer.echo(EXAMPLE, nl=False)


@app.command("spool")
def spool_command(config: ConfigOption) -> None:
    """Show the reports waiting in the spool and those the exchange refused."""
    settings = load_config(config)
    with Spool.open(settings.spool) as spool:
        pending, dead = spool.pending(), spool.dead_letters()
    console.print(f"spool {settings.spool}: {len(pending)} waiting, {len(dead)} refused")
    if pending:
        table = Table(title="waiting (oldest first)", title_justify="left")
        for column in ("report_id", "spooled", "attempts", "last error"):
            table.add_column(column)
        for entry in pending:
            table.add_row(entry.report_id, entry.spooled_utc, str(entry.attempts),
                          (entry.last_error or "")[:80])
        console.print(table)
    if dead:
        table = Table(title="refused by the exchange (dead letters)", title_justify="left")
        for column in ("report_id", "refused", "status", "reason"):
            table.add_column(column)
        for letter in dead:
            table.add_row(letter.report_id, letter.refused_utc, str(letter.status_code),
                          letter.reason[:120])
        console.print(table)
