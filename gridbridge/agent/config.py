"""``site.toml``: the site agent's configuration, read and checked in full before anything runs.

Every problem is reported at once, each naming the file, the key (``carbon[2].region``) and
the fix; a bad file is an :class:`~gridbridge.agent.errors.AgentConfigError` (exit 2).
Unknown keys are refused too, so a typo never silently falls back to a default. Relative
paths are relative to the folder of ``site.toml``. Secrets (the exchange token, provider
keys) are given in one of three ways — ``token = "..."``, ``token_env = "VAR"`` (read from
that environment variable) or ``token_file = "path"`` — and resolved when the file is read,
so a missing variable is a configuration error, not a failure at 3 a.m.

:data:`EXAMPLE` is a complete, commented ``site.toml`` (``gridbridge agent example`` prints
it; a test loads it). Signals: the carbon providers must all give the site's ``signal``
(fallback never mixes signals), and the signal must be one the exchange's contract accepts
(:mod:`gridbridge.agent.signals`).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from gridbridge.agent.errors import AgentConfigError
from gridbridge.agent.signals import AGENT_SIGNALS, REPORTABLE_SIGNALS, AgentSignal
from gridbridge.agent.tomlkeys import Table, table
from gridbridge.errors import Problem
from gridbridge.exchange.contract import MAX_HOURS
from gridbridge.tomltext import parse_toml

__all__ = ["EXAMPLE", "AgentConfig", "ExchangeSettings", "HttpSettings", "InventorySettings",
           "MeteringSettings", "ProviderSettings", "load_config", "parse_config"]

EXAMPLE = """\
# site.toml — the GridBridge site agent (gridbridge agent run --config site.toml)
[agent]
site_id = "GB-BRISTOL-1"       # the exchange's site id
zone = "GB"                    # the site's grid zone, as the exchange names it
signal = "lifecycle"           # direct | lifecycle: the carbon intensity this site reports
horizon_hours = 48             # hours per report, 1..744 (the contract's MAX_HOURS)
min_forecast_hours = 24        # a provider must cover this many leading hours, else fallback
cycle_seconds = 300            # one report per cycle (>= 1)
spool = "spool.sqlite"         # the spool file, created if missing
# clock_start_utc = "2023-07-03T00:00Z"   # run on a replay clock that starts there (demo)

[exchange]
url = "http://127.0.0.1:8700"
token_env = "GRIDBRIDGE_SITE_TOKEN"   # or token = "...", or token_file = "site.token"

[http]                         # every HTTP call: the exchange and the providers
timeout_seconds = 10
retries = 3                    # retries after the first try (5xx, 408, 429, timeouts)
backoff_seconds = 0.5          # the first wait; doubles per retry, with jitter
backoff_max_seconds = 30

[inventory]
source = "static"              # static | nvml | slurm
gpus = { GH200 = 1088 }        # static: free GPUs per type (and/or path = "gpus.toml")
# cap = { GH200 = 512 }        # any source: offer at most this many per type
# nvml:  names = { "NVIDIA H100 PCIe" = "H100PCIE" }
# slurm: partition = "gpu", gres_types = { h100 = "H100" }, untyped_gpu_type = "H100",
#        scontrol = "scontrol", sinfo = "sinfo", timeout_seconds = 10

[[carbon]]                     # tried in this order; each must give the site's signal
provider = "electricitymaps"   # asks for the site's signal (emissionFactorType)
token_env = "ELECTRICITYMAPS_TOKEN"
# zone = "GB"   mode = "forecast" (or "latest")   horizon_hours = 48   base_url = "..."

[[carbon]]
provider = "replay"            # the bundled data: the column of the site's signal
dataset = "../datasets/bridge-2023"
start_utc = "2023-07-03T00:00Z"   # the first hour asked replays this one (optional)
# anchor_utc = "2025-01-06T00:00Z"   zone = "GB"

# [[carbon]]  provider = "ukcarbonintensity"   # signal direct; zone GB; region_id = 1..17
# [[carbon]]  provider = "watttime"            # signal marginal; region = "CAISO_NORTH"
#             username_env = "WATTTIME_USER"   password_env = "WATTTIME_PASSWORD"

[[price]]                      # EUR/MWh, tried in this order
provider = "replay"
dataset = "../datasets/bridge-2023"
start_utc = "2023-07-03T00:00Z"

[[price]]
provider = "fixed"
eur_per_mwh = 85.0

