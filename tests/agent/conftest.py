"""Fixtures for the site agent's tests: recorded payloads, a site.toml writer, the stand-in."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.standin import ExchangeStandIn
from tests.conftest import BRIDGE_2023

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> Any:
    """A recorded provider payload from tests/agent/data."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def site_toml(*, url: str, spool: Path, extra_agent: str = "", inventory: str | None = None,
              carbon: str | None = None, price: str | None = None, http: str | None = None,
              zone: str = "GB", signal: str = "lifecycle", metering: str = "") -> str:
    """A site.toml replaying the bundled data on a 2023 clock, reporting to ``url``."""
    dataset = BRIDGE_2023.as_posix()
    carbon = carbon or f'[[carbon]]\nprovider = "replay"\ndataset = "{dataset}"\n'
    price = price or f'[[price]]\nprovider = "replay"\ndataset = "{dataset}"\n'
    inventory = inventory or '[inventory]\nsource = "static"\ngpus = { GH200 = 1088 }\n'
    http = http or "[http]\ntimeout_seconds = 5\nretries = 1\nbackoff_seconds = 0.01\n"
    return f"""\
[agent]
site_id = "GB-BRISTOL-1"
zone = "{zone}"
signal = "{signal}"
horizon_hours = 24
min_forecast_hours = 12
cycle_seconds = 1
spool = "{spool.as_posix()}"
{extra_agent}

[exchange]
url = "{url}"
token = "site-token"

{http}
{inventory}
{carbon}
{price}
{metering}
"""


@pytest.fixture
def standin() -> Iterator[ExchangeStandIn]:
    """The exchange stand-in, started; stopped after the test."""
    server = ExchangeStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def write_site(tmp_path: Path) -> Callable[..., Path]:
    """Write a site.toml (see :func:`site_toml`) into tmp_path and return its path."""

    def write(**kwargs: Any) -> Path:
        kwargs.setdefault("spool", tmp_path / "spool.sqlite")
        path = tmp_path / "site.toml"
        path.write_text(site_toml(**kwargs), encoding="utf-8")
        return path

    return write
