"""The audit log: one row per state-changing call (POST, PUT, PATCH, DELETE), refused or
not — who (token id, role, subject; null when no valid token was given), what (method,
path, answer status), when (UTC instant) and the request id the answer carried in
``X-Request-ID``.

Written by :class:`gridbridge.exchange.middleware.RequestContext` once the answer's status
is known and before the answer is sent, so every answered call has its row; a process that
dies between committing a change and writing its row leaves that call unaudited (its client
got no answer either). Append-only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import sqlalchemy as sa

from gridbridge.exchange import schema as t
from gridbridge.exchange.storage import ExchangeStore

__all__ = ["AuditEntry", "read_audit", "write_audit"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited call."""

    at_utc: str
    request_id: str
    token_id: str | None
    role: str | None
    subject: str | None
    method: str
    path: str
    status: int


def write_audit(store: ExchangeStore, entry: AuditEntry) -> None:
    """Append one row (its own transaction)."""
    with store.write() as conn:
        conn.execute(t.audit.insert().values(**asdict(entry)))


def read_audit(store: ExchangeStore, limit: int = 1000) -> list[AuditEntry]:
    """The latest ``limit`` rows, oldest first."""
    columns = [t.audit.c[name] for name in AuditEntry.__dataclass_fields__]
    with store.read() as conn:
        rows = conn.execute(sa.select(*columns).order_by(t.audit.c.id.desc()).limit(limit))
        return [AuditEntry(*r) for r in reversed(list(rows))]
