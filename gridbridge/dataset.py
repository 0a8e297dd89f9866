"""Build a GridBridge dataset (``grid``, ``sites``, ``gpus``, ``members``) from raw files.

Runs the project's importers over the raw files a recipe names (see :mod:`gridbridge.recipe`)
and writes ``grid.parquet`` (every UTC hour of the year for every zone; carbon intensity in
gCO2eq/kWh direct and lifecycle, price in EUR/MWh, estimated flags) and ``sites.csv``,
``gpus.csv``, ``members.csv``. The same inputs give byte-identical outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from gridbridge.bundle.options import format_gpu_options
from gridbridge.errors import DataImportError
from gridbridge.importers.electricitymaps import read_electricitymaps_csv
from gridbridge.importers.prices import flat_tariff, read_price_csv
from gridbridge.recipe import Recipe, SiteRecipe
from gridbridge.reference import gpu_board_kw, read_facts, read_top500
from gridbridge.tables import write_table

#: Global average PUE (Uptime Institute 2024 survey) for sites without a PUE fact.
DEFAULT_PUE = 1.56
DEFAULT_PUE_SOURCE = "global default 1.56 (Uptime Institute 2024; facts_manual.csv)"
TOP500_FILE = "reference/top500_2025-06_KR_CA_GB_DE_SG.csv"
FACTS_FILE = "reference/facts_manual.csv"


@dataclass
class BuildReport:
    """What a build wrote and every note the importers made (DST handling, filled hours)."""

    out: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def build_grid(recipe: Recipe, source: Path, notes: list[str]) -> pl.DataFrame:
    """One row per (zone, UTC hour) of the recipe's year, carbon and price joined."""
    frames = []
    for zone in recipe.zones.values():
        carbon = read_electricitymaps_csv(source / zone.carbon, zone=zone.zone, year=recipe.year)
        notes += [f"{zone.zone} carbon: {n}" for n in carbon.notes]
        if zone.price is not None:
            assert zone.clock is not None  # checked by load_recipe
            price = read_price_csv(
                source / zone.price, zone=zone.zone, clock=zone.clock,
                fx_per_eur=recipe.fx(zone.currency), currency=zone.currency, year=recipe.year,
            )
        else:
            assert zone.flat_price is not None
            price = flat_tariff(zone.zone, recipe.year, zone.flat_price, zone.currency,
                                recipe.fx(zone.currency))
        notes += [f"{zone.zone} price: {n}" for n in price.notes]
        joined = carbon.frame.rename({"estimated": "carbon_estimated"}).join(
            price.frame.rename({"estimated": "price_estimated"}).drop("zone"),
            on="hour_utc", how="full", coalesce=True,
        )
        if joined.null_count().sum_horizontal().item():
            raise DataImportError(f"{zone.zone}: carbon and price hours do not line up")
        frames.append(joined)
    grid = pl.concat(frames, how="vertical").with_columns(
        (pl.col("carbon_estimated") | pl.col("price_estimated")).alias("estimated")
    )
    return grid.select(
        "zone", "hour_utc", "carbon_direct_g_per_kwh", "carbon_lifecycle_g_per_kwh",
        "price_eur_per_mwh", "estimated", "carbon_estimated", "price_estimated",
    ).sort("zone", "hour_utc")


def build_gpus(recipe: Recipe, facts: pl.DataFrame) -> pl.DataFrame:
    """The GPU catalogue: board and IT power (kW), relative speed, node size, reference ask."""
    rows = []
    for g in recipe.gpus.values():
        if g.fact is not None:
            board_kw, board_source = gpu_board_kw(facts, g.fact)
        elif g.board_kw is not None:
            board_kw, board_source = g.board_kw, g.board_kw_source or "recipe"
        else:
            raise DataImportError(
                f"GPU {g.gpu_type}: the recipe gives neither 'fact' nor 'board_kw'; add one"
            )
        if g.it_kw is not None:
            it_kw, rule = g.it_kw, "pinned per-GPU share of node IT power (DESIGN.md)"
        elif g.host_share_kw is not None:
            it_kw = board_kw + g.host_share_kw
            rule = f"board power + {g.host_share_kw} kW host share (assumption)"
        else:
            raise DataImportError(f"GPU {g.gpu_type}: give 'it_kw' or 'host_share_kw'")
        rows.append({
            "gpu_type": g.gpu_type, "name": g.name, "board_kw": round(board_kw, 6),
            "it_kw": round(it_kw, 6), "relative_speed": g.relative_speed,
            "gpus_per_node": g.gpus_per_node,
            "ref_ask_eur_per_gpu_hour": g.ref_ask_eur_per_gpu_hour,
            "board_kw_source": board_source, "it_kw_rule": rule,
        })
    return pl.DataFrame(rows).sort("gpu_type")


