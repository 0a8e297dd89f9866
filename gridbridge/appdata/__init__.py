"""The Streamlit app's logic, with no Streamlit in it: data sources and the tables pages draw.

* :mod:`~gridbridge.appdata.source` — the :class:`DataSource` interface; two sources:
  :class:`BundleSource` (a bundle and its clearing on disk) and :class:`ExchangeSource`
  (a running exchange over HTTP; the token's role decides what it sees). Both return the
  frames of :mod:`~gridbridge.appdata.model`.
* :mod:`~gridbridge.appdata.config` — the mode, from environment variables
  (``gridbridge app`` sets them); :func:`open_source` opens the source it names.
* per page: :mod:`~gridbridge.appdata.alliance` (map, free GPUs),
  :mod:`~gridbridge.appdata.bidtable` and :mod:`~gridbridge.appdata.bidform` (bids and the
  form, checked by the exchange's own model), :mod:`~gridbridge.appdata.results` (Gantt,
  utilisation, prices, baselines, trade-off) with :mod:`~gridbridge.appdata.whatif`
  (clearings in the app) and :mod:`~gridbridge.appdata.window`, and
  :mod:`~gridbridge.appdata.statements` (settlement tables and their files).

Units follow DESIGN.md: UTC hours, half-open intervals, whole GPUs, gCO2eq/kWh, EUR/MWh,
EUR, kg CO2eq, EUR per tonne CO2eq.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gridbridge.appdata.bundle_source import BundleSource, LoadedBundle, load_bundle
from gridbridge.appdata.client import ExchangeClient, ExchangeRefused, ExchangeUnreachable
from gridbridge.appdata.config import AppConfig
from gridbridge.appdata.exchange_source import ExchangeSource
from gridbridge.appdata.model import Outlook, RoundInfo, RoundResult, Viewer
from gridbridge.appdata.source import DataSource, Mode

__all__ = [
    "AppConfig",
    "BundleSource",
    "DataSource",
    "ExchangeClient",
    "ExchangeRefused",
    "ExchangeSource",
    "ExchangeUnreachable",
    "LoadedBundle",
    "Mode",
    "Outlook",
    "RoundInfo",
    "RoundResult",
    "Viewer",
    "load_bundle",
    "open_source",
]


def open_source(config: AppConfig,
                load: Callable[[Path, Path | None], LoadedBundle] = load_bundle) -> DataSource:
    """The source ``config`` names. ``load`` reads a bundle (the app passes a cached
    :func:`load_bundle`, so every session shares one read)."""
    if config.exchange is not None and config.token is not None:
        return ExchangeSource(ExchangeClient(config.exchange, config.token))
    assert config.bundle is not None  # AppConfig admits no other mode
    return BundleSource(load(config.bundle, config.clearing))
