"""The demo's steps, in order, each over the exchange's HTTP API with the role's own token
(see the package doc)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl

from gridbridge.bundle import read_bundle
from gridbridge.demo.bids import asks_by_site, bids_by_member
from gridbridge.demo.layout import DemoLayout
from gridbridge.demo.processes import ExchangeProcess, free_port, run_agents
from gridbridge.demo.setup import Tokens, create_exchange, write_agent_configs
from gridbridge.errors import DemoError
from gridbridge.hours import format_hour

__all__ = ["Demo", "DemoOptions", "DemoResult", "member_positions"]

#: Seconds between looks at a round being cleared.
_POLL_S = 0.5
#: Seconds the clearing may take beyond the solver's time limit (pricing, storing).
_CLEARING_SLACK_S = 900.0


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs on: the dataset (registry, replayed grid data), the market bundle
    (sites' free GPUs and asks, the bids, the window and carbon price), where it keeps its
    files, where the exchange listens (port 0: a free one), the round's solver time limit
    (seconds) and how many agents run at once."""

    dataset: Path = Path("datasets/bridge-2023")
    bundle: Path = Path("datasets/bridge-2023/market-2023-W27")
    folder: Path = Path("out/demo/exchange")
    host: str = "127.0.0.1"
    port: int = 8700
    time_limit_s: float = 30.0
    parallel_agents: int = 4


@dataclass
class DemoResult:
    """What the demo did: the exchange's URL, the round, its final state and summary, its
    ledger lines (corrections included), the placements, the telemetry reports and metered
    placement-hours the agents delivered."""

    url: str
    round_id: str
    state: str
    summary: dict[str, Any]
    ledger: pl.DataFrame
    placements: list[dict[str, Any]]
    registry: dict[str, Any]
    telemetry_reports: int = 0
    metering_reports: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def member_positions(ledger: pl.DataFrame, registry: dict[str, Any]) -> pl.DataFrame:
    """Each member's net position after the round, EUR: what the member paid for its jobs
    (``paid_eur``, < 0), what its sites received (``sites_received_eur``) and the ``net_eur``
    (+: the nation earned more from hosting than it spent)."""
    site_member = {s["site_id"]: s["member"] for s in registry["sites"]}
    members = sorted(m["member"] for m in registry["members"])
    totals = ledger.group_by("account").agg(pl.col("amount_cents").sum())
    paid = dict.fromkeys(members, 0)
    received = dict.fromkeys(members, 0)
    for account, cents in totals.iter_rows():
        kind, _, name = account.partition(":")
        if kind == "member" and name in paid:
            paid[name] += cents
        elif kind == "site" and site_member.get(name) in received:
            received[site_member[name]] += cents
    return pl.DataFrame({
        "member": members,
        "paid_eur": [paid[m] / 100 for m in members],
        "sites_received_eur": [received[m] / 100 for m in members],
        "net_eur": [(paid[m] + received[m]) / 100 for m in members],
    })


