"""Exchange mode: a running exchange over HTTP, as the token's role may see it.

What each role sees is the exchange's rule, not the app's: a member gets its own bids,
placements, rejections and statement; a site its placements; planners, treasurers and
admins the alliance. A call the role may not make answers 403, which the pages show as an
explanation (e.g. "members do not see the round's summary"). The viewer's role comes from
:func:`~gridbridge.appdata.client.probe_viewer` unless given.

Files (outlook and round bundles, report files) travel as the exchange writes them: CSV
with ``2023-07-03T14:00Z`` stamps, Parquet typed.
"""

from __future__ import annotations

import io
import time
import tomllib
from datetime import datetime

import polars as pl

from gridbridge.appdata import model as m
from gridbridge.appdata.client import ExchangeClient, ExchangeRefused, probe_viewer
from gridbridge.appdata.source import Mode, Progress
from gridbridge.appdata.statements import MEMBER_TABLES, file_names
from gridbridge.bundle import format_gpu_options, validate_bundle
from gridbridge.errors import InputError
from gridbridge.exchange.contract import BidIn, RegistryOut, RoundIn
from gridbridge.hours import format_hour, parse_hour
from optim.market import TABLES, Market

__all__ = ["ALLIANCE_TABLES", "ExchangeSource"]

#: The report tables the Settlements page shows to those who see the alliance.
ALLIANCE_TABLES = ("alliance_summary", "member_totals", "member_statements", "cross_border",
                   "site_statements")
#: Seconds between polls of a closing round.
POLL_S = 0.3


def _csv(data: bytes) -> pl.DataFrame:
    """A CSV file of the exchange as text columns (typed later by the caller's schema)."""
    return pl.read_csv(io.BytesIO(data), infer_schema=False)


def _round(row: dict[str, object]) -> m.RoundInfo:
    return m.RoundInfo(
        round_id=str(row["round_id"]), state=str(row["state"]),
        window_start_utc=parse_hour(str(row["window_start_utc"])),
        window_end_utc=parse_hour(str(row["window_end_utc"])),
        carbon_price_eur_per_t=float(row["carbon_price_eur_per_t"]),  # type: ignore[arg-type]
        carbon_signal=str(row["carbon_signal"]),
        progress=None if row.get("progress") is None else str(row["progress"]),
        reason=None if row.get("reason") is None else str(row["reason"]))


