"""Sane bounds on the numbers GridBridge takes in from outside, stated once.

Both input boundaries refuse a value outside these, naming the field and the fix: the
exchange's HTTP contract (:mod:`gridbridge.exchange.contract`, so ``/openapi.json`` shows
them) and the market bundle validator (:mod:`gridbridge.bundle`); the raw data importers
(:mod:`gridbridge.importers`) and ``gridbridge clear``'s options use them too. The bounds are
wide on purpose: they let every real market through and stop garbage and unit mistakes
(EUR/kWh for EUR/MWh, g/MWh for g/kWh, cents for euros) before they reach the solver, whose
numerics and the ledger's integer cents they would strain.

Every real value shipped lies well inside (checked on the 2023 data in ../shared/data and
``datasets/bridge-2023``): prices -500 to 3,099 EUR/MWh (Germany's floor; Singapore's
4,500 SGD/MWh cap at 1.4523 SGD per EUR), intensities 0 to 726 gCO2eq/kWh (Germany,
lifecycle), asks 0.46 to 1.36 EUR per GPU-hour, bid values 17.89 to 71,598 EUR, carbon
price 85 EUR per tonne.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridbridge.errors import InputError

__all__ = [
    "ASK_EUR_PER_GPU_HOUR",
    "BID_VALUE_EUR",
    "CARBON_G_PER_KWH",
    "CARBON_PRICE_EUR_PER_T",
    "EMISSIONS_CAP_T",
    "PRICE_EUR_PER_MWH",
    "TARIFF_ADDER_EUR_PER_MWH",
    "Limit",
    "format_bound",
    "parse_carbon_prices",
]


def format_bound(value: float) -> str:
    """A bound as written in messages: whole numbers in full (``1000000000``, not
    ``1e+09``), others as ``%g``."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True, slots=True)
class Limit:
    """The legal range ``[low, high]`` of a quantity, in ``unit``."""

    low: float
    high: float
    unit: str

    def admits(self, value: float) -> bool:
        """Whether ``value`` lies in ``[low, high]`` (NaN never does)."""
        return self.low <= value <= self.high

    def describe(self, *, low_open: bool = False) -> str:
        """``between -10000 and 10000 EUR/MWh``; with ``low_open`` (a boundary that also
        refuses ``low`` itself) ``> 0 and at most 1000000000 EUR``."""
        if low_open:
            return f"> {format_bound(self.low)} and at most {format_bound(self.high)} {self.unit}"
        return f"between {format_bound(self.low)} and {format_bound(self.high)} {self.unit}"


#: A zone's wholesale electricity price. The EU's harmonised day-ahead limits are -500 and
#: +4,000 EUR/MWh, intraday's -9,999 and +9,999; 10,000 either way admits every market's
#: price while refusing EUR/kWh-for-EUR/MWh or un-converted local currency (KRW is ~1,400
#: per EUR) mistakes.
PRICE_EUR_PER_MWH = Limit(-10_000.0, 10_000.0, "EUR/MWh")
#: A site's tariff adder on top of the zone's price (network charges, levies, its supply
#: contract's premium or discount). Real ones are tens of EUR/MWh; the price's bounds refuse
#: the same unit mistakes, and a negative adder (a discount) is allowed.
TARIFF_ADDER_EUR_PER_MWH = Limit(-10_000.0, 10_000.0, "EUR/MWh")
#: A grid's carbon intensity (direct or lifecycle). Lignite, the dirtiest grid source, is
#: about 1,100-1,200 gCO2eq/kWh over its life cycle, so no grid's average exceeds 2,000.
CARBON_G_PER_KWH = Limit(0.0, 2_000.0, "gCO2eq/kWh")
#: A site's ask on top of energy. Real cloud prices are about 1-10 EUR per GPU-hour; 1,000
#: refuses cents-for-euros and per-node-for-per-GPU mistakes with room to spare.
ASK_EUR_PER_GPU_HOUR = Limit(0.0, 1_000.0, "EUR per GPU-hour")
#: The most a member will pay for one whole job. The largest training runs cost of the order
#: of 1e8 EUR; 1e9 EUR is 1e11 cents, far inside the ledger's 64-bit integer cents.
BID_VALUE_EUR = Limit(0.0, 1e9, "EUR")
#: A carbon price. EU ETS allowances traded at 80-100 EUR per tonne in 2023 and the app's
#: trade-off curve goes up to 6,400; 100,000 leaves room for any what-if.
CARBON_PRICE_EUR_PER_T = Limit(0.0, 100_000.0, "EUR per tonne CO2eq")
#: A cap on one round's emissions. 1e9 tonnes (1 Gt) is about 2 % of the world's yearly
#: emissions, far more than any round emits: a cap above it could never bind.
EMISSIONS_CAP_T = Limit(0.0, 1e9, "tonnes CO2eq")


def parse_carbon_prices(text: str, field: str) -> list[float]:
    """``"0, 100, 400"`` -> ``[0.0, 100.0, 400.0]`` (EUR per tonne CO2eq; commas or
    semicolons between them). Raises :class:`InputError` naming ``field`` (an option such as
    ``--carbon-prices``, or a form's label) unless there is at least one and each is a
    sane carbon price."""
    example = "e.g. 0, 100, 400, 1600"
    try:
        prices = [float(p) for p in text.replace(";", ",").split(",") if p.strip()]
    except ValueError:
        raise InputError(f"{field}: write numbers separated by commas, {example}") from None
    bad = [p for p in prices if not CARBON_PRICE_EUR_PER_T.admits(p)]
    if not prices or bad:
        got = f" ({bad[0]:g} is not)" if bad else ""
        raise InputError(f"{field}: give one or more carbon prices, each "
                         f"{CARBON_PRICE_EUR_PER_T.describe()}{got}, {example}")
    return prices
