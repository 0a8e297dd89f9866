"""The demo's exchange and sites: a fresh database with a token per role, and one agent
configuration per site replaying the market bundle."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from gridbridge.demo.layout import DemoLayout
from gridbridge.exchange.registry import load_registry, read_registry_folder
from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.tokens import create_token
from gridbridge.hours import format_hour
from gridbridge.ledger import Ledger
from optim.market import Market

__all__ = ["AGENT_HORIZON_H", "Tokens", "create_exchange", "write_agent_configs"]

#: role label (``planner``, ``member:KR``, ``site:KR-SUWON-1`` ...) -> bearer token.
Tokens = dict[str, str]
#: Hours each agent report covers: a week, the bundled market's window.
AGENT_HORIZON_H = 168


def create_exchange(layout: DemoLayout, dataset: Path, url: str) -> Tokens:
    """Create the exchange (and ledger) in the layout's fresh database, load the registry from
    ``dataset``, create one token per role, member and site, and write them with ``url`` to
    ``tokens.json`` (readable by its owner only: the tokens are the only copies)."""
    data = read_registry_folder(dataset)
    now = datetime.now(UTC)
    with ExchangeStore.open(layout.db_url, create=True) as store:
        load_registry(store, data)
        tokens = {role: create_token(store, role, None, now)[1]
                  for role in ("admin", "planner", "treasurer")}
        for member in data.members:
            tokens[f"member:{member['member']}"] = create_token(
                store, "member", member["member"], now)[1]
        for site in data.sites:
            tokens[f"site:{site['site_id']}"] = create_token(store, "site", site["site_id"],
                                                             now)[1]
    Ledger.open(layout.db_url).close()
    descriptor = os.open(layout.tokens, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump({"url": url, "tokens": tokens}, out, indent=2)
        out.write("\n")
    return tokens


def _inventory_csv(market: Market, site_id: str, path: Path) -> list[str]:
    """The site's free GPUs per type and hour from the bundle's capacity, as the static
    inventory's CSV; returns the site's GPU types."""
    free = (market.capacity.filter(pl.col("site_id") == site_id)
            .select("gpu_type", pl.col("gpus_available").alias("gpus_free"),
                    pl.col("hour_utc").dt.strftime("%Y-%m-%dT%H:%MZ"))
            .sort("gpu_type", "hour_utc"))
    free.write_csv(path)
    return sorted(set(free["gpu_type"].to_list()))


def write_agent_configs(layout: DemoLayout, market: Market, dataset: Path, url: str,
                        tokens: Tokens, clock_start: datetime) -> dict[str, Path]:
    """One ``site.toml`` per site of ``market`` (and its inventory CSV): static inventory
    replaying the bundle's free GPUs, carbon (the round's signal) and prices replayed from
    ``dataset``, simulated metering, a replay clock starting at ``clock_start`` (its first
    report covers the hours from the next whole hour). Returns site id -> config path."""
    signal = market.config.carbon_signal
    dataset_text = json.dumps(str(dataset.resolve()))
    configs = {}
    for site_id, zone in market.sites.select("site_id", "zone").iter_rows():
        inventory = layout.agents / f"{site_id}.gpus.csv"
        _inventory_csv(market, site_id, inventory)
        path = layout.agents / f"{site_id}.toml"
        path.write_text(f"""\
# The demo's agent for {site_id}: replays the bundled 2023 data (gridbridge demo wrote this).
[agent]
site_id = "{site_id}"
zone = "{zone}"
signal = "{signal}"
horizon_hours = {AGENT_HORIZON_H}
min_forecast_hours = 24
cycle_seconds = 300
spool = "{site_id}.spool.sqlite"
clock_start_utc = "{format_hour(clock_start)}"

[exchange]
url = "{url}"
token = "{tokens[f"site:{site_id}"]}"

[http]
timeout_seconds = 60
retries = 3
backoff_seconds = 0.5
backoff_max_seconds = 5

[inventory]
source = "static"
path = "{inventory.name}"

[[carbon]]
provider = "replay"
dataset = {dataset_text}

[[price]]
provider = "replay"
dataset = {dataset_text}

[metering]
source = "replay"
dataset = {dataset_text}
seed = 1
energy_noise = 0.03
carbon_noise = 0.02
""", encoding="utf-8")
        os.chmod(path, 0o600)  # it holds the site's token
        configs[site_id] = path
    return configs

