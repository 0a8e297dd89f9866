"""The HTTP helper: what is retried, back-off with jitter, Retry-After, cancellation."""

from __future__ import annotations

import random

import httpx
import pytest

from gridbridge.agent.errors import ProviderError
from gridbridge.agent.retry import Http, RetriesExhausted, RetryPolicy


def scripted(*answers: int | Exception, headers: dict[str, str] | None = None
             ) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, json={"ok": answer}, headers=headers)

    return httpx.Client(transport=httpx.MockTransport(handle)), seen


def test_transient_failures_are_retried_with_growing_jittered_waits() -> None:
    client, seen = scripted(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), 503, 200)
    waits: list[float] = []
    http = Http(client, RetryPolicy(attempts=4, base_s=1.0, max_s=30.0), sleep=waits.append,
                rng=random.Random(7))
    assert http.request("GET", "http://x/").status_code == 200
    assert len(seen) == 4 and len(waits) == 3
    for retry, wait in enumerate(waits):
        cap = 2.0**retry  # 1, 2, 4 seconds
        assert cap / 2 <= wait <= cap
    assert len(set(waits)) == 3


def test_client_errors_are_returned_at_once() -> None:
    for status in (400, 401, 404, 422):
        client, seen = scripted(status)
        assert Http(client, sleep=lambda s: None).request("GET", "http://x/").status_code == status
        assert len(seen) == 1


def test_exhausted_retries_say_why_and_retry_after_is_honoured() -> None:
    client, seen = scripted(429, 429, 429, headers={"Retry-After": "7"})
    waits: list[float] = []
    http = Http(client, RetryPolicy(attempts=3, base_s=0.1, max_s=5.0), sleep=waits.append)
    with pytest.raises(RetriesExhausted, match=r"HTTP 429 Too Many Requests \(after 3"):
        http.request("GET", "http://x/")
    assert waits == [5.0, 5.0]  # Retry-After 7 s, capped at max_s
    assert len(seen) == 3


def test_cancellation_stops_retrying() -> None:
    client, seen = scripted(503, 503, 503)
    stop = {"now": False}

    def sleep(seconds: float) -> None:
        stop["now"] = True  # Ctrl-C arrives during the first back-off

    http = Http(client, RetryPolicy(attempts=3), sleep=sleep, cancelled=lambda: stop["now"])
    with pytest.raises(RetriesExhausted, match="stopped; last problem: HTTP 503"):
        http.request("GET", "http://x/")
    assert len(seen) == 1


def test_get_json_names_the_provider_and_hides_the_query() -> None:
    client, _ = scripted(500, 500)
    http = Http(client, RetryPolicy(attempts=2, base_s=0), sleep=lambda s: None)
    with pytest.raises(ProviderError) as caught:
        http.get_json("http://api.example/v3/x?token=secret", provider="example")
    assert str(caught.value).startswith("example: http://api.example/v3/x is unavailable")
    assert "secret" not in str(caught.value)
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200,
                                                                               text="<html>")))
    with pytest.raises(ProviderError, match="did not answer JSON"):
        Http(client).get_json("http://api.example/", provider="example")
