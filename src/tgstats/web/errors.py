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

__all__ = ["error_body", "exception_handlers", "shown_path"]

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


#: Litestar's words when the body ends before its Content-Length (the client hung up).
_LITESTAR_DISCONNECT = "client disconnected prematurely"

#: How much of a request's path a log line shows (escaped): enough to find the route.
LOGGED_PATH_LENGTH = 120


def shown_path(path: str) -> str:
    """The path as a log line may show it: cut to a bound, control and non-ASCII escaped."""
    cut = path[:LOGGED_PATH_LENGTH]
    return ascii(cut)[1:-1] + ("…" if len(path) > LOGGED_PATH_LENGTH else "")


def _refused(
    request: Request[Any, Any, Any],
    status: int,
    message: str,
    *,
    details: Any = None,
    headers: dict[str, str] | None = None,
    reason: str | None = None,
) -> Response[Any]:
    """The error response for a refused request, and its one log line.

    The line holds the method, the bounded path, the status and a reason of our own
    (a code, parameter names), never the request's values.
    """
    log.info(
        "refused %s %s: %d %s",
        request.method,
        shown_path(request.url.path),
        status,
        reason or _CODES.get(status, "error"),
    )
    return Response(
        error_body(status, message, details=details), status_code=status, headers=headers
    )


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        details = _validation_details(exc)
        names = ", ".join(d["key"] for d in details if d.get("key"))
        message = f"invalid parameter: {names}" if names else (exc.detail or "invalid request")
        reason = f"invalid parameter: {names[:200]}" if names else "invalid request"
        return _refused(request, 400, message, details=details, reason=reason)
    headers = dict(exc.headers or {})
    if status == 500 and exc.detail == _LITESTAR_DISCONNECT:
        # The client stopped sending before its Content-Length: its fault, not ours.
        return _refused(request, 400, "the request body ended early", reason="body ended early")
    if status >= 500:
        log.error("%s answering %s %s", status, request.method, shown_path(request.url.path))
        return Response(
            error_body(status, "the service could not answer"), status_code=status, headers=headers
        )
    return _refused(request, status, exc.detail, headers=headers)


def _database_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.warning(
        "database unavailable answering %s %s: %s",
        request.method,
        shown_path(request.url.path),
        type(exc).__name__,
    )
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
        return _refused(request, 400, "a value in the request is out of range")
    log.exception("unhandled error answering %s %s", request.method, shown_path(request.url.path))
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


def _raised_by_database_driver(exc: BaseException) -> bool:
    """Whether asyncpg raised this, as it does when a connection cannot be made.

    A server that went away leaves no socket file or a refused port behind, and
    asyncpg lets the ``OSError`` (``FileNotFoundError``, ``TimeoutError``, …)
    through unwrapped; any other ``OSError`` is a bug of ours.
    """
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("asyncpg"):
            return True
        tb = tb.tb_next
    return False


def _os_error(request: Request[Any, Any, Any], exc: OSError) -> Response[Any]:
    if _raised_by_database_driver(exc):
        return _database_error(request, exc)
    return _internal_error(request, exc)


def _recursion_error(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    if "deserializing" in str(exc):  # msgspec decoding a body nested thousands deep
        return _refused(request, 400, "the JSON body is nested too deeply")
    return _internal_error(request, exc)


exception_handlers: dict[type[Exception] | int, Any] = {
    HTTPException: _http_exception,
    RecursionError: _recursion_error,
    OperationalError: _database_error,
    InterfaceError: _database_error,
    PoolTimeoutError: _database_error,
    ConnectionError: _database_error,  # refused / reset on the way to the database
    OSError: _os_error,  # no socket, a timeout: only when asyncpg raised it
    Exception: _internal_error,
}
