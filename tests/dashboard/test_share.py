"""Share links end to end over HTTP: the API makes one, the link's page shows a button, the
one-time code is exchanged for a read-only session of that chat, and revoking ends it."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text

from tests.conftest import ADMIN_TOKEN
from tests.dashboard.conftest import session_cookie_from
from tests.dashboard.seed import SeededChats
from tgstats.web.auth import SESSION_COOKIE

ADMIN = {"X-API-Token": ADMIN_TOKEN}
SAME_SITE = {"Sec-Fetch-Site": "same-origin"}


async def open_code(client: Any, code: str, headers: dict[str, str] | None = None) -> Any:
    return await client.post(
        "/share", data={"code": code}, headers=headers or SAME_SITE, follow_redirects=False
    )


def code_of(shared: dict[str, Any]) -> str:
    match = re.fullmatch(r"/share/([A-Za-z0-9_-]{22})", shared["path"])
    assert match, shared
    return match.group(1)


async def test_share_link_flow(
    seeded: SeededChats, make_settings: Any, app_client: Any, seeded_db: Any
) -> None:
    database, _ = seeded_db
    chat = seeded.main_chat
    settings = make_settings(PUBLIC_URL="https://stats.example.org/")
    async with app_client(settings) as client:
        made = await client.post(
            f"/api/v1/chats/{chat}/shares", json={"label": "for Bob"}, headers=ADMIN
        )
        assert made.status_code == 201, made.text
        shared = made.json()
        code = code_of(shared)
        assert shared["url"] == f"https://stats.example.org/share/{code}"
        # Only the hash is stored: the code is nowhere in the database.
        async with database.session_factory() as session:
            stored = (
                (await session.execute(text("SELECT code_hash FROM share_codes"))).scalars().all()
            )
        assert code.encode() not in b"".join(stored)

        # The landing page (what a link preview fetches) does not use the code up.
        for _ in range(2):
            landing = await client.get(f"/share/{code}")
            assert landing.status_code == 200
            assert f'value="{code}"' in landing.text and 'action="/share"' in landing.text

        # A post from another site is refused and leaves the code usable.
        foreign = await open_code(client, code, {"Sec-Fetch-Site": "cross-site"})
        assert foreign.status_code == 403
        opened = await open_code(client, code)
        assert opened.status_code == 303
        assert opened.headers["location"] == f"/chats/{chat}"
        cookie = {"Cookie": f"{SESSION_COOKIE}={session_cookie_from(opened)}"}
        assert "code" not in session_cookie_from(opened)

        # Read-only, one chat.
        assert (
            await client.get(f"/api/v1/chats/{chat}/summary", headers=cookie)
        ).status_code == 200
        other = await client.get(f"/api/v1/chats/{seeded.other_chat}/summary", headers=cookie)
        assert other.status_code == 403
        write = await client.patch(
            f"/api/v1/chats/{chat}/settings", json={"locale": "ru"}, headers={**cookie, **SAME_SITE}
        )
        assert write.status_code == 403
        assert (await client.get(f"/chats/{chat}", headers=cookie)).status_code == 200

        # Once only.
        again = await open_code(client, code)
        assert again.status_code == 410
        assert SESSION_COOKIE not in again.headers.get("set-cookie", "")

        listed = (await client.get(f"/api/v1/chats/{chat}/shares", headers=ADMIN)).json()
        assert [(s["id"], s["label"], s["codes_used"]) for s in listed] == [
            (shared["id"], "for Bob", 1)
        ]
        tokens = (await client.get(f"/api/v1/chats/{chat}/tokens", headers=ADMIN)).json()
        assert {t["id"]: t["kind"] for t in tokens}[shared["id"]] == "share"

        # Another code for the same link works too, once.
        more = await client.post(f"/api/v1/chats/{chat}/shares/{shared['id']}/codes", headers=ADMIN)
        assert more.status_code == 201
        second = code_of(more.json())
        assert second != code
        assert (await open_code(client, second)).status_code == 303

        # An expired code does not open anything.
        late = code_of(
            (
                await client.post(
                    f"/api/v1/chats/{chat}/shares/{shared['id']}/codes", headers=ADMIN
                )
            ).json()
        )
        async with database.session_factory() as session:
            await session.execute(
                text(
                    "UPDATE share_codes SET expires_at = now() - interval '1 second'"
                    " WHERE used_at IS NULL"
                )
            )
            await session.commit()
        assert (await open_code(client, late)).status_code == 410

        # Revoking ends the session made with it and every code of it.
        fresh = code_of(
            (
                await client.post(
                    f"/api/v1/chats/{chat}/shares/{shared['id']}/codes", headers=ADMIN
                )
            ).json()
        )
        revoked = await client.delete(f"/api/v1/chats/{chat}/shares/{shared['id']}", headers=ADMIN)
        assert revoked.status_code == 204
        assert (
            await client.get(f"/api/v1/chats/{chat}/summary", headers=cookie)
        ).status_code == 401
        assert (await open_code(client, fresh)).status_code == 410
        assert (await client.get(f"/api/v1/chats/{chat}/shares", headers=ADMIN)).json() == []
        gone = await client.delete(f"/api/v1/chats/{chat}/shares/{shared['id']}", headers=ADMIN)
        assert gone.status_code == 404
        missing = await client.post(
            f"/api/v1/chats/{chat}/shares/{shared['id']}/codes", headers=ADMIN
        )
        assert missing.status_code == 404


async def test_share_refusals(seeded: SeededChats, make_settings: Any, app_client: Any) -> None:
    chat = seeded.main_chat
    async with app_client(make_settings()) as client:
        # Without PUBLIC_URL the API gives the path only.
        made = (await client.post(f"/api/v1/chats/{chat}/shares", headers=ADMIN)).json()
        assert made["url"] is None and made["path"].startswith("/share/")
        # Only the admin manages links.
        assert (await client.post(f"/api/v1/chats/{chat}/shares")).status_code == 401
        assert (await client.post("/api/v1/chats/999/shares", headers=ADMIN)).status_code == 404
        bad_label = await client.post(
            f"/api/v1/chats/{chat}/shares", json={"label": "x" * 500}, headers=ADMIN
        )
        assert bad_label.status_code == 400
        # Garbage codes: a clear 4xx, no database trip needed, no traceback.
        for code in ("", "short", "x" * 22 + "'", "a" * 400, "../../etc/passwd"):
            response = await open_code(client, code)
            assert response.status_code == 410, code
            assert "Traceback" not in response.text
        assert (await client.get("/share/not-a-code")).status_code == 404
        assert (await client.get("/share/" + "A" * 22)).status_code == 200  # shape only
        assert (await open_code(client, "A" * 22)).status_code == 410
