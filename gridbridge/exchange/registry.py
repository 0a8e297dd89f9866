"""The exchange's registry: members, GPU types, sites and their GPU pools with asks.

Loaded from a dataset folder (``datasets/bridge-2023``: ``members``, ``gpus``, ``sites``
tables, read and typed by :func:`gridbridge.market.source.read_dataset`) by
``gridbridge exchange init``; read by ``GET /v1/registry``; a site's asks change through
``PUT /v1/sites/{site_id}/asks``.

Loading is idempotent and never loses what operators did: rows are inserted or updated to
match the dataset (pool sizes included), but a pool's ask is taken from the GPU type's
reference ask (``gpus.ref_ask_eur_per_gpu_hour``) only when the pool is new, so a re-run of
``init`` keeps the asks sites have set. Rows the dataset no longer has are kept (telemetry
and bids refer to them) and counted as ``kept``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from gridbridge.bundle.options import parse_gpu_options
from gridbridge.errors import DataImportError, FieldError, InputError, NotFoundError
from gridbridge.exchange import schema as t
from gridbridge.exchange.clock import instant_text
from gridbridge.exchange.contract import (
    GpuTypeOut,
    MemberOut,
    PoolOut,
    RegistryOut,
    SiteOut,
)
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.market.source import read_dataset

__all__ = [
    "LoadCounts",
    "RegistryData",
    "known_jurisdictions",
    "load_registry",
    "no_such_site",
    "read_registry",
    "read_registry_folder",
    "set_asks",
    "site_or_404",
    "site_pools",
]

_SITE_COLUMNS = ("site_id", "name", "member", "zone", "jurisdiction", "timezone", "lat", "lon",
                 "pue", "tariff_adder_eur_per_mwh")
_GPU_COLUMNS = ("gpu_type", "name", "it_kw", "board_kw", "relative_speed", "gpus_per_node",
                "ref_ask_eur_per_gpu_hour")


@dataclass(frozen=True)
class RegistryData:
    """A registry as rows ready for the tables (pools without asks: see the module doc)."""

    members: list[dict[str, Any]]
    gpu_types: list[dict[str, Any]]
    sites: list[dict[str, Any]]
    pools: list[dict[str, Any]]  # site_id, gpu_type, gpus


@dataclass
class LoadCounts:
    """Rows per table the load ``added``, ``updated`` (changed), left ``unchanged``, and
    ``kept`` (in the database, not in the dataset)."""

    added: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)


def read_registry_folder(folder: Path) -> RegistryData:
    """Read a dataset folder's members, GPU types, sites and pools.

    Raises :class:`NotFoundError` when a table is missing and :class:`DataImportError`
    naming every problem: the dataset reader's (bad cells) and cross-references (a site's
    member not in ``members``, a pool's GPU type not in ``gpus``, a malformed ``gpu_pools``).
    """
    if not folder.is_dir():
        raise NotFoundError(f"dataset folder {folder} does not exist — fix: point --from at a "
                            "dataset folder such as datasets/bridge-2023")
    dataset = read_dataset(folder)
    members = dataset.members.select("member", "name", "pledge_share").to_dicts()
    gpus = dataset.gpus.select(*_GPU_COLUMNS).to_dicts()
    sites = dataset.sites.select(*_SITE_COLUMNS, "gpu_pools")
    known_members = {m["member"] for m in members}
    known_gpus = {g["gpu_type"] for g in gpus}
    problems: list[str] = []
    site_rows, pools = [], []
    for row in sites.iter_rows(named=True):
        where = f"{folder / 'sites'}: site {row['site_id']}"
        if row["member"] not in known_members:
            problems.append(f"{where}: member '{row['member']}' is not in members — fix: add "
                            "it to members or correct the site's member")
        try:
            site_pools = parse_gpu_options(row["gpu_pools"])
        except InputError as exc:
            problems.append(f"{where}: gpu_pools: {exc}")
            site_pools = {}
        for gpu_type, gpus_pooled in site_pools.items():
            if gpu_type not in known_gpus:
                problems.append(f"{where}: GPU type '{gpu_type}' is not in gpus — fix: add it "
                                "to gpus or correct gpu_pools")
                continue
            pools.append({"site_id": row["site_id"], "gpu_type": gpu_type, "gpus": gpus_pooled})
        site_rows.append({c: row[c] for c in _SITE_COLUMNS})
    duplicated = sites.filter(pl.col("site_id").is_duplicated())["site_id"].unique().to_list()
    problems += [f"{folder / 'sites'}: site_id '{s}' appears more than once — fix: keep one row"
                 for s in sorted(duplicated)]
    if problems:
        raise DataImportError("\n".join([f"dataset {folder} cannot be loaded into the exchange:",
                                         *(f"  - {p}" for p in problems)]))
    return RegistryData(members=members, gpu_types=gpus, sites=site_rows, pools=pools)


def _upsert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]],
            counts: LoadCounts, name: str, *, insert_only: Mapping[str, Any] | None = None
            ) -> None:
    """Insert ``rows`` or update them to match; ``insert_only`` columns are set on insert."""
    keys = [c.name for c in table.primary_key.columns]
    existing = {tuple(r[k] for k in keys): dict(r)
                for r in conn.execute(sa.select(table)).mappings()}
    wanted = {tuple(r[k] for k in keys) for r in rows}
    added = updated = unchanged = 0
    for row in rows:
        key = tuple(row[k] for k in keys)
        found = existing.get(key)
        if found is None:
            conn.execute(table.insert().values(**row, **(insert_only or {})))
            added += 1
        elif any(found[c] != v for c, v in row.items()):
            where = sa.and_(*(table.c[k] == row[k] for k in keys))
            conn.execute(table.update().where(where).values(**row))
            updated += 1
        else:
            unchanged += 1
    counts.added[name], counts.updated[name], counts.unchanged[name] = added, updated, unchanged
    counts.kept[name] = len(set(existing) - wanted)


def load_registry(store: ExchangeStore, data: RegistryData) -> LoadCounts:
    """Insert or update the registry in one transaction (idempotent; see the module doc)."""
    counts = LoadCounts()
    with store.write() as conn:
        _upsert(conn, t.members, data.members, counts, "members")
        _upsert(conn, t.gpu_types, data.gpu_types, counts, "gpu_types")
        _upsert(conn, t.sites, data.sites, counts, "sites")
        ref_ask = {g["gpu_type"]: g["ref_ask_eur_per_gpu_hour"] for g in data.gpu_types}
        # Pools one by one: a new pool's ask is its type's reference ask (insert only).
        keys = {(r["site_id"], r["gpu_type"]) for r in conn.execute(
            sa.select(t.pools.c.site_id, t.pools.c.gpu_type)).mappings()}
        new = [p for p in data.pools if (p["site_id"], p["gpu_type"]) not in keys]
        old = [p for p in data.pools if (p["site_id"], p["gpu_type"]) in keys]
        for pool in new:
            conn.execute(t.pools.insert().values(
                **pool, ask_eur_per_gpu_hour=ref_ask[pool["gpu_type"]]))
        _upsert(conn, t.pools, old, counts, "pools")
        counts.added["pools"] = len(new)
        counts.kept["pools"] = len(keys - {(p["site_id"], p["gpu_type"]) for p in data.pools})
    return counts


def read_registry(store: ExchangeStore) -> RegistryOut:
    """The whole registry, sorted by member, GPU type and site id."""
    with store.read() as conn:
        members = conn.execute(sa.select(t.members).order_by(t.members.c.member)).mappings()
        member_rows = [MemberOut(**m) for m in members]
        gpus = conn.execute(sa.select(t.gpu_types).order_by(t.gpu_types.c.gpu_type)).mappings()
        gpu_rows = [GpuTypeOut(**g) for g in gpus]
        sites = conn.execute(sa.select(t.sites).order_by(t.sites.c.site_id)).mappings()
        site_rows = _sites_out(conn, list(sites))
    return RegistryOut(members=member_rows, gpu_types=gpu_rows, sites=site_rows)


def _sites_out(conn: sa.Connection, sites: list[sa.RowMapping]) -> list[SiteOut]:
    """The sites' answers with their pools (by GPU type)."""
    ids = [s["site_id"] for s in sites]
    pools: dict[str, list[PoolOut]] = {}
    statement = (sa.select(t.pools).where(t.pools.c.site_id.in_(ids))
                 .order_by(t.pools.c.site_id, t.pools.c.gpu_type))
    for p in conn.execute(statement).mappings():
        pools.setdefault(p["site_id"], []).append(PoolOut(
            gpu_type=p["gpu_type"], gpus=p["gpus"], ask_eur_per_gpu_hour=p["ask_eur_per_gpu_hour"]))
    return [SiteOut(**s, pools=pools.get(s["site_id"], [])) for s in sites]


