"""Settings: defaults, parsing, one-line errors, secrets masked, docs in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from tgstats.settings import (
    ENV_VARS,
    Settings,
    SettingsError,
    render_env_example,
    render_markdown_table,
)

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_match_the_seed_bot() -> None:
    s = Settings.from_env({})
    assert s.database.pool_size == 10
    assert s.database.max_overflow == 20
    assert s.database.pool_pre_ping is True
    assert s.database.pool_recycle == 3600
    assert s.database.statement_timeout_ms == 60_000
    assert s.ratelimit.per_minute == 10 and s.ratelimit.per_hour == 100
    assert s.api.admin_token is None and s.api.allow_unauthenticated is False
    assert s.server.port == 8000


def test_old_bot_variables_keep_their_names() -> None:
    names = {v.name for v in ENV_VARS}
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "ADMIN_API_TOKEN",
        "ENABLE_CACHE",
        "CACHE_TTL",
        "RATE_LIMIT_PER_MINUTE",
        "RATE_LIMIT_PER_HOUR",
        "ENABLE_METRICS",
        "ENVIRONMENT",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "CORS_ORIGINS",
        "MAX_REQUEST_SIZE",
        "DB_POOL_SIZE",
        "DB_MAX_OVERFLOW",
        "SENTRY_DSN",
    ):
        assert name in names


def test_values_are_parsed() -> None:
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u:pw@db:5432/x",
            "CACHE_TTL": "60",
            "ENABLE_CACHE": "off",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "TRUSTED_PROXIES": "10.0.0.0/8",
            "DEFAULT_TIMEZONE": "Asia/Kathmandu",
            "LOG_LEVEL": "debug",
        }
    )
    assert s.cache.ttl == 60 and s.cache.enabled is False
    assert s.api.cors_origins == ("https://a.example", "https://b.example")
    assert s.ratelimit.trusted_proxies == ("10.0.0.0/8",)
    assert s.privacy.default_timezone == "Asia/Kathmandu"
    assert s.logging.level == "DEBUG"
    assert s.database.url is not None and s.database.url.get().endswith("/x")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TGSTATS_PORT", "eighty", "TGSTATS_PORT: expected a TCP port"),
        ("TGSTATS_PORT", "70000", "TGSTATS_PORT: expected a TCP port"),
        ("CACHE_TTL", "-5", "CACHE_TTL: expected a non-negative integer"),
        ("DEFAULT_TIMEZONE", "Mars/Olympus", "DEFAULT_TIMEZONE: expected an IANA time zone"),
        ("DATABASE_URL", "not a url", "DATABASE_URL: expected a URL"),
        ("DATABASE_URL", "mysql://u:pw@h/db", "DATABASE_URL: expected a URL"),
        ("REDIS_URL", "http://cache:6379", "REDIS_URL: expected a URL"),
        ("ENABLE_METRICS", "maybe", "ENABLE_METRICS: expected true or false"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT: expected one of"),
        ("TRUSTED_PROXIES", "10.0.0.300", "TRUSTED_PROXIES: expected comma-separated IP"),
        ("DB_POOL_SIZE", "0", "DB_POOL_SIZE: expected a positive integer"),
        ("TELEGRAM_API_ID", "abc", "TELEGRAM_API_ID: expected a positive integer"),
    ],
)
def test_invalid_values_give_one_clear_line(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: value})
    message = str(info.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_a_bad_url_never_echoes_its_password() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"DATABASE_URL": "mysql://user:hunter2@db/x"})
    assert "hunter2" not in str(info.value)


def test_secrets_never_show_in_repr() -> None:
    s = Settings.from_env(
        {
            "ADMIN_API_TOKEN": "tok-SECRET-1",
            "TELEGRAM_BOT_TOKEN": "123:SECRET-2",
            "DATABASE_URL": "postgresql://u:SECRET-3@db/x",
            "TELEGRAM_API_HASH": "SECRET-4",
        }
    )
    text = repr(s) + str(s)
    for secret in ("SECRET-1", "SECRET-2", "SECRET-3", "SECRET-4"):
        assert secret not in text


def test_unauthenticated_api_is_refused_in_production() -> None:
    with pytest.raises(SettingsError, match="API_ALLOW_UNAUTHENTICATED"):
        Settings.from_env({"ENVIRONMENT": "production", "API_ALLOW_UNAUTHENTICATED": "true"})


def test_env_file_is_read_under_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nCACHE_TTL=42\nexport LOG_LEVEL='WARNING'\nTGSTATS_PORT=9000\n")
    monkeypatch.setenv("TGSTATS_PORT", "9100")
    s = Settings.from_env(env_file=env_file)
    assert s.cache.ttl == 42 and s.logging.level == "WARNING"
    assert s.server.port == 9100  # the environment wins over the file


def test_env_example_and_readme_are_in_step_with_the_code() -> None:
    assert (ROOT / ".env.example").read_text() == render_env_example()
    readme = (ROOT / "README.md").read_text()
    assert render_markdown_table() in readme, (
        "README settings table is stale: tgstats config --markdown"
    )


def test_plugin_settings_by_prefix() -> None:
    import msgspec

    class HelloConfig(msgspec.Struct):
        greeting: str = "hi"
        times: int = 1

    s = Settings.from_env(
        {"TGSTATS_PLUGIN_HELLO_GREETING": "hey", "TGSTATS_PLUGIN_HELLO_TIMES": "3"}
    )
    assert s.plugin_config("hello", HelloConfig) == HelloConfig("hey", 3)
    with pytest.raises(SettingsError, match="TGSTATS_PLUGIN_HELLO_"):
        Settings.from_env({"TGSTATS_PLUGIN_HELLO_TIMES": "x"}).plugin_config("hello", HelloConfig)


def test_every_setting_has_one_variable_whose_default_is_the_fields() -> None:
    """No field is unreachable from the environment (as REDIS_KEY_PREFIX once was), and
    each default, written as its variable's text (the way .env.example shows it), reads
    back through the variable's parser to the field's default."""
    import msgspec

    from tgstats.settings import _SECTIONS

    covered = [(var.section, var.field) for var in ENV_VARS]
    assert len(covered) == len(set(covered))
    for name, section in _SECTIONS.items():
        for field in msgspec.structs.fields(section):
            assert (name, field.name) in covered, f"{name}.{field.name} has no variable"
    for var in ENV_VARS:
        default = getattr(_SECTIONS[var.section](), var.field)
        if var.default == "":
            assert default in (None, "", ()), var.name
        else:
            assert var.parse(var.name, var.default) == default, var.name


@pytest.mark.parametrize("raw", ["127.0.0.1", "host:", ":443", "host:99999", "host:http"])
def test_telegram_dc_address_needs_host_and_port(raw: str) -> None:
    with pytest.raises(SettingsError, match="TELEGRAM_DC_ADDRESS: expected host:port"):
        Settings.from_env({"TELEGRAM_DC_ADDRESS": raw})


def test_telegram_dc_address_parses() -> None:
    settings = Settings.from_env({"TELEGRAM_DC_ADDRESS": "127.0.0.1:4567"})
    assert settings.telegram.dc_address == ("127.0.0.1", 4567)
    assert Settings.from_env({}).telegram.dc_address is None
