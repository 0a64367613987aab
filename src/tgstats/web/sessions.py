"""Dashboard sessions: the signed cookie, its CSRF token, and ending a session early.

The cookie holds who signed in (admin, or a chat token's id), a random session
id, when it was issued and when it expires, signed with HMAC-SHA256 under a key
from ``SESSION_SECRET`` (or, without one, from ``ADMIN_API_TOKEN``). It never
holds a token. An admin session also carries a fingerprint of the admin token
in force, so rotating ``ADMIN_API_TOKEN`` ends every admin session; a chat
token's session ends when the token is revoked (checked in the database).

A session ends early when it signs out (``POST /logout``) or when an admin
ends all sessions (``DELETE /api/v1/sessions``). Ended ids live in the
``ended_sessions`` table until the session would have expired anyway;
``EndedSessions`` keeps a copy per process and reads the table again at most
every ``ENDED_SESSIONS_REFRESH`` seconds, so a request costs no database read.
The replica that ends a session knows at once; the others within that time.

``csrf_token(session)`` is the token a cookie-authenticated change must send in
``X-CSRF-Token``: an HMAC of the session id, so it needs no storage, differs per
session, and a page on another origin cannot read it (the dashboard puts it in
a ``<meta>`` tag of its own pages).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.db.models import EndedSession
from tgstats.settings import Settings

__all__ = [
    "CSRF_HEADER",
    "ENDED_SESSIONS_REFRESH",
    "SESSION_COOKIE",
    "EndedSessions",
    "SessionData",
    "csrf_token",
    "csrf_token_matches",
    "decode_session",
    "encode_session",
]

SESSION_COOKIE = "tgstats_session"
CSRF_HEADER = "x-csrf-token"
_SESSION_VERSION = "v2"  # v2: session id and issue time (v1 cookies sign in again)
ENDED_SESSIONS_REFRESH = 5.0
_ALL_SESSIONS = "*"


class SessionData(msgspec.Struct, frozen=True):
    kind: str
    sid: str
    issued: float
    expires: int
    chat_id: int | None = None
    token_id: int | None = None
    admin: str | None = None


def _admin_token(settings: Settings) -> str | None:
    token = settings.api.admin_token
    return token.get() if token else None


def _session_key(settings: Settings) -> bytes | None:
    secret = settings.api.session_secret
    if secret:
        return hmac.new(b"tgstats session key", secret.get().encode("utf-8"), "sha256").digest()
    admin = _admin_token(settings)
    if admin:
        # Rotating the admin token then ends every dashboard session too.
        return hmac.new(admin.encode("utf-8"), b"tgstats session key", "sha256").digest()
    return None


def _admin_fingerprint(key: bytes, settings: Settings) -> str:
    """Ties an admin session to the admin token in force when it was made."""
    admin = _admin_token(settings) or ""
    return hmac.new(key, b"admin:" + admin.encode("utf-8"), "sha256").hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_session(
    kind: str, settings: Settings, *, chat_id: int | None = None, token_id: int | None = None
) -> str:
    """A new session's cookie value for the admin (``kind="admin"``) or a chat token."""
    key = _session_key(settings)
    if key is None:
        raise ValueError("no session key: set SESSION_SECRET or ADMIN_API_TOKEN")
    now = time.time()
    data = SessionData(
        kind=kind,
        sid=secrets.token_hex(16),
        issued=now,
        expires=int(now) + settings.api.session_max_age,
        chat_id=chat_id,
        token_id=token_id,
        admin=_admin_fingerprint(key, settings) if kind == "admin" else None,
    )
    body = f"{_SESSION_VERSION}.{_b64(msgspec.json.encode(data))}"
    signature = hmac.new(key, body.encode("ascii"), "sha256").digest()
    return f"{body}.{_b64(signature)}"


