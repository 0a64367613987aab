"""The ``sanitizer`` plugin: provides the ``Sanitizer`` service (DI key ``sanitizer``).

One place that makes user-supplied text safe to show back::

    sanitizer.html(user.first_name, max_length=32)   # Telegram HTML replies, HTML pages
    sanitizer.name(user.first_name)                 # plain text (charts, CSV), not escaped

and validates identifiers with clear errors (``ValueError`` naming the value):
``chat_id``, ``user_id``, ``username``, ``timezone``, ``iso_date``. With the
plugin disabled the app falls back to plain ``html.escape``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import TYPE_CHECKING

from tgstats.plugin_api import Plugin

from .text import (
    ELLIPSIS,
    clean,
    escape_html,
    parse_chat_id,
    parse_iso_date,
    parse_timezone,
    parse_user_id,
    parse_username,
    safe_name,
    truncate,
)

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ["ELLIPSIS", "SanitizerPlugin", "TextSanitizer", "clean", "truncate"]


class TextSanitizer:
    """Implements ``tgstats.plugin_api.Sanitizer``; also the validation helpers."""

    def html(self, text: str | None, *, max_length: int | None = None) -> str:
        return escape_html(text, max_length=max_length)

    def name(self, text: str | None, *, max_length: int = 64) -> str:
        return safe_name(text, max_length=max_length)

    def chat_id(self, value: object) -> int:
        return parse_chat_id(value)

    def user_id(self, value: object) -> int:
        return parse_user_id(value)

    def username(self, value: str) -> str:
        return parse_username(value)

    def timezone(self, value: str) -> str:
        return parse_timezone(value)

    def iso_date(self, value: str) -> date:
        return parse_iso_date(value)


class SanitizerPlugin(Plugin):
    """Escaping, length limits and validation for user-supplied text."""

    provides = ("sanitizer",)
    priority = 5

    @asynccontextmanager
    async def lifespan(self, *, app: Litestar) -> AsyncIterator[None]:
        self.services.register("sanitizer", TextSanitizer())
        try:
            yield
        finally:
            self.services.unregister("sanitizer")
