"""The public, versioned plugin interface of tgstats.

Plugins import only from this module (and ``tgstats.plugin_api.testing`` in
their tests). Everything else in tgstats is private and may change in any
release. See ``docs/plugins.md`` for the guide; every hook below is documented
there too and a test keeps the two in step.

A plugin is a class registered in the ``tgstats.plugins`` entry-point group::

    # pyproject.toml of your distribution
    [project.entry-points."tgstats.plugins"]
    hello = "tgstats_hello:HelloPlugin"

    # tgstats_hello.py
    from tgstats.plugin_api import BotCommand, CommandContext, Plugin

    class HelloPlugin(Plugin):
        version = "1.0.0"

        def commands(self) -> list[BotCommand]:
            return [BotCommand("hello", "Say hello", self.hello)]

        async def hello(self, ctx: CommandContext) -> None:
            await ctx.reply("Hello!")

Versioning: ``API_VERSION`` is ``MAJOR.MINOR``. A plugin declares the major it
was written for in ``api_version``; the host refuses a plugin whose major
differs, naming the version it needs. Minor releases only add.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    Protocol,
    TypeVar,
    overload,
    runtime_checkable,
)

from litestar.config.app import AppConfig
from litestar.plugins import InitPlugin

from tgstats.db.chat_settings import ChatSettings, get_chat_settings, update_chat_settings
from tgstats.events import (
    BotMembershipEvent,
    ChatMigratedEvent,
    ChatSnapshot,
    DeleteEvent,
    EditEvent,
    Event,
    ForwardOrigin,
    MemberEvent,
    MessageEvent,
    ReactionCountEvent,
    ReactionEvent,
    ServiceEvent,
    TextFeatures,
    UserSnapshot,
)
from tgstats.i18n import (
    LOCALE_NAMES,
    N_,
    SUPPORTED_LOCALES,
    Translator,
    normalize_locale,
    translator,
)
from tgstats.jobs.kinds import TELEGRAM_QUEUE, JobFailed, JobKind, JobRun, Jobs, RetryLater
from tgstats.member_counts import record_member_count
from tgstats.settings import Settings, TelegramSettings
from tgstats.timezones import check_timezone
from tgstats.web.share_links import (
    SHARE_CODE_TTL,
    IssuedShareCode,
    ShareLinkInfo,
    create_share_link,
    list_share_links,
    revoke_share_link,
)

if TYPE_CHECKING:
    from litestar import Litestar
    from opentelemetry.metrics import Meter
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = [
    "API_VERSION",
    "API_VERSION_MAJOR",
    "CACHE",
    "EVENTS",
    "LOCALE_NAMES",
    "N_",
    "RATE_LIMITER",
    "SANITIZER",
    "SETTINGS",
    "SHARE_CODE_TTL",
    "SUPPORTED_LOCALES",
    "TELEGRAM_QUEUE",
    "Answer",
    "BotCommand",
    "BotMembershipEvent",
    "ButtonContext",
    "Buttons",
    "Cache",
    "ChatMigratedEvent",
    "ChatSettings",
    "ChatSnapshot",
    "ChatType",
    "CommandContext",
    "DashboardPanel",
    "DeleteEvent",
    "DeliveryError",
    "Edit",
    "EditEvent",
    "Event",
    "EventSink",
    "ForwardOrigin",
    "HealthCheck",
    "IssuedShareCode",
    "JobFailed",
    "JobKind",
    "JobRun",
    "Jobs",
    "MemberEvent",
    "MessageEvent",
    "PanelKind",
    "Plugin",
    "PluginContext",
    "ProvidesBotHarness",
    "RateLimitResult",
    "RateLimiter",
    "ReactionCountEvent",
    "ReactionEvent",
    "RecentVersions",
    "Reply",
    "RetryLater",
    "Sanitizer",
    "Send",
    "ServiceEvent",
    "ServiceKey",
    "ServiceRegistry",
    "Settings",
    "ShareLinkInfo",
    "SharedVersionBumper",
    "SharesDataVersions",
    "TelegramSettings",
    "TextFeatures",
    "Translator",
    "UserSnapshot",
    "VersionedLookup",
    "cached",
    "check_timezone",
    "create_share_link",
    "get_chat_settings",
    "list_share_links",
    "normalize_locale",
    "record_member_count",
    "revoke_share_link",
    "translator",
    "update_chat_settings",
    "versioned_key",
]

# 1.1: Buttons, ButtonContext, DeliveryError, reply(buttons=, document=)
# 1.2: Translator, translator, N_, SUPPORTED_LOCALES, LOCALE_NAMES, normalize_locale, ctx.i18n;
#      share links (create_share_link, list_share_links, revoke_share_link, SHARE_CODE_TTL);
#      the optional capability protocols, TelegramSettings, plugin_api.charts and
#      plugin_api.features, the result Structs and row sources in plugin_api.stats,
#      the CSV tables in plugin_api.web.
# 1.3: plugin_api.coverage (lost updates and their repair).
# 1.4: background jobs: the job_kinds() hook, JobKind, JobRun, JobFailed, RetryLater,
#      TELEGRAM_QUEUE, the Jobs service ("jobs"); record_member_count.
API_VERSION = "1.4"
API_VERSION_MAJOR = 1

T = TypeVar("T")


# --------------------------------------------------------------------------- services


@runtime_checkable
class Cache(Protocol):
    """Key-value cache with TTL and namespaced keys; values are msgspec-encodable.

    Provided by the ``cache`` plugin under the DI key ``cache``. A cache never
    raises for a backend outage: it misses instead.
    """

    async def get(self, namespace: str, key: str, type_: type[T]) -> T | None: ...

    async def set(
        self, namespace: str, key: str, value: Any, *, ttl: int | None = None
    ) -> None: ...

    async def delete(self, namespace: str, key: str) -> None: ...

    async def data_version(self, chat_id: int) -> int:
        """The chat's data version, part of every stats cache key; ``-1``: unknown, skip caching."""
        ...

    async def bump_data_version(self, chat_ids: Sequence[int]) -> None:
        """Called by the writer after each committed batch."""
        ...


