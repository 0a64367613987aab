"""A small Telegram data centre on 127.0.0.1 that speaks real MTProto, for tests.

A kurigram client connects to it over TCP exactly as to Telegram: the
``mtproto`` package frames the transport (abridged, intermediate, padded,
obfuscated, full; the server detects which), the auth key is made by the real
Diffie-Hellman exchange (``req_pq_multi``, ``req_DH_params``,
``set_client_DH_params``) with the data centre's own RSA key (``keys.py``),
and every later message is AES-IGE encrypted with MTProto 2.0 keys.
Requests are read and answers written with kurigram's own TL classes
(``pyrogram.raw``).

What it answers: ``ping``/``ping_delay_disconnect``, ``msgs_ack``,
``invokeWithLayer``/``initConnection``/``invokeWithoutUpdates``,
``help.getConfig``, ``auth.importBotAuthorization`` (``ACCESS_TOKEN_INVALID``
for another token), ``users.getUsers``/``getFullUser``, ``updates.getState``,
``updates.getDifference`` (with ``differenceSlice`` past ``difference_limit``
updates and ``differenceTooLong`` past the kept history),
``updates.getChannelDifference`` (pages of ``channel_difference_limit``,
``channelDifferenceTooLong``), ``messages.sendMessage``/``sendMedia``/
``editMessage``, ``bots.setBotCommands``, ``channels.getParticipant(s)``,
``messages.getFullChat``, ``channels.getFullChannel``, ``channels.getMessages``
and ``messages.getMessages``; ``flood_wait`` makes the next calls of a method
answer ``FLOOD_WAIT_X``. Anything else is a ``400 METHOD_NOT_IN_TEST_DC``
(listed in ``unknown_calls``).

The scenario API (``post``, ``edit``, ``delete``, ``react``, ``join``,
``leave``; ``backfill`` for history from before the bot joined) changes chats
the way Telegram would and keeps the update sequences as Telegram keeps them:
basic groups and the bot's reactions and member updates share the common
sequence (``pts`` and ``qts``, plus ``seq`` per pushed container), each
supergroup has its own ``pts``. Each change is kept in
a bounded history (``history_limit`` per sequence: older ones make a
difference "too long") and pushed to every connected, logged-in session
unless ``live=False`` (a gap the client must notice). ``cut_connections``
drops every TCP connection; ``silence(seconds)`` stops reading, answering and
pushing for a while.

What it does not do (a stand-in, not Telegram): one data centre (no
migrations, no media DCs, no CDN), no salts checked or rotated, no re-sending
of unacknowledged messages, no message or request quick acks, no gzip, no
temporary keys or PFS, no users (only bots log in), no private chats,
topics, media contents or channels' broadcast semantics, no validation of
the client's msg ids or seq numbers, and the access hashes are not secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from mtproto import ConnectionRole
from mtproto.transport import Connection
from mtproto.transport.packets import (
    DecryptedMessagePacket,
    EncryptedMessagePacket,
    ErrorPacket,
    UnencryptedMessagePacket,
)
from pyrogram import raw, utils
from pyrogram.crypto import aes, prime
from pyrogram.raw.core import Bool, MsgContainer, TLObject, Vector

from tests.wire.keys import ServerKey
from tgstats_mtproto.raw_updates import RawUpdates

__all__ = ["TestDataCentre"]

log = logging.getLogger(__name__)

# Telegram's own example from the auth key documentation: pq = p * q, both < 2**32.
_P, _Q = 1229739323, 1402015859


class RpcFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class _Entry:
    """One change in a sequence, as Telegram keeps it for a difference."""

    update: Any
    pts: int | None = None
    qts: int | None = None
    date: int = 0


@dataclass
class _Sequence:
    """A pts sequence (the common one or a supergroup's) and its bounded history."""

    pts: int = 1
    qts: int = 1
    history: list[_Entry] = field(default_factory=list)
    floor_pts: int = 1  # a client at or above this pts can still be given a difference
    floor_qts: int = 1

    def keep(self, entry: _Entry, limit: int) -> None:
        self.history.append(entry)
        while len(self.history) > limit:
            gone = self.history.pop(0)
            if gone.pts is not None:
                self.floor_pts = gone.pts
            if gone.qts is not None:
                self.floor_qts = gone.qts


@dataclass
class _Handshake:
    nonce: int = 0
    server_nonce: int = 0
    new_nonce: bytes = b""
    a: int = 0
    tmp_key: bytes = b""
    tmp_iv: bytes = b""


class _Wire:
    """One TCP connection: transport framing, the session it carries, and pushes."""

    def __init__(self, dc: TestDataCentre, writer: asyncio.StreamWriter) -> None:
        self.dc = dc
        self.writer = writer
        self.conn = Connection(ConnectionRole.SERVER)
        self.handshake = _Handshake()
        self.auth_key: bytes | None = None
        self.session_id: int | None = None
        self.live = False  # logged in and asked for something: gets pushed updates
        self._seq = 0
        self._last_msg_id = 0

    def msg_id(self, *, response: bool) -> int:
        base = (int(time.time() * 2**32) & ~0b11) | (1 if response else 3)
        if base <= self._last_msg_id:
            base = self._last_msg_id + 4
        self._last_msg_id = base
        return base

    def write(self, packet: Any) -> None:
        if not self.writer.is_closing():
            self.writer.write(self.conn.send(packet))

    def send(self, body: TLObject, *, response: bool = True, content: bool = True) -> None:
        assert self.auth_key is not None and self.session_id is not None
        seq_no = self._seq * 2 + 1 if content else self._seq * 2
        if content:
            self._seq += 1
        packet = DecryptedMessagePacket(
            salt=bytes(8),
            session_id=self.session_id,
            message_id=self.msg_id(response=response),
            seq_no=seq_no,
            data=body.write(),
        )
        self.write(packet.encrypt(self.auth_key, ConnectionRole.SERVER))

    def push(self, updates: TLObject) -> None:
        if self.live and self.auth_key is not None and not self.dc.silent:
            self.send(updates, response=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class TestDataCentre:
    """``async with TestDataCentre(bot_token=...) as dc``; ``dc.port`` is where it listens."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        bot_token: str,
        history_limit: int = 1000,
        difference_limit: int = 100,
        channel_difference_limit: int = 100,
        key: ServerKey | None = None,
    ) -> None:
        bot_id = int(bot_token.split(":", 1)[0])
        self.bot_token = bot_token
        self.raw = RawUpdates(bot_id=bot_id, bot_username=f"bot{bot_id}")
        self.key = key or ServerKey.generate()
        self.history_limit = history_limit
        self.difference_limit = difference_limit
        self.channel_difference_limit = channel_difference_limit
        self.port = 0
        self.silent = False
        self.common = _Sequence()
        self.channels: dict[int, _Sequence] = {}
        self.chats: dict[int, Any] = {}  # raw id -> raw Chat / Channel
        self.users: dict[int, Any] = {bot_id: self.raw.bot}
        self.members: dict[int, set[int]] = {}  # raw chat id -> user ids
        self.admins: dict[int, set[int]] = {}
        self.messages: dict[tuple[int, int], Any] = {}  # (raw chat id, msg id) -> Message
        self.next_msg_id: dict[int, int] = {}
        self.seq = 0
        self.calls: list[str] = []
        self.unknown_calls: list[str] = []
        self.sent: list[Any] = []  # the bot's messages.sendMessage / sendMedia calls
        self.logins = 0
        self.connection_times: list[float] = []  # time.monotonic() of each TCP connection
        self._auth_keys: dict[int, bytes] = {}  # auth key id -> key
        self._authorized: set[int] = set()  # auth key ids logged in as the bot
        self._flood: dict[str, list[int]] = {}
        self._wires: set[_Wire] = set()
        self._server: asyncio.Server | None = None
        self._silence_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> TestDataCentre:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.cut_connections()
        for _ in range(50):  # let each connection's reader see its end before the server goes
            if not self._wires:
                break
            await asyncio.sleep(0.02)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def connected(self) -> int:
        """Connections with a logged-in session that receive pushed updates."""
        return sum(1 for w in self._wires if w.live)

    def cut_connections(self) -> int:
        """Drop every TCP connection (the client must reconnect); returns how many."""
        wires = list(self._wires)
        for wire in wires:
            wire.close()
        return len(wires)

    def silence(self, seconds: float) -> None:
        """Read nothing, answer nothing and push nothing for ``seconds``."""
        self.silent = True

        async def wake() -> None:
            await asyncio.sleep(seconds)
            self.silent = False

        self._silence_task = asyncio.get_running_loop().create_task(wake())

    def flood_wait(self, method: str, seconds: int, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` (e.g. ``"messages.SendMessage"``) flood."""
        self._flood.setdefault(method, []).extend([seconds] * times)

    # ------------------------------------------------------------------ scenario: chats

    def group(self, chat_id: int, title: str = "Group") -> Any:
        """A basic group (Bot API id ``-chat_id``) with the bot in it."""
        chat = self.raw.basic_group(chat_id, title)
        self.chats[chat_id] = chat
        self.members.setdefault(chat_id, {self.raw.bot.id})
        return chat

    def supergroup(self, channel_id: int, title: str = "Supergroup") -> Any:
        """A supergroup (Bot API id ``-100…channel_id``) with its own pts sequence."""
        chat = self.raw.supergroup(channel_id, title)
        self.chats[channel_id] = chat
        self.channels.setdefault(channel_id, _Sequence())
        self.members.setdefault(channel_id, {self.raw.bot.id})
        return chat

    def user(self, user_id: int, first_name: str = "User", **kwargs: Any) -> Any:
        user = self.raw.user(user_id, first_name, **kwargs)
        self.users[user_id] = user
        return user

    # ------------------------------------------------------------------ scenario: changes

    def post(self, chat: Any, user: Any, text: str, *, live: bool = True) -> int:
        """A new message; returns its id (sequential per chat, as Telegram numbers them)."""
        msg_id = self.next_msg_id.get(chat.id, 1)
        self.next_msg_id[chat.id] = msg_id + 1
        message = self.raw.message(chat, user, text, msg_id=msg_id, date=int(time.time()))
        self.messages[(chat.id, msg_id)] = message
        self.members.setdefault(chat.id, set()).add(user.id)
        cls = (
            raw.types.UpdateNewChannelMessage
            if self._is_channel(chat)
            else raw.types.UpdateNewMessage
        )
        self._pts_change(chat, lambda pts: cls(message=message, pts=pts, pts_count=1), live=live)
        return msg_id

    def backfill(self, chat: Any, user: Any, text: str) -> int:
        """A message from before the bot joined: in the chat's history, in no update
        sequence (only fetching it by id finds it)."""
        msg_id = self.next_msg_id.get(chat.id, 1)
        self.next_msg_id[chat.id] = msg_id + 1
        self.messages[(chat.id, msg_id)] = self.raw.message(
            chat, user, text, msg_id=msg_id, date=int(time.time())
        )
        return msg_id

    def edit(self, chat: Any, msg_id: int, text: str, *, live: bool = True) -> None:
        old = self.messages[(chat.id, msg_id)]
        message = self.raw.message(
            chat,
            self.users[old.from_id.user_id],
            text,
            msg_id=msg_id,
            date=old.date,
            edit_date=int(time.time()),
        )
        self.messages[(chat.id, msg_id)] = message
        cls = (
            raw.types.UpdateEditChannelMessage
            if self._is_channel(chat)
            else raw.types.UpdateEditMessage
        )
        self._pts_change(chat, lambda pts: cls(message=message, pts=pts, pts_count=1), live=live)

    def delete(self, chat: Any, msg_ids: Iterable[int], *, live: bool = True) -> None:
        ids = list(msg_ids)
        for msg_id in ids:
            self.messages.pop((chat.id, msg_id), None)
        if self._is_channel(chat):
            self._pts_change(
                chat,
                lambda pts: raw.types.UpdateDeleteChannelMessages(
                    channel_id=chat.id, messages=ids, pts=pts, pts_count=len(ids)
                ),
                live=live,
                count=len(ids),
            )
        else:
            self._pts_change(
                chat,
                lambda pts: raw.types.UpdateDeleteMessages(
                    messages=ids, pts=pts, pts_count=len(ids)
                ),
                live=live,
                count=len(ids),
            )

    def react(self, chat: Any, msg_id: int, user: Any, emoji: str, *, live: bool = True) -> None:
        """``user`` sets ``emoji`` as their reaction (the bot's ``updateBotMessageReaction``)."""
        self._qts_change(
            lambda qts: raw.types.UpdateBotMessageReaction(
                peer=self._peer(chat),
                msg_id=msg_id,
                date=int(time.time()),
                actor=raw.types.PeerUser(user_id=user.id),
                old_reactions=[],
                new_reactions=[raw.types.ReactionEmoji(emoticon=emoji)],
                qts=qts,
            ),
            [chat, user],
            live=live,
        )

    def join(self, chat: Any, user: Any, *, live: bool = True) -> None:
        self.members.setdefault(chat.id, set()).add(user.id)
        self._member_change(chat, user, joined=True, live=live)

    def leave(self, chat: Any, user: Any, *, live: bool = True) -> None:
        self.members.setdefault(chat.id, set()).discard(user.id)
        self._member_change(chat, user, joined=False, live=live)

    def _member_change(self, chat: Any, user: Any, *, joined: bool, live: bool) -> None:
        now = int(time.time())
        if self._is_channel(chat):
            member = raw.types.ChannelParticipant(user_id=user.id, date=now)
            self._qts_change(
                lambda qts: raw.types.UpdateChannelParticipant(
                    channel_id=chat.id,
                    date=now,
                    actor_id=user.id,
                    user_id=user.id,
                    qts=qts,
                    prev_participant=None if joined else member,
                    new_participant=member if joined else None,
                ),
                [chat, user],
                live=live,
            )
        else:
            member = raw.types.ChatParticipant(user_id=user.id, inviter_id=user.id, date=now)
            self._qts_change(
                lambda qts: raw.types.UpdateChatParticipant(
                    chat_id=chat.id,
                    date=now,
                    actor_id=user.id,
                    user_id=user.id,
                    qts=qts,
                    prev_participant=None if joined else member,
                    new_participant=member if joined else None,
                ),
                [chat, user],
                live=live,
            )

    # ------------------------------------------------------------------ sequences

    def _is_channel(self, chat: Any) -> bool:
        return isinstance(chat, raw.types.Channel)

    @staticmethod
    def _peer(chat: Any) -> Any:
        if isinstance(chat, raw.types.Channel):
            return raw.types.PeerChannel(channel_id=chat.id)
        return raw.types.PeerChat(chat_id=chat.id)

    def _pts_change(self, chat: Any, build: Any, *, live: bool, count: int = 1) -> None:
        sequence = self.channels[chat.id] if self._is_channel(chat) else self.common
        sequence.pts += count
        update = build(sequence.pts)
        sequence.keep(_Entry(update, pts=sequence.pts, date=int(time.time())), self.history_limit)
        peers = [chat, *self._users_of(update)]
        if live:
            self._push(update, peers, common=not self._is_channel(chat))

    def _qts_change(self, build: Any, peers: list[Any], *, live: bool) -> None:
        self.common.qts += 1
        update = build(self.common.qts)
        self.common.keep(
            _Entry(update, qts=self.common.qts, date=int(time.time())), self.history_limit
        )
        if live:
            self._push(update, peers, common=True)

    def _users_of(self, update: Any) -> list[Any]:
        sender = getattr(
            getattr(getattr(update, "message", None), "from_id", None), "user_id", None
        )
        return [self.users[sender]] if sender in self.users else []

    def _push(self, update: Any, peers: list[Any], *, common: bool) -> None:
        if common:
            self.seq += 1
        container = raw.types.Updates(
            updates=[update],
            users=[p for p in peers if isinstance(p, raw.types.User)],
            chats=[p for p in peers if not isinstance(p, raw.types.User)],
            date=int(time.time()),
            seq=self.seq if common else 0,
        )
        for wire in list(self._wires):
            wire.push(container)

    def state(self) -> Any:
        return raw.types.updates.State(
            pts=self.common.pts,
            qts=self.common.qts,
            date=int(time.time()),
            seq=self.seq,
            unread_count=0,
        )

    # ------------------------------------------------------------------ connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        wire = _Wire(self, writer)
        self._wires.add(wire)
        self.connection_times.append(time.monotonic())
        try:
            while data := await reader.read(65536):
                if self.silent:
                    continue  # a black hole: what arrives now is never answered
                wire.conn.data_received(data)
                while (packet := wire.conn.next_event()) is not None:
                    if isinstance(packet, UnencryptedMessagePacket):
                        self._handshake_step(wire, packet)
                    elif isinstance(packet, EncryptedMessagePacket):
                        await self._encrypted(wire, packet)
                    else:
                        break  # a transport event (disconnect)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("test data centre: connection failed")
        finally:
            self._wires.discard(wire)
            wire.close()

    # ------------------------------------------------------------------ auth key exchange

    def _handshake_step(self, wire: _Wire, packet: UnencryptedMessagePacket) -> None:
        query = TLObject.read(BytesIO(packet.message_data))
        hs = wire.handshake
        answer: TLObject
        if isinstance(query, raw.functions.ReqPqMulti | raw.functions.ReqPq):
            hs.nonce = query.nonce
            hs.server_nonce = int.from_bytes(os.urandom(16), "little", signed=True)
            answer = raw.types.ResPQ(
                nonce=hs.nonce,
                server_nonce=hs.server_nonce,
                pq=(_P * _Q).to_bytes(8, "big"),
                server_public_key_fingerprints=[self.key.fingerprint],
            )
        elif isinstance(query, raw.functions.ReqDHParams):
            decrypted = self.key.decrypt(query.encrypted_data)
            # kurigram pads sha1(data) + data to 255 bytes: one leading zero byte here.
            inner = TLObject.read(BytesIO(decrypted[1 + 20 :]))
            hs.new_nonce = inner.new_nonce.to_bytes(32, "little", signed=True)
            server_nonce = hs.server_nonce.to_bytes(16, "little", signed=True)
            hs.tmp_key = (
                hashlib.sha1(hs.new_nonce + server_nonce).digest()
                + hashlib.sha1(server_nonce + hs.new_nonce).digest()[:12]
            )
            hs.tmp_iv = (
                hashlib.sha1(server_nonce + hs.new_nonce).digest()[12:]
                + hashlib.sha1(hs.new_nonce + hs.new_nonce).digest()
                + hs.new_nonce[:4]
            )
            dh_prime = prime.CURRENT_DH_PRIME
            hs.a = int.from_bytes(os.urandom(256), "big") % dh_prime
            g = 3
            inner_data = raw.types.ServerDHInnerData(
                nonce=hs.nonce,
                server_nonce=hs.server_nonce,
                g=g,
                dh_prime=dh_prime.to_bytes(256, "big"),
                g_a=pow(g, hs.a, dh_prime).to_bytes(256, "big"),
                server_time=int(time.time()),
            ).write()
            with_hash = hashlib.sha1(inner_data).digest() + inner_data
            with_hash += os.urandom(-len(with_hash) % 16)
            answer = raw.types.ServerDHParamsOk(
                nonce=hs.nonce,
                server_nonce=hs.server_nonce,
                encrypted_answer=aes.ige256_encrypt(with_hash, hs.tmp_key, hs.tmp_iv),
            )
        elif isinstance(query, raw.functions.SetClientDHParams):
            decrypted = aes.ige256_decrypt(query.encrypted_data, hs.tmp_key, hs.tmp_iv)
            client_inner = TLObject.read(BytesIO(decrypted[20:]))
            g_b = int.from_bytes(client_inner.g_b, "big")
            auth_key = pow(g_b, hs.a, prime.CURRENT_DH_PRIME).to_bytes(256, "big")
            key_id = int.from_bytes(hashlib.sha1(auth_key).digest()[-8:], "little", signed=True)
            self._auth_keys[key_id] = auth_key
            aux_hash = hashlib.sha1(auth_key).digest()[:8]
            answer = raw.types.DhGenOk(
                nonce=hs.nonce,
                server_nonce=hs.server_nonce,
                new_nonce_hash1=int.from_bytes(
                    hashlib.sha1(hs.new_nonce + b"\x01" + aux_hash).digest()[-16:],
                    "little",
                    signed=True,
                ),
            )
        else:
            wire.write(ErrorPacket(400))
            return
        wire.write(UnencryptedMessagePacket(wire.msg_id(response=True), answer.write()))

    # ------------------------------------------------------------------ encrypted session

    async def _encrypted(self, wire: _Wire, packet: EncryptedMessagePacket) -> None:
        auth_key = self._auth_keys.get(packet.auth_key_id)
        if auth_key is None:
            wire.write(ErrorPacket(404))  # kurigram: AuthKeyNotFound
            wire.close()
            return
        wire.auth_key = auth_key
        message = packet.decrypt(auth_key, ConnectionRole.CLIENT)
        if wire.session_id != message.session_id:
            wire.session_id = message.session_id
            wire.send(
                raw.types.NewSessionCreated(
                    first_msg_id=message.message_id,
                    unique_id=int.from_bytes(os.urandom(8), "little", signed=True),
                    server_salt=0,
                ),
                response=False,
            )
        body = TLObject.read(BytesIO(message.data))
        inner = body.messages if isinstance(body, MsgContainer) else [None]
        for item in inner:
            query, msg_id = (body, message.message_id) if item is None else (item.body, item.msg_id)
            await self._message(wire, packet.auth_key_id, query, msg_id)

    async def _message(self, wire: _Wire, key_id: int, query: Any, msg_id: int) -> None:
        if isinstance(query, raw.types.MsgsAck):
            return
        if isinstance(query, raw.functions.Ping | raw.functions.PingDelayDisconnect):
            wire.send(raw.types.Pong(msg_id=msg_id, ping_id=query.ping_id), content=False)
            return
        try:
            result = self._call(wire, key_id, query)
        except RpcFailure as failure:
            result = raw.types.RpcError(error_code=failure.code, error_message=failure.message)
        if isinstance(result, bool):
            result = _Bare(bytes(Bool(result)))
        elif isinstance(result, list):
            result = _Bare(bytes(Vector(result)))
        wire.send(raw.types.RpcResult(req_msg_id=msg_id, result=result))

    def _call(self, wire: _Wire, key_id: int, query: Any) -> Any:
        updates = True
        while isinstance(
            query,
            raw.functions.InvokeWithLayer
            | raw.functions.InitConnection
            | raw.functions.InvokeWithoutUpdates,
        ):
            updates = updates and not isinstance(query, raw.functions.InvokeWithoutUpdates)
            query = query.query
        name = ".".join(query.QUALNAME.split(".")[1:])
        self.calls.append(name)
        flood = self._flood.get(name)
        if flood:
            raise RpcFailure(420, f"FLOOD_WAIT_{flood.pop(0)}")
        if name.startswith("help."):
            if isinstance(query, raw.functions.help.GetConfig):
                return self._config()
        elif isinstance(query, raw.functions.auth.ImportBotAuthorization):
            if query.bot_auth_token != self.bot_token:
                raise RpcFailure(400, "ACCESS_TOKEN_INVALID")
            self._authorized.add(key_id)
            self.logins += 1
            return raw.types.auth.Authorization(user=self.raw.bot)
        else:
            if key_id not in self._authorized:
                raise RpcFailure(401, "AUTH_KEY_UNREGISTERED")
            if updates:
                wire.live = True
            handler = getattr(self, "_rpc_" + name.replace(".", "_"), None)
            if handler is not None:
                return handler(query)
        self.unknown_calls.append(name)
        raise RpcFailure(400, "METHOD_NOT_IN_TEST_DC")

    def _config(self) -> Any:
        now = int(time.time())
        return raw.types.Config(
            date=now,
            expires=now + 3600,
            test_mode=False,
            this_dc=2,
            dc_options=[raw.types.DcOption(id=2, ip_address="127.0.0.1", port=self.port)],
            dc_txt_domain_name="localhost",
            chat_size_max=200,
            megagroup_size_max=200000,
            forwarded_count_max=100,
            online_update_period_ms=210000,
            offline_blur_timeout_ms=5000,
            offline_idle_timeout_ms=30000,
            online_cloud_timeout_ms=300000,
            notify_cloud_delay_ms=30000,
            notify_default_delay_ms=1500,
            push_chat_period_ms=60000,
            push_chat_limit=2,
            edit_time_limit=172800,
            revoke_time_limit=2147483647,
            revoke_pm_time_limit=2147483647,
            rating_e_decay=2419200,
            stickers_recent_limit=200,
            channels_read_media_period=604800,
            call_receive_timeout_ms=20000,
            call_ring_timeout_ms=90000,
            call_connect_timeout_ms=30000,
            call_packet_timeout_ms=10000,
            me_url_prefix="https://t.me/",
            caption_length_max=1024,
            message_length_max=4096,
            webfile_dc_id=4,
        )

    # ------------------------------------------------------------------ RPC methods

    def _input_chat_id(self, peer: Any) -> int:
        return int(getattr(peer, "channel_id", None) or getattr(peer, "chat_id", 0))

    def _rpc_users_GetUsers(self, query: Any) -> Any:
        found = []
        for item in query.id:
            if isinstance(item, raw.types.InputUserSelf):
                found.append(self.raw.bot)
            elif getattr(item, "user_id", None) in self.users:
                found.append(self.users[item.user_id])
        return found

    def _rpc_users_GetFullUser(self, query: Any) -> Any:
        full = raw.types.UserFull(
            id=self.raw.bot.id,
            settings=raw.types.PeerSettings(),
            notify_settings=raw.types.PeerNotifySettings(),
            common_chats_count=0,
        )
        return raw.types.users.UserFull(full_user=full, chats=[], users=[self.raw.bot])

    def _rpc_updates_GetState(self, query: Any) -> Any:
        return self.state()

    def _rpc_updates_GetDifference(self, query: Any) -> Any:
        common = self.common
        if query.pts < common.floor_pts or (query.qts > 0 and query.qts < common.floor_qts):
            return raw.types.updates.DifferenceTooLong(pts=common.pts)
        wanted = [
            e
            for e in common.history
            if (e.pts is not None and e.pts > query.pts)
            or (e.qts is not None and query.qts > 0 and e.qts > query.qts)
        ]
        if not wanted:
            return raw.types.updates.DifferenceEmpty(date=int(time.time()), seq=self.seq)
        page = wanted[: self.difference_limit]
        messages, others = self._split(page)
        kwargs = {
            "new_messages": messages,
            "new_encrypted_messages": [],
            "other_updates": others,
            "chats": list(self.chats.values()),
            "users": list(self.users.values()),
        }
        if len(page) == len(wanted):
            return raw.types.updates.Difference(state=self.state(), **kwargs)
        pts = max([query.pts, *(e.pts for e in page if e.pts is not None)])
        qts = max([query.qts, *(e.qts for e in page if e.qts is not None)])
        intermediate = raw.types.updates.State(
            pts=pts, qts=qts, date=page[-1].date, seq=self.seq, unread_count=0
        )
        return raw.types.updates.DifferenceSlice(intermediate_state=intermediate, **kwargs)

    def _rpc_updates_GetChannelDifference(self, query: Any) -> Any:
        channel_id = query.channel.channel_id
        sequence = self.channels.get(channel_id)
        if sequence is None:
            raise RpcFailure(400, "CHANNEL_INVALID")
        chat = self.chats[channel_id]
        if query.pts < sequence.floor_pts:
            last = max((i for c, i in self.messages if c == channel_id), default=0)
            return raw.types.updates.ChannelDifferenceTooLong(
                final=True,
                dialog=raw.types.Dialog(
                    peer=raw.types.PeerChannel(channel_id=channel_id),
                    top_message=last,
                    read_inbox_max_id=last,
                    read_outbox_max_id=last,
                    unread_count=0,
                    unread_mentions_count=0,
                    unread_reactions_count=0,
                    unread_poll_votes_count=0,
                    notify_settings=raw.types.PeerNotifySettings(),
                    pts=sequence.pts,
                ),
                messages=[self.messages[(channel_id, last)]] if last else [],
                chats=[chat],
                users=list(self.users.values()),
            )
        wanted = [e for e in sequence.history if e.pts is not None and e.pts > query.pts]
        if not wanted:
            return raw.types.updates.ChannelDifferenceEmpty(final=True, pts=sequence.pts)
        page = wanted[
            : min(query.limit or self.channel_difference_limit, self.channel_difference_limit)
        ]
        messages, others = self._split(page)
        return raw.types.updates.ChannelDifference(
            final=len(page) == len(wanted) or None,
            pts=page[-1].pts,
            new_messages=messages,
            other_updates=others,
            chats=[chat],
            users=list(self.users.values()),
        )

    @staticmethod
    def _split(entries: list[_Entry]) -> tuple[list[Any], list[Any]]:
        new_message = raw.types.UpdateNewMessage | raw.types.UpdateNewChannelMessage
        messages = [e.update.message for e in entries if isinstance(e.update, new_message)]
        others = [e.update for e in entries if not isinstance(e.update, new_message)]
        return messages, others

    def _rpc_messages_SendMessage(self, query: Any) -> Any:
        self.sent.append(query)
        return self._sent_reply(query)

    def _rpc_messages_SendMedia(self, query: Any) -> Any:
        self.sent.append(query)
        return self._sent_reply(query)

    def _sent_reply(self, query: Any) -> Any:
        """The bot's own message: numbered in the chat, kept in history, not pushed back."""
        chat_id = self._input_chat_id(query.peer)
        chat = self.chats.get(chat_id)
        if chat is None:
            raise RpcFailure(400, "PEER_ID_INVALID")
        msg_id = self.next_msg_id.get(chat_id, 1)
        self.next_msg_id[chat_id] = msg_id + 1
        message = raw.types.Message(
            id=msg_id,
            peer_id=self._peer(chat),
            date=int(time.time()),
            message=getattr(query, "message", ""),
            out=True,
            from_id=raw.types.PeerUser(user_id=self.raw.bot.id),
        )
        self.messages[(chat_id, msg_id)] = message
        sequence = self.channels[chat_id] if self._is_channel(chat) else self.common
        sequence.pts += 1
        cls = (
            raw.types.UpdateNewChannelMessage
            if self._is_channel(chat)
            else raw.types.UpdateNewMessage
        )
        update = cls(message=message, pts=sequence.pts, pts_count=1)
        sequence.keep(_Entry(update, pts=sequence.pts, date=message.date), self.history_limit)
        return raw.types.Updates(
            updates=[raw.types.UpdateMessageID(id=msg_id, random_id=query.random_id), update],
            users=[self.raw.bot],
            chats=[chat],
            date=message.date,
            seq=0,
        )

    def _rpc_messages_EditMessage(self, query: Any) -> Any:
        return raw.types.Updates(updates=[], users=[], chats=[], date=int(time.time()), seq=0)

    def _rpc_bots_SetBotCommands(self, query: Any) -> Any:
        return True

    def _rpc_channels_GetParticipant(self, query: Any) -> Any:
        channel_id = query.channel.channel_id
        user_id = getattr(query.participant, "user_id", None)
        if user_id not in self.members.get(channel_id, set()):
            raise RpcFailure(400, "USER_NOT_PARTICIPANT")
        participant: Any = (
            raw.types.ChannelParticipantAdmin(
                user_id=user_id,
                promoted_by=1,
                date=int(time.time()),
                admin_rights=raw.types.ChatAdminRights(delete_messages=True),
            )
            if user_id in self.admins.get(channel_id, set())
            else raw.types.ChannelParticipant(user_id=user_id, date=int(time.time()))
        )
        return raw.types.channels.ChannelParticipant(
            participant=participant, chats=[self.chats[channel_id]], users=[self.users[user_id]]
        )

    def _rpc_channels_GetParticipants(self, query: Any) -> Any:
        channel_id = query.channel.channel_id
        admin_ids = sorted(self.admins.get(channel_id, set()))
        return raw.types.channels.ChannelParticipants(
            count=len(admin_ids),
            participants=[
                raw.types.ChannelParticipantAdmin(
                    user_id=uid,
                    promoted_by=1,
                    date=int(time.time()),
                    admin_rights=raw.types.ChatAdminRights(delete_messages=True),
                )
                for uid in admin_ids
            ],
            chats=[],
            users=[self.users[uid] for uid in admin_ids if uid in self.users],
        )

    def _rpc_messages_GetFullChat(self, query: Any) -> Any:
        chat_id = query.chat_id
        members = sorted(self.members.get(chat_id, set()))
        admins = self.admins.get(chat_id, set())
        full = raw.types.ChatFull(
            id=chat_id,
            about="",
            participants=raw.types.ChatParticipants(
                chat_id=chat_id,
                version=1,
                participants=[
                    raw.types.ChatParticipantAdmin(user_id=uid, inviter_id=1, date=0)
                    if uid in admins
                    else raw.types.ChatParticipant(user_id=uid, inviter_id=1, date=0)
                    for uid in members
                ],
            ),
            notify_settings=raw.types.PeerNotifySettings(),
        )
        return raw.types.messages.ChatFull(
            full_chat=full,
            chats=[self.chats[chat_id]],
            users=[self.users[uid] for uid in members if uid in self.users],
        )

    def _rpc_channels_GetFullChannel(self, query: Any) -> Any:
        channel_id = query.channel.channel_id
        full = raw.types.ChannelFull(
            id=channel_id,
            about="",
            read_inbox_max_id=0,
            read_outbox_max_id=0,
            unread_count=0,
            chat_photo=raw.types.PhotoEmpty(id=0),
            notify_settings=raw.types.PeerNotifySettings(),
            bot_info=[],
            pts=self.channels[channel_id].pts,
            participants_count=len(self.members.get(channel_id, set())),
        )
        return raw.types.messages.ChatFull(full_chat=full, chats=[self.chats[channel_id]], users=[])

    def _rpc_channels_GetMessages(self, query: Any) -> Any:
        channel_id = query.channel.channel_id
        found = [self._message_or_empty(channel_id, item) for item in query.id]
        return raw.types.messages.ChannelMessages(
            pts=self.channels[channel_id].pts,
            count=len(found),
            messages=found,
            topics=[],
            chats=[self.chats[channel_id]],
            users=list(self.users.values()),
        )

    def _rpc_messages_GetMessages(self, query: Any) -> Any:
        found = []
        for item in query.id:
            msg_id = _input_message_id(item)
            found.extend(m for (c, i), m in self.messages.items() if i == msg_id)
        return raw.types.messages.Messages(
            messages=found,
            topics=[],
            chats=list(self.chats.values()),
            users=list(self.users.values()),
        )

    def _message_or_empty(self, chat_id: int, item: Any) -> Any:
        msg_id = _input_message_id(item)
        message = self.messages.get((chat_id, msg_id))
        return message if message is not None else raw.types.MessageEmpty(id=msg_id)


def _input_message_id(item: Any) -> int:
    """The id of an ``InputMessageID``. kurigram's reader takes an 8-byte vector item
    (constructor + int32) for a long, so it arrives as ``id << 32 | constructor``."""
    if isinstance(item, int):
        constructor = item & 0xFFFFFFFF
        if constructor != raw.types.InputMessageID.ID:
            raise RpcFailure(400, "MESSAGE_ID_INVALID")
        return item >> 32
    return int(getattr(item, "id", 0))


class _Bare(TLObject):
    """A result that is a TL primitive (``Bool``, ``Vector<User>``), already serialised."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def write(self, *args: Any) -> bytes:
        return self.data


def bot_api_chat_id(chat: Any) -> int:
    """The id tgstats stores for a raw chat (Bot API convention)."""
    if isinstance(chat, raw.types.Channel):
        return utils.get_channel_id(chat.id)
    return -int(chat.id)
