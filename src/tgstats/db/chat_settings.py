"""Per-chat settings: read with defaults, change with validation.

Used by the admin bot commands, the settings API and the writer (which reads
``store_text``, ``capture_reactions`` and ``timezone`` once per batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.db.models import ChatSettingsRow
from tgstats.i18n import SUPPORTED_LOCALES, normalize_locale
from tgstats.timezones import MAX_TIMEZONE_LENGTH, check_timezone

__all__ = [
    "ChatSettings",
    "ChatSettingsChange",
    "get_chat_settings",
    "get_many_chat_settings",
    "update_chat_settings",
]

MAX_RETENTION_DAYS = 36_500
MAX_LOCALE_LENGTH = 35  # BCP 47's recommended minimum a tag must fit in


class ChatSettings(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    store_text: bool = False
    capture_reactions: bool = True
    timezone: str = "UTC"
    locale: str = "en"
    text_retention_days: int = 90
    metadata_retention_days: int = 365


class ChatSettingsChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A settings change as the API takes it: any subset of the fields, nothing else.

    Types are checked when the body is decoded; ranges and names by ``validate_changes``.
    """

    store_text: bool | msgspec.UnsetType = msgspec.UNSET
    capture_reactions: bool | msgspec.UnsetType = msgspec.UNSET
    timezone: Annotated[str, msgspec.Meta(max_length=MAX_TIMEZONE_LENGTH)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    locale: Annotated[str, msgspec.Meta(max_length=MAX_LOCALE_LENGTH)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    text_retention_days: int | msgspec.UnsetType = msgspec.UNSET
    metadata_retention_days: int | msgspec.UnsetType = msgspec.UNSET

    def changes(self) -> dict[str, Any]:
        """The fields the body set."""
        return {
            name: getattr(self, name)
            for name in self.__struct_fields__
            if getattr(self, name) is not msgspec.UNSET
        }


_FIELDS = (
    "store_text",
    "capture_reactions",
    "timezone",
    "locale",
    "text_retention_days",
    "metadata_retention_days",
)


def _from_row(row: ChatSettingsRow) -> ChatSettings:
    return ChatSettings(chat_id=row.chat_id, **{f: getattr(row, f) for f in _FIELDS})


async def get_chat_settings(
    session: AsyncSession, chat_id: int, *, default_timezone: str = "UTC"
) -> ChatSettings:
    """The chat's settings, or the defaults when it has none yet."""
    row = await session.get(ChatSettingsRow, chat_id)
    if row is None:
        return ChatSettings(chat_id=chat_id, timezone=default_timezone)
    return _from_row(row)


async def get_many_chat_settings(
    session: AsyncSession, chat_ids: Sequence[int], *, default_timezone: str = "UTC"
) -> dict[int, ChatSettings]:
    """Settings for several chats in one query (the writer calls this once per batch)."""
    result = {cid: ChatSettings(chat_id=cid, timezone=default_timezone) for cid in chat_ids}
    if chat_ids:
        rows = await session.scalars(
            select(ChatSettingsRow).where(ChatSettingsRow.chat_id.in_(list(chat_ids)))
        )
        for row in rows:
            result[row.chat_id] = _from_row(row)
    return result


def validate_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Check a settings change; raises ``ValueError`` naming the bad field."""
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in _FIELDS:
            raise ValueError(f"unknown setting {key!r}")
        if key in {"store_text", "capture_reactions"}:
            if not isinstance(value, bool):
                raise ValueError(f"{key}: expected true or false")
        elif key == "timezone":
            try:
                check_timezone(value)
            except ValueError as exc:
                raise ValueError(f"timezone: {exc}") from None
        elif key == "locale":
            language = normalize_locale(value)
            if language is None:
                raise ValueError(
                    "locale: expected one of "
                    + ", ".join(SUPPORTED_LOCALES)
                    + f", got {str(value)[:16]!r}"
                )
            value = language
        elif key.endswith("_retention_days"):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 1 <= value <= MAX_RETENTION_DAYS
            ):
                raise ValueError(
                    f"{key}: expected a whole number of days from 1 to {MAX_RETENTION_DAYS}"
                )
        clean[key] = value
    return clean


async def update_chat_settings(session: AsyncSession, chat_id: int, **changes: Any) -> ChatSettings:
    """Validate and apply ``changes`` (upsert); the caller commits.

    A timezone change does not rewrite history: rollups keep the local day they
    were counted in. ``tgstats.pipeline.rollups.rebuild_chat`` recounts a chat
    from its raw rows when an admin wants history in the new zone.
    """
    clean = validate_changes(changes)
    values = {"chat_id": chat_id, **clean}
    stmt = insert(ChatSettingsRow).values(**values)
    if clean:
        stmt = stmt.on_conflict_do_update(
            index_elements=[ChatSettingsRow.chat_id], set_={**clean, "updated_at": func.now()}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=[ChatSettingsRow.chat_id])
    await session.execute(stmt)
    row = await session.get(ChatSettingsRow, chat_id, populate_existing=True)
    assert row is not None
    return _from_row(row)
