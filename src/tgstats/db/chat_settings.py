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

from tgstats.db.models import ChatRecount, ChatSettingsRow
from tgstats.i18n import SUPPORTED_LOCALES, normalize_locale
from tgstats.timezones import MAX_TIMEZONE_LENGTH, check_timezone

#: Recount states in which a zone change is still to come.
RECOUNT_WAITING = ("pending", "running")

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
    # A time zone change waiting for its recount: until it is done, ``timezone`` is the
    # zone the chat's numbers are in (``tgstats.pipeline.recount``).
    pending_timezone: str | None = None


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
    row = await session.get(ChatSettingsRow, chat_id, populate_existing=True)
    pending = await session.scalar(
        select(ChatRecount.timezone).where(
            ChatRecount.chat_id == chat_id, ChatRecount.state.in_(RECOUNT_WAITING)
        )
    )
    if row is None:
        return ChatSettings(chat_id=chat_id, timezone=default_timezone, pending_timezone=pending)
    return msgspec.structs.replace(_from_row(row), pending_timezone=pending)


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


async def update_chat_settings(
    session: AsyncSession, chat_id: int, *, default_timezone: str = "UTC", **changes: Any
) -> ChatSettings:
    """Validate and apply ``changes`` (upsert); the caller commits.

    A chat without a settings row gets one with every default (``default_timezone``,
    ``DEFAULT_TIMEZONE``, for the zone), whatever field the change names. A time zone
    change of a chat with counted history does not relabel it: it asks for a recount
    (``tgstats.pipeline.recount.request_recount``) and queues its ``recount`` job
    (``tgstats.jobs``), and ``timezone`` stays the zone the numbers are in until the
    recount switches it (``pending_timezone`` meanwhile).
    """
    from tgstats.pipeline.recount import request_recount

    clean = validate_changes(changes)
    zone = clean.pop("timezone", None)
    defaults = ChatSettings(chat_id=chat_id, timezone=default_timezone)
    values = {"chat_id": chat_id, **{f: getattr(defaults, f) for f in _FIELDS}, **clean}
    stmt = insert(ChatSettingsRow).values(**values)
    if clean:
        stmt = stmt.on_conflict_do_update(
            index_elements=[ChatSettingsRow.chat_id], set_={**clean, "updated_at": func.now()}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=[ChatSettingsRow.chat_id])
    await session.execute(stmt)
    if zone is not None:
        await request_recount(session, chat_id, zone)
    value = await get_chat_settings(session, chat_id, default_timezone=default_timezone)
    if zone is not None and value.pending_timezone is not None:
        from tgstats.jobs.builtin import defer_recount

        # Queued in the same transaction: the request and its job commit together.
        await defer_recount(session, chat_id)
    return value
