"""The job queue's libpq connection string from the app's DATABASE_URL (no database)."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from tgstats.jobs.queue import libpq_dsn


def test_tcp_url_with_password_and_asyncpg_ssl() -> None:
    dsn = libpq_dsn("postgresql+asyncpg://tg:s%40cret@db.example:6432/stats?ssl=require")
    assert conninfo_to_dict(dsn) == {
        "host": "db.example", "port": "6432", "user": "tg", "password": "s@cret",
        "dbname": "stats", "sslmode": "require",
    }  # fmt: skip


def test_embedded_unix_socket_url() -> None:
    # What tgstats.db.embedded hands the app when DATABASE_URL is empty.
    dsn = libpq_dsn("postgresql+asyncpg://postgres@/tgstats?host=/tmp/pg%20sock")
    assert conninfo_to_dict(dsn) == {
        "host": "/tmp/pg sock",
        "user": "postgres",
        "dbname": "tgstats",
    }


def test_plain_postgres_scheme_and_unknown_query_keys() -> None:
    dsn = libpq_dsn("postgres://u@h/d?sslmode=verify-full&prepared_statement_cache_size=0")
    assert conninfo_to_dict(dsn) == {
        "host": "h",
        "user": "u",
        "dbname": "d",
        "sslmode": "verify-full",
    }
