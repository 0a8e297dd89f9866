"""``bids.gpu_options``: which GPU types a job can run on and for how many hours on each.

Text form: ``type:hours`` pairs separated by ``;``, e.g. ``H100:24;A100:56`` (24 hours on
H100s, 56 hours on A100s). Hours are whole positive hours written as plain digits; a type may
appear once. Surrounding spaces are ignored. Order is kept: it is the bidder's own listing and
it is how the pairs are written back, so a bundle round-trips byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import polars as pl

from gridbridge.errors import InputError
from optim.market import SCHEMAS

__all__ = [
    "GPU_OPTIONS_FIX",
    "bid_options_table",
    "format_gpu_options",
    "parse_gpu_options",
    "split_gpu_options",
]

GPU_OPTIONS_FIX = (
    "write gpu_options as type:hours pairs separated by ';' with whole positive hours, "
    "e.g. H100:24;A100:56"
)


def split_gpu_options(text: str) -> tuple[dict[str, int], list[str]]:
    """Parse ``text`` leniently: the options that parsed plus one message per defect.

    The validator uses this to report every defect of a cell at once; callers that want an
    exception use :func:`parse_gpu_options`. Hours are whole hours (``int``, > 0).
    """
    options: dict[str, int] = {}
    problems: list[str] = []
    if not text.strip():
        return options, ["gpu_options is empty"]
    for position, item in enumerate(text.split(";"), start=1):
        part = item.strip()
        if not part:
            problems.append(f"option {position} is empty (stray ';')")
            continue
        gpu_type, sep, hours_text = part.partition(":")
        gpu_type, hours_text = gpu_type.strip(), hours_text.strip()
        if not sep or ":" in hours_text:
            problems.append(f"option '{part}' is not type:hours")
            continue
        if not gpu_type:
            problems.append(f"option '{part}' has no GPU type")
            continue
        # Plain digits only: a duration is a count of hourly slots, never 1.5 or 1e2.
        if not hours_text.isascii() or not hours_text.isdigit():
            problems.append(f"option '{part}' has hours '{hours_text}', not a whole number")
            continue
        hours = int(hours_text)
        if hours <= 0:
            problems.append(f"option '{part}' has {hours} hours; a job needs at least 1")
            continue
        if gpu_type in options:
            problems.append(f"GPU type '{gpu_type}' is listed twice")
            continue
        options[gpu_type] = hours
    return options, problems


def parse_gpu_options(text: str) -> dict[str, int]:
    """``'H100:24;A100:56'`` -> ``{'H100': 24, 'A100': 56}`` (hours per GPU type, in order).

    Raises :class:`InputError` naming every defect and the fix.
    """
    options, problems = split_gpu_options(text)
    if problems:
        raise InputError(f"gpu_options '{text}': {'; '.join(problems)} — fix: {GPU_OPTIONS_FIX}")
    return options


def format_gpu_options(options: Mapping[str, int] | Iterable[tuple[str, int]]) -> str:
    """``{'H100': 24, 'A100': 56}`` (or pairs) -> ``'H100:24;A100:56'``, in the given order.

    Raises :class:`InputError` for anything :func:`parse_gpu_options` would not read back:
    no options, an empty type or one containing ``:``/``;``, a repeated type, hours that are
    not a positive ``int``.
    """
    pairs = list(options.items()) if isinstance(options, Mapping) else list(options)
    if not pairs:
        raise InputError(f"a bid needs at least one GPU option — fix: {GPU_OPTIONS_FIX}")
    seen: set[str] = set()
    parts: list[str] = []
    for gpu_type, hours in pairs:
        name = gpu_type.strip()
        if not name or ":" in name or ";" in name:
            raise InputError(
                f"GPU type '{gpu_type}' cannot be written in gpu_options — fix: use a name "
                "without ':' or ';'"
            )
        if name in seen:
            raise InputError(f"GPU type '{name}' is listed twice — fix: keep one duration")
        # bool is an int subclass; True hours is a bug upstream, not 1 hour.
        if isinstance(hours, bool) or not isinstance(hours, int) or hours <= 0:
            raise InputError(
                f"GPU type '{name}' has duration {hours!r} — fix: use a whole number of hours >= 1"
            )
        seen.add(name)
        parts.append(f"{name}:{hours}")
    return ";".join(parts)


def bid_options_table(bids: pl.DataFrame) -> pl.DataFrame:
    """``Market.bid_options`` from a bids frame: one row per (bid, GPU type), ``duration_h``.

    Rows follow the bids' order, then each bid's own listing order. Raises
    :class:`InputError` naming the bid when a ``gpu_options`` cell does not parse.
    """
    rows: list[tuple[str, str, int]] = []
    for bid_id, text in zip(bids["bid_id"].to_list(), bids["gpu_options"].to_list(), strict=True):
        try:
            options = parse_gpu_options(text or "")
        except InputError as exc:
            raise InputError(f"bid {bid_id}: {exc}") from None
        rows += [(bid_id, gpu_type, hours) for gpu_type, hours in options.items()]
    return pl.DataFrame(rows, schema=dict(SCHEMAS["bid_options"]), orient="row")