class ExchangeSource:
    """:class:`~gridbridge.appdata.source.DataSource` over one exchange and one token."""

    mode: Mode = "exchange"

    def __init__(self, client: ExchangeClient, viewer: m.Viewer | None = None) -> None:
        self.client = client
        self.viewer = viewer or probe_viewer(client)

    def describe(self) -> str:
        return f"exchange {self.client.base_url} as {self.viewer.label()}"

    def _registry(self) -> RegistryOut:
        return RegistryOut.model_validate(self.client.get_json("/v1/registry",
                                                               what="reading the registry"))

    def rounds(self) -> list[m.RoundInfo]:
        return [_round(r) for r in self.client.get_json("/v1/rounds", what="listing rounds")]

    def _round_info(self, round_id: str) -> m.RoundInfo:
        return _round(self.client.get_json(f"/v1/rounds/{round_id}",
                                           what=f"reading round {round_id}"))

    def outlook(self, start: datetime, end: datetime, signal: str) -> m.Outlook:
        sites: list[dict[str, object]] = [
            {**s.model_dump(), "pooled_gpus": sum(p.gpus for p in s.pools)}
            for s in self._registry().sites]
        window = {"start_utc": format_hour(start), "end_utc": format_hour(end),
                  "carbon_signal": signal}
        what = "reading the outlook"
        capacity = _csv(self.client.get_bytes("/v1/outlook/capacity.csv", what=what, **window))
        grid = _csv(self.client.get_bytes("/v1/outlook/grid.csv", what=what, **window)).rename(
            {f"carbon_{signal}_g_per_kwh": "carbon_g_per_kwh"})
        return m.Outlook(start, end, signal, m.frame(sites, m.SITE_SCHEMA),
                       m.typed(capacity, m.CAPACITY_SCHEMA),
                       m.typed(grid, m.GRID_SCHEMA).drop_nulls("carbon_g_per_kwh"))

    def bids(self, round_id: str) -> pl.DataFrame:
        rows = self.client.get_json(f"/v1/rounds/{round_id}/bids",
                                    what=f"reading the bids of round {round_id}")
        for row in rows:
            row["gpu_options"] = format_gpu_options([(o["gpu_type"], o["hours"])
                                                     for o in row["options"]])
            row["allowed_jurisdictions"] = ";".join(row["allowed_jurisdictions"])
        return m.frame(rows, m.BID_SCHEMA)

    def submit_bid(self, round_id: str, bid: BidIn, member: str | None) -> None:
        """Submit as the token's member (``member`` is not sent: the token says whose)."""
        self.client.call("POST", f"/v1/rounds/{round_id}/bids", json=bid.model_dump(
            mode="json"), what=f"submitting bid {bid.bid_id}")

    def withdraw_bid(self, round_id: str, member: str, bid_id: str) -> None:
        self.client.call("DELETE", f"/v1/rounds/{round_id}/bids/{bid_id}",
                         what=f"withdrawing bid {bid_id}")

    def _optional(self, path: str, what: str) -> object | None:
        """GET ``path`` as JSON, or None where the viewer's role may not read it (403)."""
        try:
            return self.client.get_json(path, what=what)
        except ExchangeRefused as exc:
            if exc.status == 403:
                return None
            raise

    def result(self, round_id: str) -> m.RoundResult | None:
        if not self._round_info(round_id).cleared:
            return None
        base = f"/v1/rounds/{round_id}"
        placements = self.client.get_json(f"{base}/placements", what="reading placements")
        prices = self.client.get_json(f"{base}/prices", what="reading prices")
        rejected = self._optional(f"{base}/rejected", "reading rejected bids")
        summary = self._optional(f"{base}/summary", "reading the round's summary")
        notes = []
        if rejected is None:
            notes.append("Your role does not see the rejected bids of this round.")
        if summary is None:
            notes.append("Your role does not see the round's summary (totals, baselines); "
                         "planners and treasurers do.")
        try:
            capacity: pl.DataFrame | None = m.typed(_csv(self.client.get_bytes(
                f"{base}/bundle/capacity.csv", what="reading the round's capacity")),
                m.CAPACITY_SCHEMA)
        except ExchangeRefused as exc:
            capacity = None
            notes.append(f"Utilisation needs the round's capacity: {exc}")
        solve = summary.get("solve_seconds") if isinstance(summary, dict) else None
        return m.RoundResult(
            placements=m.frame(placements, m.PLACEMENT_SCHEMA),
            rejected=m.frame(rejected if isinstance(rejected, list) else [], m.REJECTED_SCHEMA),
            prices=m.frame(prices, m.PRICE_SCHEMA),
            summary=summary if isinstance(summary, dict) else None, capacity=capacity,
            solve_s=float(solve) if isinstance(solve, int | float) else None,
            notes=tuple(notes))

    def round_market(self, round_id: str) -> Market:
        """The bundle stored at the round's gate closure (planners, treasurers, admins: only
        they may read its bids.csv)."""
        base = f"/v1/rounds/{round_id}/bundle"
        what = f"reading the market of round {round_id}"
        tables = {name: _csv(self.client.get_bytes(f"{base}/{name}.csv", what=what))
                  for name in TABLES}
        config = tomllib.loads(self.client.get_bytes(f"{base}/market.toml", what=what)
                               .decode("utf-8"))
        market, _warnings = validate_bundle(tables, config, bundle=f"of round {round_id}")
        return market

    def open_round(self, body: RoundIn) -> m.RoundInfo:
        return _round(self.client.call("POST", "/v1/rounds", json=body.model_dump(mode="json"),
                                       what="opening a round").json())

    def close_round(self, round_id: str, progress: Progress, timeout_s: float) -> m.RoundInfo:
        found = _round(self.client.call("POST", f"/v1/rounds/{round_id}/close",
                                        what=f"closing round {round_id}").json())
        deadline = time.monotonic() + timeout_s
        while found.state not in ("cleared", "settled", "failed"):
            if time.monotonic() > deadline:
                raise InputError(f"round {round_id} was not cleared within {timeout_s:g} s "
                                 f"(it is {found.state}, {found.progress}) — fix: wait, then "
                                 "reload the page: the exchange keeps clearing it")
            progress(f"{found.state}: {found.progress or 'waiting for the clearing worker'}")
            time.sleep(POLL_S)
            found = self._round_info(round_id)
        return found

    def statements(self, round_id: str) -> dict[str, pl.DataFrame]:
        base = f"/v1/rounds/{round_id}/reports"
        what = f"reading the statements of round {round_id}"
        if self.viewer.sees_alliance:
            return {t: pl.read_parquet(io.BytesIO(self.client.get_bytes(
                f"{base}/{t}.parquet", what=what))) for t in ALLIANCE_TABLES}
        if self.viewer.role == "member":
            return {t: pl.read_csv(io.BytesIO(self.client.get_bytes(f"{base}/{t}.csv",
                                                                    what=what)))
                    for t in MEMBER_TABLES}
        return {}

    def report_names(self, round_id: str) -> list[str]:
        if self.viewer.sees_alliance:
            return file_names()
        return [f"{t}.csv" for t in MEMBER_TABLES] if self.viewer.role == "member" else []

    def report_file(self, round_id: str, name: str) -> bytes:
        return self.client.get_bytes(f"/v1/rounds/{round_id}/reports/{name}",
                                     what=f"downloading {name}")