def decode_session(value: str, settings: Settings) -> SessionData | None:
    """The session's data if the cookie is ours, intact and unexpired; else None.

    Whether it was ended early is ``EndedSessions``' question (it needs the database).
    """
    key = _session_key(settings)
    if key is None:
        return None
    version, _, rest = value.partition(".")
    payload, _, signature = rest.partition(".")
    if version != _SESSION_VERSION or not payload or not signature:
        return None
    expected = hmac.new(key, f"{version}.{payload}".encode("ascii", "replace"), "sha256").digest()
    try:
        if not hmac.compare_digest(_unb64(signature), expected):
            return None
        data = msgspec.json.decode(_unb64(payload), type=SessionData)
    except (ValueError, msgspec.DecodeError):
        return None
    if data.expires < time.time():
        return None
    if data.kind == "admin":
        fingerprint = _admin_fingerprint(key, settings)
        if data.admin is None or not hmac.compare_digest(data.admin, fingerprint):
            return None
    elif data.kind != "chat" or data.token_id is None or data.chat_id is None:
        return None
    return data


def csrf_token(session: SessionData, settings: Settings) -> str:
    """The token this session's changes must carry in ``X-CSRF-Token``."""
    key = _session_key(settings) or b""
    return _b64(hmac.new(key, b"csrf:" + session.sid.encode("ascii"), "sha256").digest())


def csrf_token_matches(candidate: str | None, session: SessionData, settings: Settings) -> bool:
    if not candidate:
        return False
    return hmac.compare_digest(candidate.encode("utf-8"), csrf_token(session, settings).encode())


class EndedSessions:
    """This process's copy of ``ended_sessions``, read again when older than the refresh time."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        refresh: float | None = None,
    ) -> None:
        self._factory = session_factory
        self._refresh = ENDED_SESSIONS_REFRESH if refresh is None else refresh
        self._ended: frozenset[str] = frozenset()
        self._all_before = 0.0
        self._loaded_at: float | None = None

    async def is_ended(self, session: SessionData) -> bool:
        if self._loaded_at is None or time.monotonic() - self._loaded_at >= self._refresh:
            await self._load()
        return session.sid in self._ended or session.issued <= self._all_before

    async def _load(self) -> None:
        async with self._factory() as db:
            rows = (await db.execute(select(EndedSession.session_id, EndedSession.ended_at))).all()
        self._ended = frozenset(r.session_id for r in rows if r.session_id != _ALL_SESSIONS)
        cutoff = [r.ended_at.timestamp() for r in rows if r.session_id == _ALL_SESSIONS]
        self._all_before = cutoff[0] if cutoff else 0.0
        self._loaded_at = time.monotonic()

    async def end(self, session: SessionData) -> None:
        """End one session (sign-out); rows of sessions past their expiry go then too."""
        async with self._factory() as db:
            await db.execute(
                delete(EndedSession).where(
                    EndedSession.expires_at < datetime.now(UTC),
                    EndedSession.session_id != _ALL_SESSIONS,
                )
            )
            await db.execute(
                insert(EndedSession)
                .values(
                    session_id=session.sid,
                    expires_at=datetime.fromtimestamp(session.expires, UTC),
                )
                .on_conflict_do_nothing(index_elements=[EndedSession.session_id])
            )
            await db.commit()
        self._ended = self._ended | {session.sid}

    async def end_all(self) -> None:
        """End every session issued until now (the caller's too)."""
        now = datetime.now(UTC)
        far = datetime(9999, 1, 1, tzinfo=UTC)
        async with self._factory() as db:
            statement = insert(EndedSession).values(
                session_id=_ALL_SESSIONS, ended_at=now, expires_at=far
            )
            await db.execute(
                statement.on_conflict_do_update(
                    index_elements=[EndedSession.session_id], set_={"ended_at": now}
                )
            )
            await db.commit()
        self._all_before = now.timestamp()


def ended_sessions(state: Any, session_factory: Any) -> EndedSessions:
    """The app's ``EndedSessions`` (made on first use)."""
    found: EndedSessions | None = getattr(state, "ended_sessions", None)
    if found is None:
        found = state.ended_sessions = EndedSessions(session_factory)
    return found
