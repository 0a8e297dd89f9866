"""Scale a dataset's sites to a chosen count, for benchmark markets of a chosen size.

:func:`select_sites` takes the dataset's ``sites`` table and a count ``n`` (1 to
:data:`MAX_SITES`) and returns ``n`` site rows:

* **n equal to the dataset's site count** — every site, unchanged, in the dataset's order (so
  ``gridbridge market make --sites 14`` on ``bridge-2023`` makes the same bundle as without
  ``--sites``).
* **n smaller** — a deterministic subset chosen round-robin over zones: zones sorted by name,
  the sites of each zone sorted by ``site_id``; the first pick is the first site of every
  zone in zone order, then the second site of every zone that has one, and so on, until ``n``
  are picked. So ``n`` at least the number of zones covers every zone (on ``bridge-2023``,
  6 sites are one per zone). The picked rows keep the dataset's row order.
* **n larger** — every dataset site (in the dataset's order) followed by ``n - count`` copies,
  cycling over the dataset's sites in ``site_id`` order: the first pass makes copy 2 of every
  site, the next copy 3, and so on. Copy ``k`` of site ``X`` has ``site_id`` ``X-C<k>``
  (e.g. ``KR-SUWON-1-C2``; the bundle validator's site ids are slugs of letters, digits,
  ``-``, ``_`` and ``.``, so ``~`` is not used), ``name`` ``"<name> (copy k)"``, and every
  other column the same as ``X``: member, zone, jurisdiction, timezone, lat/lon, GPU pools,
  PUE and tariff adder (EUR/MWh). A copy's capacity is drawn by
  :func:`gridbridge.market.availability.capacity_table` from a seed string that holds its own
  ``site_id``, so copies offer different hourly GPUs and asks than their original.

The result is the same for the same table and ``n``; no randomness is involved.
"""

from __future__ import annotations

import polars as pl

from gridbridge.errors import InputError

__all__ = ["MAX_SITES", "copy_site_id", "select_sites"]

#: Most sites a scaled market may have.
MAX_SITES = 256


def copy_site_id(site_id: str, k: int) -> str:
    """``site_id`` of copy ``k`` (2, 3, ...) of a site: ``X`` -> ``X-C<k>``."""
    return f"{site_id}-C{k}"


def _round_robin(sites: pl.DataFrame, n: int) -> list[str]:
    """The first ``n`` site ids in round-robin order over sorted zones."""
    by_zone: dict[str, list[str]] = {}
    for zone, site_id in sorted(zip(sites["zone"], sites["site_id"], strict=True)):
        by_zone.setdefault(zone, []).append(site_id)
    picked: list[str] = []
    depth = 0
    while len(picked) < n:
        for zone in sorted(by_zone):
            if depth < len(by_zone[zone]) and len(picked) < n:
                picked.append(by_zone[zone][depth])
        depth += 1
    return picked


def _copies(sites: pl.DataFrame, extra: int) -> pl.DataFrame:
    """``extra`` copies, cycling over the sites in ``site_id`` order (copy 2, then 3, ...)."""
    ordered = sites.sort("site_id")
    count = ordered.height
    index = pl.Series("_i", [j % count for j in range(extra)], dtype=pl.UInt32)
    copy = pl.Series("_k", [2 + j // count for j in range(extra)], dtype=pl.Int64)
    picked = ordered.select(pl.all().gather(index)).with_columns(copy)
    names = {"site_id": pl.col("site_id") + "-C" + pl.col("_k").cast(pl.String)}
    if "name" in picked.columns and picked.schema["name"] == pl.String:
        names["name"] = pl.col("name") + " (copy " + pl.col("_k").cast(pl.String) + ")"
    return picked.with_columns(**names).drop("_k").select(sites.columns)


def select_sites(sites: pl.DataFrame, n: int) -> pl.DataFrame:
    """``n`` site rows from the dataset's ``sites`` table (see the module docstring for the rule).

    Raises :class:`InputError` if ``n`` is not a whole number in ``1..MAX_SITES``, the table
    has no sites, or a copy's ``site_id`` would clash with an existing one.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SITES:
        raise InputError(f"--sites must be between 1 and {MAX_SITES}, got {n}; "
                         f"pick a whole number of sites such as 16")
    count = sites.height
    if count == 0:
        raise InputError("--sites: the dataset has no sites to select or copy; "
                         "add rows to its sites table")
    if n == count:
        return sites
    if n < count:
        keep = set(_round_robin(sites, n))
        return sites.filter(pl.col("site_id").is_in(keep))
    copies = _copies(sites, n - count)
    clash = set(copies["site_id"]) & set(sites["site_id"])
    if clash:
        raise InputError(
            f"--sites {n}: copy site ids {sorted(clash)} already exist in the dataset; "
            f"pick --sites {count} or fewer, or rename those dataset sites"
        )
    return pl.concat([sites, copies], how="vertical")