def _pool_size(site: SiteRecipe, recipe: Recipe, top500: pl.DataFrame) -> list[dict[str, object]]:
    pools = []
    for pool in site.pools:
        source = pool.installed_source or ""
        installed = pool.installed
        if pool.top500_rank is not None:
            row = top500.filter(pl.col("rank") == pool.top500_rank)
            if row.height != 1:
                raise DataImportError(f"{site.site_id}: no TOP500 row with rank {pool.top500_rank}")
            accelerator = row["accelerator"][0] or ""
            # Guard against a recipe that maps a system to the wrong GPU family.
            if pool.gpu_type.removesuffix("NVL").removesuffix("PCIE") not in accelerator.upper():
                raise DataImportError(
                    f"{site.site_id}: TOP500 rank {pool.top500_rank} is '{accelerator}', not "
                    f"{pool.gpu_type}; fix the pool's gpu_type or rank in the recipe"
                )
            if installed is None:
                installed = int(row["est_accelerator_count"][0])
                source = (f"TOP500 Jun 2025 rank {pool.top500_rank} "
                          f"'{row['system_name'][0]}' ({row['site'][0]})")
        assert installed is not None
        node = recipe.gpus[pool.gpu_type].gpus_per_node
        pooled = math.floor(installed * pool.pooled_share / node) * node
        pools.append({"gpu_type": pool.gpu_type, "installed": installed, "pooled": pooled,
                      "share": pool.pooled_share, "source": source})
    return pools


def build_sites(recipe: Recipe, top500: pl.DataFrame) -> pl.DataFrame:
    """The pooled sites, their zone, PUE, tariff adder and GPU pools (``TYPE:count;...``)."""
    rows = []
    for site in recipe.sites:
        pools = _pool_size(site, recipe, top500)
        rows.append({
            "site_id": site.site_id, "name": site.name, "member": site.member,
            "zone": site.zone, "jurisdiction": site.member, "city": site.city,
            "timezone": recipe.zones[site.zone].timezone,
            "lat": site.lat, "lon": site.lon,
            "pue": site.pue if site.pue is not None else DEFAULT_PUE,
            "tariff_adder_eur_per_mwh": recipe.zones[site.zone].tariff_adder_eur_per_mwh,
            "gpu_pools": format_gpu_options({str(p["gpu_type"]): int(p["pooled"]) for p in pools}),
            "installed_gpus": format_gpu_options(
                {str(p["gpu_type"]): int(p["installed"]) for p in pools}),
            "pooled_share": ";".join(f"{p['gpu_type']}:{p['share']}" for p in pools),
            "pue_source": site.pue_source or DEFAULT_PUE_SOURCE,
            "gpu_source": " | ".join(str(p["source"]) for p in pools),
            "city_note": site.city_note,
        })
    return pl.DataFrame(rows)


def build_members(recipe: Recipe) -> pl.DataFrame:
    """Alliance members with their pledge share (fraction of common costs, sums to 1)."""
    return pl.DataFrame(
        [{"member": code, "name": name, "pledge_share": share}
         for code, (name, share) in recipe.members.items()]
    )


def build_dataset(recipe: Recipe, source: Path, out: Path) -> BuildReport:
    """Run every importer over ``source`` and write the dataset into ``out``."""
    report = BuildReport(out=out)
    grid = build_grid(recipe, source, report.notes)
    gpus = build_gpus(recipe, read_facts(source / FACTS_FILE))
    sites = build_sites(recipe, read_top500(source / TOP500_FILE))
    members = build_members(recipe)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame, ext in (("grid", grid, "parquet"), ("sites", sites, "csv"),
                             ("gpus", gpus, "csv"), ("members", members, "csv")):
        path = out / f"{name}.{ext}"
        write_table(frame, path)
        report.files.append(path)
    return report
