"""Settings: one msgspec Struct per section, read from the environment in one place.

``Settings.from_env()`` is the only code in tgstats that reads the process
environment (plus an optional ``.env`` file). Everything else receives a
``Settings`` instance, so a test builds exactly the settings it wants::

    settings = Settings.from_env({"DATABASE_URL": "postgresql://...", "ADMIN_API_TOKEN": "x"})
    app = create_app(settings)

Every variable is declared once in ``ENV_VARS`` below; its default is the
section Struct's field default (``EnvVar.default`` shows it as text). The
``.env.example`` file and the README configuration table are generated from
that list (``tgstats config --example`` / ``--markdown``) and a test keeps them
in step.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec

from tgstats.timezones import check_timezone

__all__ = [
    "ENV_VARS",
    "ApiSettings",
    "CacheSettings",
    "DatabaseSettings",
    "EnvVar",
    "ImportSettings",
    "LoggingSettings",
    "MetricsSettings",
    "PipelineSettings",
    "PluginSettings",
    "PrivacySettings",
    "RateLimitSettings",
    "RedisSettings",
    "SecretStr",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "TelegramSettings",
]


class SettingsError(ValueError):
    """An invalid setting. ``str(err)`` is one line naming the variable and what it expects."""


class SecretStr:
    """A string that never shows itself in ``repr``/``str``/logs. Use ``.get()`` to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


# --------------------------------------------------------------------------- sections


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "0.0.0.0"  # noqa: S104 - a service in a container listens on all interfaces
    port: int = 8000
    workers: int = 1
    environment: str = "development"
    data_dir: Path | None = None
    role: str = "all"  # all | web | bot | worker: only "all" and "bot" run the Telegram client

    @property
    def runs_bot(self) -> bool:
        return self.role in {"all", "bot"}

    @property
    def serves_api(self) -> bool:
        return self.role in {"all", "web"}

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: SecretStr | None = None
    read_url: SecretStr | None = None
    pool_size: int = 10
    max_overflow: int = 20
    pool_pre_ping: bool = True
    pool_recycle: int = 3600
    statement_timeout_ms: int = 60_000
    connect_timeout: float = 10.0
    startup_wait: float = 30.0
    echo: bool = False


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: SecretStr | None = None
    socket_timeout: float = 0.5
    max_connections: int = 50
    key_prefix: str = "tgstats:"


class CacheSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = True
    ttl: int = 300
    max_entries: int = 10_000


class RateLimitSettings(msgspec.Struct, frozen=True, kw_only=True):
    per_minute: int = 10
    per_hour: int = 100
    api_per_minute: int = 120
    api_per_hour: int = 3000
    auth_failures_per_minute: int = 10
    trusted_proxies: tuple[str, ...] = ()
    # Static assets are content-hashed and cached; counting them would cap page views.
    exempt_paths: tuple[str, ...] = ("/health", "/metrics", "/static")


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    admin_token: SecretStr | None = None
    allow_unauthenticated: bool = False
    cors_origins: tuple[str, ...] = ()
    max_request_size: int = 1_048_576
    max_range_days: int = 1100
    session_secret: SecretStr | None = None
    session_max_age: int = 7 * 24 * 3600
    public_url: str | None = None


class TelegramSettings(msgspec.Struct, frozen=True, kw_only=True):
    api_id: int | None = None
    api_hash: SecretStr | None = None
    bot_token: SecretStr | None = None
    session_path: Path | None = None
    dc_address: tuple[str, int] | None = None
    start_timeout: float = 30.0
    admin_cache_ttl: int = 60

    @property
    def configured(self) -> bool:
        return bool(self.api_id and self.api_hash and self.bot_token)


class PipelineSettings(msgspec.Struct, frozen=True, kw_only=True):
    queue_size: int = 10_000
    batch_size: int = 5000
    flush_interval_ms: int = 200
    retry_max_backoff: float = 30.0
    observer_timeout: float = 5.0


class MetricsSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = True
    token: SecretStr | None = None
    # Also push metrics to an OpenTelemetry collector when set (the endpoint's base URL).
    otlp_endpoint: str | None = None
    otlp_protocol: str = "http/protobuf"  # http/protobuf | grpc
    otlp_interval_ms: int = 60000


class LoggingSettings(msgspec.Struct, frozen=True, kw_only=True):
    level: str = "INFO"
    format: str = "auto"  # auto | json | console
    sentry_dsn: SecretStr | None = None


class PluginSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: tuple[str, ...] = ()  # empty: every discovered plugin
    disabled: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()  # a failure to load these is logged, not fatal


class ImportSettings(msgspec.Struct, frozen=True, kw_only=True):
    max_upload_mb: int = 2048
    dir: Path | None = None  # where uploaded exports are spooled; default: a temp directory


class PrivacySettings(msgspec.Struct, frozen=True, kw_only=True):
    default_timezone: str = "UTC"
    removed_chat_grace_days: int = 30
    retention_schedule: str = "17 * * * *"  # cron, in UTC: a periodic job (tgstats.jobs)
    digest_schedule: str = "* * * * *"  # cron: when due weekly digests are looked for


class JobsSettings(msgspec.Struct, frozen=True, kw_only=True):
    worker: bool = True  # run a job worker inside this process (serve, bot)
    concurrency: int = 2  # jobs one worker runs at once
    heartbeat_seconds: float = 10.0
    stalled_seconds: float = 60.0  # a worker silent this long is dead: its jobs run again
    shutdown_timeout: float = 10.0  # how long a stopping worker lets running jobs finish
    poll_seconds: float = 5.0  # fallback to LISTEN/NOTIFY when looking for new jobs
    keep_days: int = 7  # finished jobs older than this are deleted


