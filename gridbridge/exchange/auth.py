"""Access: who may call each endpoint, checked before anything of the request is parsed.

Every ``/v1`` endpoint declares an :class:`Access` dependency listing who may call it:

* ``"site:{site_id}"`` — a site token whose site is the path's ``{site_id}``;
* ``"member"`` — any member token (the member the call acts for is the token's);
* ``"planner"``, ``"treasurer"``, ``"admin"`` — a token of that role;
* ``"any"`` — any valid token.

Answers: no token, a malformed ``Authorization`` header, an unknown or revoked token -> 401
(with ``WWW-Authenticate: Bearer``); a valid token not listed, or a site token for another
site -> 403. The routes are :class:`GuardedRoute`, which runs the route's :class:`Access`
before FastAPI reads the body, so a stranger gets 401 even for malformed JSON, and learns
nothing about the body's schema. (As a plain dependency it would run after FastAPI decoded
the JSON.) The caller is kept in the request scope, for the endpoint (the dependency's
value) and for the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from gridbridge.exchange.storage import ExchangeStore
from gridbridge.exchange.tokens import ROLES, Principal, resolve_token

__all__ = ["PRINCIPAL_KEY", "Access", "GuardedRoute", "find_access", "unguarded_paths"]

#: Where the authenticated caller is kept in the ASGI scope (read by the audit middleware).
PRINCIPAL_KEY = "gridbridge.principal"

# Longer than any token this exchange issues (43 characters): refused without a lookup.
_MAX_TOKEN_CHARS = 200
_SPEC = re.compile(r"^(?:(?P<role>[a-z]+)|site:\{(?P<param>[a-z_]+)\})$")
# Declares the bearer scheme in /openapi.json; the check itself is Access's.
_bearer = HTTPBearer(auto_error=False, description="a token from gridbridge exchange token "
                                                   "create")


@dataclass(frozen=True, slots=True)
class _Grant:
    role: str  # a role, or "any"
    site_param: str | None = None  # path parameter the site token's site must equal

    def allows(self, who: Principal, path_params: dict[str, Any]) -> bool:
        if self.role == "any":
            return True
        if who.role != self.role:
            return False
        return self.site_param is None or who.subject == path_params.get(self.site_param)

    def __str__(self) -> str:
        return f"site:{{{self.site_param}}}" if self.site_param else self.role


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message,
                         headers={"WWW-Authenticate": "Bearer"})


class Access:
    """A route's access rule, used as ``Depends(Access("site:{site_id}", "admin"))``; its
    value is the calling :class:`Principal`."""

    def __init__(self, *specs: str) -> None:
        """``specs``: who may call (see the module doc); at least one."""
        if not specs:
            raise ValueError("Access needs at least one role")
        grants = []
        for spec in specs:
            match = _SPEC.match(spec)
            role = match and match["role"]
            if match is None or (role and role not in (*ROLES, "any")):
                raise ValueError(f"Access: '{spec}' is not 'any', a role ({', '.join(ROLES)}) "
                                 "or 'site:{param}'")
            grants.append(_Grant("site", match["param"]) if match["param"] else _Grant(role))
        self.grants: tuple[_Grant, ...] = tuple(grants)

    @property
    def roles(self) -> list[str]:
        """Who may call, as declared (``["site:{site_id}", "admin"]``)."""
        return [str(g) for g in self.grants]

    def describe(self) -> str:
        """``site:{site_id}, admin`` — for messages and the OpenAPI description."""
        return ", ".join(self.roles)

    async def check(self, request: Request) -> Principal:
        """The caller, or HTTPException 401/403; stores the caller in the request scope."""
        found = request.scope.get(PRINCIPAL_KEY)
        if isinstance(found, Principal):
            who = found
        else:
            who = await self._authenticate(request)
            request.scope[PRINCIPAL_KEY] = who
        if not any(g.allows(who, request.path_params) for g in self.grants):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"{who.label} may not {request.method} {request.url.path}; it is open to "
                       f"{self.describe()} — fix: use a token of one of those roles")
        return who

    async def _authenticate(self, request: Request) -> Principal:
        header = request.headers.get("authorization")
        if not header:
            raise _unauthorized("no bearer token — fix: send 'Authorization: Bearer <token>' "
                                "with a token from gridbridge exchange token create")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("the Authorization header is not 'Bearer <token>' — fix: send "
                                "'Authorization: Bearer <token>'")
        who = None
        if len(token) <= _MAX_TOKEN_CHARS:
            store: ExchangeStore = request.app.state.store
            who = await run_in_threadpool(resolve_token, store, token)
        if who is None:
            raise _unauthorized("the token is not valid (unknown or revoked) — fix: ask the "
                                "exchange's admin for a token (gridbridge exchange token create)")
        return who

    async def __call__(
        self,
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Principal:
        """The dependency: the caller (already checked by :class:`GuardedRoute`)."""
        return await self.check(request)


def find_access(dependant: Dependant) -> Access | None:
    """The :class:`Access` among a route's dependencies, or None."""
    for dep in dependant.dependencies:
        if isinstance(dep.call, Access):
            return dep.call
        found = find_access(dep)
        if found is not None:
            return found
    return None


class GuardedRoute(APIRoute):
    """An APIRoute that runs its :class:`Access` check before the body is read, and states
    who may call it in its OpenAPI description (and as ``x-roles``)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        access = find_access(self.dependant)
        if access is not None:
            note = f"Who may call: {access.describe()}."
            self.description = f"{self.description}\n\n{note}" if self.description else note
            self.openapi_extra = {**(self.openapi_extra or {}), "x-roles": access.roles}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        access = find_access(self.dependant)
        if access is None:
            return handler

        async def guarded(request: Request) -> Response:
            await access.check(request)
            return await handler(request)

        return guarded


def unguarded_paths(routes: Sequence[Any], prefix: str) -> list[str]:
    """Paths under ``prefix`` whose routes declare no :class:`Access` (should be none)."""
    return [r.path for r in routes if isinstance(r, APIRoute) and r.path.startswith(prefix)
            and find_access(r.dependant) is None]
