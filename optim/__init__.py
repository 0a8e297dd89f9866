"""GridBridge's placement and clearing core.

Pure: takes validated market inputs (:mod:`optim.market`) and returns results. It never
touches files, HTTP or the database, and imports nothing from ``gridbridge`` or ``apps``.
The entry point is :func:`optim.clearing.clear`; :func:`optim.check.check_clearing`
re-verifies any clearing independently; :func:`optim.frontier.frontier` sweeps carbon prices.
"""

from optim.check import CheckReport, check_clearing
from optim.clearing import Clearing, Round, clear
from optim.errors import GridBridgeError
from optim.frontier import frontier
from optim.market import Market, MarketConfig
from optim.options import SolveOptions, SolveReport, SolveStatus

__all__ = [
    "CheckReport",
    "Clearing",
    "GridBridgeError",
    "Market",
    "MarketConfig",
    "Round",
    "SolveOptions",
    "SolveReport",
    "SolveStatus",
    "check_clearing",
    "clear",
    "frontier",
]
