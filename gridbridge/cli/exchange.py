"""``gridbridge exchange ...``: initialise the exchange's database, manage tokens, serve it.

* ``init --db URL --from DATASET`` creates (or upgrades) the exchange's tables and loads the
  registry (members, GPU types, sites, pools) from a dataset folder; running it again leaves
  the same registry and keeps the asks sites have set.
* ``token create --db URL --role site --site ID`` (``--role member --member KR``,
  ``--role planner``, ``--role treasurer``, ``--role admin``) prints the new token alone on
  its last line, once: only its SHA-256 is stored. ``token list`` shows ids, roles and
  subjects (never a secret); ``token revoke TOKEN_ID`` makes a token fail with 401 from then.
* ``serve [--db URL] [--host 127.0.0.1] [--port 8700] [--workers N]`` runs the HTTP API with
  uvicorn, in N processes sharing the port (each with its own clearing worker: the database
  lease makes sure one of them clears each round).

Exit status: 0 when done; 2 for a wrong option or value (an unknown role, site or member, a
dataset folder that is missing or invalid); 6 when the database cannot be opened or has not
been initialised (``init`` first).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridbridge.cli.output import make_console
from gridbridge.db import DEFAULT_URL
from gridbridge.errors import InputError
from gridbridge.exchange.clock import system_clock
from gridbridge.exchange.registry import load_registry, read_registry_folder
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.tokens import ROLES, create_token, list_tokens, revoke_token

app = typer.Typer(help="Run the exchange: initialise its database, manage tokens, serve it.",
                  no_args_is_help=True)
token_app = typer.Typer(help="Create, list and revoke the exchange's bearer tokens.",
                        no_args_is_help=True)
app.add_typer(token_app, name="token")

console = make_console()

DbOption = Annotated[str, typer.Option(
    "--db", help="Database URL (SQLite file relative to the current directory, or "
                 "postgresql+psycopg://...), shared with the ledger.")]

_TABLES = ("members", "gpu_types", "sites", "pools")


@app.command()
def init(
    source: Annotated[Path, typer.Option(
        "--from", help="Dataset folder with members, gpus and sites (e.g. "
                       "datasets/bridge-2023).")],
    db: DbOption = DEFAULT_URL,
) -> None:
    """Create or upgrade the exchange's tables and load the registry from a dataset."""
    data = read_registry_folder(source)  # read first: a bad dataset leaves the db untouched
    with ExchangeStore.open(db, create=True) as store:
        counts = load_registry(store, data)
        where = store.url
    parts = []
    for name in _TABLES:
        total = counts.added[name] + counts.updated[name] + counts.unchanged[name]
        parts.append(f"{total} {name.replace('_', ' ')}")
    changes = (f"added {sum(counts.added.values())}, updated {sum(counts.updated.values())}, "
               f"unchanged {sum(counts.unchanged.values())}")
    console.print(f"exchange initialised at {where}: {', '.join(parts)} from {source} "
                  f"({changes})")
    kept = {n: k for n, k in counts.kept.items() if k}
    if kept:
        console.print("kept (in the database, not in the dataset): "
                      + ", ".join(f"{k} {n}" for n, k in kept.items()))


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")],
    db: DbOption = DEFAULT_URL,
    site: Annotated[str | None, typer.Option(
        "--site", help="The site a site token acts for (its site_id).")] = None,
    member: Annotated[str | None, typer.Option(
        "--member", help="The member a member token acts for (ISO code, e.g. KR).")] = None,
) -> None:
    """Create a token; it is printed alone on the last line, this once."""
    if site is not None and role != "site":
        raise InputError(f"--site is for --role site, not {role} — fix: drop --site")
    if member is not None and role != "member":
        raise InputError(f"--member is for --role member, not {role} — fix: drop --member")
    with ExchangeStore.open(db) as store:
        info, secret = create_token(store, role, site if role == "site" else member,
                                    system_clock())
    who = f"{info.role}:{info.subject}" if info.subject else info.role
    typer.echo(f"created token {info.token_id} for {who}; it is shown once, only its hash "
               "is stored — keep it secret:")
    typer.echo(secret)


@token_app.command("list")
def token_list(db: DbOption = DEFAULT_URL) -> None:
    """List every token (id, role, subject, created, revoked); never a secret."""
    with ExchangeStore.open(db) as store:
        tokens = list_tokens(store)
        where = store.url
    if not tokens:
        console.print(f"no tokens at {where}; create one with gridbridge exchange token create")
        return
    table = Table(title=f"tokens at {where}", title_justify="left")
    for column in ("token_id", "role", "subject", "created_at_utc", "revoked_at_utc"):
        table.add_column(column)
    for t in tokens:
        table.add_row(t.token_id, t.role, t.subject or "", t.created_at_utc,
                      t.revoked_at_utc or "")
    console.print(table)
    active = sum(t.revoked_at_utc is None for t in tokens)
    console.print(f"{len(tokens)} tokens, {active} active")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (from token list).")],
    db: DbOption = DEFAULT_URL,
) -> None:
    """Revoke a token: from now on it gets 401. Revoking it again changes nothing."""
    with ExchangeStore.open(db) as store:
        info, revoked_now = revoke_token(store, token_id, system_clock())
    if revoked_now:
        console.print(f"revoked token {info.token_id} ({info.role}"
                      f"{':' + info.subject if info.subject else ''})")
    else:
        console.print(f"token {info.token_id} was already revoked at {info.revoked_at_utc}")


@app.command()
def serve(
    db: DbOption = DEFAULT_URL,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535,
                                      help="Port to listen on.")] = 8700,
    log_level: Annotated[str, typer.Option("--log-level",
                                           help="uvicorn's log level.")] = "info",
    solve_time_limit: Annotated[float, typer.Option(
        "--solve-time-limit", min=0.1, max=3600,
        help="Solver time limit (s) of a round whose planner gave none.")] = 30.0,
    clearing_lease: Annotated[float, typer.Option(
        "--clearing-lease", min=1, max=3600,
        help="Seconds a worker holds a round without renewing; a round whose worker died is "
             "taken over that long after its last renewal.")] = 60.0,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, max=64,
        help="Processes serving the port (uvicorn's workers), each with its own clearing "
             "worker; use more than 1 to use more than one CPU core.")] = 1,
) -> None:
    """Serve the exchange's HTTP API (Ctrl-C stops it). The database must be initialised."""
    import uvicorn

    from gridbridge.exchange.app import SERVE_ENV, create_app

    # Raises, before listening, when the database is not initialised.
    api = create_app(db, solve_time_limit_s=solve_time_limit, lease_s=clearing_lease)
    shown = api.state.store.url
    # Plain and flushed: a supervisor reading a pipe sees the address before the first request.
    typer.echo(f"GridBridge exchange on http://{host}:{port} (database {shown}; API /v1, "
               f"OpenAPI /openapi.json; {workers} process{'es' if workers > 1 else ''}; "
               "Ctrl-C stops)")
    sys.stdout.flush()
    if workers == 1:
        uvicorn.Server(uvicorn.Config(api, host=host, port=port, log_level=log_level,
                                      server_header=False)).run()
        return
    api.state.store.close()  # each worker process opens its own
    # uvicorn starts each worker process afresh, so it builds the app from an import string;
    # the options travel in the environment the workers inherit.
    os.environ[SERVE_ENV] = json.dumps({"db_url": db, "solve_time_limit_s": solve_time_limit,
                                        "lease_s": clearing_lease})
    uvicorn.run("gridbridge.exchange.app:app_from_environment", factory=True, host=host,
                port=port, workers=workers, log_level=log_level, server_header=False)