def site_or_404(conn: sa.Connection, site_id: str) -> sa.RowMapping:
    """The site's row; :class:`NotFoundError` when the registry has no such site."""
    row = conn.execute(sa.select(t.sites).where(t.sites.c.site_id == site_id)).mappings().first()
    if row is None:
        raise no_such_site(site_id)
    return row


def no_such_site(site_id: str) -> NotFoundError:
    """The 404 for a site the registry does not hold."""
    return NotFoundError(f"site {site_id} is not in the exchange's registry — fix: check the "
                         "site id (GET /v1/registry lists the sites)")


def site_pools(conn: sa.Connection, site_id: str) -> dict[str, sa.RowMapping]:
    """The site's pools by GPU type."""
    rows = conn.execute(sa.select(t.pools).where(t.pools.c.site_id == site_id)).mappings()
    return {r["gpu_type"]: r for r in rows}


def known_jurisdictions(conn: sa.Connection) -> set[str]:
    """Every jurisdiction some site of the registry is in (ISO codes)."""
    return set(conn.execute(sa.select(t.sites.c.jurisdiction).distinct()).scalars())


def set_asks(store: ExchangeStore, site_id: str, asks: Mapping[str, float],
             at: datetime) -> SiteOut:
    """Set the site's ask (EUR per GPU-hour, >= 0) for each GPU type named; return the site.

    All or nothing: :class:`NotFoundError` for an unknown site, :class:`FieldError` (at
    ``body.asks.<type>``) for a type the site has no pool of; nothing changes then.
    """
    with store.write() as conn:
        site_or_404(conn, site_id)
        pools = site_pools(conn, site_id)
        for gpu_type in asks:
            if gpu_type not in pools:
                raise FieldError(
                    f"site {site_id} has no pool of GPU type '{gpu_type}' (it pools "
                    f"{', '.join(sorted(pools)) or 'none'}) — fix: set asks only for its pools",
                    ("body", "asks", gpu_type))
        for gpu_type, ask in asks.items():
            conn.execute(t.pools.update()
                         .where(t.pools.c.site_id == site_id, t.pools.c.gpu_type == gpu_type)
                         .values(ask_eur_per_gpu_hour=ask, ask_updated_at_utc=instant_text(at)))
        return _sites_out(conn, [site_or_404(conn, site_id)])[0]