T = TypeVar("T", bound=msgspec.Struct)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    cache: CacheSettings = CacheSettings()
    ratelimit: RateLimitSettings = RateLimitSettings()
    api: ApiSettings = ApiSettings()
    telegram: TelegramSettings = TelegramSettings()
    pipeline: PipelineSettings = PipelineSettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    plugins: PluginSettings = PluginSettings()
    privacy: PrivacySettings = PrivacySettings()
    imports: ImportSettings = ImportSettings()
    jobs: JobsSettings = JobsSettings()
    # Variables with the TGSTATS_PLUGIN_ prefix, kept for per-plugin settings.
    plugin_env: Mapping[str, str] = msgspec.field(default_factory=dict)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Build settings from ``environ`` (default: ``os.environ``) over an optional ``.env``.

        Raises ``SettingsError`` with one line naming the first invalid variable.
        """
        values: dict[str, str] = {}
        if env_file is not None and environ is None:
            values.update(read_env_file(Path(env_file)))
        values.update(os.environ if environ is None else environ)
        sections: dict[str, dict[str, Any]] = {}
        for var in ENV_VARS:
            raw = values.get(var.name)
            if raw is None or (raw.strip() == "" and not var.empty_ok):
                continue
            sections.setdefault(var.section, {})[var.field] = var.parse(var.name, raw.strip())
        built = {
            name: section_type(**sections.get(name, {})) for name, section_type in _SECTIONS.items()
        }
        plugin_env = {k: v for k, v in values.items() if k.startswith("TGSTATS_PLUGIN_")}
        sections_by_name: dict[str, Any] = built  # each value is its section's Struct
        settings = cls(**sections_by_name, plugin_env=plugin_env)
        _check_consistency(settings)
        return settings

    def plugin_config(self, plugin_id: str, config_type: type[T]) -> T:
        """Per-plugin settings: ``TGSTATS_PLUGIN_<ID>_<FIELD>`` variables into ``config_type``."""
        prefix = f"TGSTATS_PLUGIN_{plugin_id.upper().replace('-', '_')}_"
        raw = {
            k[len(prefix) :].lower(): v for k, v in self.plugin_env.items() if k.startswith(prefix)
        }
        try:
            return msgspec.convert(raw, config_type, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"{prefix}*: {exc}") from None


_SECTIONS: dict[str, type[msgspec.Struct]] = {
    "server": ServerSettings,
    "database": DatabaseSettings,
    "redis": RedisSettings,
    "cache": CacheSettings,
    "ratelimit": RateLimitSettings,
    "api": ApiSettings,
    "telegram": TelegramSettings,
    "pipeline": PipelineSettings,
    "metrics": MetricsSettings,
    "logging": LoggingSettings,
    "plugins": PluginSettings,
    "privacy": PrivacySettings,
    "imports": ImportSettings,
    "jobs": JobsSettings,
}


def _check_consistency(settings: Settings) -> None:
    if settings.api.allow_unauthenticated and settings.server.is_production:
        raise SettingsError(
            "API_ALLOW_UNAUTHENTICATED: not allowed with ENVIRONMENT=production; "
            "set ADMIN_API_TOKEN instead"
        )


# --------------------------------------------------------------------------- parsers

Parser = Callable[[str, str], Any]


def _int(
    minimum: int | None = None, what: str = "an integer", maximum: int | None = None
) -> Parser:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected {what}, got {raw!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise SettingsError(f"{name}: expected {what}, got {raw!r}")
        return value

    return parse


def _float(minimum: float = 0.0, what: str = "a number of seconds") -> Parser:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected {what}, got {raw!r}") from None
        if value < minimum or value != value:
            raise SettingsError(f"{name}: expected {what} >= {minimum}, got {raw!r}")
        return value

    return parse


def _cron(name: str, raw: str) -> str:
    """A cron expression (minute hour day month weekday, and optionally seconds as a sixth
    field), checked by croniter."""
    from croniter import croniter

    value = " ".join(raw.split())
    if len(value.split(" ")) not in {5, 6} or not croniter.is_valid(value):
        raise SettingsError(f"{name}: expected a cron expression like '17 * * * *', got {raw!r}")
    return value


def _bool(name: str, raw: str) -> bool:
    low = raw.lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}: expected true or false, got {raw!r}")


def _choice(*choices: str) -> Parser:
    def parse(name: str, raw: str) -> str:
        value = raw.lower() if name != "LOG_LEVEL" else raw.upper()
        if value not in choices:
            raise SettingsError(f"{name}: expected one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def _str(name: str, raw: str) -> str:
    return raw


def _secret(name: str, raw: str) -> SecretStr:
    return SecretStr(raw)


def _public_url(name: str, raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise SettingsError(
            f"{name}: expected an http(s) address like https://host.example.org[:port]"
        )
    return raw.strip().rstrip("/")


def _url(*schemes: str) -> Parser:
    def parse(name: str, raw: str) -> SecretStr:
        try:
            parts = urlsplit(raw)
            parts.port  # noqa: B018 - raises on a non-numeric port
        except ValueError:
            raise SettingsError(
                f"{name}: expected a URL like {schemes[0]}://host:port/..."
            ) from None
        if parts.scheme not in schemes or not (parts.hostname or "host=" in parts.query):
            # The value may hold a password: never echo it.
            raise SettingsError(
                f"{name}: expected a URL with scheme {' or '.join(schemes)} and a host"
            )
        return SecretStr(raw)

    return parse


def _csv(name: str, raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _networks(name: str, raw: str) -> tuple[str, ...]:
    items = _csv(name, raw)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(
                f"{name}: expected comma-separated IP addresses or CIDR networks, got {item!r}"
            ) from None
    return items


def _timezone(name: str, raw: str) -> str:
    try:
        return check_timezone(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None


def _host_port(name: str, raw: str) -> tuple[str, int]:
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{name}: expected host:port, got {raw!r}")
    return host.strip("[]"), int(port)


def _path(name: str, raw: str) -> Path:
    return Path(raw).expanduser()


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: where it lands and what it means. Its default is the
    section Struct's field default (one source), shown as text by ``default``."""

    name: str
    section: str
    field: str
    parse: Parser
    help: str
    secret: bool = False
    empty_ok: bool = False

    @property
    def default(self) -> str:
        """The field's default as the variable would be written (``""`` for none)."""
        return _default_text(getattr(_default_sections()[self.section], self.field))


