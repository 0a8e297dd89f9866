"""Schemathesis against the exchange's own OpenAPI: every endpoint, every caller (issue 7).

What is tested: every operation the real exchange server (:mod:`tests.fuzz.conftest`)
publishes in ``/openapi.json``, called with a valid token of each role the exchange has
(``site``, ``other_site``, ``member_kr``, ``member_de``, ``planner``, ``treasurer``,
``admin``) and with no token. Schemathesis generates the requests from the published schema
in two modes: positive (schema-valid; for the state-changing endpoints two bodies in three are
shaped like real reports, rounds and bids, so they get past validation and act) and negative
(schema-invalid: wrong types, missing fields, bad query strings). Every answer must

* not be a server error (5xx);
* use a status code, a content type and headers the operation documents, with a body valid
  against the documented schema (so a client built from the OpenAPI can read every answer);
* refuse schema-invalid input (4xx: ``negative_data_rejection``).

``positive_data_acceptance`` is not checked: the contract has rules JSON Schema cannot state
(stamps on whole UTC hours, release before deadline, a site's own zone, ids that exist), so
a schema-valid request is rightly refused with 404, 409 or 422.

Why: the exchange faces every member's agents and apps; broken or hostile input must get a
documented refusal, never a 500 or an answer its clients cannot parse.

How much: a caller allowed on an operation gets :data:`EXAMPLES_ALLOWED` generated requests
per mode (:data:`BODY_FACTOR` times the positive ones where bodies are shaped); a refused
caller :data:`EXAMPLES_REFUSED` (the access check answers before the body is read, so more
would find nothing). Each (operation, caller, mode) has its own fixed Hypothesis seed, so a
run is repeatable for the same schema and server state. Failures are collected, not shrunk,
so one run lists every distinct failure with a ``curl`` line that repeats it. The last test
checks that the run made at least :data:`MIN_REQUESTS` requests and writes the count (and
the answers by status) to ``build/fuzz/api-requests.txt``.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.errors import FailureGroup
from schemathesis.schemas import APIOperation

from gridbridge.reports.build import REPORT_TABLES
from tests.conftest import REPO_ROOT
from tests.exchange.server import OTHER_SITE, SITE, START, TOKENS
from tests.fuzz.conftest import FuzzMarket

#: Who calls: a token name of :data:`tests.exchange.server.TOKENS`, or None (no token).
CALLERS: tuple[str | None, ...] = (*TOKENS, None)
#: Generated requests per (operation, allowed caller, mode) and per refused caller.
EXAMPLES_ALLOWED = {GenerationMode.POSITIVE: 16, GenerationMode.NEGATIVE: 8}
EXAMPLES_REFUSED = {GenerationMode.POSITIVE: 2, GenerationMode.NEGATIVE: 1}
#: Allowed callers of an operation with shaped bodies (:data:`BODIES`) get this many times
#: the positive examples: most bodies there are refused by a rule, few reach the database.
BODY_FACTOR = 2
#: The issue's floor for one run.
MIN_REQUESTS = 1000
COUNT_FILE = REPO_ROOT / "build" / "fuzz" / "api-requests.txt"

#: Names the file endpoints serve (and some they do not).
BUNDLE_FILES = ("market.toml", "members.csv", "gpus.csv", "sites.csv", "capacity.csv",
                "grid.csv", "bids.csv", "excluded.csv", "placements.csv", "nothing.toml")
REPORT_FILES = ("settlement.xlsx", *(f"{t}.csv" for t in REPORT_TABLES),
                *(f"{t}.parquet" for t in REPORT_TABLES[:2]), "ledger.xlsx", "x.csv.parquet")

_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
           HealthCheck.large_base_example]


# ------------------------------------------------------------------ generated values

def _stamp(hours: int, fmt: str = "%Y-%m-%dT%H:%MZ") -> str:
    return (START + timedelta(hours=hours)).strftime(fmt)


def _hours(low: int, high: int) -> st.SearchStrategy[str]:
    """Whole UTC hours START+low .. START+high, in the forms clients write."""
    return st.builds(_stamp, st.integers(low, high),
                     st.sampled_from(["%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M:%SZ",
                                      "%Y-%m-%dT%H:%M:%S+00:00"]))


#: Hours about the fuzzed market's window (2023-07-03..04).
HOURS = _hours(-6, 60)
#: Any instant, any offset, as ISO 8601 (what a generic date-time generator makes).
INSTANTS = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
#: Values no field wants: extreme numbers, NaN and infinity as the strings pydantic reads as
#: floats (requests cannot send NaN literals; tests/exchange sends those with raw_json),
#: numbers as text, nulls, booleans, containers.
EXTREMES = st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 2**53 + 1, 2**63, 2**64, 10**30,
                            -(10**30), "NaN", "inf", "-Infinity", "1e999", "12.5", "", None,
                            True, [], {}])
#: Finite magnitudes beyond any real site (what overflows sums and the ledger's cents).
HUGE = st.one_of(st.floats(1e6, 1e308), st.sampled_from([1e7, 1e7 + 1, 1e4 + 1, 2**63]))
WILD = st.one_of(EXTREMES, INSTANTS, st.text(max_size=8), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
IDS = st.from_regex(r"fz-[a-z0-9]{1,8}", fullmatch=True)

# Stamps that a planner or agent would send: mostly whole UTC hours near the market's window,
# so window and bid checks are passed often enough to reach the storage and clearing code.
schemathesis.openapi.format("date-time", st.one_of(HOURS, HOURS, INSTANTS))


def _mostly(plausible: st.SearchStrategy[Any], wild: st.SearchStrategy[Any] = EXTREMES,
            one_in: int = 10) -> st.SearchStrategy[Any]:
    """``wild`` once in ``one_in`` draws, else ``plausible`` (sampled_from picks about evenly;
    st.integers(0, 9) would give 0 a third of the time)."""
    return st.sampled_from(range(one_in)).flatmap(lambda k: wild if k == 0 else plausible)


def _rarely(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value in a list of hours or rows, wild once in 40 (several per body)."""
    return _mostly(plausible, one_in=40)


