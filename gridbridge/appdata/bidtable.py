"""The Bids page's table: every bid with what became of it, and the page's filters.

A bid's ``status``: ``accepted`` / ``rejected`` once its round cleared (with the site and
start, or the reason), ``withdrawn``, ``draft`` (bundle mode: typed in the app, in no
file), else ``pending`` (the round has not cleared). Money EUR, times UTC.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from gridbridge.appdata.model import RoundResult

__all__ = ["STATUSES", "BidFilter", "bid_status", "filter_bids", "gpu_types_of"]

STATUSES = ("accepted", "rejected", "pending", "withdrawn", "draft")
_KEY = ["member", "bid_id"]


def bid_status(bids: pl.DataFrame, result: RoundResult | None) -> pl.DataFrame:
    """``bids`` (:data:`~gridbridge.appdata.model.BID_SCHEMA`) plus ``status``, and for
    accepted bids ``site_id``, ``gpu_type``, ``start_utc``, ``payment_eur``; for rejected
    ones ``reason`` and ``detail``. Bids are keyed by ``(member, bid_id)``."""
    placed = pl.DataFrame(schema={**dict.fromkeys(_KEY, pl.String), "site_id": pl.String,
                                  "gpu_type": pl.String,
                                  "start_utc": pl.Datetime("us", "UTC"),
                                  "payment_eur": pl.Float64})
    refused = pl.DataFrame(schema={**dict.fromkeys(_KEY, pl.String), "reason": pl.String,
                                   "detail": pl.String})
    if result is not None:
        placed = result.placements.select(placed.columns)
        refused = result.rejected.select(refused.columns)
    table = bids.join(placed, on=_KEY, how="left").join(refused, on=_KEY, how="left")
    status = (pl.when(pl.col("state") == "withdrawn").then(pl.lit("withdrawn"))
              .when(pl.col("state") == "draft").then(pl.lit("draft"))
              .when(pl.col("site_id").is_not_null()).then(pl.lit("accepted"))
              .when(pl.col("reason").is_not_null()).then(pl.lit("rejected"))
              .otherwise(pl.lit("pending")))
    return table.with_columns(status=status).sort(_KEY)


def gpu_types_of(bids: pl.DataFrame) -> list[str]:
    """Every GPU type any bid names in its ``gpu_options``, sorted."""
    types = bids["gpu_options"].str.extract_all(r"([^:;]+):").explode().str.strip_chars(":")
    return sorted(set(types.drop_nulls().to_list()))


@dataclass(frozen=True, slots=True)
class BidFilter:
    """What the page's filters keep: empty sequences keep everything; ``gpus`` is an
    inclusive range of the bid's GPU count."""

    members: Sequence[str] = ()
    gpu_types: Sequence[str] = ()
    statuses: Sequence[str] = ()
    gpus: tuple[int, int] | None = None


def filter_bids(table: pl.DataFrame, keep: BidFilter) -> pl.DataFrame:
    """The rows of :func:`bid_status`'s table that ``keep`` keeps."""
    if keep.members:
        table = table.filter(pl.col("member").is_in(list(keep.members)))
    if keep.statuses:
        table = table.filter(pl.col("status").is_in(list(keep.statuses)))
    if keep.gpu_types:
        pattern = "|".join(f"(^|;){re.escape(t)}:" for t in keep.gpu_types)
        table = table.filter(pl.col("gpu_options").str.contains(pattern))
    if keep.gpus is not None:
        low, high = keep.gpus
        table = table.filter(pl.col("gpus").is_between(low, high))
    return table
