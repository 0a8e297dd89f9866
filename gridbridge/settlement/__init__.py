"""Settlement: a cleared round's ledger lines (postings) and, later, metered true-ups."""

from gridbridge.settlement.postings import (
    CARBON_FUND,
    ROUNDING,
    UPLIFT,
    cents,
    hour_stamp,
    round_id_for,
    round_postings,
)

__all__ = ["CARBON_FUND", "ROUNDING", "UPLIFT", "cents", "hour_stamp", "round_id_for",
           "round_postings"]
