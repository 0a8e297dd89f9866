"""The figures of a set of accepted placements, the same way for the optimum and baselines.

Units: GPU-hours, ``work_h`` (GPU-hours of work at the bid's fastest option), kWh, kg CO2eq,
EUR. ``surplus_eur`` = value − energy cost − asks; ``welfare_eur`` = surplus − carbon fee
(carbon price × emissions), DESIGN.md's two money figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from optim.candidates import Candidates, MarketArrays


@dataclass(frozen=True, slots=True)
class Totals:
    """Totals over accepted placements (see the module docstring for units)."""

    accepted: int
    rejected: int
    gpu_hours: float
    work_h: float
    energy_kwh: float
    emissions_kg: float
    energy_cost_eur: float
    ask_eur: float
    carbon_fee_eur: float
    value_eur: float
    surplus_eur: float
    welfare_eur: float
    kg_per_work_h: float
    kg_per_gpu_hour: float

    def as_dict(self) -> dict[str, float | int]:
        """The totals as a plain dict (summary.json's keys)."""
        return asdict(self)


def totals(
    cands: Candidates, chosen: np.ndarray, arrays: MarketArrays, carbon_price_eur_per_t: float
) -> Totals:
    """Totals of the candidates at index ``chosen`` (at most one per bid)."""
    pick = cands.subset(np.asarray(chosen, dtype=np.int64))
    gpu_hours = float((pick.gpus * pick.duration).sum())
    work_h = float(arrays.bid_work_h[pick.bid].sum())
    emissions = float(pick.emissions_kg.sum())
    energy_cost = float(pick.energy_cost_eur.sum())
    ask = float(pick.ask_eur.sum())
    value = float(pick.value_eur.sum())
    fee = carbon_price_eur_per_t * emissions / 1000.0
    surplus = value - energy_cost - ask
    return Totals(
        accepted=len(pick),
        rejected=len(arrays.bid_ids) - len(pick),
        gpu_hours=gpu_hours,
        work_h=work_h,
        energy_kwh=float(pick.energy_kwh.sum()),
        emissions_kg=emissions,
        energy_cost_eur=energy_cost,
        ask_eur=ask,
        carbon_fee_eur=fee,
        value_eur=value,
        surplus_eur=surplus,
        welfare_eur=surplus - fee,
        kg_per_work_h=emissions / work_h if work_h else 0.0,
        kg_per_gpu_hour=emissions / gpu_hours if gpu_hours else 0.0,
    )
