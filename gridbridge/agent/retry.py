"""Every HTTP call the agent makes: ``httpx`` with timeouts, retries, back-off and jitter.

What is retried: connection errors and timeouts (``httpx.TransportError``), 408, 425, 429
and every 5xx — the server may answer next time. Any other answer (2xx, 3xx, other 4xx) is
returned to the caller at once: asking again would get the same answer. Between tries the
wait doubles from ``base_s`` up to ``max_s``, and a random part (jitter) keeps a fleet of
agents that lost the exchange together from all retrying in the same instant; a
``Retry-After`` header in seconds is honoured up to ``max_s``.

The edges are injected: the ``httpx.Client`` (so tests pass an ``httpx.MockTransport``), the
``sleep`` function, the random generator, and ``cancelled`` (Ctrl-C stops the retrying).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from gridbridge.agent.errors import ProviderError

__all__ = ["RETRY_STATUSES", "Http", "RetriesExhausted", "RetryPolicy", "describe_error"]

#: Statuses worth asking again (besides every 5xx).
RETRY_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to try one request.

    ``attempts`` is the number of tries in all (1 = no retry); the wait before retry ``n``
    (0-based) is drawn from ``[d/2, d]`` with ``d = min(max_s, base_s * 2**n)``.
    """

    attempts: int = 4
    base_s: float = 0.5
    max_s: float = 30.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        cap = min(self.max_s, self.base_s * 2.0**retry)
        return cap / 2 + rng.uniform(0.0, cap / 2)


class RetriesExhausted(Exception):
    """Every try failed with a retryable problem; ``reason`` says the last one."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(f"{reason} (after {attempts} attempt(s))")
        self.reason = reason
        self.attempts = attempts


def describe_error(exc: httpx.TransportError) -> str:
    """A short, stable description of a transport failure: 'timeout', 'connection refused'."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout ({type(exc).__name__})"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from APIs; the back-off applies instead
    return seconds if seconds >= 0 else None


@dataclass
class Http:
    """An ``httpx.Client`` plus the retry policy and the injected edges."""

    client: httpx.Client
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], object] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    cancelled: Callable[[], bool] = lambda: False

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with retries; return the first non-retryable response.

        Raises :class:`RetriesExhausted` when every try failed (or ``cancelled`` turned true).
        """
        reason = "not attempted"
        retry_after: float | None = None
        for attempt in range(self.policy.attempts):
            if attempt:
                wait = self.policy.delay(attempt - 1, self.rng)
                if retry_after is not None:
                    wait = max(wait, min(retry_after, self.policy.max_s))
                self.sleep(wait)
            if self.cancelled():
                raise RetriesExhausted(f"stopped; last problem: {reason}", attempt)
            retry_after = None
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                reason = describe_error(exc)
                continue
            if response.status_code >= 500 or response.status_code in RETRY_STATUSES:
                reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                retry_after = _retry_after(response)
                response.close()
                continue
            return response
        raise RetriesExhausted(reason, self.policy.attempts)

    def get_json(self, url: str, *, provider: str, **kwargs: Any) -> Any:
        """GET ``url`` and decode its JSON; any failure is a :class:`ProviderError`.

        ``provider`` names the source in the message (the URL is given without its query, so
        no key in a query string reaches a log).
        """
        where = url.split("?", 1)[0]
        try:
            response = self.request("GET", url, **kwargs)
        except RetriesExhausted as exc:
            raise ProviderError(f"{provider}: {where} is unavailable: {exc}") from None
        if response.status_code >= 300:
            raise ProviderError(
                f"{provider}: {where} answered HTTP {response.status_code}: "
                f"{response.text[:300].strip()}")
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProviderError(f"{provider}: {where} did not answer JSON ({exc})") from None