[metering]                     # metered energy of the site's placements, posted per round
source = "replay"              # replay (SIMULATED, the demo) | file; omit [metering]: none
dataset = "../datasets/bridge-2023"   # replay: PUE, GPU it_kw and grid data from the bundle
start_utc = "2023-07-03T00:00Z"       # replay: map hours as the carbon replay does
# anchor_utc = "2025-01-06T00:00Z"   zone = "GB"
seed = 1                       # replay: the noise is drawn from this seed (reproducible)
energy_noise = 0.03            # replay: sd of the energy factor (normal around 1, >= 0)
carbon_noise = 0.02            # replay: sd of the actual-intensity factor
# file: path = "metering.csv"  # bid_id,hour_utc,energy_kwh[,member][,carbon_g_per_kwh]
"""

SITE_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,70}$")  # report ids append 30 characters
ZONE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,10})?$")
GPU_TYPE = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Timeouts and retries of every HTTP call (seconds)."""

    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    """Where the exchange is and the site's bearer token."""

    url: str
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class InventorySettings:
    """The inventory source, its options (constructor keywords) and the per-type cap."""

    source: str
    options: dict[str, Any]
    cap: dict[str, int]


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """One carbon or price provider: its kind, signal and options (constructor keywords)."""

    kind: str
    signal: AgentSignal | None
    options: dict[str, Any] = field(repr=False)
    where: str = ""


@dataclass(frozen=True, slots=True)
class MeteringSettings:
    """Where metered energy comes from: ``off`` (no ``[metering]`` table), ``replay``
    (simulated from the bundled data) or ``file`` (the site's metering CSV)."""

    source: str = "off"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """A validated ``site.toml``."""

    site_id: str
    zone: str
    signal: AgentSignal
    horizon_hours: int
    min_forecast_hours: int
    cycle_s: float
    spool: Path
    clock_start_utc: datetime | None
    exchange: ExchangeSettings
    http: HttpSettings
    inventory: InventorySettings
    carbon: list[ProviderSettings]
    price: list[ProviderSettings]
    source: Path
    metering: MeteringSettings = field(default_factory=MeteringSettings)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _inventory(t: Table) -> InventorySettings:
    source = t.text("source", choices=("static", "nvml", "slurm"),
                    fix='write source = "static", "nvml" or "slurm"')
    cap = t.mapping("cap", _is_count, keys=GPU_TYPE,
                    fix="write cap = { H100 = 64 } with whole numbers >= 0")
    options: dict[str, Any] = {}
    if source == "static":
        options["gpus"] = t.mapping("gpus", _is_count, keys=GPU_TYPE,
                                    fix="write gpus = { H100 = 64, A100 = 32 }")
        options["path"] = t.path("path", required=False,
                                 fix='write path = "gpus.toml" (or a .csv)')
        if not options["gpus"] and options["path"] is None:
            t.problem("gpus", "a static inventory needs gpus or path",
                      'write gpus = { H100 = 64 } or path = "gpus.toml"')
    elif source == "nvml":
        options["names"] = t.mapping("names", lambda v: isinstance(v, str) and bool(
            GPU_TYPE.match(v)), fix='write names = { "NVIDIA H100 PCIe" = "H100PCIE" }')
    elif source == "slurm":
        options["partition"] = t.text("partition", default=None, fix='write partition = "gpu"')
        options["gres_types"] = t.mapping(
            "gres_types", lambda v: isinstance(v, str) and bool(GPU_TYPE.match(v)),
            fix='write gres_types = { h100 = "H100" }')
        options["untyped_gpu_type"] = t.text("untyped_gpu_type", default=None,
                                             pattern=GPU_TYPE, fix='write e.g. "H100"')
        options["scontrol"] = t.text("scontrol", default="scontrol", fix="the scontrol path")
        options["sinfo"] = t.text("sinfo", default="sinfo", fix="the sinfo path")
        options["timeout_s"] = t.number("timeout_seconds", default=10.0, low=1, high=600,
                                        fix="write timeout_seconds = 10")
    t.done()
    return InventorySettings(source or "static", options, cap)


def _replay_options(t: Table, zone: str) -> dict[str, Any]:
    return {
        "dataset": t.path("dataset", required=True,
                          fix='write dataset = "datasets/bridge-2023" (relative to site.toml)'),
        "zone": t.text("zone", default=zone, pattern=ZONE, fix='write e.g. zone = "GB"'),
        "start_utc": t.hour("start_utc", fix='write start_utc = "2023-07-03T00:00Z"'),
        "anchor_utc": t.hour("anchor_utc", fix='write anchor_utc = "2025-01-06T00:00Z"'),
    }


