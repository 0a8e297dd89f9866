"""The bundle's bids and asks as the exchange's API takes them."""

from __future__ import annotations

from typing import Any

import polars as pl

from gridbridge.bundle.options import parse_gpu_options
from gridbridge.exchange.contract import BidIn
from gridbridge.hours import format_hour
from optim.market import Market

__all__ = ["asks_by_site", "bids_by_member"]


def bids_by_member(market: Market) -> dict[str, list[dict[str, Any]]]:
    """member -> the bodies of its ``POST /v1/rounds/{round_id}/bids`` calls, one per bundle
    bid, checked against :class:`~gridbridge.exchange.contract.BidIn` here so a bad bundle
    fails before anything is sent."""
    out: dict[str, list[dict[str, Any]]] = {}
    for bid in market.bids.iter_rows(named=True):
        options = [{"gpu_type": gpu_type, "hours": hours}
                   for gpu_type, hours in parse_gpu_options(bid["gpu_options"]).items()]
        allowed = [code for code in bid["allowed_jurisdictions"].split(";") if code]
        body = {
            "bid_id": bid["bid_id"], "gpus": int(bid["gpus"]), "options": options,
            "release_utc": format_hour(bid["release_utc"]),
            "deadline_utc": format_hour(bid["deadline_utc"]),
            "value_eur": float(bid["value_eur"]),
            "allowed_jurisdictions": allowed or ["*"],
        }
        BidIn.model_validate(body)
        out.setdefault(bid["member"], []).append(body)
    return out


def asks_by_site(market: Market) -> dict[str, dict[str, float]]:
    """site -> GPU type -> its ask (EUR per GPU-hour) in the bundle (one per pool)."""
    asks = (market.capacity.group_by("site_id", "gpu_type")
            .agg(pl.col("ask_eur_per_gpu_hour").first()).sort("site_id", "gpu_type"))
    out: dict[str, dict[str, float]] = {}
    for site_id, gpu_type, ask in asks.iter_rows():
        out.setdefault(site_id, {})[gpu_type] = float(ask)
    return out
