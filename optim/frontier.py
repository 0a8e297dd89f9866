"""The cost–carbon trade-off curve: one clearing per carbon price, one model for all.

Prices are solved in ascending order: a candidate profitable at a higher carbon price is
profitable at every lower one, so the model built at the lowest price holds every candidate
any later solve needs; later solves only change the model's carbon-price parameter (HiGHS
keeps the model). Each row carries the same figures for both baselines at that price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import polars as pl

from optim.accounting import Totals
from optim.clearing import Progress, Round
from optim.errors import MarketInputError
from optim.market import Market
from optim.options import SolveOptions

COLUMNS = ("carbon_price_eur_per_t", "method", "status", "welfare_eur", "surplus_eur",
           "energy_cost_eur", "ask_eur", "carbon_fee_eur", "emissions_kg", "energy_kwh",
           "gpu_hours", "work_h", "kg_per_work_h", "accepted", "gap")


def _row(price: float, method: str, status: str, t: Totals, gap: float | None) -> dict:
    figures = t.as_dict()
    return {"carbon_price_eur_per_t": price, "method": method, "status": status,
            **{k: figures[k] for k in COLUMNS if k in figures}, "gap": gap}


def frontier(market: Market, carbon_prices_eur_per_t: Sequence[float],
             options: SolveOptions | None = None,
             progress: Progress | None = None) -> pl.DataFrame:
    """One row per (carbon price, method): the optimum (``method`` = "optimum") and both
    baselines. Money in EUR, emissions in kg CO2eq, ``gap`` a fraction (optimum rows only)."""
    prices = sorted({float(p) for p in carbon_prices_eur_per_t})
    if not prices or prices[0] < 0:
        raise MarketInputError("carbon prices must be one or more numbers >= 0 EUR per tonne")
    say = progress or (lambda _msg: None)
    # The curve needs welfare and emissions, not prices: skip the pricing step at each point.
    round_ = Round(market, replace(options or SolveOptions(), pricing=False))
    rows = []
    for price in prices:
        say(f"carbon price {price:g} EUR/t")
        c = round_.clear(price)
        rows.append(_row(price, "optimum", c.report.status.value, c.totals, c.report.gap))
        rows += [_row(price, name, "heuristic", t, None) for name, t in c.baselines.items()]
    return pl.DataFrame(rows).select(COLUMNS)