def _carbon(t: Table, zone: str, signal: str | None) -> ProviderSettings | None:
    kinds = ("electricitymaps", "ukcarbonintensity", "watttime", "replay")
    kind = t.text("provider", choices=kinds, fix=f"write provider = one of {', '.join(kinds)}")
    options: dict[str, Any] = {}
    provider_signal: str | None = None
    if kind == "electricitymaps":
        provider_signal = signal if signal in ("direct", "lifecycle") else "lifecycle"
        options = {
            "token": t.secret("token", what="Electricity Maps API key"),
            "zone": t.text("zone", default=zone, fix='write e.g. zone = "GB"'),
            "mode": t.text("mode", default="forecast", choices=("forecast", "latest"),
                           fix='write mode = "forecast" (or "latest" for keys without '
                               "forecast access)"),
            "horizon_hours": t.number("horizon_hours", default=None, low=1, high=72,
                                      integer=True, fix="write horizon_hours = 48"),
            "base_url": t.text("base_url", default="https://api.electricitymaps.com",
                               fix="the API's base URL"),
            "signal": provider_signal,
        }
    elif kind == "ukcarbonintensity":
        provider_signal = "direct"
        if zone and zone != "GB":
            t.problem("provider", f"the UK Carbon Intensity API covers zone GB, not {zone}",
                      "use another provider for this zone")
        options = {
            "region_id": t.number("region_id", default=None, low=1, high=17, integer=True,
                                  fix="write region_id = 1..17 (omit it for national)"),
            "base_url": t.text("base_url", default="https://api.carbonintensity.org.uk",
                               fix="the API's base URL"),
        }
    elif kind == "watttime":
        provider_signal = "marginal"
        options = {
            "username": t.secret("username", what="WattTime username"),
            "password": t.secret("password", what="WattTime password"),
            "region": t.text("region", fix='write region = "CAISO_NORTH" (WattTime\'s name)'),
            "base_url": t.text("base_url", default="https://api.watttime.org",
                               fix="the API's base URL"),
        }
    elif kind == "replay":
        provider_signal = signal
        if signal == "marginal":
            t.problem("provider", "the bundled data has no marginal signal",
                      "use WattTime for a marginal site")
        options = _replay_options(t, zone)
    t.done()
    if kind is None:
        return None
    if provider_signal != signal:
        t.problem("provider", f"{kind} gives the {provider_signal} signal, the site reports "
                  f"{signal}", f"remove it, or list only providers of signal '{signal}' "
                  "(fallback never mixes signals)")
    return ProviderSettings(kind, provider_signal, options,  # type: ignore[arg-type]
                            where=t.name)


def _price(t: Table, zone: str) -> ProviderSettings | None:
    kind = t.text("provider", choices=("replay", "fixed"),
                  fix='write provider = "replay" or "fixed"')
    options: dict[str, Any] = {}
    if kind == "replay":
        options = _replay_options(t, zone)
    elif kind == "fixed":
        options = {"eur_per_mwh": t.number("eur_per_mwh", default=None, low=-math.inf,
                                           fix="write eur_per_mwh = 85.0 (EUR/MWh)")}
        if options["eur_per_mwh"] is None:
            t.problem("eur_per_mwh", "is missing", "write eur_per_mwh = 85.0 (EUR/MWh)")
    t.done()
    return None if kind is None else ProviderSettings(kind, None, options, where=t.name)


def _metering(t: Table, zone: str) -> MeteringSettings:
    if not t.data:
        return MeteringSettings()
    source = t.text("source", choices=("replay", "file"),
                    fix='write source = "replay" (simulated) or "file"')
    options: dict[str, Any] = {}
    if source == "replay":
        options = _replay_options(t, zone)
        options["seed"] = t.number("seed", default=0, low=0, high=2**63 - 1, integer=True,
                                   fix="write seed = 1 (a whole number >= 0)")
        options["energy_noise"] = t.number("energy_noise", default=0.03, low=0, high=1,
                                           fix="write energy_noise = 0.03 (sd, 0 to 1)")
        options["carbon_noise"] = t.number("carbon_noise", default=0.02, low=0, high=1,
                                           fix="write carbon_noise = 0.02 (sd, 0 to 1)")
    elif source == "file":
        options["path"] = t.path("path", required=True,
                                 fix='write path = "metering.csv" (relative to site.toml)')
    t.done()
    return MeteringSettings(source, options) if source else MeteringSettings()


def _providers(data: Mapping[str, Any], key: str, file: str, base: Path,
               problems: list[Problem], env: Mapping[str, str],
               parse: Callable[[Table], ProviderSettings | None]) -> list[ProviderSettings]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not entries \
            or not all(isinstance(e, dict) for e in entries):
        problems.append(Problem(file, None, key, "needs at least one [[" + key + "]] table",
                                f"add [[{key}]] with provider = ... (gridbridge agent example)"))
        return []
    out = []
    for i, entry in enumerate(entries, start=1):
        parsed = parse(Table(entry, f"{key}[{i}]", file, base, problems, env))
        if parsed is not None:
            out.append(parsed)
    return out


