"""Where the MTProto session lives: the application database, or a file.

kurigram keeps three kinds of state in its ``Storage``:

- the **session** (data centre, auth key, bot user id): without it the bot
  logs in again on every start, which Telegram rate-limits hard;
- **peers** (id → access hash, type, usernames, phone): without them the
  client cannot address a chat or user it has not seen in this process;
- the **update state** (pts/qts/date/seq, one row for the common sequence and
  one per channel): with it, ``skip_updates=False`` asks Telegram for what
  happened while the bot was down (``updates.getDifference`` and
  ``updates.getChannelDifference``).

``DatabaseStorage`` keeps all three in PostgreSQL (tables ``mtproto_sessions``,
``mtproto_peers``, ``mtproto_update_state``, created by Alembic revision 0002),
keyed by a session name so several bots can share one database.
``FileSessionStorage`` is kurigram's own SQLite file at an exact path
(``TELEGRAM_SESSION_PATH``).

Writes of the session row go straight to the database: a lost auth key means a
new login. Peers and update states change on almost every update, so they are
kept in memory and written in the background at most every ``flush_interval``
seconds, and always on ``save()`` and ``close()``.

Both take a ``dc_address`` (``TELEGRAM_DC_ADDRESS``): the session then always
reports that host and port as its data centre, whatever kurigram writes into
it (a new session starts at Telegram's production DC 2). That is how a test
data centre on 127.0.0.1 is reached.

An update state is saved only once every update that arrived before it has been
handled and its events committed (``update_state_gate.py``; the plugin attaches the gate
with ``gate_update_state``): a crash then leaves a saved state that is at or
behind what was recorded, and catch-up re-delivers whatever came after it —
some of it possibly a second time, which is harmless because the writer is
idempotent. Without a gate (a storage used on its own) states are saved as
they change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyrogram import raw
from pyrogram.storage import SQLiteStorage, Storage, UpdateState
from pyrogram.storage.sqlite_storage import get_input_peer
from sqlalchemy import and_, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .tables import metadata, mtproto_peers, mtproto_sessions, mtproto_update_state
from .update_state_gate import UpdateStateGate

__all__ = [
    "DatabaseStorage",
    "FileSessionStorage",
    "metadata",
    "mtproto_peers",
    "mtproto_sessions",
    "mtproto_update_state",
]

log = logging.getLogger(__name__)


# Telegram's production DC 2, as kurigram's SQLite storage starts a new session.
_DEFAULT_SESSION: dict[str, Any] = {
    "dc_id": 2,
    "server_address": "149.154.167.51",
    "port": 443,
    "api_id": None,
    "test_mode": None,
    "auth_key": None,
    "date": 0,
    "user_id": None,
    "is_bot": None,
}

_UNSET: Any = object  # kurigram's sentinel: the accessor was called without a value


class _Peer:
    __slots__ = ("access_hash", "id", "last_update_on", "phone_number", "type", "usernames")

    def __init__(
        self,
        id: int,
        access_hash: int | None,
        type: str,
        phone_number: str | None,
        usernames: list[str],
        last_update_on: int,
    ) -> None:
        self.id = id
        self.access_hash = access_hash
        self.type = type
        self.phone_number = phone_number
        self.usernames = usernames
        self.last_update_on = last_update_on

    def row(self, session_name: str) -> dict[str, Any]:
        return {
            "session_name": session_name,
            "id": self.id,
            "access_hash": self.access_hash,
            "type": self.type,
            "usernames": self.usernames,
            "phone_number": self.phone_number,
            "last_update_on": self.last_update_on,
        }


class DatabaseStorage(Storage):
    """A kurigram ``Storage`` backed by the application's PostgreSQL.

    ``session_factory`` is the app's ``async_sessionmaker``; ``name`` tells
    sessions apart (the plugin uses ``bot<id>``, from the token's prefix).
    """

    USERNAME_TTL = SQLiteStorage.USERNAME_TTL
    PEER_CACHE_SIZE = 50_000

    def __init__(
        self,
        name: str,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        flush_interval: float = 5.0,
        dc_address: tuple[str, int] | None = None,
    ) -> None:
        self.name = name
        self._dc_address = dc_address
        self._sessions = session_factory
        self._flush_interval = flush_interval
        self._session: dict[str, Any] = {}
        self._states: dict[int, UpdateState] = {}
        self._peers: OrderedDict[int, _Peer] = OrderedDict()
        self._dirty_peers: dict[int, _Peer] = {}
        # State id -> changes not saved yet, oldest first, each tagged with the number
        # of the update that must be handled before it may be saved (0: no gate).
        self._pending_states: dict[int, list[tuple[int, UpdateState]]] = {}
        self._deleted_states: set[int] = set()
        self._gate: UpdateStateGate | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._last_flush = time.monotonic()
        self._opened = False

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        async with self._sessions() as session:
            row = (
                (
                    await session.execute(
                        select(mtproto_sessions).where(mtproto_sessions.c.name == self.name)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                await session.execute(
                    insert(mtproto_sessions)
                    .values(name=self.name, **_DEFAULT_SESSION)
                    .on_conflict_do_nothing(index_elements=["name"])
                )
                await session.commit()
                self._session = dict(_DEFAULT_SESSION)
            else:
                self._session = {key: row[key] for key in _DEFAULT_SESSION}
            states = await session.execute(
                select(mtproto_update_state).where(mtproto_update_state.c.session_name == self.name)
            )
            self._states = {s.id: UpdateState(s.id, s.pts, s.qts, s.date, s.seq) for s in states}
        self._opened = True
        if self._flush_interval > 0 and self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def save(self) -> None:
        # kurigram saves inside start() (after catch-up) and before stopping its
        # dispatcher: waiting there for the gate would hold a start up for as long as
        # the caught-up updates take to commit. The save runs in the background;
        # close() waits for everything.
        await self.date(int(time.time()))
        self._maybe_flush_later(now=True)

    async def close(self) -> None:
        if not self._opened:
            return
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        try:
            if self._flush_task is not None and not self._flush_task.done():
                with contextlib.suppress(Exception):
                    await self._flush_task
            await self._write_pending(closing=True)
        finally:
            self._opened = False

    def gate_update_state(self, gate: UpdateStateGate | None) -> None:
        """Save update states only once ``gate`` says what arrived before them is recorded."""
        self._gate = gate

    async def delete(self) -> None:
        async with self._sessions() as session, session.begin():
            for table in (mtproto_update_state, mtproto_peers):
                await session.execute(delete(table).where(table.c.session_name == self.name))
            await session.execute(
                delete(mtproto_sessions).where(mtproto_sessions.c.name == self.name)
            )
        self._session = dict(_DEFAULT_SESSION)
        self._states.clear()
        self._peers.clear()
        self._dirty_peers.clear()
        self._pending_states.clear()
        self._deleted_states.clear()

    async def flush(self) -> None:
        """Write pending peers and update states now (one transaction)."""
        if self._flush_task is not None and not self._flush_task.done():
            with contextlib.suppress(Exception):
                await self._flush_task
        await self._write_pending()

    async def _savable_states(self, *, closing: bool) -> dict[int, tuple[int, UpdateState]]:
        """Per state id, the newest pending change that may be saved now, and its index."""
        if not self._pending_states:
            return {}
        limit: int | None = None  # no gate: everything
        if self._gate is not None:
            arrived = self._gate.arrived
            try:
                await self._gate.wait(arrived)
            except Exception as exc:  # the pipeline stopped or failed: save no state now
                log.warning(
                    "MTProto update state not saved: events not committed (%s)",
                    type(exc).__name__,
                )
                return {}
            limit = arrived
            if closing and self._gate.arrived == arrived:
                # The client has stopped: changes tagged for the next update (the
                # container's date/seq, set after its last update) belong to nothing
                # unhandled.
                limit = arrived + 1
        chosen: dict[int, tuple[int, UpdateState]] = {}
        for state_id, changes in self._pending_states.items():
            for index in range(len(changes) - 1, -1, -1):
                needed, state = changes[index]
                if limit is None or needed <= limit:
                    chosen[state_id] = (index, state)
                    break
        return chosen

    async def _write_pending(self, *, closing: bool = False) -> None:
        async with self._flush_lock:
            states = await self._savable_states(closing=closing)
            peers = list(self._dirty_peers.values())
            deleted = set(self._deleted_states)
            if not peers and not states and not deleted:
                return
            self._dirty_peers.clear()
            self._deleted_states.clear()
            try:
                async with self._sessions() as session, session.begin():
                    if peers:
                        stmt = insert(mtproto_peers).values([p.row(self.name) for p in peers])
                        await session.execute(
                            stmt.on_conflict_do_update(
                                index_elements=["session_name", "id"],
                                set_={
                                    c: stmt.excluded[c]
                                    for c in (
                                        "access_hash",
                                        "type",
                                        "usernames",
                                        "phone_number",
                                        "last_update_on",
                                    )
                                },
                            )
                        )
                    if deleted:
                        await session.execute(
                            delete(mtproto_update_state).where(
                                and_(
                                    mtproto_update_state.c.session_name == self.name,
                                    mtproto_update_state.c.id.in_(deleted),
                                )
                            )
                        )
                    rows = [
                        {
                            "session_name": self.name,
                            "id": s.id,
                            "pts": s.pts,
                            "qts": s.qts,
                            "date": s.date,
                            "seq": s.seq,
                        }
                        for _, s in states.values()
                    ]
                    if rows:
                        stmt = insert(mtproto_update_state).values(rows)
                        await session.execute(
                            stmt.on_conflict_do_update(
                                index_elements=["session_name", "id"],
                                set_={c: stmt.excluded[c] for c in ("pts", "qts", "date", "seq")},
                            )
                        )
            except BaseException:
                # Keep what was not written for the next attempt; newer values win.
                for peer in peers:
                    self._dirty_peers.setdefault(peer.id, peer)
                self._deleted_states |= deleted
                raise
            else:
                # Saved: drop those changes and the older ones (newer ones stay pending;
                # a state deleted meanwhile has no pending list any more).
                for state_id, (index, _) in states.items():
                    changes = self._pending_states.get(state_id)
                    if changes is not None:
                        del changes[: index + 1]
                        if not changes:
                            del self._pending_states[state_id]
            finally:
                self._last_flush = time.monotonic()

    def _maybe_flush_later(self, *, now: bool = False) -> None:
        """Start a background flush, if none runs, when the interval passed (or ``now``)."""
        if not now and time.monotonic() - self._last_flush < self._flush_interval:
            return
        if self._flush_task is not None and not self._flush_task.done():
            return
        self._last_flush = time.monotonic()
        self._flush_task = asyncio.get_running_loop().create_task(self._background_flush())

    async def _tick(self) -> None:
        """Save what is pending in quiet times too, not only when the next update comes."""
        while True:
            await asyncio.sleep(self._flush_interval)
            if self._dirty_peers or self._pending_states or self._deleted_states:
                self._maybe_flush_later()

    async def _background_flush(self) -> None:
        try:
            await self._write_pending()
        except Exception as exc:  # the next flush retries; the session keeps running
            log.warning("MTProto session state not saved yet (%s); will retry", type(exc).__name__)

    # ------------------------------------------------------------------ peers

    def _remember(self, peer: _Peer) -> None:
        self._peers[peer.id] = peer
        self._peers.move_to_end(peer.id)
        while len(self._peers) > self.PEER_CACHE_SIZE:
            self._peers.popitem(last=False)

    async def update_peers(self, peers: Iterable[tuple[int, int, str, str | None]]) -> None:
        now = int(time.time())
        for peer_id, access_hash, peer_type, phone in peers:
            known = self._peers.get(peer_id)
            usernames = known.usernames if known is not None else []
            peer = _Peer(peer_id, access_hash, peer_type, phone, usernames, now)
            self._remember(peer)
            self._dirty_peers[peer_id] = peer
        self._maybe_flush_later()

    async def update_usernames(self, usernames: Iterable[tuple[int, list[str | None]]]) -> None:
        now = int(time.time())
        for peer_id, names in usernames:
            clean = [n.lower() for n in names if n]
            peer = self._peers.get(peer_id) or await self._load_peer(peer_id)
            if peer is None:
                continue  # kurigram always stores the peer first; nothing to attach to
            peer.usernames = clean
            peer.last_update_on = now
            self._dirty_peers[peer_id] = peer
        self._maybe_flush_later()

    async def _load_peer(self, peer_id: int) -> _Peer | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(mtproto_peers).where(
                        mtproto_peers.c.session_name == self.name, mtproto_peers.c.id == peer_id
                    )
                )
            ).first()
        if row is None:
            return None
        peer = _Peer(
            row.id,
            row.access_hash,
            row.type,
            row.phone_number,
            list(row.usernames),
            row.last_update_on,
        )
        self._remember(peer)
        return peer

    async def get_peer_by_id(self, peer_id: int) -> raw.base.InputPeer:
        peer = self._peers.get(peer_id) or await self._load_peer(peer_id)
        if peer is None:
            raise KeyError(f"ID not found: {peer_id}")
        return _input_peer(peer.id, peer.access_hash, peer.type)

    async def get_peer_by_username(self, username: str) -> raw.base.InputPeer:
        name = username.lower()
        candidates = [p for p in self._peers.values() if name in p.usernames]
        if not candidates:
            async with self._sessions() as session:
                rows = await session.execute(
                    select(mtproto_peers).where(
                        mtproto_peers.c.session_name == self.name,
                        mtproto_peers.c.usernames.contains([name]),
                    )
                )
                candidates = [
                    _Peer(
                        r.id,
                        r.access_hash,
                        r.type,
                        r.phone_number,
                        list(r.usernames),
                        r.last_update_on,
                    )
                    for r in rows
                ]
        if not candidates:
            raise KeyError(f"Username not found: {username}")
        peer = max(candidates, key=lambda p: p.last_update_on)
        if abs(time.time() - peer.last_update_on) > self.USERNAME_TTL:
            raise KeyError(f"Username expired: {username}")
        return _input_peer(peer.id, peer.access_hash, peer.type)

    async def get_peer_by_phone_number(self, phone_number: str) -> raw.base.InputPeer:
        for peer in self._peers.values():
            if peer.phone_number == phone_number:
                return _input_peer(peer.id, peer.access_hash, peer.type)
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(mtproto_peers).where(
                        mtproto_peers.c.session_name == self.name,
                        mtproto_peers.c.phone_number == phone_number,
                    )
                )
            ).first()
        if row is None:
            raise KeyError(f"Phone number not found: {phone_number}")
        return _input_peer(row.id, row.access_hash, row.type)

    # ------------------------------------------------------------------ update state

    async def get_update_states(self, ids: int | Iterable[int] | None = None) -> list[UpdateState]:
        if ids is None:
            states = list(self._states.values())
        else:
            wanted = {ids} if isinstance(ids, int) else set(ids)
            states = [s for i, s in self._states.items() if i in wanted]
        return sorted(states, key=lambda s: s.date or 0)

    async def set_update_state(self, update_state: UpdateState | Iterable[UpdateState]) -> None:
        states = [update_state] if isinstance(update_state, UpdateState) else update_state
        # kurigram sets an update's state before putting the update on the dispatcher
        # queue, so a change belongs to the next update to arrive.
        needed = self._gate.arrived + 1 if self._gate is not None else 0
        for new in states:
            old = self._states.get(new.id)
            if old is not None:  # None means "unchanged", as kurigram's COALESCE upsert
                new = UpdateState(
                    new.id,
                    new.pts if new.pts is not None else old.pts,
                    new.qts if new.qts is not None else old.qts,
                    new.date if new.date is not None else old.date,
                    new.seq if new.seq is not None else old.seq,
                )
            self._states[new.id] = new
            changes = self._pending_states.setdefault(new.id, [])
            if changes and changes[-1][0] == needed:
                changes[-1] = (needed, new)
            else:
                changes.append((needed, new))
            self._deleted_states.discard(new.id)
        self._maybe_flush_later()

    async def delete_update_state(self, state_id: int | Iterable[int]) -> None:
        ids = [state_id] if isinstance(state_id, int) else list(state_id)
        for i in ids:
            self._states.pop(i, None)
            self._pending_states.pop(i, None)
            self._deleted_states.add(i)
        self._maybe_flush_later()

    # ------------------------------------------------------------------ session row

    async def _accessor(self, attr: str, value: Any) -> Any:
        if value is _UNSET:
            return self._session.get(attr)
        self._session[attr] = value
        async with self._sessions() as session, session.begin():
            stmt = insert(mtproto_sessions).values(name=self.name, **self._session)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["name"],
                    set_={attr: stmt.excluded[attr], "updated_at": func.now()},
                )
            )
        return None

    async def dc_id(self, value: Any = _UNSET) -> Any:
        return await self._accessor("dc_id", value)

    async def server_address(self, value: Any = _UNSET) -> Any:
        if self._dc_address is not None:
            return self._dc_address[0] if value is _UNSET else None
        return await self._accessor("server_address", value)

    async def port(self, value: Any = _UNSET) -> Any:
        if self._dc_address is not None:
            return self._dc_address[1] if value is _UNSET else None
        return await self._accessor("port", value)

    async def api_id(self, value: Any = _UNSET) -> Any:
        return await self._accessor("api_id", value)

    async def test_mode(self, value: Any = _UNSET) -> Any:
        return await self._accessor("test_mode", value)

    async def auth_key(self, value: Any = _UNSET) -> Any:
        return await self._accessor("auth_key", value)

    async def date(self, value: Any = _UNSET) -> Any:
        return await self._accessor("date", value)

    async def user_id(self, value: Any = _UNSET) -> Any:
        return await self._accessor("user_id", value)

    async def is_bot(self, value: Any = _UNSET) -> Any:
        return await self._accessor("is_bot", value)


def _input_peer(peer_id: int, access_hash: int | None, peer_type: str) -> raw.base.InputPeer:
    """kurigram's ``get_input_peer``, typed (kurigram leaves it untyped)."""
    peer: raw.base.InputPeer = get_input_peer(peer_id, access_hash or 0, peer_type)
    return peer


class FileSessionStorage(SQLiteStorage):
    """kurigram's SQLite session file at exactly ``path`` (``TELEGRAM_SESSION_PATH``)."""

    def __init__(self, path: Path, *, dc_address: tuple[str, int] | None = None) -> None:
        path = path.expanduser()
        super().__init__(path.stem or "tgstats", workdir=path.parent)
        self.database = path  # type: ignore[assignment]  # kurigram annotates a str, builds a Path
        self._dc_address = dc_address

    async def server_address(self, value: Any = _UNSET) -> Any:
        if self._dc_address is not None:
            return self._dc_address[0] if value is _UNSET else None
        return await super().server_address(value)

    async def port(self, value: Any = _UNSET) -> Any:
        if self._dc_address is not None:
            return self._dc_address[1] if value is _UNSET else None
        return await super().port(value)

    async def open(self) -> None:
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        await super().open()
