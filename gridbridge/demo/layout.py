"""Where the demo keeps its files: one folder, wiped at the start of each run."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DemoLayout"]


@dataclass(frozen=True)
class DemoLayout:
    """The demo's folder and the files in it."""

    folder: Path

    @property
    def database(self) -> Path:
        """The exchange's (and ledger's) SQLite file."""
        return self.folder / "exchange.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.database.resolve()}"

    @property
    def tokens(self) -> Path:
        """``tokens.json``: the exchange's URL and one bearer token per role (mode 0600)."""
        return self.folder / "tokens.json"

    @property
    def server_log(self) -> Path:
        return self.folder / "exchange.log"

    @property
    def agents(self) -> Path:
        """One ``<site>.toml``, inventory CSV, spool and log per site."""
        return self.folder / "agents"

    def fresh(self) -> None:
        """Remove what an earlier run left (the database with its WAL files, the agents'
        spools) and create the folders."""
        for path in (self.database, Path(f"{self.database}-wal"), Path(f"{self.database}-shm"),
                     self.tokens, self.server_log):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.agents, ignore_errors=True)
        self.agents.mkdir(parents=True)
