"""Market maker and summary: build a market bundle for one week from a dataset."""

from gridbridge.market.maker import MakerOptions, make_market
from gridbridge.market.summary import MarketSummary, summarize

__all__ = ["MakerOptions", "MarketSummary", "make_market", "summarize"]
