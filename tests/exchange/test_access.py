"""Who may call what, against the real server: every endpoint with every role and with no
token; 401 before the body is parsed; revoked tokens; the audit log and request ids."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from gridbridge.exchange import schema as t
from tests.conftest import run_cli
from tests.exchange.conftest import Exchange
from tests.exchange.server import SITE, TOKENS, bid_body, query, round_body, telemetry

CALLERS = ("anonymous", "revoked", "site", "other_site", "member_kr", "member_de", "planner",
           "treasurer", "admin")
_serial = itertools.count()


def _unique(prefix: str) -> str:
    return f"{prefix}-{next(_serial)}"


# (method, path, body factory, {caller: status}); callers not named get the default, the
# last element. Paths hold {round}, filled with the session's open round.
Row = tuple[str, str, Callable[[], Any] | None, dict[str, int], int]
VALID = {c: 200 for c in CALLERS if c not in ("anonymous", "revoked")}
NO_TOKEN = {"anonymous": 401, "revoked": 401}

MATRIX: list[Row] = [
    ("GET", "/healthz", None, {}, 200),
    ("GET", "/metrics", None, {}, 200),
    ("GET", "/openapi.json", None, {}, 200),
    ("GET", "/v1/registry", None, NO_TOKEN, 200),
    ("GET", "/v1/whoami", None, NO_TOKEN, 200),
    ("PUT", f"/v1/sites/{SITE}/asks", lambda: {"asks": {"H100": 1.2}},
     {**NO_TOKEN, "site": 200, "admin": 200}, 403),
    ("POST", f"/v1/sites/{SITE}/telemetry", lambda: telemetry(_unique("matrix")),
     {**NO_TOKEN, "site": 201}, 403),
    ("POST", "/v1/rounds", round_body, {**NO_TOKEN, "planner": 201, "admin": 201}, 403),
    ("GET", "/v1/rounds", None, NO_TOKEN, 200),
    ("GET", "/v1/rounds/{round}", None, NO_TOKEN, 200),
    ("GET", "/v1/rounds/R-20230703-nope", None, NO_TOKEN, 404),
    ("POST", "/v1/rounds/{round}/bids", lambda: bid_body(_unique("matrix")),
     {**NO_TOKEN, "member_kr": 201, "member_de": 201}, 403),
    ("GET", "/v1/rounds/{round}/bids", None,
     {**NO_TOKEN, "member_kr": 200, "member_de": 200, "planner": 200, "admin": 200}, 403),
    ("PUT", "/v1/rounds/{round}/bids/kr-matrix", lambda: bid_body("kr-matrix", gpus=24),
     {**NO_TOKEN, "member_kr": 200, "member_de": 404}, 403),
    ("DELETE", "/v1/rounds/{round}/bids/kr-matrix-withdrawn", None,
     {**NO_TOKEN, "member_kr": 200, "member_de": 404}, 403),
    # Closing: a round that does not exist, so the session's round stays open.
    ("POST", "/v1/rounds/R-20230703-nope/close", None,
     {**NO_TOKEN, "planner": 404, "admin": 404}, 403),
    # Results of the session's open round: 409 (not cleared) for whoever may read them.
    ("GET", "/v1/rounds/{round}/placements", None, {**NO_TOKEN}, 409),
    ("GET", "/v1/rounds/{round}/prices", None, {**NO_TOKEN}, 409),
    ("GET", "/v1/rounds/{round}/rejected", None,
     {**NO_TOKEN, "site": 403, "other_site": 403}, 409),
    # The bids of a stored bundle are sealed from members and sites (refused before the
    # round's state is looked at); an open round has no bundle yet.
    ("GET", "/v1/rounds/{round}/bundle/bids.csv", None,
     {**NO_TOKEN, "site": 403, "other_site": 403, "member_kr": 403, "member_de": 403}, 409),
    ("GET", "/v1/outlook/grid.csv?start_utc=2023-07-03T00:00Z&end_utc=2023-07-04T00:00Z"
     "&carbon_signal=direct", None, NO_TOKEN, 200),
    ("GET", "/v1/rounds/{round}/summary", None,
     {**NO_TOKEN, "planner": 409, "treasurer": 409, "admin": 409}, 403),
    ("GET", "/v1/rounds/{round}/ledger", None,
     {**NO_TOKEN, "treasurer": 409, "admin": 409}, 403),
    ("GET", f"/v1/sites/{SITE}/assignments", None, {**NO_TOKEN, "site": 200}, 403),
    # Metering of a round that does not exist (404 for its site); reports of the
    # session's open round (409, not cleared, for whoever may read them).
    ("POST", f"/v1/sites/{SITE}/metering",
     lambda: {"report_id": _unique("meter"), "round_id": "R-20230703-nope",
              "rows": [{"bid_id": "kr-matrix", "hour_utc": "2023-07-03T00:00Z",
                        "energy_kwh": 1.0}]},
     {**NO_TOKEN, "site": 404}, 403),
    ("GET", "/v1/rounds/{round}/reports/member_statements.csv", None,
     {**NO_TOKEN, "site": 403, "other_site": 403}, 409),
]


@pytest.fixture(scope="module")
def kr_bids(exchange: Exchange, open_round: str) -> str:
    client = exchange.client("member_kr")
    for bid_id in ("kr-matrix", "kr-matrix-withdrawn"):
        answer = client.post(f"/v1/rounds/{open_round}/bids", json=bid_body(bid_id))
        assert answer.status_code == 201, answer.text
    return open_round


@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r[0]} {r[1]}")
def test_access_matrix(exchange: Exchange, kr_bids: str, row: Row) -> None:
    method, path, body, expected, default = row
    path = path.replace("{round}", kr_bids)
    seen = {}
    for caller in CALLERS:
        token = None if caller == "anonymous" else caller
        client = exchange.client(token)
        answer = client.request(method, path, json=body() if body else None)
        seen[caller] = answer.status_code
        if answer.status_code == 401:
            assert answer.headers["www-authenticate"] == "Bearer"
        if answer.status_code in (401, 403, 404):
            assert "fix" in answer.json()["detail"] or "sealed" in answer.json()["detail"]
    assert seen == {c: expected.get(c, default) for c in CALLERS}


def test_whoami_names_each_tokens_role_and_subject(exchange: Exchange) -> None:
    for name, (role, subject) in TOKENS.items():
        found = exchange.client(name).get("/v1/whoami").json()
        assert (found["role"], found["subject"]) == (role, subject), name
        assert found["token_id"].startswith("tok_")


def test_every_v1_operation_is_in_the_matrix_and_states_its_roles(exchange: Exchange) -> None:
    client = exchange.client()
    spec = client.get("/openapi.json").json()
    operations = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    covered = {(m, p.split("?")[0].replace("{round}", "{round_id}")
                .replace("R-20230703-nope", "{round_id}")
                .replace(SITE, "{site_id}").replace("kr-matrix-withdrawn", "{bid_id}")
                .replace("kr-matrix", "{bid_id}").replace("member_statements.csv", "{name}")
                .replace("bids.csv", "{name}").replace("grid.csv", "{name}"))
                for m, p, *_ in MATRIX}
    assert operations <= covered
    for path, ops in spec["paths"].items():
        if path.startswith("/v1"):
            for op in ops.values():
                assert op["x-roles"] and "Who may call:" in op["description"], path
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("body", [b"{not json", b'{"report_id": 5}', b"[]"],
                         ids=["malformed", "wrong-schema", "wrong-type"])
@pytest.mark.parametrize("caller", ["anonymous", "revoked", "bogus"])
def test_a_stranger_gets_401_before_the_body_is_read(exchange: Exchange, body: bytes,
                                                     caller: str) -> None:
    headers = {"content-type": "application/json"}
    if caller == "bogus":
        headers["authorization"] = "Bearer not-a-token"
    elif caller == "revoked":
        headers["authorization"] = f"Bearer {exchange.tokens['revoked']}"
    client = exchange.client()
    answer = client.post(f"/v1/sites/{SITE}/telemetry", content=body, headers=headers)
    assert answer.status_code == 401
    assert "report_id" not in answer.text and "JSON" not in answer.text


def test_a_wrong_role_gets_403_before_the_body_is_read(exchange: Exchange) -> None:
    client = exchange.client("member_kr")
    answer = client.post(f"/v1/sites/{SITE}/telemetry", content=b"{not json",
                         headers={"content-type": "application/json"})
    assert answer.status_code == 403
    assert "member:KR may not POST" in answer.json()["detail"]


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "token abc",
                                    "Bearer " + "x" * 500])
def test_malformed_authorization_headers_get_401(exchange: Exchange, header: str) -> None:
    client = exchange.client()
    answer = client.get("/v1/registry", headers={"authorization": header})
    assert answer.status_code == 401


def test_a_token_revoked_with_the_cli_gets_401_at_once(
        exchange: Exchange, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["exchange", "token", "create", "--db", exchange.db_url,
                              "--role", "planner"], capsys)
    assert code == 0, err
    secret = out.strip().splitlines()[-1]
    token_id = out.split()[2]
    with exchange.server.client(secret) as client:
        assert client.get("/v1/rounds").status_code == 200
        code, out, err = run_cli(["exchange", "token", "revoke", token_id, "--db",
                                  exchange.db_url], capsys)
        assert code == 0 and f"revoked token {token_id}" in out, err
        answer = client.get("/v1/rounds")
    assert answer.status_code == 401 and "revoked" in answer.json()["detail"]
    code, out, _ = run_cli(["exchange", "token", "list", "--db", exchange.db_url], capsys)
    assert token_id in out and secret not in out


def test_state_changing_calls_are_audited_with_their_request_id(exchange: Exchange) -> None:
    client = exchange.client("site")
    given = client.put(f"/v1/sites/{SITE}/asks", json={"asks": {"A100": 0.55}},
                       headers={"X-Request-ID": "audit-test-1"})
    fresh = client.put(f"/v1/sites/{SITE}/asks", json={"asks": {"A100": -1}},
                       headers={"X-Request-ID": "not valid!"})
    read = client.get("/v1/registry", headers={"X-Request-ID": "audit-test-read"})
    client = exchange.client()
    stranger = client.delete("/v1/rounds/R-x/bids/b", headers={"X-Request-ID": "audit-anon"})
    assert given.status_code == 200 and given.headers["x-request-id"] == "audit-test-1"
    assert fresh.status_code == 422 and len(fresh.headers["x-request-id"]) == 32
    assert read.headers["x-request-id"] == "audit-test-read"
    assert stranger.status_code == 401

    def row(request_id: str) -> dict[str, Any] | None:
        found = query(exchange.db_url, sa.select(t.audit).where(t.audit.c.request_id ==
                                                                 request_id))
        return dict(found[0]._mapping) if found else None

    audited = row("audit-test-1")
    assert audited is not None
    assert (audited["role"], audited["subject"], audited["method"], audited["path"],
            audited["status"]) == ("site", SITE, "PUT", f"/v1/sites/{SITE}/asks", 200)
    assert audited["token_id"].startswith("tok_") and audited["at_utc"].endswith("Z")
    refused = row(fresh.headers["x-request-id"])
    assert refused is not None and refused["status"] == 422
    assert row("audit-test-read") is None  # reads are not audited
    anonymous = row("audit-anon")
    assert anonymous is not None and anonymous["token_id"] is None
    assert anonymous["status"] == 401


def test_health_and_metrics(exchange: Exchange) -> None:
    client = exchange.client()
    health = client.get("/healthz")
    metrics = client.get("/metrics")
    assert health.json() == {"status": "ok"}
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    for name in ("gridbridge_telemetry_reports_total", "gridbridge_telemetry_duplicates_total",
                 "gridbridge_rounds_total", "gridbridge_solve_seconds_total"):
        assert f"# TYPE {name} counter" in text and f"\n{name} " in text
    assert 'gridbridge_http_requests_total{status="200"}' in text
