"""site.toml validation: every problem named with its key and fix; signals never mixed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gridbridge.agent.config import EXAMPLE, load_config, parse_config
from gridbridge.agent.errors import AgentConfigError
from tests.conftest import run_cli

ENV = {"GRIDBRIDGE_SITE_TOKEN": "tok", "ELECTRICITYMAPS_TOKEN": "em-key"}


def example(**changes: str) -> dict:
    """EXAMPLE parsed, with TOML snippets replacing whole tables."""
    data = tomllib.loads(EXAMPLE)
    for key, snippet in changes.items():
        data[key] = tomllib.loads(snippet)[key]
    return data


def problems(data: dict, env: dict[str, str] | None = None) -> str:
    with pytest.raises(AgentConfigError) as caught:
        parse_config(data, file="site.toml", base=Path("/etc/gridbridge"),
                     env=ENV if env is None else env)
    assert caught.value.exit_code == 2
    return str(caught.value)


def test_the_example_is_a_valid_config() -> None:
    config = parse_config(tomllib.loads(EXAMPLE), base=Path("/etc/gridbridge"), env=ENV)
    assert (config.site_id, config.zone, config.signal) == ("GB-BRISTOL-1", "GB", "lifecycle")
    assert config.horizon_hours == 48 and config.min_forecast_hours == 24
    assert config.exchange.token == "tok" and "tok" not in repr(config.exchange)
    assert [p.kind for p in config.carbon] == ["electricitymaps", "replay"]
    assert {p.signal for p in config.carbon} == {"lifecycle"}
    assert config.carbon[0].options["token"] == "em-key"
    assert config.carbon[1].options["dataset"] == Path("/etc/datasets/bridge-2023")
    assert [p.kind for p in config.price] == ["replay", "fixed"]
    assert config.spool == Path("/etc/gridbridge/spool.sqlite")
    assert config.http.retries == 3 and config.inventory.options["gpus"] == {"GH200": 1088}


def test_every_problem_is_listed_with_key_and_fix() -> None:
    data = example(agent='[agent]\nsite_id = "GB BRISTOL"\nzone = "gb"\nsignal = "average"\n'
                         'horizon_hours = 1000\ncycle_secs = 5\n')
    data["exchange"] = {"url": "ftp://exchange"}
    text = problems(data)
    for expected in (
        "field 'agent.site_id': 'GB BRISTOL' is not allowed here — fix: write the exchange's "
        "site id",
        "field 'agent.zone'", "field 'agent.signal': 'average' is not one of direct, lifecycle,",
        "field 'agent.horizon_hours': 1000 is not a whole number from 1 to 744",
        "field 'agent.cycle_secs': is not a known key here",
        "field 'exchange.url'", "field 'exchange.token': is missing — fix: give one of token",
    ):
        assert expected in text, text


def test_secrets_from_env_file_or_inline(tmp_path: Path) -> None:
    token_file = tmp_path / "site.token"
    token_file.write_text("from-file\n")
    data = example()
    data["exchange"] = {"url": "http://x:1", "token_file": "site.token"}
    config = parse_config(data, base=tmp_path, env=ENV)
    assert config.exchange.token == "from-file"
    data["exchange"] = {"url": "http://x:1", "token_env": "UNSET_VARIABLE"}
    text = problems(data)
    assert "field 'exchange.token_env': the environment variable UNSET_VARIABLE is not set" \
        in text and "export UNSET_VARIABLE=" in text
    data["exchange"] = {"url": "http://x:1", "token": "a", "token_env": "B"}
    assert "is given 2 ways (token, token_env)" in problems(data)


def test_a_provider_of_another_signal_is_refused() -> None:
    data = example(carbon='[[carbon]]\nprovider = "electricitymaps"\ntoken = "k"\n'
                          '[[carbon]]\nprovider = "ukcarbonintensity"\n'
                          '[[carbon]]\nprovider = "watttime"\nregion = "UK"\n'
                          'username = "u"\npassword = "p"\n')
    text = problems(data)
    assert "carbon[2].provider': ukcarbonintensity gives the direct signal, the site " \
           "reports lifecycle" in text
    assert "carbon[3].provider': watttime gives the marginal signal" in text
    assert "fallback never mixes signals" in text
    assert "carbon[1]" not in text  # Electricity Maps is asked for the site's signal


def test_a_direct_site_may_fall_back_from_uk_api_to_electricitymaps() -> None:
    data = example(carbon='[[carbon]]\nprovider = "ukcarbonintensity"\nregion_id = 13\n'
                          '[[carbon]]\nprovider = "electricitymaps"\ntoken = "k"\n')
    data["agent"]["signal"] = "direct"
    config = parse_config(data, env=ENV)
    assert [(p.kind, p.signal) for p in config.carbon] == [("ukcarbonintensity", "direct"),
                                                           ("electricitymaps", "direct")]
    assert config.carbon[1].options["signal"] == "direct"


def test_a_marginal_site_is_refused_until_the_contract_takes_marginal() -> None:
    data = example(carbon='[[carbon]]\nprovider = "watttime"\nregion = "CAISO_NORTH"\n'
                          'username = "u"\npassword_env = "WT_PASSWORD"\n')
    data["agent"]["signal"] = "marginal"
    text = problems(data, env=ENV | {"WT_PASSWORD": "p"})
    assert "field 'agent.signal': the exchange's contract accepts direct or lifecycle " \
           "signals, not marginal" in text
    assert "carbon[1]" not in text  # WattTime itself is fine for a marginal site


def test_uk_api_only_serves_gb_and_replay_needs_a_dataset() -> None:
    data = example(carbon='[[carbon]]\nprovider = "ukcarbonintensity"\n'
                          '[[carbon]]\nprovider = "replay"\nstart_utc = "2023-07-03T00:30Z"\n')
    data["agent"]["zone"], data["agent"]["signal"] = "DE", "direct"
    text = problems(data)
    assert "carbon[1].provider': the UK Carbon Intensity API covers zone GB, not DE" in text
    assert "carbon[2].dataset': is missing" in text
    assert "carbon[2].start_utc': '2023-07-03T00:30Z' is not on a whole hour" in text


def test_inventory_and_price_problems() -> None:
    data = example(inventory='[inventory]\nsource = "nvml"\nnames = { "NVIDIA H200" = "H 200" }\n'
                             'cap = { H100 = -1 }\n',
                   price='[[price]]\nprovider = "fixed"\n')
    text = problems(data)
    assert "field 'inventory.cap': bad entries 'H100'" in text
    assert "field 'inventory.names': bad entries 'NVIDIA H200'" in text
    assert "field 'price[1].eur_per_mwh': is missing" in text
    del data["price"]
    assert "field 'price': needs at least one [[price]] table" in problems(data)


def test_load_config_names_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match="cannot read the agent configuration"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "site.toml"
    bad.write_text("[agent\nsite_id = 1\n")
    with pytest.raises(AgentConfigError, match="not valid TOML"):
        load_config(bad)


def test_cli_prints_the_example_and_exits_2_on_a_bad_config(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["agent", "example"], capsys)
    assert code == 0 and out == EXAMPLE
    bad = tmp_path / "site.toml"
    bad.write_text('[agent]\nsite_id = "X"\n')
    code, _, err = run_cli(["agent", "run", "--config", str(bad), "--once"], capsys)
    assert code == 2
    assert "field 'agent.zone': is missing" in err and "field 'exchange'" in err
