"""How the app is told its mode: environment variables, set by ``gridbridge app``.

==============================  =============================================================
variable                        meaning
==============================  =============================================================
``GRIDBRIDGE_APP_EXCHANGE``     exchange mode: the exchange's base URL (http://127.0.0.1:8000)
``GRIDBRIDGE_APP_TOKEN``        exchange mode: the bearer token (never on the command line of
                                the Streamlit process, where ``ps`` would show it)
``GRIDBRIDGE_APP_BUNDLE``       bundle mode: the market bundle folder
``GRIDBRIDGE_APP_CLEARING``     bundle mode, optional: its clearing folder (default: the
                                bundle folder when ``gridbridge clear`` wrote there)
==============================  =============================================================

Exactly one mode must be given; anything else is an :class:`InputError` naming the variable
(and the ``gridbridge app`` option that sets it) and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gridbridge.errors import InputError

__all__ = ["BUNDLE", "CLEARING", "EXCHANGE", "TOKEN", "AppConfig"]

EXCHANGE = "GRIDBRIDGE_APP_EXCHANGE"
TOKEN = "GRIDBRIDGE_APP_TOKEN"
BUNDLE = "GRIDBRIDGE_APP_BUNDLE"
CLEARING = "GRIDBRIDGE_APP_CLEARING"


@dataclass(frozen=True, slots=True)
class AppConfig:
    """The app's mode: ``exchange`` + ``token``, or ``bundle`` (+ ``clearing``)."""

    exchange: str | None = None
    token: str | None = None
    bundle: Path | None = None
    clearing: Path | None = None

    def __post_init__(self) -> None:
        if self.exchange and self.bundle:
            raise InputError("give either --exchange URL --token T or --bundle DIR, not both "
                             f"({EXCHANGE} and {BUNDLE} are both set)")
        if self.exchange:
            if not self.exchange.startswith(("http://", "https://")):
                raise InputError(f"--exchange ({EXCHANGE}): '{self.exchange}' is not an http "
                                 "URL — fix: e.g. --exchange http://127.0.0.1:8000")
            if not self.token:
                raise InputError(f"--token ({TOKEN}) is missing — fix: pass the token the "
                                 "exchange gave (gridbridge exchange token create --role ...)")
        elif self.bundle is None:
            raise InputError(f"no data: set --exchange URL --token T ({EXCHANGE}, {TOKEN}) or "
                             f"--bundle DIR ({BUNDLE}) — fix: e.g. gridbridge app --bundle "
                             "datasets/bridge-2023/market-2023-W27 --clearing "
                             "out/demo/clearing-2023-W27")
        else:
            for option, path in (("--bundle", self.bundle), ("--clearing", self.clearing)):
                if path is not None and not path.is_dir():
                    raise InputError(f"{option}: {path} is not a folder — fix: pass the folder "
                                     "that holds the files")
        if self.clearing is not None and self.bundle is None:
            raise InputError("--clearing needs --bundle DIR, the bundle it was cleared from")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppConfig:
        """The config the environment gives (``os.environ`` by default)."""
        env = os.environ if env is None else env
        bundle, clearing = env.get(BUNDLE), env.get(CLEARING)
        return cls(exchange=env.get(EXCHANGE) or None, token=env.get(TOKEN) or None,
                   bundle=Path(bundle) if bundle else None,
                   clearing=Path(clearing) if clearing else None)

    def env(self) -> dict[str, str]:
        """The environment variables that give this config."""
        pairs = {EXCHANGE: self.exchange, TOKEN: self.token,
                 BUNDLE: None if self.bundle is None else str(self.bundle.resolve()),
                 CLEARING: None if self.clearing is None else str(self.clearing.resolve())}
        return {k: v for k, v in pairs.items() if v}
