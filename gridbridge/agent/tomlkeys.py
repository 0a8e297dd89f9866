"""Typed, problem-collecting reads of TOML tables, for ``site.toml``.

Each read names the key as ``table.key`` (``carbon[2].region``) and, when the value is
wrong, adds a :class:`~gridbridge.errors.Problem` with the fix instead of raising, so that
one pass reports every problem of the file. :meth:`Table.done` reports keys nobody read.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from gridbridge.errors import Problem
from gridbridge.hours import HourParseError, parse_hour

__all__ = ["MISSING", "Table", "table"]

MISSING = object()


class Table:
    """Typed reads from one TOML table; every problem goes to the shared list.

    ``base`` is the folder relative paths are resolved against; ``env`` the environment
    secrets named ``*_env`` are read from."""

    def __init__(self, data: Mapping[str, Any], name: str, file: str, base: Path,
                 problems: list[Problem], env: Mapping[str, str]) -> None:
        self.data, self.name, self.file, self.base = dict(data), name, file, base
        self.problems, self.env = problems, env
        self.used: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.name}.{key}"

    def problem(self, key: str, message: str, fix: str) -> None:
        self.problems.append(Problem(self.file, None, self.key(key), message, fix))

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key, MISSING)

    def text(self, key: str, *, default: Any = MISSING, pattern: re.Pattern[str] | None = None,
             choices: tuple[str, ...] = (), fix: str) -> Any:
        value = self.raw(key)
        if value is MISSING:
            if default is MISSING:
                self.problem(key, "is missing", fix)
                return None
            return default
        if not isinstance(value, str) or not value.strip():
            self.problem(key, f"{value!r} is not a non-empty text", fix)
            return None
        if choices and value not in choices:
            self.problem(key, f"'{value}' is not one of {', '.join(choices)}", fix)
            return None
        if pattern is not None and not pattern.match(value):
            self.problem(key, f"'{value}' is not allowed here", fix)
            return None
        return value

    def number(self, key: str, *, default: Any, low: float, high: float = math.inf,
               integer: bool = False, fix: str) -> Any:
        value = self.raw(key)
        if value is MISSING:
            return default
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type or not math.isfinite(value) \
                or not low <= value <= high:
            kind = "a whole number" if integer else "a number"
            bounds = f">= {low:g}" if high == math.inf else f"from {low:g} to {high:g}"
            self.problem(key, f"{value!r} is not {kind} {bounds}", fix)
            return default
        return int(value) if integer else float(value)

    def hour(self, key: str, *, fix: str) -> datetime | None:
        value = self.raw(key)
        if value is MISSING:
            return None
        try:
            return parse_hour(str(value))
        except HourParseError as exc:
            self.problem(key, str(exc), f"{fix}; {exc.fix}")
            return None

    def path(self, key: str, *, required: bool, fix: str) -> Path | None:
        value = self.raw(key)
        if value is MISSING:
            if required:
                self.problem(key, "is missing", fix)
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(key, f"{value!r} is not a path", fix)
            return None
        return Path(os.path.normpath(self.base / os.path.expanduser(value)))

    def mapping(self, key: str, values: Callable[[Any], bool], *, fix: str,
                keys: re.Pattern[str] | None = None) -> dict[str, Any]:
        value = self.raw(key)
        if value is MISSING:
            return {}
        if not isinstance(value, dict):
            self.problem(key, f"{value!r} is not a table", fix)
            return {}
        bad = [k for k, v in value.items()
               if not values(v) or (keys is not None and not keys.match(k))]
        if bad:
            self.problem(key, f"bad entries {', '.join(map(repr, bad))}", fix)
            return {}
        return dict(value)

    def secret(self, key: str, *, what: str) -> str | None:
        """``key``, ``key_env`` or ``key_file``: exactly one, resolved now."""
        given = {k: self.raw(k) for k in (key, f"{key}_env", f"{key}_file")}
        given = {k: v for k, v in given.items() if v is not MISSING}
        fix = (f'give one of {key} = "...", {key}_env = "VARIABLE" or {key}_file = "path" '
               f"with the {what}")
        if len(given) != 1:
            self.problem(key, "is missing" if not given else
                         f"is given {len(given)} ways ({', '.join(given)})", fix)
            return None
        (name, value), = given.items()
        if not isinstance(value, str) or not value.strip():
            self.problem(name, f"{value!r} is not a non-empty text", fix)
            return None
        if name.endswith("_env"):
            secret = self.env.get(value, "")
            if not secret.strip():
                self.problem(name, f"the environment variable {value} is not set or empty",
                             f"export {value}=... before starting the agent, or {fix}")
                return None
            return secret.strip()
        if name.endswith("_file"):
            path = Path(os.path.normpath(self.base / os.path.expanduser(value)))
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                self.problem(name, f"cannot read {path} ({exc.strerror})", fix)
                return None
            if not secret:
                self.problem(name, f"{path} is empty", fix)
                return None
            return secret
        return value.strip()

    def done(self) -> None:
        for key in sorted(set(self.data) - self.used):
            self.problem(key, "is not a known key here",
                         "remove it or correct its spelling (gridbridge agent example shows "
                         "every key)")


def table(parent: Mapping[str, Any], key: str, name: str, file: str, base: Path,
          problems: list[Problem], env: Mapping[str, str], required: bool) -> Table:
    """The sub-table ``parent[key]`` (empty, with a problem if ``required``, when absent)."""
    value = parent.get(key, MISSING)
    if value is MISSING or not isinstance(value, dict):
        if value is not MISSING or required:
            problems.append(Problem(file, None, name, "is missing or not a table",
                                    f"add a [{name}] table (gridbridge agent example)"))
        value = {}
    return Table(value, name, file, base, problems, env)