@st.composite
def _mutated(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as is (four times in seven), or with one field replaced by a wild value,
    dropped, or an unknown field added."""
    how = draw(st.sampled_from(["as is", "as is", "as is", "as is", "replace", "drop", "add"]))
    key = draw(st.sampled_from(sorted(body)))
    if how == "replace":
        return body | {key: draw(WILD)}
    if how == "drop":
        return {k: v for k, v in body.items() if k != key}
    if how == "add":
        return body | {"fz_extra": draw(WILD)}
    return body


def _pools(market: FuzzMarket, caller: str | None) -> tuple[str, tuple[str, ...]]:
    """The zone and GPU types of the caller's site (of SITE for callers without one)."""
    site = (TOKENS[caller][1] if caller else None) or SITE
    return market.sites.get(site, market.sites[SITE])


@st.composite
def _telemetry(draw: st.DrawFn, market: FuzzMarket, caller: str | None,
               _path: dict[str, str]) -> dict[str, Any]:
    zone, types = _pools(market, caller)
    hour = st.fixed_dictionaries({
        "gpus_free": st.dictionaries(st.sampled_from(types),
                                     _rarely(st.integers(0, 64)), max_size=len(types)),
        "carbon_g_per_kwh": _rarely(st.floats(0, 900)),
        "price_eur_per_mwh": _rarely(st.floats(-100, 500))})
    stamps = draw(st.lists(HOURS, min_size=1, max_size=4, unique_by=lambda s: s[:13]))
    return draw(_mutated({
        "report_id": draw(IDS), "zone": draw(_mostly(st.just(zone), st.just("DE"))),
        "signal": draw(_mostly(st.just("direct"), st.just("lifecycle"))),
        "provider": "fuzz", "measured_at_utc": draw(_mostly(HOURS, INSTANTS)),
        "hours": [draw(hour) | {"hour_utc": s} for s in stamps]}))


def _placement_hours(placement: dict[str, Any]) -> list[str]:
    start = datetime.fromisoformat(placement["start_utc"])
    end = datetime.fromisoformat(placement["end_utc"])
    return [(start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%MZ")
            for h in range((end - start) // timedelta(hours=1))]


@st.composite
def _metering(draw: st.DrawFn, market: FuzzMarket, _caller: str | None,
              _path: dict[str, str]) -> dict[str, Any]:
    placed = draw(st.sampled_from(market.placements))
    row = st.fixed_dictionaries(
        {"bid_id": _mostly(st.just(placed["bid_id"]),
                           st.sampled_from([f"{placed['member']}:{placed['bid_id']}",
                                            "fz-none"])),
         "hour_utc": _mostly(st.sampled_from(_placement_hours(placed)), HOURS),
         "energy_kwh": _mostly(st.floats(0, 200), HUGE, one_in=4)},
        optional={"member": _mostly(st.just(placed["member"]), st.just("ZZ")),
                  "carbon_g_per_kwh": _mostly(st.floats(0, 900), HUGE, one_in=4)})
    return draw(_mutated({
        "report_id": draw(IDS),
        "round_id": draw(_mostly(st.just(market.cleared_round),
                                 st.sampled_from([market.open_round, "R-none"]))),
        "rows": draw(st.lists(row, min_size=1, max_size=3,
                              unique_by=lambda r: (r["bid_id"], r["hour_utc"])))}))


@st.composite
def _asks(draw: st.DrawFn, market: FuzzMarket, caller: str | None,
          _path: dict[str, str]) -> dict[str, Any]:
    _, types = _pools(market, caller)
    asks = draw(st.dictionaries(st.sampled_from(types), _mostly(st.floats(0, 10)),
                                min_size=1, max_size=len(types)))
    return draw(_mutated({"asks": asks}))


@st.composite
def _round(draw: st.DrawFn, _market: FuzzMarket, _caller: str | None,
           _path: dict[str, str]) -> dict[str, Any]:
    start = draw(st.integers(-6, 48))
    body: dict[str, Any] = {
        "window_start_utc": _stamp(start),
        "window_end_utc": _stamp(start + draw(_mostly(st.integers(1, 72),
                                                      st.sampled_from([0, -1, 745])))),
        "carbon_price_eur_per_t": draw(_mostly(st.floats(0, 500))),
        "carbon_signal": draw(st.sampled_from(["direct", "lifecycle"]))}
    if draw(st.booleans()):
        body["time_limit_s"] = draw(_mostly(st.floats(1, 60)))
    return draw(_mutated(body))


@st.composite
def _bid(draw: st.DrawFn, market: FuzzMarket, _caller: str | None,
         path: dict[str, str]) -> dict[str, Any]:
    """A bid inside the window of the fuzzed rounds; when amending, mostly for the bid id in
    the path."""
    hours = draw(st.integers(1, 12))
    release = draw(st.integers(0, 47 - hours))
    types = draw(st.lists(st.sampled_from(["H100", "A100", "GH200"]), min_size=1,
                          max_size=3, unique=True))
    body = {
        "bid_id": draw(_mostly(st.just(path["bid_id"]), IDS) if "bid_id" in path
                       else st.one_of(st.sampled_from(market.bid_ids), IDS)),
        "gpus": draw(_mostly(st.integers(1, 24))),
        "options": [{"gpu_type": t, "hours": draw(_mostly(st.just(hours + i)))}
                    for i, t in enumerate(types)],
        "release_utc": _stamp(release),
        "deadline_utc": _stamp(draw(st.integers(release + hours, 48))),
        "value_eur": draw(_mostly(st.floats(1, 1e5))),
        "allowed_jurisdictions": draw(st.sampled_from([["*"], ["KR", "DE"], ["SG"], ["FR"]]))}
    return draw(_mutated(body))


#: Bodies shaped like the real thing, per (method, path); positive mode only.
BODIES: dict[tuple[str, str],
             Callable[[FuzzMarket, str | None, dict[str, str]],
                      st.SearchStrategy[dict[str, Any]]]] = {
    ("POST", "/v1/sites/{site_id}/telemetry"): _telemetry,
    ("POST", "/v1/sites/{site_id}/metering"): _metering,
    ("PUT", "/v1/sites/{site_id}/asks"): _asks,
    ("POST", "/v1/rounds"): _round,
    ("POST", "/v1/rounds/{round_id}/bids"): _bid,
    ("PUT", "/v1/rounds/{round_id}/bids/{bid_id}"): _bid,
}


def _known(name: str, op: APIOperation, caller: str | None,
           market: FuzzMarket) -> list[str]:
    """Values of the path parameter ``name`` that exist in the fuzzed market."""
    if name == "site_id":
        own = (TOKENS[caller][1] if caller else None) or SITE
        return [own, own, own, own, SITE, OTHER_SITE]
    if name == "round_id":
        if op.path.endswith("/close"):  # never the open round the bid endpoints use
            return [*market.closable_rounds, market.cleared_round]
        if "/bids" in op.path:
            return [market.open_round, market.open_round, market.cleared_round]
        return [market.cleared_round, market.cleared_round, market.open_round,
                market.closable_rounds[0]]
    if name == "bid_id":
        return list(market.bid_ids)
    if name == "name":
        return list(REPORT_FILES if "/reports/" in op.path else BUNDLE_FILES)
    return []


@st.composite
def _cases(draw: st.DrawFn, op: APIOperation, caller: str | None, mode: GenerationMode,
           market: FuzzMarket) -> schemathesis.Case:
    """A case of ``op``: path parameters mostly naming things that exist (else generated),
    and in positive mode two bodies in three shaped like the real thing."""
    raw = op.definition.raw
    fixed: dict[str, str] = {}
    for parameter in raw.get("parameters", []):
        if parameter["in"] == "path":
            known = _known(parameter["name"], op, caller, market)
            value = draw(st.sampled_from([*known, None])) if known else None
            if value is not None:
                fixed[parameter["name"]] = value
    kwargs: dict[str, Any] = {}
    has_more = "requestBody" in raw or any(p["in"] != "path" for p in raw.get("parameters", []))
    # A negative case must have something left to break besides the fixed path.
    if fixed and (mode is GenerationMode.POSITIVE or has_more):
        kwargs["path_parameters"] = fixed
    make_body = BODIES.get((op.method.upper(), op.path))
    # sampled_from picks about evenly (one_of favours its first branch).
    if (mode is GenerationMode.POSITIVE and make_body is not None
            and draw(st.sampled_from([True, True, False]))):
        kwargs["body"] = draw(make_body(market, caller, fixed))
    return draw(op.as_strategy(generation_mode=mode, **kwargs))


# ------------------------------------------------------------------ running and recording

def _allowed(op: APIOperation, caller: str | None) -> bool:
    """Whether ``caller``'s role is among the operation's ``x-roles`` (no roles: open)."""
    roles = op.definition.raw.get("x-roles")
    if not roles:
        return True
    if caller is None:
        return False
    role = TOKENS[caller][0]
    return any(r in ("any", role) or (r.startswith("site:") and role == "site") for r in roles)


def _has_inputs(op: APIOperation) -> bool:
    raw = op.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody") or raw.get("security"))


@dataclass
class Run:
    """What the fuzzer did: requests sent per caller, and the distinct failures."""

    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def record(self, op: APIOperation, caller: str | None, group: FailureGroup) -> None:
        """Keep the first example of each (operation, caller, kinds of failure)."""
        kinds = ", ".join(sorted({type(failure).__name__ for failure in group.exceptions}))
        self.failures.setdefault((op.label, str(caller), kinds), str(group))


RUN = Run()


def _fuzz(op: APIOperation, caller: str | None, mode: GenerationMode, examples: int,
          market: FuzzMarket, session: requests.Session) -> None:
    token = market.exchange.tokens[caller] if caller else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    # A fixed seed per (operation, caller, mode): repeatable runs, and, unlike derandomize
    # (one seed per test function), not the same choices for every operation.
    @seed(zlib.crc32(f"{op.label}|{caller}|{mode.value}".encode()))
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=_HEALTH)
    @given(case=_cases(op, caller, mode, market))
    def run(case: schemathesis.Case) -> None:
        # call_and_validate in two steps, to count the answer even when a check fails.
        response = case.call(base_url=market.base_url, session=session, headers=headers,
                             timeout=60)
        RUN.sent[str(caller)] += 1
        RUN.statuses[(op.label, response.status_code)] += 1
        try:
            case.validate_response(response, headers=headers, transport_kwargs={
                "base_url": market.base_url, "session": session, "headers": headers,
                "timeout": 60})
        except FailureGroup as group:
            RUN.record(op, caller, group)

    run()


@pytest.mark.slow
@pytest.mark.parametrize("caller", CALLERS, ids=[str(c) for c in CALLERS])
def test_every_endpoint_answers_as_documented(fuzz_market: FuzzMarket,
                                              caller: str | None) -> None:
    """Every operation, called by ``caller`` with generated requests, answers within its
    documented statuses, content types, headers and body schemas, never 5xx, and refuses
    schema-invalid input (the module doc lists the checks)."""
    before = set(RUN.failures)
    operations = [result.ok() for result in fuzz_market.schema.get_all_operations()]
    assert len(operations) >= 20, "the exchange publishes fewer operations than expected"
    with requests.Session() as session:
        for op in operations:
            allowed = _allowed(op, caller)
            examples = EXAMPLES_ALLOWED if allowed else EXAMPLES_REFUSED
            for mode, count in examples.items():
                if mode is GenerationMode.NEGATIVE and not _has_inputs(op):
                    continue  # nothing to make invalid (GET /healthz, GET /metrics)
                if (allowed and mode is GenerationMode.POSITIVE
                        and (op.method.upper(), op.path) in BODIES):
                    count *= BODY_FACTOR
                _fuzz(op, caller, mode, count, fuzz_market, session)
    found = [RUN.failures[key] for key in RUN.failures if key not in before]
    assert not found, f"{len(found)} distinct failures as {caller}:\n\n" + "\n".join(found)


@pytest.mark.slow
def test_the_run_made_enough_requests() -> None:
    """The issue's floor: at least MIN_REQUESTS generated requests per run; the count is
    written to build/fuzz/api-requests.txt for the closing note."""
    ran = set(RUN.sent)
    if ran != {str(c) for c in CALLERS}:
        pytest.skip("run the whole module to count its requests")
    total = sum(RUN.sent.values())
    by_class: Counter[str] = Counter()
    for (_, code), n in RUN.statuses.items():
        by_class[f"{code // 100}xx"] += n
    acted = sorted({label for (label, code), _ in RUN.statuses.items()
                    if code < 300 and not label.startswith("GET")})
    COUNT_FILE.parent.mkdir(parents=True, exist_ok=True)
    COUNT_FILE.write_text(
        f"{total} generated API requests; {len(RUN.failures)} distinct failures\n"
        f"by caller: {', '.join(f'{k} {v}' for k, v in RUN.sent.items())}\n"
        f"by status class: {', '.join(f'{k} {v}' for k, v in sorted(by_class.items()))}\n"
        f"state-changing operations that succeeded at least once: {', '.join(acted)}\n",
        encoding="utf-8")
    assert total >= MIN_REQUESTS
    assert by_class["5xx"] == 0
