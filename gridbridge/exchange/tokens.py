"""Bearer tokens: created, listed, revoked, and resolved to who is calling.

A token is ``secrets.token_urlsafe(32)`` (256 random bits), shown once when created; the
exchange stores only its SHA-256 (hex) beside a public ``token_id`` (``tok_`` + 12 hex
digits), the role and the subject. Roles:

=============  =========================================  ==========================
role           subject                                    acts for
=============  =========================================  ==========================
``site``       a site id of the registry                  that site's agent
``member``     a member code of the registry (``KR``)     that member's bids
``planner``    none                                       rounds
``treasurer``  none                                       settlements (read)
``admin``      none                                       everything
=============  =========================================  ==========================

A revoked token stays listed (with ``revoked_at_utc``) and never authenticates again.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast, get_args

import sqlalchemy as sa

from gridbridge.errors import InputError, NotFoundError
from gridbridge.exchange import schema as t
from gridbridge.exchange.clock import instant_text
from gridbridge.exchange.storage import ExchangeStore

__all__ = [
    "ROLES",
    "Principal",
    "Role",
    "TokenInfo",
    "create_token",
    "hash_token",
    "list_tokens",
    "resolve_token",
    "revoke_token",
]

Role = Literal["site", "member", "planner", "treasurer", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
_WITH_SUBJECT = {"site": t.sites, "member": t.members}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid token speaks for: its id, role and subject (site id, member code or
    None)."""

    token_id: str
    role: Role
    subject: str | None

    @property
    def label(self) -> str:
        """``site:KR-SUWON-1``, ``member:KR``, ``planner``, ..."""
        return f"{self.role}:{self.subject}" if self.subject else self.role


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as listed: never the secret nor its hash."""

    token_id: str
    role: Role
    subject: str | None
    created_at_utc: str
    revoked_at_utc: str | None


def hash_token(token: str) -> str:
    """The SHA-256 of a token, hex: what the exchange stores and looks up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(store: ExchangeStore, role: str, subject: str | None,
                 at: datetime) -> tuple[TokenInfo, str]:
    """Create a token for ``role`` (and ``subject``); return its listing and the token.

    The token is returned once and stored only as its hash. Raises :class:`InputError` for
    an unknown role or a subject given or missing against the role, and
    :class:`NotFoundError` for a site or member the registry does not hold.
    """
    if role not in ROLES:
        raise InputError(f"role '{role}' is not one of {', '.join(ROLES)} — fix: pick one")
    table = _WITH_SUBJECT.get(role)
    if table is None and subject is not None:
        raise InputError(f"role {role} has no subject (got '{subject}') — fix: drop "
                         "--site/--member for this role")
    if table is not None and not subject:
        flag = "--site SITE_ID" if role == "site" else "--member CODE"
        raise InputError(f"role {role} acts for one {role} — fix: name it with {flag}")
    secret = secrets.token_urlsafe(32)
    info = TokenInfo(token_id=f"tok_{secrets.token_hex(6)}", role=cast(Role, role),
                     subject=subject, created_at_utc=instant_text(at), revoked_at_utc=None)
    with store.write() as conn:
        if table is not None:
            key = table.primary_key.columns.values()[0]
            if conn.execute(sa.select(key).where(key == subject)).first() is None:
                raise NotFoundError(
                    f"{role} '{subject}' is not in the exchange's registry at {store.url} — "
                    f"fix: check the {role} (gridbridge exchange init loads the registry)")
        conn.execute(t.tokens.insert().values(
            token_id=info.token_id, role=role, subject=subject, token_sha256=hash_token(secret),
            created_at_utc=info.created_at_utc, revoked_at_utc=None))
    return info, secret


def list_tokens(store: ExchangeStore) -> list[TokenInfo]:
    """Every token, revoked ones included, by creation time."""
    with store.read() as conn:
        rows = conn.execute(sa.select(
            t.tokens.c.token_id, t.tokens.c.role, t.tokens.c.subject, t.tokens.c.created_at_utc,
            t.tokens.c.revoked_at_utc).order_by(t.tokens.c.created_at_utc, t.tokens.c.token_id))
        return [TokenInfo(*r) for r in rows]


def revoke_token(store: ExchangeStore, token_id: str, at: datetime) -> tuple[TokenInfo, bool]:
    """Revoke a token (from now on it gets 401); return it as listed, and whether this call
    revoked it (False: it already was, and keeps its first revocation time).

    Raises :class:`NotFoundError` for an unknown id.
    """
    with store.write() as conn:
        row = conn.execute(sa.select(t.tokens).where(t.tokens.c.token_id == token_id)).first()
        if row is None:
            raise NotFoundError(f"no token {token_id} at {store.url} — fix: list them with "
                                "gridbridge exchange token list")
        if row.revoked_at_utc is not None:
            return TokenInfo(row.token_id, row.role, row.subject, row.created_at_utc,
                             row.revoked_at_utc), False
        when = instant_text(at)
        conn.execute(t.tokens.update().where(t.tokens.c.token_id == token_id)
                     .values(revoked_at_utc=when))
    return TokenInfo(row.token_id, row.role, row.subject, row.created_at_utc, when), True


# Every request's lookup, built once (a statement built per call has its cache key worked out
# again each time).
_VALID_TOKEN = sa.select(t.tokens.c.token_id, t.tokens.c.role, t.tokens.c.subject).where(
    t.tokens.c.token_sha256 == sa.bindparam("token_sha256"), t.tokens.c.revoked_at_utc.is_(None))


def resolve_token(store: ExchangeStore, token: str) -> Principal | None:
    """Who ``token`` speaks for, or None when it is unknown or revoked (read from the
    database on every call, so a revocation holds from the next request on)."""
    with store.read() as conn:
        row = conn.execute(_VALID_TOKEN, {"token_sha256": hash_token(token)}).first()
    return None if row is None else Principal(row.token_id, row.role, row.subject)
