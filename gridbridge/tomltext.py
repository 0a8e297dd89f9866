"""Reading TOML text: :func:`tomllib.loads`, with one more way a file can be bad.

``tomllib`` recurses once per level of nested arrays or tables, so a file nested about a
thousand levels deep exhausts the stack and raises :class:`RecursionError` instead of
:class:`tomllib.TOMLDecodeError`. Every reader of TOML files in GridBridge goes through
:func:`parse_toml`, so such a file is reported like any other malformed one.
"""

from __future__ import annotations

import tomllib
from typing import Any

__all__ = ["parse_toml"]


def parse_toml(text: str) -> dict[str, Any]:
    """The TOML document ``text``; :class:`tomllib.TOMLDecodeError` when it is not valid
    TOML, also when it nests too deeply to parse."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError("arrays or tables nested too deeply") from None
