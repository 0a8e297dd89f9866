"""``make bench``: telemetry reports per second into one exchange process, and their latency.

Starts a real exchange on 127.0.0.1 (a free port) on a fresh SQLite file in a temporary
folder, as an operator would: ``gridbridge exchange init --from datasets/bridge-2023``, one
site token per site used (made by what ``gridbridge exchange token create --role site``
calls, in this process), ``gridbridge exchange serve`` (one uvicorn process; ``--log-level
warning``, so no access log is written). Then, after one warm-up report per site (it fixes
each zone's signal, ``direct``):

1. ``healthz`` — N agents each sending ``--reports`` ``GET /healthz`` (one database ping):
   the server's floor for a round trip at the same concurrency;
2. ``sequential`` — one agent posting ``max(--reports, 20)`` reports one after another:
   a report's cost without contention;
3. ``telemetry`` — N agents (``--agents``, default 50) each posting ``--reports`` reports of
   ``--hours`` hours (default 168), all at once: the issue's figure.

Each agent is an asyncio task with its own ``httpx.AsyncClient`` (one keep-alive connection,
opened before the phase's clock starts); bodies are built and checked against the contract's
``TelemetryReport`` before the clock starts too. Latency is per request (send to answer
read); reports/s counts reports acknowledged ``201 stored`` over the phase's wall time.
After the server has stopped, the database is read (read-only) and every acknowledged report
must be there exactly once, with all its hours and GPU types: lost and duplicated are
printed (both must be 0).

Each phase also shows the CPU time the exchange process and this load generator used (Linux
``/proc``), as a share of one core: it tells a CPU-bound server from one waiting on the
database's write lock and its fsyncs.

No site of bridge-2023 pools three GPU types (two at most), so each report lists every type
its site pools; the sites used are those with the most types. The load generator runs on the
same machine as the server and competes with it for CPUs: the machines are shared and noisy,
so read the ratios to the baselines measured in this run, not single milliseconds. Nothing
here asserts; issue 7's target is printed as plain text ("holds" / "does not hold").

    .venv/bin/python tests/benchmarks/bench_exchange.py --agents 5 --reports 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import numpy as np
import orjson
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gridbridge.demo.processes import ExchangeProcess  # noqa: E402
from gridbridge.exchange import schema as t  # noqa: E402
from gridbridge.exchange.contract import MAX_HOURS, TelemetryReport  # noqa: E402
from gridbridge.exchange.forecast import unpack  # noqa: E402
from gridbridge.exchange.storage import ExchangeStore  # noqa: E402
from gridbridge.exchange.tokens import create_token  # noqa: E402
from tests.databases import Databases, pg_admin_url  # noqa: E402

DATASET = ROOT / "datasets" / "bridge-2023"
SIGNAL = "direct"
PROVIDER = "bench-synthetic"
MIN_SEQUENTIAL = 20
MAX_REQUESTS = 20_000  # agents x reports, per phase
MAX_HOUR_ROWS = 2_000_000  # agents x reports x hours: the bodies are built before the clock
TIMEOUT_S = 60.0  # per request
# Issue 7's load target (asked there at 200 agents).
TARGET_REPORTS_PER_S = 200.0
TARGET_P99_MS = 250.0


SiteRow = tuple[str, str, dict[str, int]]  # site_id, zone, pools (GPU type -> GPUs)


@dataclass(frozen=True, slots=True)
class Site:
    site_id: str
    zone: str
    pools: dict[str, int]  # GPU type -> pooled GPUs
    token: str


@dataclass(frozen=True, slots=True)
class Request:
    """One request an agent makes: a GET (no body) or a telemetry POST."""

    path: str
    site_id: str = ""
    report_id: str = ""
    body: bytes | None = None


@dataclass(slots=True)
class Phase:
    name: str
    agents: int
    planned: int
    wall_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    acked: list[tuple[str, str]] = field(default_factory=list)  # (site_id, report_id)
    cut_short: bool = False
    server_cpu_s: float = math.nan  # the exchange process's CPU time during the phase
    client_cpu_s: float = math.nan  # this (load generator) process's

    def figures(self) -> dict[str, Any]:
        lat_ms = np.asarray(self.latencies_s) * 1e3
        ok = len(self.acked) if self.name != "healthz" else self.outcomes["200"]

        def pct(q: float) -> float:
            return float(np.percentile(lat_ms, q)) if lat_ms.size else math.nan

        return {
            "phase": self.name, "agents": self.agents, "planned": self.planned,
            "answered": int(lat_ms.size), "ok": ok,
            "outcomes": dict(sorted(self.outcomes.items())),
            "wall_s": self.wall_s,
            "ok_per_s": ok / self.wall_s if self.wall_s > 0 else math.nan,
            "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "max_ms": float(lat_ms.max()) if lat_ms.size else math.nan,
            "cut_short": self.cut_short,
            "server_cpu_s": self.server_cpu_s, "client_cpu_s": self.client_cpu_s,
            "server_cpu_ms_per_ok": 1e3 * self.server_cpu_s / ok if ok else math.nan,
        }


# ------------------------------------------------------------------------------ the server


def gridbridge(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``gridbridge ARGS`` (this interpreter's); raise with its output when it fails."""
    done = subprocess.run([sys.executable, "-m", "gridbridge", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"gridbridge {' '.join(args)} exited {done.returncode}:\n"
                           f"{done.stdout}{done.stderr}")
    return done


def create_tokens(db_url: str, site_ids: list[str]) -> dict[str, str]:
    """One site token per site, made by the function ``gridbridge exchange token create``
    calls (in this process: each start of the command line costs over a second)."""
    with ExchangeStore.open(db_url) as store:
        return {s: create_token(store, "site", s, datetime.now(UTC))[1] for s in site_ids}


def read_sites(db_url: str) -> list[SiteRow]:
    """Every site of the registry: (site_id, zone, pools), read from the database."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            zones = dict(conn.execute(sa.select(t.sites.c.site_id, t.sites.c.zone)).all())
            pools: dict[str, dict[str, int]] = {s: {} for s in zones}
            for site_id, gpu_type, gpus in conn.execute(
                    sa.select(t.pools.c.site_id, t.pools.c.gpu_type, t.pools.c.gpus)):
                pools[site_id][gpu_type] = int(gpus)
    finally:
        engine.dispose()
    return [(s, zones[s], dict(sorted(pools[s].items()))) for s in sorted(zones)]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of processes ``pids`` so far, summed (Linux /proc; NaN
    elsewhere)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return math.nan
    return total


@contextmanager
def exchange_servers(db_url: str, folder: Path,
                     count: int) -> Iterator[list[ExchangeProcess]]:
    """``count`` ``gridbridge exchange serve`` processes on free ports of 127.0.0.1, all on
    ``db_url``, until the block ends (SIGTERM, then SIGKILL if one lingers), yielded once
    each answers /healthz."""
    servers = [ExchangeProcess(db_url, folder / f"server-{n}.log") for n in range(count)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str | None]:
    """A fresh database's URL: a SQLite file in ``folder``, or a PostgreSQL database made
    with the administrative URL of the tests (``GRIDBRIDGE_TEST_PG_URL``, see
    tests/databases.py) and dropped at the end; None when no PostgreSQL server answers."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'exchange.db'}"
        return
    if pg_admin_url() is None:
        yield None
        return
    made = Databases("postgresql", folder)
    try:
        yield made.fresh("bench")
    finally:
        made.drop_all()


# ------------------------------------------------------------------------------ the bodies


def report_body(site: Site, report_id: str, start: datetime, hours: int, seed: int) -> bytes:
    """A valid telemetry report (checked against the contract) as JSON bytes: ``hours``
    hours from ``start``, free GPUs of every type the site pools, a synthetic grid."""
    body = {
        "report_id": report_id, "zone": site.zone, "signal": SIGNAL, "provider": PROVIDER,
        "measured_at_utc": (start - timedelta(minutes=55)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hours": [{
            "hour_utc": (start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%MZ"),
            "gpus_free": {g: gpus * ((h + seed) % 8) // 8 for g, gpus in site.pools.items()},
            "carbon_g_per_kwh": round(350.0 + 120.0 * math.sin((h + seed) / 24 * math.tau), 1),
            "price_eur_per_mwh": round(90.0 + 40.0 * math.cos((h + seed) / 24 * math.tau), 2),
        } for h in range(hours)],
    }
    TelemetryReport.model_validate(body)
    return orjson.dumps(body)


# ------------------------------------------------------------------------------- the agents

async def agent(base_url: str, token: str, plan: list[Request], phase: Phase,
                ready: asyncio.Barrier, go: asyncio.Event) -> None:
    """Open a keep-alive connection (one /healthz), wait for the start, send ``plan``."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=TIMEOUT_S,
                                 limits=httpx.Limits(max_connections=1)) as client:
        with suppress(httpx.HTTPError):  # a failure shows in the plan's first request
            await client.get("/healthz")
        await ready.wait()
        await go.wait()
        for request in plan:
            started = time.perf_counter()
            try:
                if request.body is None:
                    answer = await client.get(request.path)
                else:
                    answer = await client.post(request.path, content=request.body)
                data = answer.content
            except httpx.HTTPError as exc:
                phase.outcomes[f"error {type(exc).__name__}"] += 1
                continue
            phase.latencies_s.append(time.perf_counter() - started)
            status = answer.status_code
            if request.body is not None and status == 201:
                ack = orjson.loads(data)
                if ack.get("status") == "stored" and ack.get("report_id") == request.report_id:
                    phase.acked.append((request.site_id, request.report_id))
                    phase.outcomes["201 stored"] += 1
                else:
                    phase.outcomes[f"201 {ack.get('status')}"] += 1
            elif status == 200 and request.body is not None:
                phase.outcomes[f"200 {orjson.loads(data).get('status')}"] += 1
            else:
                phase.outcomes[str(status)] += 1


async def run_phase(base_urls: list[str], server_pids: list[int], name: str,
                    plans: list[tuple[str, list[Request]]], budget_s: float) -> Phase:
    """Run one agent per (token, plan), all started together, agent i talking to
    ``base_urls[i % n]`` (a load balancer's round robin); stop at ``budget_s``."""
    phase = Phase(name, len(plans), sum(len(p) for _, p in plans))
    ready = asyncio.Barrier(len(plans) + 1)
    go = asyncio.Event()
    tasks = [asyncio.create_task(agent(base_urls[i % len(base_urls)], token, plan, phase,
                                       ready, go))
             for i, (token, plan) in enumerate(plans)]
    started, server_cpu, client_cpu = time.perf_counter(), math.nan, math.nan
    try:
        async with asyncio.timeout(budget_s):
            await ready.wait()
            server_cpu, client_cpu = cpu_seconds(server_pids), time.process_time()
            started = time.perf_counter()
            go.set()
            await asyncio.gather(*tasks)
    except TimeoutError:
        phase.cut_short = True
    finally:
        phase.wall_s = time.perf_counter() - started
        phase.server_cpu_s = cpu_seconds(server_pids) - server_cpu
        phase.client_cpu_s = time.process_time() - client_cpu
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return phase


def telemetry_path(site_id: str) -> str:
    return f"/v1/sites/{site_id}/telemetry"


async def load(base_urls: list[str], server_pids: list[int], sites: list[Site],
               args: argparse.Namespace,
               deadline: float) -> tuple[list[Phase], dict[tuple[str, str], int]]:
    """The warm-up and the three phases; returns them and each planned report's type count."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    types: dict[tuple[str, str], int] = {}

    def make_report(site: Site, report_id: str, seed: int) -> Request:
        types[(site.site_id, report_id)] = len(site.pools)
        return Request(telemetry_path(site.site_id), site.site_id, report_id,
                       report_body(site, report_id, start, args.hours, seed))

    def left() -> float:
        return max(1.0, deadline - time.monotonic())

    warm = [(s.token, [make_report(s, f"warm-{s.site_id}", 0)]) for s in sites]
    sequential_n = max(args.reports, MIN_SEQUENTIAL)
    sequential = [(sites[0].token, [make_report(sites[0], f"seq-r{j:04d}", j)
                                    for j in range(sequential_n)])]
    concurrent = []
    for i in range(args.agents):
        site = sites[i % len(sites)]
        concurrent.append((site.token, [make_report(site, f"a{i:04d}-r{j:04d}", i + j)
                                        for j in range(args.reports)]))
    health = [(sites[i % len(sites)].token, [Request("/healthz")] * args.reports)
              for i in range(args.agents)]

    phases = []
    # One report per site, one after another: fixes each zone's signal before the races.
    for token, plan in warm:
        phase = await run_phase(base_urls, server_pids, "warm-up", [(token, plan)], left())
        phases.append(phase)
    plan_of = [("healthz", health), ("sequential", sequential), ("telemetry", concurrent)]
    for name, plans in plan_of:
        print(f"... {name}: {len(plans)} agent(s) x {len(plans[0][1])} requests", flush=True)
        phase = await run_phase(base_urls, server_pids, name, plans, left())
        phases.append(phase)
        if phase.cut_short:
            print(f"    stopped: the run's time budget ({args.max_seconds:g} s) ran out",
                  flush=True)
            break
    return phases, types


# ------------------------------------------------------------------------- the stored check


def check_stored(db_url: str, acked: list[tuple[str, str]], types: dict[tuple[str, str], int],
                 hours: int) -> dict[str, int]:
    """Read the stopped exchange's database (read-only): is every acknowledged report there
    exactly once, with all its hours and every GPU type of its site in each?"""
    engine = sa.create_engine(db_url)
    r = t.telemetry_reports
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(r.c.site_id, r.c.report_id, r.c.id)).all()
            figures = {pk: (len(forecast), sum(len(h.gpus_free) for h in forecast.values()))
                       for pk, forecast in ((pk, unpack(text)) for pk, text in conn.execute(
                           sa.select(r.c.id, r.c.forecast_json)))}
    finally:
        engine.dispose()
    stored = Counter((site_id, report_id) for site_id, report_id, _ in rows)
    pks = {(site_id, report_id): pk for site_id, report_id, pk in rows}
    acked_n = Counter(acked)
    incomplete = sum(
        1 for key in acked_n if key in pks
        and figures[pks[key]] != (hours, types[key] * hours))
    return {
        "acknowledged": len(acked),
        "stored": len(rows),
        "lost": sum(1 for key in acked_n if key not in stored),
        "duplicated": (sum(n - 1 for n in stored.values() if n > 1)
                       + sum(n - 1 for n in acked_n.values() if n > 1)),
        "incomplete": incomplete,
        "stored_not_acknowledged": sum(1 for key in stored if key not in acked_n),
    }


# ------------------------------------------------------------------------------- the report


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:],
                                                               strict=True))])

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 and math.isfinite(a) and math.isfinite(b) else math.nan


def report(figures: dict[str, Any]) -> None:
    phases = {p["phase"]: p for p in figures["phases"]}
    labels = {"healthz": "GET /healthz (round-trip floor)",
              "sequential": "telemetry, 1 agent one after another",
              "telemetry": f"telemetry, {figures['agents']} agents at once into "
                           f"{figures['processes']} process(es) on {figures['backend']}"}
    print()
    table(["phase", "agents", "requests", "ok", "other", "wall s", "ok/s", "p50 ms",
           "p90 ms", "p99 ms", "max ms", "server CPU", "server CPU ms/ok", "bench CPU"],
          [[labels[name] + (" (cut short)" if p["cut_short"] else ""), str(p["agents"]),
            f"{p['answered']}/{p['planned']}", str(p["ok"]),
            str(p["planned"] - p["ok"]), f"{p['wall_s']:.2f}", f"{p['ok_per_s']:.1f}",
            f"{p['p50_ms']:.1f}", f"{p['p90_ms']:.1f}", f"{p['p99_ms']:.1f}",
            f"{p['max_ms']:.1f}", f"{100 * p['server_cpu_s'] / p['wall_s']:.0f} %",
            f"{p['server_cpu_ms_per_ok']:.1f}",
            f"{100 * p['client_cpu_s'] / p['wall_s']:.0f} %"]
           for name, p in phases.items() if name in labels])
    print("  (CPU: share of one core over the phase's wall time; server CPU ms/ok: the "
          "exchange's CPU time per request answered ok)")
    for name, p in phases.items():
        odd = {k: v for k, v in p["outcomes"].items() if k not in ("200", "201 stored")}
        if odd:
            print(f"  {name}: answers other than 201 stored / 200 ok: {odd}")

    print("\nRatios (same run)")
    for text, value in figures["ratios"].items():
        print(f"  {text}: {value:.2f}")

    s = figures["stored_check"]
    print(f"\nStored check (database read after the server stopped): acknowledged "
          f"{s['acknowledged']}, stored {s['stored']}, lost {s['lost']}, duplicated "
          f"{s['duplicated']}, incomplete {s['incomplete']}, stored but not acknowledged "
          f"{s['stored_not_acknowledged']}")

    tel = phases.get("telemetry")
    print("\nIssue 7 target (asked there at 200 agents; this run has "
          f"{figures['agents']}): >= {TARGET_REPORTS_PER_S:.0f} reports/s with p99 < "
          f"{TARGET_P99_MS:.0f} ms: ", end="")
    if tel is None or tel["cut_short"]:
        print("not measured (the telemetry phase did not run to its end)")
    else:
        holds = tel["ok_per_s"] >= TARGET_REPORTS_PER_S and tel["p99_ms"] < TARGET_P99_MS
        print(f"{'holds' if holds else 'does not hold'} (measured: {tel['ok_per_s']:.1f} "
              f"reports/s, p99 {tel['p99_ms']:.1f} ms, lost {s['lost']})")


def ratios(phases: list[Phase]) -> dict[str, float]:
    by = {p.name: p.figures() for p in phases}
    h, q, c = by.get("healthz"), by.get("sequential"), by.get("telemetry")
    out: dict[str, float] = {}
    if h and c:
        out["telemetry p50 / healthz p50"] = ratio(c["p50_ms"], h["p50_ms"])
        out["telemetry p99 / healthz p99"] = ratio(c["p99_ms"], h["p99_ms"])
        out["telemetry reports/s / healthz requests/s"] = ratio(c["ok_per_s"], h["ok_per_s"])
    if q and c:
        out["telemetry p50 / sequential p50"] = ratio(c["p50_ms"], q["p50_ms"])
        out["telemetry reports/s / sequential reports/s"] = ratio(c["ok_per_s"],
                                                                  q["ok_per_s"])
    return out


# --------------------------------------------------------------------------------- the run


def pick_sites(all_sites: list[SiteRow]) -> list[SiteRow]:
    """The sites pooling the most GPU types (the issue's reports carry three)."""
    most = max(len(pools) for _, _, pools in all_sites)
    return [s for s in all_sites if len(s[2]) == most]


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    """One run (module doc); None when ``--backend postgresql`` finds no server."""
    deadline = time.monotonic() + args.max_seconds
    with tempfile.TemporaryDirectory(prefix="bench-exchange-") as tmp, \
            fresh_database(args.backend, Path(tmp)) as db_url:
        if db_url is None:
            print("no PostgreSQL server answers (set GRIDBRIDGE_TEST_PG_URL, see "
                  "tests/databases.py): this run is skipped", flush=True)
            return None
        print(f"... gridbridge exchange init --from datasets/bridge-2023 (fresh {args.backend} "
              "database)", flush=True)
        gridbridge("exchange", "init", "--db", db_url, "--from", str(DATASET))
        all_sites = read_sites(db_url)
        chosen = pick_sites(all_sites)
        n_types = len(chosen[0][2])
        print(f"... {len(chosen)} sites with {n_types} GPU types each: "
              + ", ".join(f"{s} ({zone}; {'+'.join(pools)})" for s, zone, pools in chosen),
              flush=True)
        if n_types < 3:
            print(f"    no site of {DATASET.name} pools three GPU types (at most {n_types}): "
                  f"each report lists its site's {n_types} types, {args.hours} h x {n_types} "
                  f"= {args.hours * n_types} free-GPU figures and {args.hours} grid hours",
                  flush=True)
        tokens = create_tokens(db_url, [s for s, _, _ in chosen])
        sites = [Site(s, zone, pools, tokens[s]) for s, zone, pools in chosen]
        with exchange_servers(db_url, Path(tmp), args.processes) as servers:
            urls = [server.base_url for server in servers]
            pids = [server.process.pid for server in servers if server.process is not None]
            print(f"... {len(servers)} exchange process(es) serving at {', '.join(urls)}; "
                  "agents spread over them round robin", flush=True)
            phases, types = asyncio.run(load(urls, pids, sites, args, deadline))
            exited = [(server.log_path, server.process.poll()) for server in servers
                      if server.process is not None and server.process.poll() is not None]
        for log_path, code in exited:
            print(f"!!! an exchange exited during the run (code {code}); its log ends:\n"
                  f"{log_path.read_text(errors='replace')[-2000:]}", flush=True)
        acked = [key for p in phases for key in p.acked]
        readable = (f"sqlite:///file:{db_url.removeprefix('sqlite:///')}?mode=ro&uri=true"
                    if args.backend == "sqlite" else db_url)
        stored = check_stored(readable, acked, types, args.hours)
    return {
        "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "python": platform.python_version(), "agents": args.agents, "reports": args.reports,
        "hours": args.hours, "gpu_types_per_report": n_types, "backend": args.backend,
        "processes": args.processes, "sites": [s.site_id for s in sites],
        "phases": [p.figures() for p in phases if p.name != "warm-up"],
        "warm_up_reports": sum(len(p.acked) for p in phases if p.name == "warm-up"),
        "ratios": ratios(phases), "stored_check": stored,
        "target": {"reports_per_s": TARGET_REPORTS_PER_S, "p99_ms": TARGET_P99_MS},
        "servers_exited_during_run": [code for _, code in exited],
    }


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50, help="concurrent agents (default 50)")
    parser.add_argument("--reports", type=int, default=10,
                        help="reports each agent posts, and /healthz requests (default 10)")
    parser.add_argument("--hours", type=int, default=168,
                        help="hours per report (default 168: a week's forecast)")
    parser.add_argument("--max-seconds", type=float, default=300.0,
                        help="time budget for the whole run; a phase still running then is "
                             "stopped and reported as cut short (default 300)")
    parser.add_argument("--json", type=Path, default=None, help="also write all figures here")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the exchange's database (default sqlite; postgresql needs a "
                             "server, see tests/databases.py)")
    parser.add_argument("--processes", type=int, default=1,
                        help="exchange processes sharing the database (default 1)")
    args = parser.parse_args()
    if not 1 <= args.processes <= 8:
        parser.error("--processes must be 1..8")
    if args.processes > 1 and args.backend == "sqlite":
        print("note: several processes on one SQLite file share its one write lock")
    if not 1 <= args.agents <= 1000:
        parser.error("--agents must be 1..1000")
    if args.reports < 1 or args.agents * args.reports > MAX_REQUESTS:
        parser.error(f"--reports must be >= 1, and agents x reports <= {MAX_REQUESTS}")
    if not 1 <= args.hours <= MAX_HOURS:
        parser.error(f"--hours must be 1..{MAX_HOURS}")
    if args.agents * args.reports * args.hours > MAX_HOUR_ROWS:
        parser.error(f"agents x reports x hours must be <= {MAX_HOUR_ROWS:,} (the bodies are "
                     "built in memory before the clock starts)")
    if not args.max_seconds > 0:
        parser.error("--max-seconds must be > 0")
    signal.signal(signal.SIGTERM, _terminate)  # clean up (server, temp folder) on SIGTERM too

    print(f"bench_exchange: {os.cpu_count()} CPUs ({platform.machine()}, Python "
          f"{platform.python_version()}); {args.agents} agents x {args.reports} reports of "
          f"{args.hours} h into {args.processes} exchange process(es) on {args.backend}; "
          "load generator and exchange share this machine")
    print("All figures are from one run on a shared machine: read ratios, not single ms.")
    try:
        figures = run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: the exchange was stopped and the temporary folder removed",
              file=sys.stderr)
        raise SystemExit(130) from None
    if figures is None:
        return
    report(figures)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
