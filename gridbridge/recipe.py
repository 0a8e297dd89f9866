"""The dataset recipe: a TOML file that says how to turn public raw files into a dataset.

``datasets/bridge-2023.toml`` is the one GridBridge ships; users can write their own for other
years or zones. This module only parses and checks the recipe into typed records; building is
:mod:`gridbridge.dataset`. Units: FX as local units per EUR; prices EUR/MWh (or the zone's
currency per MWh for ``flat_price``); power kW; asks EUR per GPU-hour.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gridbridge.errors import InputError, NotFoundError
from gridbridge.limits import TARIFF_ADDER_EUR_PER_MWH
from gridbridge.tomltext import parse_toml

SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True, slots=True)
class ZoneRecipe:
    """One grid zone: where its carbon and price data come from."""

    zone: str
    name: str
    timezone: str
    carbon: str
    currency: str
    tariff_adder_eur_per_mwh: float
    price: str | None = None
    clock: str | None = None
    flat_price: float | None = None


@dataclass(frozen=True, slots=True)
class GpuRecipe:
    """One GPU type; ``it_kw`` is resolved by the builder when only ``host_share_kw`` is set."""

    gpu_type: str
    name: str
    relative_speed: float
    gpus_per_node: int
    ref_ask_eur_per_gpu_hour: float
    fact: str | None = None
    board_kw: float | None = None
    board_kw_source: str | None = None
    it_kw: float | None = None
    host_share_kw: float | None = None


@dataclass(frozen=True, slots=True)
class PoolRecipe:
    """A site's pool of one GPU type: a TOP500 row or an installed count, and the pooled share."""

    gpu_type: str
    pooled_share: float
    top500_rank: int | None = None
    installed: int | None = None
    installed_source: str | None = None


@dataclass(frozen=True, slots=True)
class SiteRecipe:
    """One pooled site."""

    site_id: str
    name: str
    member: str
    zone: str
    city: str
    city_note: str
    lat: float
    lon: float
    pools: tuple[PoolRecipe, ...]
    pue: float | None = None
    pue_source: str | None = None


@dataclass(frozen=True, slots=True)
class Recipe:
    """A whole dataset recipe."""

    year: int
    fx_per_eur: dict[str, float]
    zones: dict[str, ZoneRecipe]
    members: dict[str, tuple[str, float]]
    gpus: dict[str, GpuRecipe]
    sites: tuple[SiteRecipe, ...]

    def fx(self, currency: str) -> float:
        """Local units per EUR for ``currency``."""
        try:
            return self.fx_per_eur[currency]
        except KeyError:
            raise InputError(
                f"recipe has no FX rate for {currency}; add it under [fx_per_eur]"
            ) from None


def _build(cls: type, where: str, data: dict[str, Any], **fixed: Any) -> Any:
    """Instantiate a recipe record, turning a wrong or missing key into a clear error."""
    fields = set(cls.__dataclass_fields__)
    unknown = set(data) - fields
    if unknown:
        raise InputError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(fields)}")
    try:
        record = cls(**data, **fixed)
    except TypeError as exc:
        raise InputError(f"{where}: {exc}; see datasets/bridge-2023.toml for an example") from None
    for name in fields:
        value = getattr(record, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{where}: '{name}' must be a finite number")
    return record


def load_recipe(path: Path) -> Recipe:
    """Parse and check a recipe file; raise InputError naming the section and key."""
    if not path.is_file():
        raise NotFoundError(
            f"recipe {path} does not exist; pass --recipe datasets/bridge-2023.toml"
        )
    try:
        raw = parse_toml(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"recipe {path} is not valid TOML: {exc}") from None
    for key in ("year", "fx_per_eur", "zones", "members", "gpus", "sites"):
        if key not in raw:
            raise InputError(f"recipe {path} lacks '{key}'; see datasets/bridge-2023.toml")

    zones = {
        code: _build(ZoneRecipe, f"{path} [zones.{code}]", body, zone=code)
        for code, body in raw["zones"].items()
    }
    for z in zones.values():
        if not TARIFF_ADDER_EUR_PER_MWH.admits(z.tariff_adder_eur_per_mwh):
            raise InputError(
                f"{path} [zones.{z.zone}]: tariff_adder_eur_per_mwh must be "
                f"{TARIFF_ADDER_EUR_PER_MWH.describe()}, not {z.tariff_adder_eur_per_mwh:g}; "
                "write the site's network charges and levies in EUR/MWh (not per kWh)"
            )
        if (z.price is None) == (z.flat_price is None):
            raise InputError(
                f"{path} [zones.{z.zone}]: give exactly one of 'price' or 'flat_price'"
            )
        try:
            ZoneInfo(z.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(
                f"{path} [zones.{z.zone}]: timezone '{z.timezone}' is not an IANA time zone; "
                "write e.g. Europe/Berlin"
            ) from None
        if z.price is not None and z.clock is None:
            raise InputError(f"{path} [zones.{z.zone}]: a price file needs its 'clock'")
    members = {}
    for code, body in raw["members"].items():
        share = float(body.get("pledge_share", -1))
        if not 0 <= share <= 1:
            raise InputError(f"{path} [members.{code}]: pledge_share must be in [0, 1]")
        members[code] = (str(body.get("name", code)), share)
    if abs(sum(s for _, s in members.values()) - 1) > 1e-9:
        raise InputError(f"{path} [members]: pledge shares must sum to 1")
    gpus = {
        code: _build(GpuRecipe, f"{path} [gpus.{code}]", body, gpu_type=code)
        for code, body in raw["gpus"].items()
    }
    sites = []
    for i, body in enumerate(raw["sites"], start=1):
        where = f"{path} [[sites]] #{i}"
        pools = tuple(
            _build(PoolRecipe, f"{where} pools[{j}]", pool)
            for j, pool in enumerate(body.get("pools", []))
        )
        site = _build(SiteRecipe, where, {k: v for k, v in body.items() if k != "pools"},
                      pools=pools)
        if not SLUG.match(site.site_id):
            raise InputError(f"{where}: site_id '{site.site_id}' must be a URL-safe slug "
                             "(letters, digits, '-', '_', '.'), e.g. KR-SUWON-1")
        if site.zone not in zones:
            raise InputError(f"{where}: zone '{site.zone}' is not in [zones]")
        if site.member not in members:
            raise InputError(f"{where}: member '{site.member}' is not in [members]")
        for pool in pools:
            if pool.gpu_type not in gpus:
                raise InputError(f"{where}: GPU type '{pool.gpu_type}' is not in [gpus]")
            if not 0 < pool.pooled_share <= 1:
                raise InputError(f"{where}: pooled_share must be in (0, 1]")
            if pool.top500_rank is None and pool.installed is None:
                raise InputError(f"{where}: a pool needs 'top500_rank' or 'installed'")
        sites.append(site)
    ids = [s.site_id for s in sites]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: site ids must be unique")
    return Recipe(
        year=int(raw["year"]),
        fx_per_eur={k: float(v) for k, v in raw["fx_per_eur"].items()},
        zones=zones,
        members=members,
        gpus=gpus,
        sites=tuple(sites),
    )