@runtime_checkable
class VersionedLookup(Protocol):
    """Optional capability of a ``Cache``: the data version and the value in one step."""

    async def lookup(
        self, namespace: str, key: str, type_: type[T], *, chat_id: int
    ) -> tuple[int, T | None]:
        """The chat's data version and the value cached for ``key`` at it (one round trip);
        ``(-1, None)`` when the version cannot be known."""
        ...


@runtime_checkable
class RecentVersions(Protocol):
    """Optional capability of a ``Cache``: a chat's data version from a copy at most a
    fraction of a second old. The HTTP response cache answers repeated requests only
    from a cache that has it (``docs/architecture.md``)."""

    #: Goes up whenever versions may have gone backwards (Redis restarted empty, bumps
    #: missed): whatever was kept by version elsewhere must be dropped then.
    epoch: int

    async def recent_version(self, chat_id: int) -> int: ...

    def count_hit(self) -> None:
        """Count a hit served from a layer above the cache (the HTTP response cache)."""
        ...


@runtime_checkable
class SharedVersionBumper(Protocol):
    """Bumps data versions in a cache shared between processes, from a process that
    writes without running the app (``tgstats import``)."""

    async def bump(self, chat_ids: Sequence[int]) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class SharesDataVersions(Protocol):
    """Optional capability of a plugin whose cache other processes share (Redis)."""

    def shared_version_bumper(self) -> SharedVersionBumper | None:
        """A bumper when this plugin would keep a shared cache under these settings, else
        None (an in-process cache lives in the service's memory, out of reach)."""
        ...


@runtime_checkable
class ProvidesBotHarness(Protocol):
    """Optional capability of the Telegram plugin: a network-free bot driver for tests
    (``tgstats.plugin_api.testing.RunningApp.bot``)."""

    async def start_test_harness(self) -> Any: ...


def versioned_key(chat_id: int, version: int, key: str) -> str:
    """The cache key of ``key`` for a chat at a data version (``cached`` uses it)."""
    return f"{chat_id}:v{version}:{key}"


async def cached(
    cache: Cache | None,
    namespace: str,
    key: str,
    type_: type[T],
    compute: Callable[[], Awaitable[T]],
    *,
    ttl: int | None = None,
    chat_id: int | None = None,
) -> T:
    """Return the cached value or compute, store and return it.

    With ``chat_id`` the key carries the chat's data version, so a cached
    answer is never older than the last committed batch for that chat; when
    the version cannot be known (Redis down) the cache is skipped. ``cache``
    may be None (no cache plugin): then this just computes. A cache that is a
    ``VersionedLookup`` answers the version and the value in one step (one
    Redis round trip, not two).
    """
    if cache is None:
        return await compute()
    if chat_id is None:
        hit = await cache.get(namespace, key, type_)
    else:
        if isinstance(cache, VersionedLookup):
            version, hit = await cache.lookup(namespace, key, type_, chat_id=chat_id)
        else:
            version = await cache.data_version(chat_id)
            hit = (
                None
                if version < 0
                else await cache.get(namespace, versioned_key(chat_id, version, key), type_)
            )
        if version < 0:
            return await compute()
        key = versioned_key(chat_id, version, key)
    if hit is not None:
        return hit
    value = await compute()
    await cache.set(namespace, key, value, ttl=ttl)
    return value


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the window frees a slot
    retry_after: float = 0.0  # seconds to wait when refused


