"""Bundle mode: a market bundle and (optionally) its clearing folder, read from disk.

The reader is shown everything (the viewer is an offline ``admin``). The bundle has one
round: its clearing's ``round_id`` (state ``cleared``) or, with no clearing yet, the bundle
folder's name (state ``open``: nothing stored; the Market page's what-if clears it). Bids
typed into the app are drafts: kept in this source only (one per browser session), they
join the what-ifs and are never written to the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
import polars as pl

from gridbridge.appdata.model import (
    BID_SCHEMA,
    CAPACITY_SCHEMA,
    GRID_SCHEMA,
    REJECTED_SCHEMA,
    SITE_SCHEMA,
    Outlook,
    RoundInfo,
    RoundResult,
    Viewer,
    typed,
)
from gridbridge.appdata.source import Mode, Progress
from gridbridge.appdata.statements import file_names, report_bytes
from gridbridge.appdata.window import add_bids
from gridbridge.bundle import format_gpu_options, read_bundle
from gridbridge.bundle.options import split_gpu_options
from gridbridge.clearing import ClearingFiles, read_clearing
from gridbridge.errors import InputError, NotFoundError
from gridbridge.exchange.contract import BidIn, RoundIn
from gridbridge.reports import build_reports
from optim.market import Market

__all__ = ["BundleSource", "LoadedBundle", "load_bundle"]

_NO_EXCHANGE = ("bundle mode reads files and has no exchange to {what} — fix: start the app "
                "with --exchange URL --token T")


@dataclass(frozen=True, slots=True)
class LoadedBundle:
    """A bundle and its clearing as read once (shared by every session of the app).

    ``clearing`` is None when there is no clearing folder; ``solve_s`` is the sum of
    timings.json's phases (seconds), None without it.
    """

    bundle_dir: Path
    clearing_dir: Path | None
    market: Market
    clearing: ClearingFiles | None
    solve_s: float | None


def load_bundle(bundle_dir: Path, clearing_dir: Path | None = None) -> LoadedBundle:
    """Read the bundle (validated) and its clearing: ``clearing_dir``, else the bundle folder
    itself when ``gridbridge clear`` wrote there (it holds summary.json), else none.

    Raises :class:`~gridbridge.errors.BundleError` / :class:`InputError` naming the file.
    """
    market = read_bundle(bundle_dir)
    if clearing_dir is None and (bundle_dir / "summary.json").is_file():
        clearing_dir = bundle_dir
    clearing = read_clearing(clearing_dir) if clearing_dir is not None else None
    solve_s = None
    if clearing_dir is not None and (clearing_dir / "timings.json").is_file():
        timings = orjson.loads((clearing_dir / "timings.json").read_bytes())
        solve_s = float(sum(v for v in timings.values() if isinstance(v, int | float)))
    return LoadedBundle(bundle_dir, clearing_dir, market, clearing, solve_s)


def _pooled(market: Market) -> pl.DataFrame:
    """``site_id``, ``pooled_gpus``: sites.csv's ``gpu_pools`` (``H100:96;A100:184``) where
    the bundle has it, else each pool's most GPUs free in any hour, summed per site."""
    if "gpu_pools" in market.sites.columns:
        counts = [sum(split_gpu_options(text or "")[0].values())
                  for text in market.sites["gpu_pools"].to_list()]
        return pl.DataFrame({"site_id": market.sites["site_id"], "pooled_gpus": counts},
                            schema={"site_id": pl.String, "pooled_gpus": pl.Int64})
    return market.capacity.group_by("site_id", "gpu_type").agg(
        pl.col("gpus_available").max()).group_by("site_id").agg(
        pl.col("gpus_available").sum().cast(pl.Int64).alias("pooled_gpus"))