class Demo:
    """The running demo: :meth:`run` does every step and leaves the exchange running;
    :meth:`stop` stops it (also on leaving a ``with`` block)."""

    def __init__(self, options: DemoOptions, say: Callable[[str], None] = print) -> None:
        self.options, self.say = options, say
        self.layout = DemoLayout(options.folder)
        self.exchange = ExchangeProcess(self.layout.db_url, self.layout.server_log,
                                        options.host, options.port or free_port(options.host))
        self._client: httpx.Client | None = None
        self._tokens: Tokens = {}

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def token(self, who: str) -> str:
        """The bearer token of role label ``who`` (``admin``, ``member:KR`` ...)."""
        return self._tokens[who]

    def stop(self) -> None:
        """Stop the exchange (and close the client)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self.exchange.stop()

    # ------------------------------------------------------------------------------ HTTP

    def call(self, method: str, path: str, who: str, body: Any = None,
             expect: tuple[int, ...] = (200, 201)) -> Any:
        """One API call as role ``who`` (a key of the tokens); its JSON answer.
        :class:`DemoError` with the exchange's answer for any other status."""
        assert self._client is not None, "the exchange is not started"
        answer = self._client.request(method, path, json=body, headers={
            "Authorization": f"Bearer {self._tokens[who]}"})
        if answer.status_code not in expect:
            raise DemoError(f"{method} {path} as {who} answered {answer.status_code}: "
                            f"{answer.text[:2000]}")
        return answer.json()

    # ----------------------------------------------------------------------------- steps

    def run(self) -> DemoResult:
        """Every step (see the package doc); the exchange is left running."""
        o, layout, seconds = self.options, self.layout, {}
        started = time.perf_counter()
        market = read_bundle(o.bundle)  # first: a bad bundle stops the demo before any work
        bids = bids_by_member(market)
        layout.fresh()
        url = self.exchange.base_url
        self._tokens = create_exchange(layout, o.dataset, url)
        self.exchange.start()
        self._client = httpx.Client(base_url=url, timeout=120)
        self.say(f"exchange serving at {url} (database {layout.database}, log "
                 f"{layout.server_log}); tokens in {layout.tokens}")
        for site_id, asks in asks_by_site(market).items():
            self.call("PUT", f"/v1/sites/{site_id}/asks", f"site:{site_id}", {"asks": asks})
        seconds["exchange"] = time.perf_counter() - started

        window = market.config
        mark = time.perf_counter()
        configs = write_agent_configs(layout, market, o.dataset, url, self._tokens,
                                      window.window_start_utc - timedelta(hours=1))
        self.say(f"{len(configs)} site agents report their free GPUs and the replayed 2023 "
                 f"grid ({layout.agents}) ...")
        run_agents(configs, parallel=o.parallel_agents)
        seconds["agents_report"] = time.perf_counter() - mark

        mark = time.perf_counter()
        opened = self.call("POST", "/v1/rounds", "planner", {
            "window_start_utc": format_hour(window.window_start_utc),
            "window_end_utc": format_hour(window.window_end_utc),
            "carbon_price_eur_per_t": window.carbon_price_eur_per_t,
            "carbon_signal": window.carbon_signal, "time_limit_s": o.time_limit_s})
        round_id = str(opened["round_id"])
        for member, bodies in sorted(bids.items()):
            for body in bodies:
                self.call("POST", f"/v1/rounds/{round_id}/bids", f"member:{member}", body)
        self.say(f"round {round_id} opened by the planner; {sum(map(len, bids.values()))} "
                 f"sealed bids submitted by {len(bids)} members")
        seconds["bids"] = time.perf_counter() - mark

        mark = time.perf_counter()
        closed = self.call("POST", f"/v1/rounds/{round_id}/close", "planner")
        if closed["state"] == "failed":
            raise DemoError(f"round {round_id} failed at gate closure: {closed['reason']}")
        state = self._wait_cleared(round_id, o.time_limit_s + _CLEARING_SLACK_S)
        seconds["clearing"] = time.perf_counter() - mark

        mark = time.perf_counter()
        configs = write_agent_configs(layout, market, o.dataset, url, self._tokens,
                                      window.window_end_utc)
        self.say("the agents, on a clock past the window, fetch their assignments and post "
                 "metering (SIMULATED from the replayed grid, with noise) ...")
        run_agents(configs, parallel=o.parallel_agents)
        seconds["agents_meter"] = time.perf_counter() - mark

        state = self.call("GET", f"/v1/rounds/{round_id}", "planner")["state"]
        result = DemoResult(
            url=url, round_id=round_id, state=state,
            summary=self.call("GET", f"/v1/rounds/{round_id}/summary", "planner"),
            ledger=pl.DataFrame(self.call("GET", f"/v1/rounds/{round_id}/ledger", "treasurer"),
                                schema_overrides={"amount_cents": pl.Int64}),
            placements=self.call("GET", f"/v1/rounds/{round_id}/placements", "planner"),
            registry=self.call("GET", "/v1/registry", "planner"),
            seconds=seconds)
        metrics = self._client.get("/metrics").text
        result.telemetry_reports = _counter(metrics, "gridbridge_telemetry_reports_total")
        result.metering_reports = _counter(metrics, "gridbridge_metering_reports_total")
        seconds["total"] = time.perf_counter() - started
        return result

    def _wait_cleared(self, round_id: str, timeout_s: float) -> str:
        """Poll the round until the worker has cleared it, saying each new progress step."""
        deadline, seen = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            found = self.call("GET", f"/v1/rounds/{round_id}", "planner")
            if found.get("progress") != seen:
                seen = found.get("progress")
                self.say(f"round {round_id}: {found['state']}"
                         + (f" ({seen})" if seen else ""))
            if found["state"] == "failed":
                raise DemoError(f"round {round_id} failed: {found['reason']}")
            if found["state"] in ("cleared", "settled"):
                return str(found["state"])
            time.sleep(_POLL_S)
        raise DemoError(f"round {round_id} was not cleared in {timeout_s:g} s — see "
                        f"{self.layout.server_log}")


def _counter(metrics: str, name: str) -> int:
    """A counter's value in the Prometheus text (0 when absent)."""
    for line in metrics.splitlines():
        if line.startswith(f"{name} "):
            return int(float(line.split()[1]))
    return 0
