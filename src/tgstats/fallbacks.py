"""What the core uses when the cache or sanitizer plugin is disabled.

Not second implementations: a cache that never stores and an escaper that
only escapes, so that every surface keeps working with a plugin switched off.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = ["NoCache", "PlainSanitizer"]

T = TypeVar("T")


class NoCache:
    """Every lookup misses; nothing is kept."""

    async def get(self, namespace: str, key: str, type_: type[T]) -> T | None:
        return None

    async def set(self, namespace: str, key: str, value: Any, *, ttl: int | None = None) -> None:
        return None

    async def delete(self, namespace: str, key: str) -> None:
        return None

    async def data_version(self, chat_id: int) -> int:
        return 0

    async def bump_data_version(self, chat_ids: Sequence[int]) -> None:
        return None


class PlainSanitizer:
    """HTML escaping only (the sanitizer plugin also strips bidi/control characters)."""

    def html(self, text: str | None, *, max_length: int | None = None) -> str:
        value = text or ""
        if max_length is not None and len(value) > max_length:
            value = value[: max(0, max_length - 1)] + "…"
        return html.escape(value)

    def name(self, text: str | None, *, max_length: int = 64) -> str:
        value = (text or "").strip()
        return value if len(value) <= max_length else value[: max_length - 1] + "…"
