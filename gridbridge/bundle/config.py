"""``market.toml``: check the parsed TOML and build the round's :class:`MarketConfig`.

Every finding is a :class:`~gridbridge.errors.Problem` on ``market.toml`` naming the key;
the rules are listed in :mod:`gridbridge.bundle.validate`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from gridbridge.bundle.columns import Report
from gridbridge.hours import HourParseError, format_hour, parse_hour
from gridbridge.limits import CARBON_PRICE_EUR_PER_T, Limit
from optim.market import CARBON_SIGNALS, MarketConfig

__all__ = ["CONFIG_FILE", "check_config"]

CONFIG_FILE = "market.toml"
_WINDOW_KEYS = ("window_start_utc", "window_end_utc")
_CONFIG_KEYS = (
    *_WINDOW_KEYS,
    "carbon_price_eur_per_t",
    "carbon_signal",
    "time_limit_s",
    "mip_rel_gap",
)


def _config_time(rep: Report, key: str, value: object) -> datetime | None:
    fix = f'write {key} = "2023-07-03T00:00Z" (UTC, on a whole hour)'
    if isinstance(value, datetime):
        # TOML offset/local date-times arrive as datetime; judge them by the same rules.
        text = value.isoformat()
    elif isinstance(value, str):
        text = value
    else:
        rep.add(CONFIG_FILE, None, key, f"{key} is {value!r}, not a time", fix)
        return None
    try:
        return parse_hour(text)
    except HourParseError as exc:
        rep.add(CONFIG_FILE, None, key, f"{key} {exc}", fix)
        return None


def _config_number(
    rep: Report,
    config: Mapping[str, object],
    key: str,
    *,
    positive: bool,
    fix: str,
    limit: Limit | None = None,
) -> float | None:
    """``config[key]`` as a finite number >= 0 (> 0 when ``positive``) and, when ``limit``
    (one of :mod:`gridbridge.limits`' bounds, low 0) is given, within it."""
    value = config[key]
    # bool is an int in Python but `true` is not a number in a config file.
    if isinstance(value, bool) or not isinstance(value, int | float):
        rep.add(CONFIG_FILE, None, key, f"{key} is {value!r}, not a number", fix)
        return None
    number = float(value)
    low_ok = number > 0 if positive else number >= 0
    if not (math.isfinite(number) and low_ok and (limit is None or limit.admits(number))):
        rule = limit.describe() if limit else ("> 0" if positive else ">= 0")
        rep.add(CONFIG_FILE, None, key, f"{key} is {value!r}; it must be finite and {rule}", fix)
        return None
    return number


def check_config(
    rep: Report, config: Mapping[str, object]
) -> tuple[tuple[datetime, datetime] | None, MarketConfig | None]:
    """Validate market.toml; returns the window (if valid) and the config (if all valid)."""
    before = len(rep.problems)
    for key in ("window_start_utc", "window_end_utc", "carbon_price_eur_per_t", "carbon_signal"):
        if key not in config:
            rep.add(
                CONFIG_FILE,
                None,
                key,
                f"{key} is missing",
                f"add {key} to {CONFIG_FILE} (see DESIGN.md 'Market bundle')",
            )
    start = (
        _config_time(rep, "window_start_utc", config["window_start_utc"])
        if ("window_start_utc" in config)
        else None
    )
    end = (
        _config_time(rep, "window_end_utc", config["window_end_utc"])
        if ("window_end_utc" in config)
        else None
    )
    window: tuple[datetime, datetime] | None = None
    if start is not None and end is not None:
        if end <= start:
            rep.add(
                CONFIG_FILE,
                None,
                "window_end_utc",
                f"window_end_utc {format_hour(end)} is not after window_start_utc "
                f"{format_hour(start)}",
                "set window_end_utc later than window_start_utc (the end is exclusive)",
            )
        else:
            window = (start, end)
    price = None
    if "carbon_price_eur_per_t" in config:
        price = _config_number(
            rep,
            config,
            "carbon_price_eur_per_t",
            positive=False,
            fix="write the carbon price in EUR per tonne CO2eq, e.g. 80.0",
            limit=CARBON_PRICE_EUR_PER_T,
        )
    signal = config.get("carbon_signal")
    if "carbon_signal" in config and signal not in CARBON_SIGNALS:
        rep.add(
            CONFIG_FILE,
            None,
            "carbon_signal",
            f"carbon_signal is {signal!r}",
            'write carbon_signal = "direct" or carbon_signal = "lifecycle"',
        )
    limits: dict[str, float | None] = {"time_limit_s": None, "mip_rel_gap": None}
    if "time_limit_s" in config:
        limits["time_limit_s"] = _config_number(
            rep,
            config,
            "time_limit_s",
            positive=True,
            fix="write the solver time limit in seconds, > 0, e.g. 60",
        )
    if "mip_rel_gap" in config:
        limits["mip_rel_gap"] = _config_number(
            rep,
            config,
            "mip_rel_gap",
            positive=False,
            fix="write the relative MIP gap as a fraction >= 0, e.g. 0.01 for 1 %",
        )
    if len(rep.problems) > before or window is None or price is None:
        return window, None
    extra = {k: v for k, v in config.items() if k not in _CONFIG_KEYS}
    market_config = MarketConfig(
        window_start_utc=window[0],
        window_end_utc=window[1],
        carbon_price_eur_per_t=price,
        carbon_signal=cast(Any, signal),
        time_limit_s=limits["time_limit_s"],
        mip_rel_gap=limits["mip_rel_gap"],
        extra=extra,
    )
    return window, market_config

