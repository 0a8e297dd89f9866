"""``gridbridge demo``: the whole system on the bundled data (see :mod:`gridbridge.demo`)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.table import Table

from gridbridge.cli.output import comparison_table, make_console, net_positions_table
from gridbridge.demo.processes import AppProcess
from gridbridge.demo.run import Demo, DemoOptions, DemoResult, member_positions
from gridbridge.errors import DemoError

__all__ = ["demo_command"]

console = make_console()


def _member_table(result: DemoResult) -> Table:
    table = Table(title="each member's net position after the round, metering included "
                  "(EUR; + receives, − pays)", title_justify="left")
    for column in ("member", "paid for its jobs", "its sites received", "net"):
        table.add_column(column, justify="left" if column == "member" else "right")
    for member, paid, received, net in member_positions(result.ledger,
                                                         result.registry).iter_rows():
        table.add_row(member, f"{paid:,.2f}", f"{received:,.2f}", f"{net:,.2f}")
    return table


def _print(result: DemoResult) -> None:
    s = result.summary
    figures = {"optimum": s, **s.get("baselines", {})}
    console.print(comparison_table(
        f"round {result.round_id} at {s['carbon_price_eur_per_t']:g} EUR/t CO2eq "
        f"({s['carbon_signal']} signal), cleared by the exchange", figures))
    console.print(f"status {s['status']}: welfare {s['welfare_eur']:,.2f} EUR, gap "
                  f"{s['gap']:.2%}; {s['accepted']} accepted, {s['rejected']} rejected; "
                  f"solved in {s['solve_seconds']:.1f} s; round {result.state}")
    corrections = result.ledger.filter(result.ledger["kind"] == "correction")
    console.print(f"{result.telemetry_reports} telemetry and {result.metering_reports} "
                  f"metering reports stored; {len(result.placements)} placements; "
                  f"{result.ledger.height} ledger lines ({corrections.height} metering "
                  f"corrections), summing to {int(result.ledger['amount_cents'].sum())} cents")
    console.print(_member_table(result))
    alliance = result.ledger.filter(result.ledger["account"].str.starts_with("alliance:"))
    console.print(net_positions_table(alliance, "the alliance's accounts"))
    times = ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in result.seconds.items())
    console.print(f"took {times}")


def demo_command(
    no_serve: Annotated[bool, typer.Option(
        "--no-serve", help="Stop the exchange and exit once the round is settled.")] = False,
    folder: Annotated[Path, typer.Option(
        "--out", help="Folder for the demo's database, tokens, logs and agents (wiped "
                      "first).")] = DemoOptions.folder,
    port: Annotated[int, typer.Option(
        "--port", min=0, max=65535, help="The exchange's port on 127.0.0.1 (0: a free "
                                         "one).")] = DemoOptions.port,
    time_limit: Annotated[float, typer.Option(
        "--time-limit", min=1, max=3600, help="The round's solver time limit, "
                                             "seconds.")] = DemoOptions.time_limit_s,
    bundle: Annotated[Path, typer.Option(
        "--bundle", help="The market bundle whose sites, bids, window and carbon price the "
                         "demo uses.")] = DemoOptions.bundle,
    dataset: Annotated[Path, typer.Option(
        "--dataset", help="The dataset the exchange's registry and the agents' replayed "
                          "grid data come from.")] = DemoOptions.dataset,
    app_port: Annotated[int, typer.Option(
        "--app-port", min=0, max=65535, help="The app's port on 127.0.0.1 while serving (0: "
                                            "a free one).")] = 8501,
    no_app: Annotated[bool, typer.Option(
        "--no-app", help="Serve the exchange without the app.")] = False,
) -> None:
    """Run the whole system locally: an exchange on a fresh SQLite file, one agent per
    site replaying the bundled 2023 data, the bundled bids through the API, a round cleared
    by the exchange and trued up by the agents' metering; then keep the exchange and the app
    serving (Ctrl-C stops them) unless --no-serve."""
    options = DemoOptions(dataset=dataset, bundle=bundle, folder=folder, port=port,
                          time_limit_s=time_limit)
    with Demo(options, say=console.print) as demo:
        result = demo.run()
        _print(result)
        if no_serve:
            return
        app = None
        if not no_app:
            app = AppProcess(result.url, demo.token("admin"),
                             demo.layout.folder / "app.log", port=app_port)
            app.start()
        try:
            console.print(f"the exchange keeps serving at {result.url} (API /v1, OpenAPI "
                          f"/openapi.json; tokens in {demo.layout.tokens})")
            if app is not None:
                console.print(f"the app is on {app.url} (as the admin; for another role: "
                              "gridbridge app --exchange URL --token TOKEN from tokens.json)")
            console.print("Ctrl-C stops it all")
            _serve_until_stopped(demo, app)
        finally:
            if app is not None:
                app.stop()


def _serve_until_stopped(demo: Demo, app: AppProcess | None) -> None:
    """Wait until Ctrl-C or SIGTERM (or the exchange exits), then stop it. The handlers are
    set here, not left to Python's default, because a process started in the background
    inherits SIGINT ignored."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while (demo.exchange.running() and (app is None or app.running())
               and not stop.wait(0.5)):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not stop.is_set():
        raise DemoError(f"the exchange or the app exited on its own; see "
                        f"{demo.layout.server_log} and {demo.layout.folder / 'app.log'}")
    console.print("stopping the app and the exchange ...")