class BundleSource:
    """:class:`~gridbridge.appdata.source.DataSource` over a :class:`LoadedBundle`."""

    mode: Mode = "bundle"

    def __init__(self, loaded: LoadedBundle) -> None:
        self.loaded = loaded
        self.viewer = Viewer("admin", offline=True)
        self._drafts: list[tuple[str, BidIn]] = []
        self._market = loaded.market
        self._reports: dict[str, pl.DataFrame] | None = None

    def describe(self) -> str:
        where = f"bundle {self.loaded.bundle_dir}"
        if self.loaded.clearing_dir is not None:
            where += f", clearing {self.loaded.clearing_dir}"
        return f"{where} (offline: what-ifs are not stored)"

    def _round(self) -> RoundInfo:
        cfg = self.loaded.market.config
        summary = self.loaded.clearing.summary if self.loaded.clearing else {}
        price = summary.get("carbon_price_eur_per_t", cfg.carbon_price_eur_per_t)
        return RoundInfo(
            round_id=str(summary.get("round_id") or self.loaded.bundle_dir.name),
            state="cleared" if self.loaded.clearing else "open",
            window_start_utc=cfg.window_start_utc, window_end_utc=cfg.window_end_utc,
            carbon_price_eur_per_t=float(price) if isinstance(price, int | float)
            else cfg.carbon_price_eur_per_t, carbon_signal=cfg.carbon_signal)

    def rounds(self) -> list[RoundInfo]:
        return [self._round()]

    def _check(self, round_id: str) -> None:
        known = self._round().round_id
        if round_id != known:
            raise NotFoundError(f"round {round_id} is not this bundle's — fix: pick {known}")

    def outlook(self, start: datetime, end: datetime, signal: str) -> Outlook:
        market = self.loaded.market
        inside = pl.col("hour_utc").is_between(start, end, closed="left")
        sites = market.sites.join(_pooled(market), on="site_id", how="left")
        if "name" not in sites.columns:
            sites = sites.with_columns(name=pl.col("site_id"))
        grid = market.grid.filter(inside).rename(
            {f"carbon_{signal}_g_per_kwh": "carbon_g_per_kwh"})
        return Outlook(start, end, signal, typed(sites, SITE_SCHEMA),
                       typed(market.capacity.filter(inside), CAPACITY_SCHEMA),
                       typed(grid.drop_nulls("carbon_g_per_kwh"), GRID_SCHEMA))

    def bids(self, round_id: str) -> pl.DataFrame:
        self._check(round_id)
        stored = self.loaded.market.bids.with_columns(state=pl.lit("submitted"))
        drafts = pl.DataFrame([{
            "member": member, "bid_id": bid.bid_id, "gpus": bid.gpus,
            "gpu_options": format_gpu_options([(o.gpu_type, o.hours) for o in bid.options]),
            "release_utc": bid.release_utc, "deadline_utc": bid.deadline_utc,
            "value_eur": bid.value_eur,
            "allowed_jurisdictions": ";".join(bid.allowed_jurisdictions), "state": "draft",
        } for member, bid in self._drafts], schema=BID_SCHEMA)
        return pl.concat([typed(stored, BID_SCHEMA), drafts])

    def submit_bid(self, round_id: str, bid: BidIn, member: str | None) -> None:
        """Add a draft bid for ``member`` (required here: no token says whose it is)."""
        self._check(round_id)
        if not member:
            raise InputError("member: a draft bid needs the member it is for — fix: pick one")
        drafts = [*self._drafts, (member, bid)]
        self._market = add_bids(self.loaded.market, drafts)  # refuses what the bundle would
        self._drafts = drafts

    def withdraw_bid(self, round_id: str, member: str, bid_id: str) -> None:
        """Drop a draft (bids of the bundle's files cannot be withdrawn)."""
        self._check(round_id)
        kept = [(m, b) for m, b in self._drafts if (m, b.bid_id) != (member, bid_id)]
        if len(kept) == len(self._drafts):
            raise NotFoundError(f"bid_id: {member}/{bid_id} is not one of your drafts; bids "
                                "in the bundle's bids.csv stay — fix: pick a draft")
        self._market = add_bids(self.loaded.market, kept)
        self._drafts = kept

    def result(self, round_id: str) -> RoundResult | None:
        self._check(round_id)
        files = self.loaded.clearing
        if files is None:
            return None
        members = self.loaded.market.bids.select("bid_id", "member")
        rejected = files.rejected.join(members, on="bid_id", how="left")
        return RoundResult(
            placements=files.placements, rejected=typed(rejected, REJECTED_SCHEMA),
            prices=files.prices, summary=files.summary,
            capacity=typed(self.loaded.market.capacity, CAPACITY_SCHEMA),
            solve_s=self.loaded.solve_s)

    def round_market(self, round_id: str) -> Market:
        self._check(round_id)
        return self._market

    def open_round(self, body: RoundIn) -> RoundInfo:
        raise InputError(_NO_EXCHANGE.format(what="open rounds in"))

    def close_round(self, round_id: str, progress: Progress, timeout_s: float) -> RoundInfo:
        raise InputError(_NO_EXCHANGE.format(what="close rounds of"))

    def _tables(self) -> dict[str, pl.DataFrame]:
        if self.loaded.clearing_dir is None:
            raise NotFoundError("no clearing to settle: the bundle has not been cleared — fix: "
                                "run gridbridge clear BUNDLE --out DIR and start the app with "
                                "--clearing DIR")
        if self._reports is None:
            self._reports = build_reports(self.loaded.clearing_dir)
        return self._reports

    def statements(self, round_id: str) -> dict[str, pl.DataFrame]:
        self._check(round_id)
        return self._tables()

    def report_names(self, round_id: str) -> list[str]:
        self._check(round_id)
        return file_names()

    def report_file(self, round_id: str, name: str) -> bytes:
        self._check(round_id)
        return report_bytes(self._tables(), name)
