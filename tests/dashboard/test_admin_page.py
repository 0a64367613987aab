"""The admin page over HTTP: only the admin gets it; it is a shell whose script uses the API."""

from __future__ import annotations

from typing import Any

from tests.dashboard.conftest import session_cookie_from
from tests.dashboard.seed import SeededChats
from tests.dashboard.test_pages import admin_cookie, assert_csp_clean, sign_in
from tgstats.web.auth import SESSION_COOKIE


async def test_admin_page_is_for_the_admin_only(
    seeded: SeededChats, make_settings: Any, app_client: Any, chat_token: str
) -> None:
    path = f"/chats/{seeded.main_chat}/admin"
    async with app_client(make_settings()) as client:
        anonymous = await client.get(path, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
        admin = await client.get(path, headers=await admin_cookie(client))
        assert admin.status_code == 200
        assert 'id="settings-form"' in admin.text and "/static/dashboard/admin.js" in admin.text
        assert_csp_clean(admin.text)
        chat_page = await client.get(
            f"/chats/{seeded.main_chat}", headers=await admin_cookie(client)
        )
        assert f'href="{path}"' in chat_page.text

        signed = await sign_in(client, chat_token)
        reader = {"Cookie": f"{SESSION_COOKIE}={session_cookie_from(signed)}"}
        refused = await client.get(path, headers=reader)
        assert refused.status_code == 403
        page = await client.get(f"/chats/{seeded.main_chat}", headers=reader)
        assert f'href="{path}"' not in page.text  # no admin link for a read-only session
        other = await client.get(f"/chats/{seeded.other_chat}/admin", headers=reader)
        assert other.status_code == 403
        missing = await client.get("/chats/777/admin", headers=await admin_cookie(client))
        assert missing.status_code == 404
