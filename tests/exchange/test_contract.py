"""The published request schemas (``/openapi.json``) agree with what the models accept.

Regression, found by tests/fuzz: a dict keyed by GPU type was published as
``patternProperties`` alone, which in JSON Schema admits any other key, while the exchange
refuses such keys with a 422; a client validating against the OpenAPI would send them.

The sane bounds of :mod:`gridbridge.limits` are published too (``minimum``/``maximum``), so
schemathesis and clients respect them, and the models refuse just what the schema refuses.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pydantic
import pytest

from gridbridge import limits
from gridbridge.exchange.contract import AsksIn, BidIn, OutlookQuery, RoundIn, TelemetryHour
from tests.exchange.server import bid_body, round_body

HOUR = {"hour_utc": "2023-07-03T00:00Z", "carbon_g_per_kwh": 400.0, "price_eur_per_mwh": 90.0}
FREE = HOUR | {"gpus_free": {"H100": 8}}
OUTLOOK = {"start_utc": "2023-07-03T00:00Z", "end_utc": "2023-07-04T00:00Z",
           "carbon_signal": "direct"}


@pytest.mark.parametrize(("model", "body"), [
    (TelemetryHour, HOUR | {"gpus_free": {"H 100": 8}}),
    (TelemetryHour, HOUR | {"gpus_free": {"": 8}}),
    (AsksIn, {"asks": {"¿": 1.5}}),
], ids=["space-in-type", "empty-type", "not-a-type"])
def test_a_key_that_is_not_a_gpu_type_is_refused_by_model_and_schema(
        model: type[pydantic.BaseModel], body: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        model.model_validate(body)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, model.model_json_schema())


@pytest.mark.parametrize(("model", "body"), [
    (TelemetryHour, HOUR | {"gpus_free": {"H100": 8, "A100": 0}}),
    (AsksIn, {"asks": {"GH200": 1.5}}),
], ids=["telemetry-hour", "asks"])
def test_gpu_type_keys_are_accepted_by_model_and_schema(
        model: type[pydantic.BaseModel], body: dict[str, Any]) -> None:
    model.model_validate(body)
    jsonschema.validate(body, model.model_json_schema())


#: (model, body with the bounded number ``v``, the number's loc, its bound, whether the
#: contract also refuses the bound's low itself).
BOUNDED: dict[str, tuple[type[pydantic.BaseModel], Any, tuple[str, ...], limits.Limit, bool]] = {
    "telemetry-price": (TelemetryHour, lambda v: FREE | {"price_eur_per_mwh": v},
                        ("price_eur_per_mwh",), limits.PRICE_EUR_PER_MWH, False),
    "telemetry-carbon": (TelemetryHour, lambda v: FREE | {"carbon_g_per_kwh": v},
                         ("carbon_g_per_kwh",), limits.CARBON_G_PER_KWH, False),
    "ask": (AsksIn, lambda v: {"asks": {"H100": v}}, ("asks", "H100"),
            limits.ASK_EUR_PER_GPU_HOUR, False),
    "bid-value": (BidIn, lambda v: bid_body("b1", value_eur=v), ("value_eur",),
                  limits.BID_VALUE_EUR, True),
    "round-carbon-price": (RoundIn, lambda v: round_body() | {"carbon_price_eur_per_t": v},
                           ("carbon_price_eur_per_t",), limits.CARBON_PRICE_EUR_PER_T, False),
    "outlook-carbon-price": (OutlookQuery, lambda v: OUTLOOK | {"carbon_price_eur_per_t": v},
                             ("carbon_price_eur_per_t",), limits.CARBON_PRICE_EUR_PER_T, False),
}


def _just_outside(limit: limits.Limit) -> list[float]:
    return [limit.low - max(abs(limit.low) * 1e-9, 1e-3),
            limit.high + max(abs(limit.high) * 1e-9, 1e-3)]


@pytest.mark.parametrize("name", BOUNDED)
def test_sane_bounds_are_published_and_enforced_alike(name: str) -> None:
    model, body, loc, limit, low_open = BOUNDED[name]
    schema = model.model_json_schema()
    accepted = [limit.high] + ([limit.low + 0.01] if low_open else [limit.low])
    for value in accepted:
        model.model_validate(body(value))
        jsonschema.validate(body(value), schema)
    refused = _just_outside(limit) + ([limit.low] if low_open else [])
    for value in refused:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(body(value), schema)
        with pytest.raises(pydantic.ValidationError) as info:
            model.model_validate(body(value))
        [error] = info.value.errors()
        assert error["loc"] == loc and error["input"] == value
        rule = f"{limits.format_bound(limit.high)} {limit.unit}"
        assert loc[0] in error["msg"] and rule in error["msg"] and "— fix: " in error["msg"]