@runtime_checkable
class RateLimiter(Protocol):
    """Per-key limits over a minute and an hour. Provided under the DI key ``rate_limiter``."""

    async def hit(self, key: str, *, per_minute: int, per_hour: int) -> RateLimitResult:
        """Record one request under ``key`` if the limits allow it. A limit of 0 means none."""
        ...

    async def peek(self, key: str, *, per_minute: int, per_hour: int) -> RateLimitResult:
        """Whether a ``hit`` would be allowed now, without recording anything."""
        ...


@runtime_checkable
class Sanitizer(Protocol):
    """Escaping and limits for user-supplied text shown back. DI key ``sanitizer``."""

    def html(self, text: str | None, *, max_length: int | None = None) -> str:
        """Escape for Telegram HTML replies and HTML pages; strips control/bidi characters."""
        ...

    def name(self, text: str | None, *, max_length: int = 64) -> str:
        """A display name made safe (no control or bidi overrides), not escaped."""
        ...


@runtime_checkable
class EventSink(Protocol):
    """Where sources put events. ``put`` awaits when the queue is full (backpressure)."""

    async def put(self, event: Event) -> None: ...

    async def put_many(self, events: Sequence[Event]) -> None: ...

    async def flush(self) -> None:
        """Wait until everything put so far is committed."""
        ...


class ServiceKey(str, Generic[T]):
    """A service key that carries the service's type: ``services.get(CACHE)`` is a
    ``Cache | None`` to a type checker. It is the key string itself at run time, so
    plain string keys keep working."""

    __slots__ = ()


CACHE: ServiceKey[Cache] = ServiceKey("cache")
RATE_LIMITER: ServiceKey[RateLimiter] = ServiceKey("rate_limiter")
SANITIZER: ServiceKey[Sanitizer] = ServiceKey("sanitizer")
EVENTS: ServiceKey[EventSink] = ServiceKey("events")
SETTINGS: ServiceKey[Settings] = ServiceKey("settings")


class ServiceRegistry:
    """Services shared by the core and plugins, by stable key.

    Keys used by the core: ``cache``, ``rate_limiter``, ``sanitizer``,
    ``events`` (the EventSink), ``session_factory``, ``read_session_factory``,
    ``meter``, ``settings``. A plugin registers what it ``provides`` in its
    ``lifespan`` and reads what it ``requires``.
    """

    def __init__(self) -> None:
        self._services: dict[str, Any] = {}

    def register(self, key: str, service: Any, *, replace: bool = False) -> None:
        """Register ``service`` under ``key``; a key already taken by another service is
        refused (two plugins providing one service is a configuration error) unless
        ``replace`` says so. Registering the same object again changes nothing."""
        if not replace and self._services.get(key, service) is not service:
            raise ValueError(f"service {str(key)!r} is already registered")
        self._services[key] = service

    def unregister(self, key: str) -> None:
        self._services.pop(key, None)

    @overload
    def get(self, key: ServiceKey[T]) -> T | None: ...
    @overload
    def get(self, key: ServiceKey[T], default: T) -> T: ...
    @overload
    def get(self, key: str, default: Any = None) -> Any: ...
    def get(self, key: str, default: Any = None) -> Any:
        """The service under ``key``; with a ``ServiceKey`` (e.g. ``CACHE``) typed as it."""
        return self._services.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._services

    def keys(self) -> list[str]:
        return sorted(self._services)


# --------------------------------------------------------------------------- commands


#: Inline buttons under a message: rows of ``(label, data)``. ``data`` comes back to the
#: command's ``on_button`` handler; with the command name it must fit in 64 bytes.
Buttons = Sequence[Sequence[tuple[str, str]]]


class DeliveryError(Exception):
    """A message could not be delivered (the member never started a private chat with the
    bot or blocked it, the chat is gone). ``str(err)`` is one line, safe to log."""


#: The kind of chat a command or button press came from ("other" for what tgstats does
#: not record, such as a chat with another bot).
ChatType = Literal["group", "supergroup", "channel", "private", "other"]


