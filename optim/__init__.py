"""GridBridge's placement and clearing core.

Pure: takes validated market inputs (:mod:`optim.market`) and returns results. It never
touches files, HTTP or the database, and imports nothing from ``gridbridge`` or ``apps``.
"""

from optim.errors import GridBridgeError
from optim.market import Market, MarketConfig

__all__ = ["GridBridgeError", "Market", "MarketConfig"]
