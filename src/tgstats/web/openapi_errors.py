"""Make the OpenAPI schema tell the truth about errors.

Litestar documents its own default error body (``status_code``/``detail``);
tgstats answers every error in one format, ``{"error": {...}}`` (see
``tgstats.web.errors``). ``document_error_responses`` rewrites every 4xx/5xx
response in the generated schema to that format and, for ``/api/`` operations,
documents the errors any of them can give: 400 (bad parameter), 401 (no or bad
token), 403 (not this chat, or admin only), 404 (unknown chat), 413 (body too
large), 415 (not JSON), 429 (rate limited) and 503 (database unavailable).
It also states what the app enforces on input, so a fuzzer tries exactly the
edges: request bodies whose Struct forbids unknown fields say
``additionalProperties: false``, and ``from``/``to`` are ``format: date``. Schemathesis checks
responses against this, so the schema and the app cannot drift apart unseen.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    Reference,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

__all__ = ["ERROR_SCHEMA", "document_error_responses"]

_STRING = Schema(type=OpenAPIType.STRING)

ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["error"],
    properties={
        "error": Schema(
            type=OpenAPIType.OBJECT,
            required=["status", "code", "message", "request_id"],
            properties={
                "status": Schema(type=OpenAPIType.INTEGER),
                "code": _STRING,
                "message": _STRING,
                "request_id": Schema(one_of=[_STRING, Schema(type=OpenAPIType.NULL)]),
                "details": Schema(
                    type=OpenAPIType.ARRAY,
                    items=Schema(
                        type=OpenAPIType.OBJECT,
                        properties={"key": _STRING, "message": _STRING, "source": _STRING},
                    ),
                ),
            },
        )
    },
)

_API_ERRORS = {
    "400": "A parameter or the body is invalid; `details` names it",
    "401": "No token, a wrong or revoked token, or no ADMIN_API_TOKEN configured",
    "403": "The token may not read this chat, or the operation needs the admin token",
    "404": "No such chat (or object)",
    "413": "The request body is larger than MAX_REQUEST_SIZE",
    "415": "The body is not JSON (send Content-Type: application/json)",
    "429": "Rate limited (see Retry-After), or too many failed sign-ins",
    "503": "The database is unavailable; try again (see Retry-After)",
}
_METHODS = ("get", "put", "post", "delete", "patch")


def _error_content() -> dict[str, OpenAPIMediaType]:
    return {"application/json": OpenAPIMediaType(schema=Reference("#/components/schemas/Error"))}


def document_error_responses(app: Litestar) -> None:
    """Rewrite the app's (cached) OpenAPI schema; call once the routes are registered."""
    spec: OpenAPI = app.openapi_schema
    if spec.components is None:
        spec.components = Components()
    schemas = spec.components.schemas if spec.components.schemas is not None else {}
    schemas["Error"] = ERROR_SCHEMA
    spec.components.schemas = schemas
    for path, item in (spec.paths or {}).items():
        for method in _METHODS:
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = dict(operation.responses or {})
            for code, response in responses.items():
                if code[:1] in ("4", "5") and isinstance(response, OpenAPIResponse):
                    response.content = _error_content()
            if path.startswith("/api/"):
                for code, description in _API_ERRORS.items():
                    responses.setdefault(
                        code, OpenAPIResponse(description=description, content=_error_content())
                    )
            operation.responses = responses
            if path.startswith("/api/"):
                _dates_are_dates(operation)
    _closed_bodies(app, schemas)


def _dates_are_dates(operation: Any) -> None:
    for parameter in operation.parameters or ():
        if getattr(parameter, "name", None) in ("from", "to") and parameter.schema is not None:
            for option in parameter.schema.one_of or [parameter.schema]:
                if isinstance(option, Schema) and option.type == OpenAPIType.STRING:
                    option.format = OpenAPIFormat.DATE


def _closed_bodies(app: Litestar, schemas: dict[str, Any]) -> None:
    """``additionalProperties: false`` for request bodies that refuse unknown fields."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is None:
                continue
            for struct in (data.annotation, *getattr(data, "inner_types", ())):
                kind = getattr(struct, "annotation", struct)
                config = getattr(kind, "__struct_config__", None)
                schema = schemas.get(getattr(kind, "__name__", ""))
                if config is not None and config.forbid_unknown_fields and schema is not None:
                    schema.additional_properties = False