def _default_text(value: Any) -> str:
    """A default value as text that its variable's parser reads back to the same value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list | frozenset):
        return ",".join(_default_text(item) for item in value)
    if isinstance(value, SecretStr):
        return value.get()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@functools.cache
def _default_sections() -> dict[str, msgspec.Struct]:
    """Each section Struct built from its defaults alone."""
    return {name: section_type() for name, section_type in _SECTIONS.items()}


_UINT = _int(0, "a non-negative integer")
_POS = _int(1, "a positive integer")
_PORT = _int(1, "a TCP port (1-65535)", 65535)

ENV_VARS: tuple[EnvVar, ...] = (
    # server
    EnvVar(
        "ENVIRONMENT",
        "server",
        "environment",
        _choice("development", "production", "test"),
        "development, production or test; production forbids API_ALLOW_UNAUTHENTICATED",
    ),
    EnvVar("TGSTATS_HOST", "server", "host", _str, "Address the HTTP server binds to"),
    EnvVar("TGSTATS_PORT", "server", "port", _PORT, "Port the HTTP server listens on"),
    EnvVar("TGSTATS_WORKERS", "server", "workers", _POS, "Granian worker processes"),
    EnvVar(
        "TGSTATS_ROLE",
        "server",
        "role",
        _choice("all", "web", "bot", "worker"),
        "all: API + bot in one process; web: API/dashboard only; bot: Telegram client + health;"
        " worker: background jobs + health (`tgstats worker`)",
    ),
    EnvVar(
        "TGSTATS_DATA_DIR",
        "server",
        "data_dir",
        _path,
        "Where the embedded PostgreSQL keeps its data (default: the user data directory)",
    ),
    # database
    EnvVar(
        "DATABASE_URL",
        "database",
        "url",
        _url("postgresql", "postgresql+asyncpg", "postgres"),
        "PostgreSQL URL; empty starts an embedded PostgreSQL",
        secret=True,
    ),
    EnvVar(
        "DATABASE_READ_URL",
        "database",
        "read_url",
        _url("postgresql", "postgresql+asyncpg", "postgres"),
        "Optional read replica for stats queries; writes never go there",
        secret=True,
    ),
    EnvVar("DB_POOL_SIZE", "database", "pool_size", _POS, "SQLAlchemy pool size"),
    EnvVar(
        "DB_MAX_OVERFLOW",
        "database",
        "max_overflow",
        _UINT,
        "Connections allowed above the pool size",
    ),
    EnvVar(
        "DB_POOL_PRE_PING",
        "database",
        "pool_pre_ping",
        _bool,
        "Check connections before use",
    ),
    EnvVar(
        "DB_POOL_RECYCLE",
        "database",
        "pool_recycle",
        _UINT,
        "Recycle connections after this many seconds",
    ),
    EnvVar(
        "DB_STATEMENT_TIMEOUT_MS",
        "database",
        "statement_timeout_ms",
        _UINT,
        "Server-side statement timeout in milliseconds (0 disables)",
    ),
    EnvVar(
        "DB_CONNECT_TIMEOUT",
        "database",
        "connect_timeout",
        _float(0.1),
        "Seconds to wait for one connection",
    ),
    EnvVar(
        "DB_STARTUP_WAIT",
        "database",
        "startup_wait",
        _float(0.0),
        "Seconds `serve` waits for the database before giving up",
    ),
    EnvVar("DB_ECHO", "database", "echo", _bool, "Log every SQL statement (debugging only)"),
    # redis
    EnvVar(
        "REDIS_URL",
        "redis",
        "url",
        _url("redis", "rediss", "unix"),
        "Redis URL; empty keeps cache and rate limits in-process",
        secret=True,
    ),
    EnvVar(
        "REDIS_SOCKET_TIMEOUT",
        "redis",
        "socket_timeout",
        _float(0.01),
        "Seconds per Redis operation",
    ),
    EnvVar(
        "REDIS_MAX_CONNECTIONS",
        "redis",
        "max_connections",
        _POS,
        "Redis connection pool size",
    ),
    EnvVar(
        "REDIS_KEY_PREFIX",
        "redis",
        "key_prefix",
        _str,
        "Prefix of every Redis key (lets deployments or test runs share one Redis)",
    ),
    # cache
    EnvVar("ENABLE_CACHE", "cache", "enabled", _bool, "Cache stats results"),
    EnvVar(
        "CACHE_TTL",
        "cache",
        "ttl",
        _UINT,
        "Seconds a cached result is kept (freshness comes from data versions)",
    ),
    EnvVar(
        "CACHE_MAX_ENTRIES",
        "cache",
        "max_entries",
        _POS,
        "Size bound of the in-process cache",
    ),
    # rate limits
    EnvVar(
        "RATE_LIMIT_PER_MINUTE",
        "ratelimit",
        "per_minute",
        _UINT,
        "Bot commands per user and chat per minute",
    ),
    EnvVar(
        "RATE_LIMIT_PER_HOUR",
        "ratelimit",
        "per_hour",
        _UINT,
        "Bot commands per user and chat per hour",
    ),
    EnvVar(
        "API_RATE_LIMIT_PER_MINUTE",
        "ratelimit",
        "api_per_minute",
        _UINT,
        "API requests per token or client per minute",
    ),
    EnvVar(
        "API_RATE_LIMIT_PER_HOUR",
        "ratelimit",
        "api_per_hour",
        _UINT,
        "API requests per token or client per hour",
    ),
    EnvVar(
        "AUTH_FAILURES_PER_MINUTE",
        "ratelimit",
        "auth_failures_per_minute",
        _POS,
        "Failed sign-ins per client per minute before it is refused",
    ),
    EnvVar(
        "TRUSTED_PROXIES",
        "ratelimit",
        "trusted_proxies",
        _networks,
        "Comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed",
    ),
    EnvVar(
        "RATE_LIMIT_EXEMPT_PATHS",
        "ratelimit",
        "exempt_paths",
        _csv,
        "Path prefixes the API rate limit skips",
    ),
    # api
    EnvVar(
        "ADMIN_API_TOKEN",
        "api",
        "admin_token",
        _secret,
        "Admin token for the API and dashboard",
        secret=True,
    ),
    EnvVar(
        "API_ALLOW_UNAUTHENTICATED",
        "api",
        "allow_unauthenticated",
        _bool,
        "Serve the API without a token (local use only; refused in production)",
    ),
    EnvVar("CORS_ORIGINS", "api", "cors_origins", _csv, "Comma-separated origins allowed by CORS"),
    EnvVar(
        "MAX_REQUEST_SIZE",
        "api",
        "max_request_size",
        _POS,
        "Largest request body in bytes (imports have their own limit)",
    ),
    EnvVar(
        "API_MAX_RANGE_DAYS",
        "api",
        "max_range_days",
        _POS,
        "Longest date range one stats request may ask for",
    ),
    EnvVar(
        "SESSION_SECRET",
        "api",
        "session_secret",
        _secret,
        "Key for dashboard session cookies (default: derived from ADMIN_API_TOKEN)",
        secret=True,
    ),
    EnvVar(
        "SESSION_MAX_AGE",
        "api",
        "session_max_age",
        _POS,
        "Dashboard session lifetime in seconds",
    ),
    EnvVar(
        "PUBLIC_URL",
        "api",
        "public_url",
        _public_url,
        "The dashboard's address as people open it; /share links start with it",
    ),
    # telegram
    EnvVar(
        "TELEGRAM_API_ID",
        "telegram",
        "api_id",
        _int(1, "a positive integer (my.telegram.org)"),
        "Telegram API id from my.telegram.org",
    ),
    EnvVar("TELEGRAM_API_HASH", "telegram", "api_hash", _secret, "Telegram API hash", secret=True),
    EnvVar(
        "TELEGRAM_BOT_TOKEN",
        "telegram",
        "bot_token",
        _secret,
        "Bot token from @BotFather",
        secret=True,
    ),
    EnvVar(
        "TELEGRAM_SESSION_PATH",
        "telegram",
        "session_path",
        _path,
        "File for the MTProto session; empty stores it in the database",
    ),
    EnvVar(
        "TELEGRAM_DC_ADDRESS",
        "telegram",
        "dc_address",
        _host_port,
        "host:port of the Telegram data centre; empty: Telegram's own (for a test server)",
    ),
    EnvVar(
        "TELEGRAM_START_TIMEOUT",
        "telegram",
        "start_timeout",
        _float(1.0),
        "Seconds allowed for the bot to log in",
    ),
    EnvVar(
        "TELEGRAM_ADMIN_CACHE_TTL",
        "telegram",
        "admin_cache_ttl",
        _UINT,
        "Seconds a chat's admin list is cached",
    ),
    # pipeline
    EnvVar(
        "PIPELINE_QUEUE_SIZE",
        "pipeline",
        "queue_size",
        _POS,
        "Events held before sources must wait",
    ),
    EnvVar(
        "PIPELINE_BATCH_SIZE",
        "pipeline",
        "batch_size",
        _POS,
        "Events written per transaction at most",
    ),
    EnvVar(
        "PIPELINE_FLUSH_INTERVAL_MS",
        "pipeline",
        "flush_interval_ms",
        _POS,
        "Longest wait before a partial batch is written",
    ),
    EnvVar(
        "PIPELINE_RETRY_MAX_BACKOFF",
        "pipeline",
        "retry_max_backoff",
        _float(0.1),
        "Longest pause between retries of a failed batch",
    ),
    EnvVar(
        "PIPELINE_OBSERVER_TIMEOUT",
        "pipeline",
        "observer_timeout",
        _float(0.01),
        "Seconds one on_events observer may take",
    ),
    # metrics
    EnvVar(
        "ENABLE_METRICS",
        "metrics",
        "enabled",
        _bool,
        "Serve Prometheus metrics at /metrics",
    ),
    EnvVar(
        "METRICS_TOKEN",
        "metrics",
        "token",
        _secret,
        "Bearer token required at /metrics when set",
        secret=True,
    ),
    EnvVar(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "metrics",
        "otlp_endpoint",
        _public_url,
        "Also push metrics over OTLP to this collector (e.g. http://otel-collector:4318)",
    ),
    EnvVar(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "metrics",
        "otlp_protocol",
        _choice("http/protobuf", "grpc"),
        "OTLP transport: http/protobuf (port 4318) or grpc (port 4317)",
    ),
    EnvVar(
        "OTEL_METRIC_EXPORT_INTERVAL",
        "metrics",
        "otlp_interval_ms",
        _int(100, "milliseconds (at least 100)"),
        "Milliseconds between two OTLP pushes",
    ),
    # logging
    EnvVar(
        "LOG_LEVEL",
        "logging",
        "level",
        _choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        "Log level",
    ),
    EnvVar(
        "LOG_FORMAT",
        "logging",
        "format",
        _choice("auto", "json", "console"),
        "auto: JSON in production, console otherwise",
    ),
    EnvVar(
        "SENTRY_DSN",
        "logging",
        "sentry_dsn",
        _secret,
        "Report errors to Sentry (needs the `sentry` extra)",
        secret=True,
    ),
    # plugins
    EnvVar(
        "PLUGINS_ENABLED",
        "plugins",
        "enabled",
        _csv,
        "Comma-separated plugin ids to load; empty loads all discovered",
    ),
    EnvVar(
        "PLUGINS_DISABLED",
        "plugins",
        "disabled",
        _csv,
        "Comma-separated plugin ids never to load",
    ),
    EnvVar(
        "PLUGINS_OPTIONAL",
        "plugins",
        "optional",
        _csv,
        "Plugin ids whose load failure is logged and skipped instead of stopping startup",
    ),
    # privacy
    EnvVar(
        "DEFAULT_TIMEZONE",
        "privacy",
        "default_timezone",
        _timezone,
        "Time zone given to newly seen chats",
    ),
    EnvVar(
        "REMOVED_CHAT_GRACE_DAYS",
        "privacy",
        "removed_chat_grace_days",
        _UINT,
        "Days a chat's data is kept after the bot is removed",
    ),
    EnvVar(
        "RETENTION_SCHEDULE",
        "privacy",
        "retention_schedule",
        _cron,
        "When retention runs (cron, UTC; a periodic job run once per deployment)",
    ),
    EnvVar(
        "DIGEST_SCHEDULE",
        "privacy",
        "digest_schedule",
        _cron,
        "When due weekly digests are looked for (cron, UTC; run where the Telegram client runs)",
    ),
    # imports
    EnvVar(
        "IMPORT_MAX_UPLOAD_MB",
        "imports",
        "max_upload_mb",
        _POS,
        "Largest export accepted by POST /api/v1/imports, in MiB (MAX_REQUEST_SIZE does not apply)",
    ),
    EnvVar(
        "IMPORT_DIR",
        "imports",
        "dir",
        _path,
        "Directory where a worker spools an upload while importing it (default: a temp directory)",
    ),
    # jobs
    EnvVar(
        "JOBS_WORKER",
        "jobs",
        "worker",
        _bool,
        "Run a job worker inside serve/bot (0: only `tgstats worker` processes run jobs)",
    ),
    EnvVar("JOBS_CONCURRENCY", "jobs", "concurrency", _POS, "Jobs one worker runs at once"),
    EnvVar(
        "JOBS_HEARTBEAT_SECONDS",
        "jobs",
        "heartbeat_seconds",
        _float(0.1),
        "Seconds between a worker's heartbeats",
    ),
    EnvVar(
        "JOBS_STALLED_SECONDS",
        "jobs",
        "stalled_seconds",
        _float(1.0),
        "Seconds without a heartbeat after which a worker is dead and its jobs run again",
    ),
    EnvVar(
        "JOBS_SHUTDOWN_TIMEOUT",
        "jobs",
        "shutdown_timeout",
        _float(0.0),
        "Seconds a stopping worker lets running jobs finish before cancelling them",
    ),
    EnvVar(
        "JOBS_POLL_SECONDS",
        "jobs",
        "poll_seconds",
        _float(0.1),
        "Seconds between a worker's looks for new jobs (besides LISTEN/NOTIFY)",
    ),
    EnvVar("JOBS_KEEP_DAYS", "jobs", "keep_days", _POS, "Days finished jobs are kept"),
)

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file (KEY=VALUE, # comments, optional quotes). Missing file: empty."""
    if not path.is_file():
        return {}
    result: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            continue
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        result[key] = value
    return result


def render_env_example() -> str:
    """The text of ``.env.example``: every variable with its default and one line of help."""
    out = [
        "# tgstats configuration. Every variable is optional; the value shown is the default.",
        "# Generated by `tgstats config --example`; a test keeps it in step with the code.",
        "",
    ]
    section = None
    for var in ENV_VARS:
        if var.section != section:
            section = var.section
            out.append(f"# --- {section}")
        out.append(f"# {var.help}")
        out.append(f"{var.name}={var.default}")
    return "\n".join(out) + "\n"


def render_markdown_table() -> str:
    """The README configuration table."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for var in ENV_VARS:
        default = f"`{var.default}`" if var.default else "(empty)"
        secret = " **secret**" if var.secret else ""
        rows.append(f"| `{var.name}` | {default} | {var.help}{secret} |")
    return "\n".join(rows) + "\n"
