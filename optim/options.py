"""What a solve is asked to do (:class:`SolveOptions`) and how it ended (:class:`SolveReport`).

Money in EUR, times in seconds, gaps as fractions (0.01 = 1 %). ``gap`` is always
``(bound_eur - objective_eur) / max(|objective_eur|, 1 EUR)`` where ``bound_eur`` is an upper
bound on ``welfare_eur`` that is valid for the whole, unrestricted market of the round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

#: Defaults when neither the caller nor market.toml sets a limit.
DEFAULT_TIME_LIMIT_S = 60.0
DEFAULT_MIP_REL_GAP = 0.01
#: Pricing's default time limit (s): long, because prices cut short are only approximate.
DEFAULT_PRICING_TIME_LIMIT_S = 600.0
#: The largest random seed HiGHS takes (its ``random_seed`` option is a 32-bit int).
MAX_SEED = 2**31 - 1


class SolveStatus(StrEnum):
    """How the solve ended; mapped explicitly from HiGHS's model status in optim.solver."""

    OPTIMAL = "optimal"  # proven optimal within the requested relative gap
    TIME_LIMIT = "time_limit"  # stopped at the time limit with an incumbent
    ITERATION_LIMIT = "iteration_limit"  # stopped at a node/iteration/solution limit
    INTERRUPTED = "interrupted"  # stopped by the user (Ctrl-C) with an incumbent
    EMPTY = "empty"  # nothing to decide: no bid has a profitable placement
    INFEASIBLE = "infeasible"  # cannot happen for a well-formed market (reject-all is feasible)
    UNBOUNDED = "unbounded"
    ERROR = "error"


#: Statuses whose incumbent is a valid, usable clearing.
USABLE = frozenset({SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT, SolveStatus.ITERATION_LIMIT,
                    SolveStatus.INTERRUPTED, SolveStatus.EMPTY})


@dataclass(frozen=True, slots=True)
class SolveOptions:
    """Limits and overrides for one clearing.

    ``time_limit_s`` bounds the solve (seconds): the bound, warm start and search together,
    or HiGHS's branch-and-bound on a whole model; ``mip_rel_gap`` is the
    relative gap at which HiGHS may stop; ``threads`` HiGHS threads (None: HiGHS decides);
    ``carbon_price_eur_per_t`` overrides market.toml's price (EUR per tonne CO2eq);
    ``emissions_cap_kg`` caps the round's total emissions (kg CO2eq of the market's signal);
    ``seed`` (0 to ``MAX_SEED``) is HiGHS's random seed and orders the neighbourhood
    search's regions; two runs differ by more than it where search workers' results merge
    in a different order or HiGHS stops on time. ``baselines`` computes both
    baselines too; ``bound_iterations`` caps the Lagrangian bound's subgradient steps (it
    also stops when it converges, or at its share of the time limit);
    ``whole_model_nonzeros`` is the largest market solved as one model (optim.clearing).
    ``pricing`` runs the pricing step (optim.pricing) after the clearing, within
    ``pricing_time_limit_s`` seconds in all, counting the time its LP ran alongside the
    search (default ``DEFAULT_PRICING_TIME_LIMIT_S``; one master may run past it, see
    optim.pricing; it stops as soon as the prices are exact, which takes seconds on the
    bundled market and about 30 s at 2,000 bids). ``search_workers`` is how many
    neighbourhoods the search of large markets solves at once, each in its own process
    (None: one per CPU; always one under an emissions cap; optim.lns).
    """

    time_limit_s: float | None = None
    mip_rel_gap: float | None = None
    threads: int | None = None
    carbon_price_eur_per_t: float | None = None
    emissions_cap_kg: float | None = None
    seed: int = 0
    baselines: bool = True
    bound_iterations: int = 20_000
    whole_model_nonzeros: int = 250_000
    pricing: bool = True
    pricing_time_limit_s: float | None = None
    search_workers: int | None = None


@dataclass(frozen=True, slots=True)
class ModelSize:
    """Size of the model handed to HiGHS."""

    variables: int
    constraints: int
    nonzeros: int


@dataclass(frozen=True, slots=True)
class SolveReport:
    """The typed outcome of a clearing's solve.

    ``objective_eur`` is the incumbent's ``welfare_eur``; ``bound_eur`` an upper bound valid
    for the whole market (the better of HiGHS's proven bound and the Lagrangian bound);
    ``highs_bound_eur`` is HiGHS's own. ``seconds`` holds wall seconds per phase: ``build``
    (Pyomo model), ``handover`` (Pyomo to HiGHS), ``solve`` (HiGHS), ``extract`` (reading
    values back) and the phases before and after (``candidates``, ``bound``, ``baselines``,
    ``reasons``, ``pricing``). ``restrictions`` says what, if anything, the model left out of the
    market; empty means the model is the whole market. ``method`` is ``whole_model`` or
    ``neighbourhood_search`` (optim.clearing); ``size`` is the whole model's, or the largest
    neighbourhood's, and ``neighbourhoods`` how many were solved. ``seed`` is the random seed
    the solve used (HiGHS's, and the neighbourhood search's order).
    """

    status: SolveStatus
    highs_status: str
    objective_eur: float
    bound_eur: float
    highs_bound_eur: float | None
    lagrangian_bound_eur: float | None
    gap: float
    size: ModelSize
    candidates: int
    seconds: dict[str, float] = field(default_factory=dict)
    restrictions: tuple[str, ...] = ()
    method: str = "whole_model"
    neighbourhoods: int = 0
    warm_start: str = ""
    warm_start_eur: float = 0.0
    seed: int = 0


def relative_gap(objective_eur: float, bound_eur: float) -> float:
    """``(bound - objective) / max(|objective|, 1 EUR)``, never below 0."""
    return max(0.0, (bound_eur - objective_eur) / max(abs(objective_eur), 1.0))
