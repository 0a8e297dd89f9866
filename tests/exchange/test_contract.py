"""The published request schemas (``/openapi.json``) agree with what the models accept.

Regression, found by tests/fuzz: a dict keyed by GPU type was published as
``patternProperties`` alone, which in JSON Schema admits any other key, while the exchange
refuses such keys with a 422; a client validating against the OpenAPI would send them.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pydantic
import pytest

from gridbridge.exchange.contract import AsksIn, TelemetryHour

HOUR = {"hour_utc": "2023-07-03T00:00Z", "carbon_g_per_kwh": 400.0, "price_eur_per_mwh": 90.0}


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
