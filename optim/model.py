"""The Pyomo model of a clearing, one builder per variable or constraint family.

Built from a :class:`optim.formulation.Formulation` (arrays), so the Pyomo model and the raw
highspy build of the benchmark are the same model. The carbon price and the emissions cap are
mutable parameters: the trade-off curve re-solves one model with new values instead of
rebuilding it. Rows are built as ``LinearExpression`` objects directly from the arrays, which
is several times faster than summing Pyomo terms one by one.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

from optim.formulation import Formulation, RowBlock


def _row(x: list[pyo.Var], block: RowBlock, r: int) -> LinearExpression:
    lo, hi = int(block.start[r]), int(block.start[r + 1])
    return LinearExpression([
        MonomialTermExpression((c, x[i]))
        for i, c in zip(block.index[lo:hi].tolist(), block.coef[lo:hi].tolist(), strict=True)
    ])


def declare_placements(m: pyo.ConcreteModel, f: Formulation) -> list[pyo.Var]:
    """``x[c]`` = 1 when modelled candidate ``c`` is the bid's placement."""
    m.C = pyo.RangeSet(0, f.variables - 1)
    m.x = pyo.Var(m.C, domain=pyo.Binary)
    return [m.x[i] for i in range(f.variables)]


def declare_one_per_bid(m: pyo.ConcreteModel, f: Formulation, x: list[pyo.Var]) -> None:
    """At most one placement per bid (rejecting a bid is always allowed)."""
    block = f.one_per_bid
    m.one_per_bid = pyo.Constraint(
        pyo.RangeSet(0, block.rows - 1), rule=lambda _m, r: _row(x, block, r) <= 1.0
    ) if block.rows else pyo.Constraint(pyo.Set(initialize=[]))


def declare_capacity(m: pyo.ConcreteModel, f: Formulation, x: list[pyo.Var]) -> None:
    """GPUs used in each (pool, hour) <= GPUs available; the dual is EUR per GPU-hour."""
    block = f.capacity
    upper = block.upper.tolist()
    m.capacity = pyo.Constraint(
        pyo.RangeSet(0, block.rows - 1), rule=lambda _m, r: _row(x, block, r) <= upper[r]
    ) if block.rows else pyo.Constraint(pyo.Set(initialize=[]))


def declare_emissions_cap(m: pyo.ConcreteModel, f: Formulation, x: list[pyo.Var]) -> None:
    """Total emissions (kg CO2eq) <= the mutable cap, when the round has one."""
    if f.emissions_cap_kg is None:
        return
    m.emissions_cap_kg = pyo.Param(mutable=True, initialize=f.emissions_cap_kg)
    kg = f.cands.emissions_kg.tolist()
    m.emissions_cap = pyo.Constraint(expr=LinearExpression(
        [MonomialTermExpression((k, v)) for k, v in zip(kg, x, strict=True)]
    ) <= m.emissions_cap_kg)


def declare_objective(m: pyo.ConcreteModel, f: Formulation, x: list[pyo.Var],
                      carbon_price_eur_per_t: float) -> None:
    """Maximise welfare: value − energy cost − asks − carbon price × emissions (EUR)."""
    m.carbon_price = pyo.Param(mutable=True, initialize=carbon_price_eur_per_t)
    c = f.cands
    base = (c.value_eur - c.energy_cost_eur - c.ask_eur).tolist()
    tonnes = (c.emissions_kg / 1000.0).tolist()
    m.welfare = pyo.Objective(
        expr=LinearExpression([MonomialTermExpression((b, v)) for b, v in zip(base, x,
                                                                                   strict=True)])
        - m.carbon_price * LinearExpression(
            [MonomialTermExpression((t, v)) for t, v in zip(tonnes, x, strict=True)]),
        sense=pyo.maximize,
    )


def build_model(f: Formulation, carbon_price_eur_per_t: float) -> pyo.ConcreteModel:
    """The whole Pyomo model of ``f`` at the given carbon price (EUR per tonne)."""
    m = pyo.ConcreteModel(name="gridbridge_clearing")
    x = declare_placements(m, f)
    declare_one_per_bid(m, f, x)
    declare_capacity(m, f, x)
    declare_emissions_cap(m, f, x)
    declare_objective(m, f, x, carbon_price_eur_per_t)
    return m


def set_values(m: pyo.ConcreteModel, chosen: np.ndarray) -> None:
    """Set ``x`` to the 0/1 clearing with the given modelled candidates (a warm start)."""
    on = set(np.asarray(chosen).tolist())
    for i in m.C:
        m.x[i].set_value(1.0 if i in on else 0.0)


def chosen_of(m: pyo.ConcreteModel) -> np.ndarray:
    """Positions of the modelled candidates the loaded solution accepts."""
    return np.array([i for i in m.C if (m.x[i].value or 0.0) > 0.5], dtype=np.int64)
