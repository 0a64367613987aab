"""One JSON error format for every error, in every environment.

``{"error": {"status": 404, "code": "not_found", "message": "...", "request_id": "..."}}``
plus ``"details"`` for validation errors (which parameter, what was expected).
Bodies never carry stack traces, SQL, or exception text from inside the app.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from tgstats.logs import request_id_var

__all__ = ["error_body", "exception_handlers"]

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def error_body(
    status: int, message: str, *, code: str | None = None, details: Any = None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "status": status,
        "code": code or _CODES.get(status, "error"),
        "message": message,
        "request_id": request_id_var.get(),
    }
    if details:
        error["details"] = details
    return {"error": error}


def _validation_details(exc: ValidationException) -> list[dict[str, Any]]:
    details = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            details.append({k: item[k] for k in ("key", "message", "source") if k in item})
    return details


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        details = _validation_details(exc)
        names = ", ".join(d["key"] for d in details if d.get("key"))
        message = f"invalid parameter: {names}" if names else (exc.detail or "invalid request")
        return Response(error_body(400, message, details=details), status_code=400)
    message = exc.detail if status < 500 else "the service could not answer"
    headers = dict(exc.headers or {})
    return Response(error_body(status, message), status_code=status, headers=headers)


def _database_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("database error answering %s: %s", request.url.path, type(exc).__name__)
    return Response(
        error_body(HTTP_503_SERVICE_UNAVAILABLE, "the database is unavailable; try again shortly"),
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


def _unencodable_value(exc: Exception) -> bool:
    """A request value the database driver could not send (a path id past int64, say).

    asyncpg refuses to encode the argument before the query reaches the server and
    chains the encoder's ``OverflowError``/``ValueError``; errors PostgreSQL itself
    reports carry no such cause.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, (OverflowError, ValueError)):
            return True
        cause = cause.__cause__
    return False


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return _database_error(request, exc)
    if isinstance(exc, DBAPIError) and _unencodable_value(exc):
        return Response(error_body(400, "a value in the request is out of range"), status_code=400)
    log.exception("unhandled error answering %s %s", request.method, request.url.path)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.error("http_unhandled")
    return Response(
        error_body(
            HTTP_500_INTERNAL_SERVER_ERROR,
            "internal error; the request id identifies it in the logs",
        ),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


exception_handlers: dict[type[Exception] | int, Any] = {
    HTTPException: _http_exception,
    OperationalError: _database_error,
    InterfaceError: _database_error,
    PoolTimeoutError: _database_error,
    ConnectionError: _database_error,  # refused / reset on the way to the database
    Exception: _internal_error,
}