class Reply(Protocol):
    """``await ctx.reply(html, photo=png, buttons=...)``: HTML text, or a photo or a
    document with ``text`` as its caption, in the chat (and topic) the command came from.
    Returns what the transport sent (a kurigram ``Message`` on the real bot)."""

    def __call__(
        self,
        text: str = "",
        *,
        photo: bytes | None = None,
        document: bytes | None = None,
        filename: str = "data.json",
        buttons: Buttons | None = None,
    ) -> Awaitable[object]: ...


class Send(Protocol):
    """``await ctx.send(chat_id, html, ...)``: like ``Reply`` to another chat; returns the
    sent message id and raises ``DeliveryError`` when Telegram refuses."""

    def __call__(
        self,
        chat_id: int,
        /,
        text: str = "",
        *,
        photo: bytes | None = None,
        document: bytes | None = None,
        filename: str = "data.json",
        buttons: Buttons | None = None,
    ) -> Awaitable[int | None]: ...


class Answer(Protocol):
    """``await ctx.answer(text, alert=False)``: the short notice a button press shows."""

    def __call__(self, text: str = "", *, alert: bool = False) -> Awaitable[None]: ...


class Edit(Protocol):
    """``await ctx.edit(html)``: replace the pressed message's text, removing its buttons."""

    def __call__(self, text: str) -> Awaitable[None]: ...


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Everything a bot command handler gets. ``reply`` answers in the topic asked.

    ``await ctx.reply(html_text)`` sends Telegram-HTML text (escape user text with the
    ``sanitizer`` service); ``await ctx.reply(html_caption, photo=png_bytes)`` sends a
    picture with a caption of at most 1024 characters;
    ``reply(..., document=data, filename="x.json")`` sends a file;
    ``reply(..., buttons=[[("Yes", "yes"), ("No", "no")]])`` adds inline buttons whose
    presses go to the command's ``on_button`` handler.

    ``await ctx.send(chat_id, html_text, ...)`` sends to another chat (the same keyword
    arguments as ``reply``), for example to the member's private chat with the bot
    (``chat_id=ctx.user_id``); it raises ``DeliveryError`` when Telegram refuses.

    ``ctx.i18n`` speaks the chat's language (the ``locale`` chat setting):
    ``ctx.i18n.gettext("Hello, {name}!", name=...)``, ``ctx.i18n.ngettext(...)``,
    ``ctx.i18n.number(...)``, ``ctx.i18n.date(...)``.
    """

    command: str
    args: str
    chat_id: int
    chat_type: ChatType
    message_id: int
    user_id: int | None
    sender_chat_id: int | None
    topic_id: int | None
    services: ServiceRegistry
    settings: Settings
    reply: Reply
    is_admin: Callable[[], Awaitable[bool]]
    username: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    send: Send | None = None
    #: The chat's language (its ``locale`` setting): ``ctx.i18n.gettext("...")``.
    i18n: Translator = field(default_factory=lambda: translator(None))

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        factory: async_sessionmaker[AsyncSession] = self.services.get("session_factory")
        return factory


@dataclass(frozen=True, slots=True)
class ButtonContext:
    """A press on an inline button of a command's reply (``reply(..., buttons=...)``).

    ``data`` is what the button carried. ``await ctx.answer(text, alert=False)`` shows the
    presser a short notice (Telegram wants an answer to every press; the dispatcher sends an
    empty one when the handler did not); ``await ctx.edit(html_text)`` replaces the message's
    text and removes its buttons, so a confirmation cannot be pressed twice. ``is_admin()``
    says whether the presser administers the chat.
    """

    command: str
    data: str
    chat_id: int
    chat_type: ChatType
    message_id: int
    user_id: int
    services: ServiceRegistry
    settings: Settings
    answer: Answer
    edit: Edit
    is_admin: Callable[[], Awaitable[bool]]
    send: Send
    #: The chat's language, as for ``CommandContext.i18n``.
    i18n: Translator = field(default_factory=lambda: translator(None))

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        factory: async_sessionmaker[AsyncSession] = self.services.get("session_factory")
        return factory


CommandHandler = Callable[[CommandContext], Awaitable[None]]
ButtonHandler = Callable[[ButtonContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BotCommand:
    """A bot command a plugin answers.

    ``name`` without the slash. ``admin_only`` commands are refused politely to
    non-admins before the handler runs. ``scopes`` says where Telegram shows
    the command in its menu: ``groups``, ``private``, ``admins``. ``on_button``
    answers presses on the inline buttons the command's replies carried; it
    checks who pressed itself (anyone in the chat can press).
    """

    name: str
    description: str
    handler: CommandHandler
    admin_only: bool = False
    scopes: tuple[str, ...] = ("groups",)
    usage: str = ""
    rate_limited: bool = True
    on_button: ButtonHandler | None = None


# --------------------------------------------------------------------------- dashboard


#: How the dashboard draws a plugin panel's JSON (see ``DashboardPanel``).
PanelKind = Literal["table", "bars", "number"]


@dataclass(frozen=True, slots=True)
class DashboardPanel:
    """A panel a plugin adds to the dashboard's chat page.

    The page fetches ``/api/v1/chats/{chat_id}/<api_path>`` with its own
    ``from``/``to`` query (so the plugin's route must be under that prefix and
    check access like the built-in ones) and renders the JSON by ``kind``:

    - ``"table"``: ``{"columns": ["name", ...], "rows": [["Ann", 3], ...]}``
    - ``"bars"``: ``{"labels": ["Mon", ...], "values": [3, ...]}``
    - ``"number"``: ``{"value": 42, "label": "greetings"}``

    Every value is shown as text, never as HTML.
    """

    id: str
    title: str
    api_path: str
    kind: PanelKind = "table"


# --------------------------------------------------------------------------- health


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A readiness report. ``ok=False`` fails readiness (503) unless ``degraded`` is set."""

    name: str
    ok: bool
    detail: str = ""
    degraded: bool = False


