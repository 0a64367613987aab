"""The app core: health endpoints, error format, request ids, migrations, pools."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.support.scratch_db import scratch_database
from tgstats.db.engine import open_database, run_migrations
from tgstats.plugin_api.testing import ADMIN_TOKEN
from tgstats.settings import DatabaseSettings


async def test_health_endpoints(make_settings, app_client, db) -> None:
    async with app_client(make_settings()) as client:
        assert (await client.get("/health")).json()["status"] == "ok"
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/health/startup")).status_code == 200
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        names = {c["name"] for c in ready.json()["checks"]}
        assert {"database", "pipeline"} <= names
        stats = (await client.get("/health/stats", headers={"X-API-Token": ADMIN_TOKEN})).json()
        assert set(stats["db_pool"]) == {"size", "checked_in", "checked_out", "overflow", "total"}
        assert stats["pipeline"]["queue_depth"] == 0


async def test_ready_is_503_naming_the_database_when_it_is_down(
    make_settings, app_client, db
) -> None:
    # A database that does not answer: nothing listens on port 1.
    settings = make_settings(
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/none",
        DB_CONNECT_TIMEOUT="0.5",
        DB_POOL_PRE_PING="false",
    )
    async with app_client(settings) as client:
        response = await client.get("/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert "database" in body["failed"]
        assert "127.0.0.1:1" not in response.text  # no connection details leak
        assert (await client.get("/health/live")).status_code == 200


async def test_request_id_is_echoed_or_generated(make_settings, app_client, db) -> None:
    async with app_client(make_settings()) as client:
        response = await client.get("/health", headers={"X-Request-ID": "abc-123"})
        assert response.headers["x-request-id"] == "abc-123"
        generated = (await client.get("/health")).headers["x-request-id"]
        assert len(generated) == 32
        hostile = (await client.get("/health", headers={"X-Request-ID": "bad<script>"})).headers[
            "x-request-id"
        ]
        assert "<" not in hostile and len(hostile) == 32


async def test_errors_share_one_json_format(make_settings, app_client, db) -> None:
    async with app_client(make_settings()) as client:
        response = await client.get("/no/such/path", headers={"X-Request-ID": "req-404"})
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["status"] == 404 and error["code"] == "not_found"
        assert error["request_id"] == "req-404"
        assert "Traceback" not in response.text


async def test_request_body_limit(make_settings, app_client, db) -> None:
    async with app_client(make_settings(MAX_REQUEST_SIZE="100")) as client:
        response = await client.post("/health/live", content=b"x" * 1000)
        assert response.status_code in {405, 413}


async def test_migrations_upgrade_and_downgrade_from_empty(pg_admin_url: str) -> None:
    async with scratch_database(pg_admin_url, "tgstats_mig_test") as url:
        await run_migrations(url)
        database = open_database(url, DatabaseSettings())
        async with database.engine.connect() as conn:
            tables = set(
                (
                    await conn.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname='public'")
                    )
                ).scalars()
            )
        assert {"messages", "chat_day_rollup", "chat_settings", "membership_events"} <= tables
        await run_migrations(url, "base", downgrade=True)
        async with database.engine.connect() as conn:
            left = set(
                (
                    await conn.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname='public'")
                    )
                ).scalars()
            )
        assert left <= {"alembic_version"}
        await run_migrations(url)  # and up again
        await database.dispose()


async def test_models_match_migrations(database_url: str) -> None:
    """Alembic's autogenerate finds nothing to do: models and migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tgstats.db.models import Base
    from tgstats_mtproto.storage import metadata as mtproto_metadata

    database = open_database(database_url, DatabaseSettings())
    async with database.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync_conn: compare_metadata(
                MigrationContext.configure(
                    sync_conn,
                    opts={
                        "include_name": lambda name, type_, _: (
                            not (type_ == "table" and (name or "").startswith("procrastinate_"))
                        )
                    },
                ),
                [Base.metadata, mtproto_metadata],
            )
        )
    await database.dispose()
    assert diff == []


@pytest.mark.parametrize("statement_timeout", ["150"])
async def test_statement_timeout_applies(database_url: str, statement_timeout: str) -> None:
    database = open_database(
        database_url, DatabaseSettings(statement_timeout_ms=int(statement_timeout))
    )
    async with database.engine.connect() as conn:
        value = (await conn.execute(text("SHOW statement_timeout"))).scalar()
    await database.dispose()
    assert value == "150ms"
