"""Settings: one msgspec Struct per section, read from the environment in one place.

``Settings.from_env()`` is the only code in tgstats that reads the process
environment (plus an optional ``.env`` file). Everything else receives a
``Settings`` instance, so a test builds exactly the settings it wants::

    settings = Settings.from_env({"DATABASE_URL": "postgresql://...", "ADMIN_API_TOKEN": "x"})
    app = create_app(settings)

Every variable is declared once, on its section field
(``port: Annotated[int, Env("TGSTATS_PORT", parser, "help")] = 8000``): its
default is the field's default, and ``ENV_VARS`` is collected from those
declarations. The
``.env.example`` file and the README configuration table are generated from
that list (``tgstats config --example`` / ``--markdown``) and a test keeps them
in step.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import msgspec

from tgstats.timezones import check_timezone

__all__ = [
    "ENV_VARS",
    "ApiSettings",
    "CacheSettings",
    "DatabaseSettings",
    "Env",
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
    host: Annotated[str, Env("TGSTATS_HOST", _str, "Address the HTTP server binds to")] = "0.0.0.0"  # noqa: S104 - a service in a container listens on all interfaces
    port: Annotated[int, Env("TGSTATS_PORT", _PORT, "Port the HTTP server listens on")] = 8000
    workers: Annotated[int, Env("TGSTATS_WORKERS", _POS, "Granian worker processes")] = 1
    environment: Annotated[
        str,
        Env(
            "ENVIRONMENT",
            _choice("development", "production", "test"),
            "development, production or test; production forbids API_ALLOW_UNAUTHENTICATED",
        ),
    ] = "development"
    data_dir: Annotated[
        Path | None,
        Env(
            "TGSTATS_DATA_DIR",
            _path,
            "Where the embedded PostgreSQL keeps its data (default: the user data directory)",
        ),
    ] = None
    role: Annotated[
        str,
        Env(
            "TGSTATS_ROLE",
            _choice("all", "web", "bot", "worker"),
            "all: API + bot in one process; web: API/dashboard only; bot: Telegram client + health;"
            " worker: background jobs + health (`tgstats worker`)",
        ),
    ] = "all"

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
    url: Annotated[
        SecretStr | None,
        Env(
            "DATABASE_URL",
            _url("postgresql", "postgresql+asyncpg", "postgres"),
            "PostgreSQL URL; empty starts an embedded PostgreSQL",
            secret=True,
        ),
    ] = None
    read_url: Annotated[
        SecretStr | None,
        Env(
            "DATABASE_READ_URL",
            _url("postgresql", "postgresql+asyncpg", "postgres"),
            "Optional read replica for stats queries; writes never go there",
            secret=True,
        ),
    ] = None
    pool_size: Annotated[int, Env("DB_POOL_SIZE", _POS, "SQLAlchemy pool size")] = 10
    max_overflow: Annotated[
        int, Env("DB_MAX_OVERFLOW", _UINT, "Connections allowed above the pool size")
    ] = 20
    pool_pre_ping: Annotated[
        bool, Env("DB_POOL_PRE_PING", _bool, "Check connections before use")
    ] = True
    pool_recycle: Annotated[
        int, Env("DB_POOL_RECYCLE", _UINT, "Recycle connections after this many seconds")
    ] = 3600
    statement_timeout_ms: Annotated[
        int,
        Env(
            "DB_STATEMENT_TIMEOUT_MS",
            _UINT,
            "Server-side statement timeout in milliseconds (0 disables)",
        ),
    ] = 60_000
    connect_timeout: Annotated[
        float, Env("DB_CONNECT_TIMEOUT", _float(0.1), "Seconds to wait for one connection")
    ] = 10.0
    startup_wait: Annotated[
        float,
        Env(
            "DB_STARTUP_WAIT",
            _float(0.0),
            "Seconds `serve` waits for the database before giving up",
        ),
    ] = 30.0
    echo: Annotated[bool, Env("DB_ECHO", _bool, "Log every SQL statement (debugging only)")] = False


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: Annotated[
        SecretStr | None,
        Env(
            "REDIS_URL",
            _url("redis", "rediss", "unix"),
            "Redis URL; empty keeps cache and rate limits in-process",
            secret=True,
        ),
    ] = None
    socket_timeout: Annotated[
        float, Env("REDIS_SOCKET_TIMEOUT", _float(0.01), "Seconds per Redis operation")
    ] = 0.5
    max_connections: Annotated[
        int, Env("REDIS_MAX_CONNECTIONS", _POS, "Redis connection pool size")
    ] = 50
    key_prefix: Annotated[
        str,
        Env(
            "REDIS_KEY_PREFIX",
            _str,
            "Prefix of every Redis key (lets deployments or test runs share one Redis)",
        ),
    ] = "tgstats:"


class CacheSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: Annotated[bool, Env("ENABLE_CACHE", _bool, "Cache stats results")] = True
    ttl: Annotated[
        int,
        Env(
            "CACHE_TTL",
            _UINT,
            "Seconds a cached result is kept (freshness comes from data versions)",
        ),
    ] = 300
    max_entries: Annotated[
        int, Env("CACHE_MAX_ENTRIES", _POS, "Size bound of the in-process cache")
    ] = 10_000


class RateLimitSettings(msgspec.Struct, frozen=True, kw_only=True):
    per_minute: Annotated[
        int, Env("RATE_LIMIT_PER_MINUTE", _UINT, "Bot commands per user and chat per minute")
    ] = 10
    per_hour: Annotated[
        int, Env("RATE_LIMIT_PER_HOUR", _UINT, "Bot commands per user and chat per hour")
    ] = 100
    api_per_minute: Annotated[
        int, Env("API_RATE_LIMIT_PER_MINUTE", _UINT, "API requests per token or client per minute")
    ] = 120
    api_per_hour: Annotated[
        int, Env("API_RATE_LIMIT_PER_HOUR", _UINT, "API requests per token or client per hour")
    ] = 3000
    auth_failures_per_minute: Annotated[
        int,
        Env(
            "AUTH_FAILURES_PER_MINUTE",
            _POS,
            "Failed sign-ins per client per minute before it is refused",
        ),
    ] = 10
    trusted_proxies: Annotated[
        tuple[str, ...],
        Env(
            "TRUSTED_PROXIES",
            _networks,
            "Comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed",
        ),
    ] = ()
    # Static assets are content-hashed and cached; counting them would cap page views.
    exempt_paths: Annotated[
        tuple[str, ...],
        Env("RATE_LIMIT_EXEMPT_PATHS", _csv, "Path prefixes the API rate limit skips"),
    ] = ("/health", "/metrics", "/static")


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    admin_token: Annotated[
        SecretStr | None,
        Env("ADMIN_API_TOKEN", _secret, "Admin token for the API and dashboard", secret=True),
    ] = None
    allow_unauthenticated: Annotated[
        bool,
        Env(
            "API_ALLOW_UNAUTHENTICATED",
            _bool,
            "Serve the API without a token (local use only; refused in production)",
        ),
    ] = False
    cors_origins: Annotated[
        tuple[str, ...], Env("CORS_ORIGINS", _csv, "Comma-separated origins allowed by CORS")
    ] = ()
    max_request_size: Annotated[
        int,
        Env(
            "MAX_REQUEST_SIZE", _POS, "Largest request body in bytes (imports have their own limit)"
        ),
    ] = 1_048_576
    max_range_days: Annotated[
        int,
        Env(
            "API_MAX_RANGE_DAYS",
            _POS,
            "Longest date range one stats request may ask for (a chat's whole history, "
            "from=all, has no maximum)",
        ),
    ] = 1100
    session_secret: Annotated[
        SecretStr | None,
        Env(
            "SESSION_SECRET",
            _secret,
            "Key for dashboard session cookies (default: derived from ADMIN_API_TOKEN)",
            secret=True,
        ),
    ] = None
    session_max_age: Annotated[
        int, Env("SESSION_MAX_AGE", _POS, "Dashboard session lifetime in seconds")
    ] = 7 * 24 * 3600
    public_url: Annotated[
        str | None,
        Env(
            "PUBLIC_URL",
            _public_url,
            "The dashboard's address as people open it; /share links start with it",
        ),
    ] = None


class TelegramSettings(msgspec.Struct, frozen=True, kw_only=True):
    api_id: Annotated[
        int | None,
        Env(
            "TELEGRAM_API_ID",
            _int(1, "a positive integer (my.telegram.org)"),
            "Telegram API id from my.telegram.org",
        ),
    ] = None
    api_hash: Annotated[
        SecretStr | None, Env("TELEGRAM_API_HASH", _secret, "Telegram API hash", secret=True)
    ] = None
    bot_token: Annotated[
        SecretStr | None,
        Env("TELEGRAM_BOT_TOKEN", _secret, "Bot token from @BotFather", secret=True),
    ] = None
    session_path: Annotated[
        Path | None,
        Env(
            "TELEGRAM_SESSION_PATH",
            _path,
            "File for the MTProto session; empty stores it in the database",
        ),
    ] = None
    dc_address: Annotated[
        tuple[str, int] | None,
        Env(
            "TELEGRAM_DC_ADDRESS",
            _host_port,
            "host:port of the Telegram data centre; empty: Telegram's own (for a test server)",
        ),
    ] = None
    start_timeout: Annotated[
        float, Env("TELEGRAM_START_TIMEOUT", _float(1.0), "Seconds allowed for the bot to log in")
    ] = 30.0
    admin_cache_ttl: Annotated[
        int, Env("TELEGRAM_ADMIN_CACHE_TTL", _UINT, "Seconds a chat's admin list is cached")
    ] = 60

    @property
    def configured(self) -> bool:
        return bool(self.api_id and self.api_hash and self.bot_token)


class PipelineSettings(msgspec.Struct, frozen=True, kw_only=True):
    queue_size: Annotated[
        int, Env("PIPELINE_QUEUE_SIZE", _POS, "Events held before sources must wait")
    ] = 10_000
    batch_size: Annotated[
        int, Env("PIPELINE_BATCH_SIZE", _POS, "Events written per transaction at most")
    ] = 5000
    flush_interval_ms: Annotated[
        int,
        Env("PIPELINE_FLUSH_INTERVAL_MS", _POS, "Longest wait before a partial batch is written"),
    ] = 200
    retry_max_backoff: Annotated[
        float,
        Env(
            "PIPELINE_RETRY_MAX_BACKOFF",
            _float(0.1),
            "Longest pause between retries of a failed batch",
        ),
    ] = 30.0
    observer_timeout: Annotated[
        float,
        Env("PIPELINE_OBSERVER_TIMEOUT", _float(0.01), "Seconds one on_events observer may take"),
    ] = 5.0


class MetricsSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: Annotated[
        bool, Env("ENABLE_METRICS", _bool, "Serve Prometheus metrics at /metrics")
    ] = True
    token: Annotated[
        SecretStr | None,
        Env("METRICS_TOKEN", _secret, "Bearer token required at /metrics when set", secret=True),
    ] = None
    # Also push metrics to an OpenTelemetry collector when set (the endpoint's base URL).
    otlp_endpoint: Annotated[
        str | None,
        Env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            _public_url,
            "Also push metrics over OTLP to this collector (e.g. http://otel-collector:4318)",
        ),
    ] = None
    # http/protobuf | grpc
    otlp_protocol: Annotated[
        str,
        Env(
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            _choice("http/protobuf", "grpc"),
            "OTLP transport: http/protobuf (port 4318) or grpc (port 4317)",
        ),
    ] = "http/protobuf"
    otlp_interval_ms: Annotated[
        int,
        Env(
            "OTEL_METRIC_EXPORT_INTERVAL",
            _int(100, "milliseconds (at least 100)"),
            "Milliseconds between two OTLP pushes",
        ),
    ] = 60000


class LoggingSettings(msgspec.Struct, frozen=True, kw_only=True):
    level: Annotated[
        str, Env("LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), "Log level")
    ] = "INFO"
    # auto | json | console
    format: Annotated[
        str,
        Env(
            "LOG_FORMAT",
            _choice("auto", "json", "console"),
            "auto: JSON in production, console otherwise",
        ),
    ] = "auto"
    sentry_dsn: Annotated[
        SecretStr | None,
        Env(
            "SENTRY_DSN", _secret, "Report errors to Sentry (needs the `sentry` extra)", secret=True
        ),
    ] = None


class PluginSettings(msgspec.Struct, frozen=True, kw_only=True):
    # empty: every discovered plugin
    enabled: Annotated[
        tuple[str, ...],
        Env(
            "PLUGINS_ENABLED",
            _csv,
            "Comma-separated plugin ids to load; empty loads all discovered",
        ),
    ] = ()
    disabled: Annotated[
        tuple[str, ...], Env("PLUGINS_DISABLED", _csv, "Comma-separated plugin ids never to load")
    ] = ()
    # a failure to load these is logged, not fatal
    optional: Annotated[
        tuple[str, ...],
        Env(
            "PLUGINS_OPTIONAL",
            _csv,
            "Plugin ids whose load failure is logged and skipped instead of stopping startup",
        ),
    ] = ()


class ImportSettings(msgspec.Struct, frozen=True, kw_only=True):
    max_upload_mb: Annotated[
        int,
        Env(
            "IMPORT_MAX_UPLOAD_MB",
            _POS,
            "Largest export accepted by POST /api/v1/imports, in MiB "
            "(MAX_REQUEST_SIZE does not apply)",
        ),
    ] = 2048
    # where a worker spools an upload (kept in PostgreSQL) while importing it
    dir: Annotated[
        Path | None,
        Env(
            "IMPORT_DIR",
            _path,
            "Directory where a worker spools an upload while importing it (default: a temp "
            "directory); it must belong to the service's user and not be writable by others",
        ),
    ] = None


class PrivacySettings(msgspec.Struct, frozen=True, kw_only=True):
    default_timezone: Annotated[
        str, Env("DEFAULT_TIMEZONE", _timezone, "Time zone given to newly seen chats")
    ] = "UTC"
    removed_chat_grace_days: Annotated[
        int,
        Env(
            "REMOVED_CHAT_GRACE_DAYS", _UINT, "Days a chat's data is kept after the bot is removed"
        ),
    ] = 30
    retention_schedule: Annotated[
        str,
        Env(
            "RETENTION_SCHEDULE",
            _cron,
            "When retention runs (cron, UTC; a periodic job run once per deployment)",
        ),
    ] = "17 * * * *"
    digest_schedule: Annotated[
        str,
        Env(
            "DIGEST_SCHEDULE",
            _cron,
            "When due weekly digests are looked for (cron, UTC; run where the Telegram client"
            " runs)",
        ),
    ] = "* * * * *"


class JobsSettings(msgspec.Struct, frozen=True, kw_only=True):
    worker: Annotated[
        bool,
        Env(
            "JOBS_WORKER",
            _bool,
            "Run a job worker inside serve/bot (0: only `tgstats worker` processes run jobs)",
        ),
    ] = True
    concurrency: Annotated[int, Env("JOBS_CONCURRENCY", _POS, "Jobs one worker runs at once")] = 2
    heartbeat_seconds: Annotated[
        float,
        Env("JOBS_HEARTBEAT_SECONDS", _float(0.1), "Seconds between a worker's heartbeats"),
    ] = 10.0
    stalled_seconds: Annotated[
        float,
        Env(
            "JOBS_STALLED_SECONDS",
            _float(1.0),
            "Seconds without a heartbeat after which a worker is dead and its jobs run again",
        ),
    ] = 60.0
    shutdown_timeout: Annotated[
        float,
        Env(
            "JOBS_SHUTDOWN_TIMEOUT",
            _float(0.0),
            "Seconds a stopping worker lets running jobs finish before cancelling them",
        ),
    ] = 10.0
    poll_seconds: Annotated[
        float,
        Env(
            "JOBS_POLL_SECONDS",
            _float(0.1),
            "Seconds between a worker's looks for new jobs (besides LISTEN/NOTIFY)",
        ),
    ] = 5.0
    keep_days: Annotated[int, Env("JOBS_KEEP_DAYS", _POS, "Days finished jobs are kept")] = 7


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
class Env:
    """Where a section field comes from, declared on the field itself::

        port: Annotated[int, Env("TGSTATS_PORT", _PORT, "Port the HTTP server listens on")] = 8000

    ``parse`` turns the variable's text into the field's value (or raises
    ``SettingsError`` naming the variable); the field's default is the default."""

    name: str
    parse: Parser
    help: str
    secret: bool = False
    empty_ok: bool = False


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


def _collect_env_vars() -> tuple[EnvVar, ...]:
    """Every section field's ``Env`` declaration, in section and field order."""
    found: list[EnvVar] = []
    for section, section_type in _SECTIONS.items():
        hints = typing.get_type_hints(section_type, include_extras=True)
        for field in msgspec.structs.fields(section_type):
            declared = [
                m for m in getattr(hints[field.name], "__metadata__", ()) if isinstance(m, Env)
            ]
            if len(declared) != 1:
                raise TypeError(
                    f"{section_type.__name__}.{field.name} needs one Env(...) declaration"
                )
            env = declared[0]
            found.append(
                EnvVar(env.name, section, field.name, env.parse, env.help, env.secret, env.empty_ok)
            )
    return tuple(found)


#: Every variable tgstats reads, made from the fields' declarations above.
ENV_VARS: tuple[EnvVar, ...] = _collect_env_vars()

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