def parse_config(data: Mapping[str, Any], *, file: str = "site.toml", base: Path = Path("."),
                 env: Mapping[str, str] | None = None) -> AgentConfig:
    """Validate a parsed ``site.toml``; raise :class:`AgentConfigError` listing every problem."""
    env = os.environ if env is None else env
    problems: list[Problem] = []
    for key in sorted(set(data) - {"agent", "exchange", "http", "inventory", "carbon",
                                   "price", "metering"}):
        problems.append(Problem(file, None, key, "is not a known table",
                                "remove it or correct its spelling (gridbridge agent example)"))
    a = table(data, "agent", "agent", file, base, problems, env, required=True)
    site_id = a.text("site_id", pattern=SITE_ID,
                     fix='write the exchange\'s site id, e.g. site_id = "GB-BRISTOL-1" '
                         "(letters, digits, . _ : @ -; at most 70)")
    zone = a.text("zone", pattern=ZONE, fix='write the zone code, e.g. zone = "GB" or "CA-ON"')
    signal = a.text("signal", choices=AGENT_SIGNALS,
                    fix='write signal = "direct" or "lifecycle"')
    if signal is not None and signal not in REPORTABLE_SIGNALS:
        a.problem("signal", f"the exchange's contract accepts {' or '.join(REPORTABLE_SIGNALS)}"
                  f" signals, not {signal} (the market clears on location-based averages)",
                  f"report {' or '.join(REPORTABLE_SIGNALS)} with providers of that signal")
    horizon = a.number("horizon_hours", default=48, low=1, high=MAX_HOURS, integer=True,
                       fix=f"write horizon_hours = 48 (1 to {MAX_HOURS})")
    min_hours = a.number("min_forecast_hours", default=24, low=1, high=MAX_HOURS, integer=True,
                         fix="write min_forecast_hours = 24")
    cycle = a.number("cycle_seconds", default=300.0, low=1, high=86_400,
                     fix="write cycle_seconds = 300")
    spool = a.path("spool", required=False, fix='write spool = "spool.sqlite"') or (
        base / f"{site_id or 'agent'}.spool.sqlite")
    clock_start = a.hour("clock_start_utc", fix='write clock_start_utc = "2023-07-03T00:00Z"')
    a.done()

    x = table(data, "exchange", "exchange", file, base, problems, env, required=True)
    url = x.text("url", pattern=re.compile(r"^https?://\S+$"),
                 fix='write url = "http://127.0.0.1:8700" (http:// or https://)')
    token = x.secret("token", what="site's bearer token (gridbridge exchange token create)")
    x.done()

    h = table(data, "http", "http", file, base, problems, env, required=False)
    http = HttpSettings(
        timeout_s=h.number("timeout_seconds", default=10.0, low=0.1, high=600,
                           fix="write timeout_seconds = 10"),
        retries=h.number("retries", default=3, low=0, high=20, integer=True,
                         fix="write retries = 3"),
        backoff_s=h.number("backoff_seconds", default=0.5, low=0, high=600,
                           fix="write backoff_seconds = 0.5"),
        backoff_max_s=h.number("backoff_max_seconds", default=30.0, low=0, high=3600,
                               fix="write backoff_max_seconds = 30"))
    h.done()

    inventory = _inventory(table(data, "inventory", "inventory", file, base, problems, env,
                                  required=True))
    carbon = _providers(data, "carbon", file, base, problems, env,
                        lambda t: _carbon(t, zone or "", signal))
    price = _providers(data, "price", file, base, problems, env, lambda t: _price(t, zone or ""))
    metering = _metering(table(data, "metering", "metering", file, base, problems, env,
                               required=False), zone or "")
    if problems:
        raise AgentConfigError.from_problems(problems)
    return AgentConfig(
        site_id=site_id, zone=zone, signal=signal, horizon_hours=horizon,
        min_forecast_hours=min(min_hours, horizon), cycle_s=cycle, spool=spool,
        clock_start_utc=clock_start, exchange=ExchangeSettings(url.rstrip("/"), token),
        http=http, inventory=inventory, carbon=carbon, price=price, source=base / file,
        metering=metering)


def load_config(path: Path, env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read and validate ``site.toml``; :class:`AgentConfigError` names every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentConfigError(f"{path}: cannot read the agent configuration ({exc.strerror}) "
                               "— fix: pass --config with the path of site.toml "
                               "(gridbridge agent example prints one)") from None
    try:
        data = parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise AgentConfigError(f"{path}: not valid TOML ({exc}) — fix: correct the syntax "
                               "at that line") from None
    return parse_config(data, file=path.name, base=path.parent.resolve(), env=env)
