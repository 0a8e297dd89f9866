"""Every TOML reader reports a file nested too deeply to parse as malformed TOML, naming the
file, instead of crashing with RecursionError (found by fuzzing the bundle reader)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gridbridge.agent.config import load_config
from gridbridge.agent.errors import AgentConfigError, InventoryUnavailable
from gridbridge.agent.inventory.static import read_static_file
from gridbridge.errors import InputError
from gridbridge.recipe import load_recipe
from gridbridge.tomltext import parse_toml

DEEP = "x = " + "[" * 5000 + "]" * 5000 + "\n"


def test_parse_toml_reads_toml_and_refuses_deep_nesting_as_bad_toml() -> None:
    assert parse_toml('a = [[1], [2]]\n[t]\nb = "c"\n') == {"a": [[1], [2]], "t": {"b": "c"}}
    with pytest.raises(tomllib.TOMLDecodeError, match="nested too deeply"):
        parse_toml(DEEP)


@pytest.mark.parametrize(("read", "error"), [
    (load_config, AgentConfigError),
    (load_recipe, InputError),
    (read_static_file, InventoryUnavailable),
], ids=["site.toml", "recipe", "static inventory"])
def test_each_reader_names_the_file(tmp_path: Path, read: object, error: type[Exception]) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(DEEP)
    with pytest.raises(error, match=r"deep\.toml") as caught:
        read(path)  # type: ignore[operator]
    assert "nested too deeply" in str(caught.value)
