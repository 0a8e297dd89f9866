"""Request plumbing the routers share: the store dependency, and JSON bodies parsed by hand.

FastAPI parses a declared body with the standard library's ``json`` and validates the
resulting dicts, on the event loop; a telemetry report (a week of hours) is the exchange's
largest and most frequent body, so its route instead takes the raw bytes and validates them
with pydantic's own JSON parser in the same worker thread that stores the report
(:func:`parse_json_body`). Errors are the same 422 as FastAPI's (``loc`` starting with
``body``); :func:`json_body_openapi` and :func:`add_body_schemas` keep the route's request
body in the OpenAPI document.
"""

from __future__ import annotations

import email.message
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from gridbridge.exchange.storage import ExchangeStore

__all__ = ["Store", "add_body_schemas", "json_body_openapi", "parse_json_body"]

Model = TypeVar("Model", bound=BaseModel)
_REF = "#/components/schemas/{model}"


async def _store(request: Request) -> ExchangeStore:
    # async: FastAPI runs a plain-def dependency in a worker thread, a hop for nothing here.
    return request.app.state.store  # type: ignore[no-any-return]


Store = Annotated[ExchangeStore, Depends(_store)]


def _is_json(content_type: str | None) -> bool:
    """As FastAPI decides: no Content-Type, or application/json or application/*+json."""
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json"))


def parse_json_body(model: type[Model], raw: bytes, content_type: str | None) -> Model:
    """``raw`` validated as ``model``; :class:`RequestValidationError` (422) when it is not
    JSON, not of that shape, or sent with a Content-Type other than JSON."""
    if not _is_json(content_type):
        raise RequestValidationError([{
            "type": "content_type", "loc": ("body",), "input": None,
            "msg": f"the body must be JSON, not '{content_type}' — fix: send it with "
                   "'Content-Type: application/json'"}])
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])}
             for error in exc.errors(include_url=False)]) from None


def json_body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """The route's ``openapi_extra``: a required JSON request body of ``model``."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": _REF.format(model=model.__name__)}}}}}


def add_body_schemas(openapi: dict[str, Any], *models: type[BaseModel]) -> None:
    """Put ``models`` (and the models they use) into ``openapi``'s components, where
    :func:`json_body_openapi`'s references point; a schema already there is kept."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for model in models:
        schema = model.model_json_schema(ref_template=_REF)
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas.setdefault(model.__name__, schema)