# --------------------------------------------------------------------------- plugin


@dataclass(slots=True)
class PluginContext:
    """What the host hands a plugin when it is built."""

    plugin_id: str
    settings: Settings
    services: ServiceRegistry
    distribution: str | None = None
    dist_version: str | None = None


class Plugin(InitPlugin):
    """Base class of every tgstats plugin (a Litestar ``InitPlugin``).

    Class attributes describe the plugin to the host:

    - ``id``: defaults to the entry-point name.
    - ``version``: shown at ``/health/plugins``; defaults to the distribution's.
    - ``api_version``: the ``plugin_api`` major the plugin was written for.
    - ``requires`` / ``provides``: service keys or plugin ids; the host starts a
      plugin after those it requires.
    - ``priority``: lower runs earlier among plugins with no ordering constraint.
    - ``optional``: a failure to load is logged and skipped instead of stopping startup.

    Hooks, all optional, each documented in ``docs/plugins.md``:

    - ``on_app_init(app_config)``: Litestar's hook; add routes, providers, middleware. No I/O.
    - ``lifespan(*, app)``: an async context manager for resources (connections, tasks).
    - ``commands()``: the bot commands the plugin answers.
    - ``on_events(*, events)``: observe committed events, after each batch commits.
    - ``health()``: a readiness check.
    - ``dashboard_panels()``: panels for the dashboard's chat page.
    - ``job_kinds()``: background jobs (periodic or deferred) the job queue runs.
    """

    id: ClassVar[str] = ""
    version: ClassVar[str | None] = None
    api_version: ClassVar[int] = API_VERSION_MAJOR
    requires: ClassVar[tuple[str, ...]] = ()
    provides: ClassVar[tuple[str, ...]] = ()
    priority: ClassVar[int] = 100
    optional: ClassVar[bool] = False

    def __init__(self, *, context: PluginContext) -> None:
        self.context = context

    @property
    def settings(self) -> Settings:
        return self.context.settings

    @property
    def services(self) -> ServiceRegistry:
        return self.context.services

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Add routes, dependencies or middleware to the app. No I/O here."""
        return app_config

    @asynccontextmanager
    async def lifespan(self, *, app: Litestar) -> AsyncIterator[None]:
        """Open resources on startup and close them on shutdown; register services."""
        yield

    def commands(self) -> Sequence[BotCommand]:
        """Bot commands this plugin answers."""
        return ()

    async def on_events(self, *, events: Sequence[Event]) -> None:
        """Observe events after the batch holding them committed. Bounded in time by the host."""

    async def health(self) -> HealthCheck | None:
        """A readiness check, or None for none."""
        return None

    def dashboard_panels(self) -> Sequence[DashboardPanel]:
        """Panels this plugin adds to the dashboard's chat page."""
        return ()

    def job_kinds(self) -> Sequence[JobKind]:
        """Kinds of background job this plugin declares (read once, when the app starts)."""
        return ()

    @property
    def meter(self) -> Meter:
        meter: Meter = self.services.get("meter")
        return meter

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "id": cls.id,
            "version": cls.version,
            "api_version": cls.api_version,
            "requires": list(cls.requires),
            "provides": list(cls.provides),
            "priority": cls.priority,
        }
