"""The bid form: what a person types, checked by the exchange's own model.

The form's fields are text as typed; :func:`parse_bid` turns them into the JSON body of
``POST /v1/rounds/{round_id}/bids`` and validates it with
:class:`gridbridge.exchange.contract.BidIn`, so every message is the one the API would
answer (a 422's ``detail``), formatted by :func:`field_messages` the same way for both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gridbridge.bundle.options import GPU_OPTIONS_FIX, split_gpu_options
from gridbridge.exchange.contract import BidIn

__all__ = ["BidForm", "field_messages", "parse_bid"]


@dataclass(frozen=True, slots=True)
class BidForm:
    """The form as typed. ``options`` is ``H100:24;A100:56`` (GPU type : hours, ``;``
    between options); ``release_utc`` / ``deadline_utc`` are UTC stamps such as
    ``2023-07-03T00:00Z`` (the deadline is exclusive); ``value_eur`` is EUR for the whole
    job; ``allowed_jurisdictions`` is ``*`` or ISO codes separated by ``;`` or ``,``."""

    bid_id: str
    gpus: int
    options: str
    release_utc: str
    deadline_utc: str
    value_eur: float
    allowed_jurisdictions: str = "*"


def _options(text: str) -> list[dict[str, Any]] | str:
    """``H100:24;A100:56`` as the API's option objects, or the message for ``options``."""
    options, problems = split_gpu_options(text)
    if problems:
        return f"{'; '.join(problems)} — fix: {GPU_OPTIONS_FIX}"
    return [{"gpu_type": gpu_type, "hours": hours} for gpu_type, hours in options.items()]


def field_messages(errors: Iterable[Mapping[str, Any]]) -> list[str]:
    """One ``field: message`` line per validation error, as pydantic or the API's 422
    ``detail`` gives them (``loc`` without its leading ``body``)."""
    lines = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        lines.append(f"{'.'.join(loc) or 'bid'}: {error.get('msg', error)}")
    return lines


def parse_bid(form: BidForm) -> BidIn | list[str]:
    """The validated bid, or the messages naming each refused field and its fix."""
    options = _options(form.options)
    codes = [c.strip() for c in form.allowed_jurisdictions.replace(",", ";").split(";")]
    body = {"bid_id": form.bid_id.strip(), "gpus": form.gpus,
            # Unreadable options text: check every other field against a one-hour stand-in,
            # so the person sees all their mistakes at once.
            "options": [{"gpu_type": "H100", "hours": 1}] if isinstance(options, str)
            else options,
            "release_utc": form.release_utc.strip(), "deadline_utc": form.deadline_utc.strip(),
            "value_eur": form.value_eur, "allowed_jurisdictions": [c for c in codes if c]}
    messages = [f"options: {options}"] if isinstance(options, str) else []
    try:
        bid = BidIn.model_validate(body)
    except ValidationError as exc:
        return messages + field_messages(exc.errors())
    return messages or bid
