"""What the app's pages ask of their data, whichever mode it comes in.

Two implementations: :class:`~gridbridge.appdata.bundle_source.BundleSource` (a market
bundle and its clearing folder on disk, for offline what-if work) and
:class:`~gridbridge.appdata.exchange_source.ExchangeSource` (a running exchange over HTTP
with a bearer token). Both return the frames of :mod:`gridbridge.appdata.model`, so a page
draws the same way in either mode. What the viewer may see is the source's business: the
exchange answers by role, a bundle shows everything.

Errors: anything refused or malformed is a :class:`~optim.errors.GridBridgeError` whose
message names the field or file and the fix; pages show it as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal, Protocol

import polars as pl

from gridbridge.appdata.model import Outlook, RoundInfo, RoundResult, Viewer
from gridbridge.exchange.contract import BidIn, RoundIn
from optim.market import Market

__all__ = ["DataSource", "Mode", "Progress"]

Mode = Literal["bundle", "exchange"]
Progress = Callable[[str], None]


class DataSource(Protocol):
    """The data of the app's pages (see the module docstring)."""

    mode: Mode
    viewer: Viewer

    def describe(self) -> str:
        """One line: where the data comes from and who is looking."""
        ...

    def rounds(self) -> list[RoundInfo]:
        """The rounds the viewer can pick, newest window first."""
        ...

    def outlook(self, start: datetime, end: datetime, signal: str) -> Outlook:
        """Sites, free GPUs and grid over ``[start, end)`` (UTC), intensity of ``signal``."""
        ...

    def bids(self, round_id: str) -> pl.DataFrame:
        """The round's bids the viewer may see (:data:`~gridbridge.appdata.model.BID_SCHEMA`)."""
        ...

    def submit_bid(self, round_id: str, bid: BidIn, member: str | None) -> None:
        """Submit ``bid`` (``member``: whose, where the token does not say)."""
        ...

    def withdraw_bid(self, round_id: str, member: str, bid_id: str) -> None:
        """Withdraw the member's bid ``bid_id``."""
        ...

    def result(self, round_id: str) -> RoundResult | None:
        """The round's stored results; None before it is cleared."""
        ...

    def round_market(self, round_id: str) -> Market:
        """The round's market as cleared (bids included), for what-ifs."""
        ...

    def open_round(self, body: RoundIn) -> RoundInfo:
        """Open a round (planners)."""
        ...

    def close_round(self, round_id: str, progress: Progress, timeout_s: float) -> RoundInfo:
        """Close an open round and wait (at most ``timeout_s`` seconds) until it is cleared
        or failed, reporting the worker's progress."""
        ...

    def statements(self, round_id: str) -> dict[str, pl.DataFrame]:
        """The settlement report tables the viewer may read, by table name."""
        ...

    def report_names(self, round_id: str) -> list[str]:
        """The report files the viewer may download."""
        ...

    def report_file(self, round_id: str, name: str) -> bytes:
        """One report file, byte-identical to ``gridbridge report``'s."""
        ...
