"""The dashboard's HTML pages: sign in/out, the chat list, and one chat's page.

Pages are shells: the server checks who is asking and which period is shown,
then the page's script reads every number from the REST API (same origin, the
session cookie authenticates), so what the dashboard shows *is* the API's
answer. Tokens travel only in a POSTed form, never in a URL.

- ``GET /``            chat list (a chat token goes straight to its chat)
- ``GET /login``       token form; ``POST /login`` signs in (cookie) and redirects
- ``POST /logout``     clears the session
- ``POST /language``   the language switch (a cookie; else ``Accept-Language``)
- ``GET /share/{code}`` a share link's landing page; ``POST /share`` uses the one-time
  code up and signs in read-only for that chat (``tgstats.web.share_links``)
- ``GET /chats/{id}/admin`` the chat's settings and share links (admin only)
- ``GET /chats/{id}``  one chat; ``?days=7|30|90`` or ``?from=YYYY-MM-DD&to=YYYY-MM-DD``;
  ends with the loaded plugins' dashboard panels (``panels.py``)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.coverage import ChatCoverage, CoverageSegment, chat_coverage
from tgstats.i18n import (
    LOCALE_NAMES,
    N_,
    SUPPORTED_LOCALES,
    Translator,
    negotiate_locale,
    normalize_locale,
    script_catalog,
    translator,
)
from tgstats.settings import Settings
from tgstats.stats import list_chats
from tgstats.stats.period import (
    ChatNotFound,
    ChatScope,
    Period,
    PeriodError,
    chat_first_day,
    load_chat_scope,
    over_range_cap,
    period_from_dates,
)
from tgstats.web.auth import (
    SESSION_COOKIE,
    Principal,
    encode_session,
    is_same_origin,
    login_response,
    logout_response,
    provide_principal,
    session_cookie,
    session_csrf_token,
)
from tgstats.web.dashboard.panels import dashboard_panels
from tgstats.web.dashboard.render import render_page
from tgstats.web.security import BODY_MEDIA_TYPES
from tgstats.web.share_links import looks_like_share_code, redeem_share_code

__all__ = [
    "PERIOD_PRESETS",
    "DashboardController",
    "page_period",
    "safe_next",
    "utc_offset_label",
]

#: The period picker's one-click choices, in local days ending today.
PERIOD_PRESETS = (7, 30, 90)

#: ``?days=all``: the chat's whole history (the picker's "All time").
ALL_TIME = "all"
DEFAULT_DAYS = 30
MAX_TOKEN_LENGTH = 512
_FORM_BODY = {BODY_MEDIA_TYPES: ("application/x-www-form-urlencoded", "multipart/form-data")}


def safe_next(value: str | None) -> str:
    """A local path to return to after sign-in; anything else (other hosts, ``//x``) is ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(ch) < 0x20 for ch in value):
        return "/"
    return value


def _login_redirect(request: Request[Any, Any, Any]) -> Redirect:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return Redirect(path=f"/login?next={quote(target, safe='')}", status_code=303)


LANGUAGE_COOKIE = "tgstats_lang"


def page_translator(request: Request[Any, Any, Any]) -> Translator:
    """The page's language: the reader's choice (the language switch's cookie), else the
    browser's ``Accept-Language``, else English."""
    chosen = normalize_locale(request.cookies.get(LANGUAGE_COOKIE))
    if chosen is not None:
        return translator(chosen)
    return translator(negotiate_locale(request.headers.get("accept-language")))


def _page(request: Request[Any, Any, Any], template: str, **context: Any) -> Response[str]:
    """``render_page`` in the reader's language, with what the language switch needs."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    t = page_translator(request)
    context.setdefault("here", safe_next(here))
    context.setdefault("languages", [(code, LOCALE_NAMES[code]) for code in SUPPORTED_LOCALES])
    context.setdefault("script_catalog", script_catalog(t))
    return render_page(template, t=t, **context)


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _rate_limited_page(request: Request[Any, Any, Any], exc: HTTPException) -> Response[str]:
    response = _page(
        request,
        "error.html",
        status_code=429,
        title=N_("Too many attempts"),
        message=str(exc.detail),
    )
    retry_after = (exc.headers or {}).get("Retry-After")
    if retry_after:
        response.headers["Retry-After"] = retry_after
    return response


async def _principal(request: Request[Any, Any, Any]) -> Principal | Response[Any]:
    """Who is asking, or the response to send instead (sign-in redirect, 429 page)."""
    try:
        return await provide_principal(request)
    except NotAuthorizedException:
        return _login_redirect(request)
    except HTTPException as exc:
        if exc.status_code == 429:
            return _rate_limited_page(request, exc)
        raise


def page_period(
    query: dict[str, str], *, today: date, max_days: int, first_day: date | None = None
) -> tuple[Period, int | str | None]:
    """The period a chat page shows, and the preset it matches (``None`` for custom).

    ``from``/``to`` (local dates) win over ``days``; ``days=all`` is the chat's whole
    history, from ``first_day`` (the preset ``"all"``), with no maximum, as a range
    from ``first_day`` on is. Raises ``PeriodError`` naming the bad parameter.
    """
    start_text, end_text = query.get("from", "").strip(), query.get("to", "").strip()
    days_text = query.get("days", "").strip().lower()
    if start_text or end_text:
        start = _query_date("from", start_text) if start_text else None
        end = _query_date("to", end_text) if end_text else None
        period = period_from_dates(
            start,
            end,
            today=today,
            default_days=DEFAULT_DAYS,
            max_days=max_days,
            first_day=first_day,
        )
    elif days_text == ALL_TIME:
        return Period(start=min(first_day or today, today), end=today), ALL_TIME
    else:
        days_text = days_text or str(DEFAULT_DAYS)
        if not days_text.isdigit() or not 1 <= int(days_text) <= max_days:
            raise PeriodError(f"days: expected a whole number from 1 to {max_days}, or all")
        period = period_from_dates(None, today, today=today, default_days=int(days_text))
    preset = period.days if period.end == today and period.days in PERIOD_PRESETS else None
    return period, preset


def _needs_first_day(query: dict[str, str], *, today: date, max_days: int) -> bool:
    """Whether the page's period depends on the chat's first day (``days=all``, or a
    range longer than the cap, which is allowed when it is the whole history)."""
    if query.get("days", "").strip().lower() == ALL_TIME:
        return True
    try:
        start = date.fromisoformat(query.get("from", "").strip())
        end_text = query.get("to", "").strip()
        end = date.fromisoformat(end_text) if end_text else None
    except ValueError:
        return False  # page_period names the bad date
    return over_range_cap(start, end, today=today, max_days=max_days)


def _query_date(name: str, value: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise PeriodError(f"{name}: expected a date as YYYY-MM-DD, got {value[:32]!r}") from None


def utc_offset_label(scope: ChatScope, now: datetime | None = None) -> str:
    """``UTC+05:45`` for the scope's zone right now (DST included)."""
    offset = (now or datetime.now(UTC)).astimezone(scope.zone()).strftime("%z")
    return f"UTC{offset[0]}{offset[1:3]}:{offset[3:5]}" if offset else "UTC"


def _chat_heading(scope: ChatScope) -> str:
    return scope.title or (f"@{scope.username}" if scope.username else f"Chat {scope.chat_id}")


class DashboardController(Controller):
    """HTML pages; the data on them comes from ``/api/v1`` in the browser."""

    include_in_schema = False

    @get("/", name="dashboard:chats")
    async def chat_list(self, request: Request[Any, Any, Any]) -> Response[Any]:
        principal = await _principal(request)
        if isinstance(principal, Response):
            return principal
        if principal.kind == "chat" and principal.chat_id is not None:
            return Redirect(path=f"/chats/{principal.chat_id}", status_code=303)
        return _page(
            request,
            "chats.html",
            signed_in=principal.kind != "anonymous",
            principal_kind=principal.kind,
            csrf_token=session_csrf_token(request),
        )

    @get("/login", name="dashboard:login")
    async def login_form(self, request: Request[Any, Any, Any]) -> Response[Any]:
        settings = _settings(request)
        next_path = safe_next(request.query_params.get("next"))
        if settings.api.allow_unauthenticated:
            return Redirect(path=next_path, status_code=303)
        if request.cookies.get(SESSION_COOKIE):
            try:
                await provide_principal(request)
            except NotAuthorizedException:
                pass  # stale or foreign cookie: show the form
            except HTTPException as exc:
                if exc.status_code == 429:
                    return _rate_limited_page(request, exc)
                raise
            else:
                return Redirect(path=next_path, status_code=303)
        return _page(
            request,
            "login.html",
            next_path=next_path,
            error=None,
            closed=settings.api.admin_token is None,
        )

    @post("/login", name="dashboard:login-submit", status_code=303, opt=_FORM_BODY)
    async def login_submit(self, request: Request[Any, Any, Any]) -> Response[Any]:
        settings = _settings(request)
        closed = settings.api.admin_token is None and not settings.api.allow_unauthenticated
        if refused := _posted_from_elsewhere(
            request, N_("Sign-in refused"), N_("The sign-in form was posted from another site.")
        ):
            return refused
        form = await request.form()
        next_path = safe_next(_form_text(form.get("next")))
        token = _form_text(form.get("token")).strip()

        def again(status: int, error: str) -> Response[str]:
            return _page(
                request,
                "login.html",
                status_code=status,
                next_path=next_path,
                error=error,
                closed=closed,
            )

        if closed:
            return again(
                401, N_("Sign-in is closed: the server has no ADMIN_API_TOKEN configured.")
            )
        if not token and not settings.api.allow_unauthenticated:
            return again(400, N_("Enter a token."))
        if len(token) > MAX_TOKEN_LENGTH:
            return again(401, N_("That token was not accepted."))
        try:
            return await login_response(request, token, redirect_to=next_path)
        except NotAuthorizedException:
            return again(401, N_("That token was not accepted."))
        except HTTPException as exc:
            if exc.status_code == 429:
                return _rate_limited_page(request, exc)
            raise

    @post("/logout", name="dashboard:logout", status_code=303, opt=_FORM_BODY)
    async def logout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        if refused := _posted_from_elsewhere(
            request, N_("Sign-out refused"), N_("The sign-out form was posted from another site.")
        ):
            return refused
        return await logout_response(request, redirect_to="/login")

    @post("/language", name="dashboard:language", status_code=303, opt=_FORM_BODY)
    async def choose_language(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """The language switch: remembers the reader's language in a cookie, back to the page."""
        if refused := _posted_from_elsewhere(
            request, N_("Refused"), N_("The form was posted from another site.")
        ):
            return refused
        form = await request.form()
        language = normalize_locale(_form_text(form.get("locale")))
        response: Response[Any] = Redirect(
            path=safe_next(_form_text(form.get("next"))), status_code=303
        )
        if language is not None:
            settings = _settings(request)
            response.set_cookie(
                Cookie(
                    key=LANGUAGE_COOKIE,
                    value=language,
                    max_age=365 * 24 * 3600,
                    path="/",
                    httponly=True,
                    samesite="lax",
                    secure=settings.server.environment != "development",
                )
            )
        return response

    @get("/share/{code:str}", name="dashboard:share")
    async def share_landing(
        self, request: Request[Any, Any, Any], code: FromPath[str]
    ) -> Response[Any]:
        """Shows a button only: a GET (a link preview, a prefetch) never uses the code up."""
        if not looks_like_share_code(code):
            return _share_refused(request, 404)
        return _page(request, "share.html", code=code)

    @post("/share", name="dashboard:share-open", status_code=303, opt=_FORM_BODY)
    async def share_open(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        if refused := _posted_from_elsewhere(
            request, N_("Refused"), N_("The form was posted from another site.")
        ):
            return refused
        form = await request.form()
        found = await redeem_share_code(db_session, _form_text(form.get("code")).strip())
        if found is None:
            return _share_refused(request, 410)
        await db_session.commit()
        token_id, chat_id = found
        response: Response[Any] = Redirect(path=f"/chats/{chat_id}", status_code=303)
        settings = _settings(request)
        principal = Principal(kind="chat", chat_id=chat_id, token_id=token_id)
        response.set_cookie(session_cookie(encode_session(principal, settings), settings))
        return response

    @get("/chats/{chat_id:int}", name="dashboard:chat")
    async def chat_page(
        self,
        request: Request[Any, Any, Any],
        chat_id: FromPath[int],
        stats_session: NamedDependency[AsyncSession],
    ) -> Response[Any]:
        context = await _chat_page_context(request, chat_id, stats_session)
        if isinstance(context, Response):
            return context
        coverage = coverage_view(await chat_coverage(stats_session, chat_id), context["chat"])
        return _page(
            request,
            "chat.html",
            panels=dashboard_panels(request.app.state),
            coverage=coverage,
            **context,
        )

    @get("/chats/{chat_id:int}/admin", name="dashboard:admin")
    async def admin_page(
        self,
        request: Request[Any, Any, Any],
        chat_id: FromPath[int],
        stats_session: NamedDependency[AsyncSession],
    ) -> Response[Any]:
        """A chat's settings and share links, for the admin; every change goes through the
        same REST API as any client's (``admin.js``)."""
        context = await _chat_page_context(request, chat_id, stats_session)
        if isinstance(context, Response):
            return context
        if context["principal_kind"] == "chat":
            return _page(
                request,
                "error.html",
                status_code=403,
                title=N_("Not your chat"),
                message=N_("Only the admin can change a chat's settings."),
                signed_in=True,
                principal_kind="chat",
            )
        return _page(request, "admin.html", **context)

    @get("/chats/{chat_id:int}/members/{user_id:int}", name="dashboard:member")
    async def member_page(
        self,
        request: Request[Any, Any, Any],
        chat_id: FromPath[int],
        user_id: FromPath[int],
        stats_session: NamedDependency[AsyncSession],
    ) -> Response[Any]:
        context = await _chat_page_context(
            request, chat_id, stats_session, back_href=f"/chats/{chat_id}/members/{user_id}"
        )
        if isinstance(context, Response):
            return context
        return _page(request, "member.html", user_id=user_id, **context)


async def _chat_page_context(
    request: Request[Any, Any, Any],
    chat_id: int,
    stats_session: AsyncSession,
    *,
    back_href: str | None = None,
) -> dict[str, Any] | Response[Any]:
    """What every page about one chat needs (scope, period, picker), or the page to send
    instead: sign-in redirect, 403 for another chat, 404, or 400 for a bad period."""
    principal = await _principal(request)
    if isinstance(principal, Response):
        return principal
    page: dict[str, Any] = {
        "signed_in": principal.kind != "anonymous",
        "principal_kind": principal.kind,
        "csrf_token": session_csrf_token(request),
    }
    if not principal.can_read(chat_id):
        return _page(
            request,
            "error.html",
            status_code=403,
            title=N_("Not your chat"),
            message=N_("This sign-in may only read one chat's dashboard."),
            **page,
        )
    settings = _settings(request)
    try:
        scope = await load_chat_scope(
            stats_session, chat_id, default_timezone=settings.privacy.default_timezone
        )
    except ChatNotFound:
        return _page(
            request,
            "error.html",
            status_code=404,
            title=N_("No such chat"),
            message=page_translator(request).gettext(
                "No chat {chat} has been recorded.", chat=chat_id
            ),
            **page,
        )
    today = scope.today()
    query = {key: request.query_params.get(key, "") for key in ("days", "from", "to")}
    max_days = settings.api.max_range_days
    first_day = None
    if _needs_first_day(query, today=today, max_days=max_days):
        first_day = await chat_first_day(stats_session, scope)
    try:
        period, preset = page_period(query, today=today, max_days=max_days, first_day=first_day)
    except PeriodError as exc:
        return _page(
            request,
            "error.html",
            status_code=400,
            title=N_("Cannot show that period"),
            message=str(exc),
            back_href=back_href or f"/chats/{chat_id}",
            **page,
        )
    return {
        "chat": scope,
        "heading": _chat_heading(scope),
        "period": period,
        "previous": period.previous(),
        "preset": preset,
        "presets": PERIOD_PRESETS,
        "today": today,
        "utc_offset": utc_offset_label(scope),
        "state": await _chat_state(stats_session, chat_id, settings),
        **page,
    }


def coverage_view(coverage: ChatCoverage, scope: Any) -> dict[str, Any] | None:
    """The coverage ledger as the chat page shows it: times in the chat's zone."""
    if not coverage.segments or coverage.complete_since is None:
        return None
    zone = ZoneInfo(scope.timezone)

    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def stretch(segment: CoverageSegment) -> dict[str, Any]:
        return {
            "start": local(segment.start),
            "end": local(segment.end),
            "reason": segment.reason or "",
            "recovered": segment.recovered or 0,
            "unavailable": segment.unavailable or 0,
        }

    return {
        "complete_since": local(coverage.complete_since),
        "missing": [stretch(s) for s in coverage.missing],
        "repaired": [stretch(s) for s in coverage.segments if s.kind == "repaired"],
    }


async def _chat_state(session: AsyncSession, chat_id: int, settings: Settings) -> Any:
    """Whether the bot is in the chat and how its last time zone recount went."""
    found = await list_chats(
        session, chat_ids=[chat_id], default_timezone=settings.privacy.default_timezone
    )
    return found.chats[0] if found.chats else None


def _posted_from_elsewhere(
    request: Request[Any, Any, Any], title: str, message: str
) -> Response[str] | None:
    """A 403 page for a form posted from another origin (a cross-site form), else None.

    The dashboard's own forms come from its pages, so their ``Origin`` is ours (or
    ``null`` where a browser hides it on a same-origin redirect chain)."""
    if is_same_origin(request, allow_null_origin=True):
        return None
    return _page(request, "error.html", status_code=403, title=title, message=message)


def _share_refused(request: Request[Any, Any, Any], status: int) -> Response[str]:
    return _page(
        request,
        "error.html",
        status_code=status,
        title=N_("This link does not open anything"),
        message=N_(
            "A share link works once and for a short time. "
            "Ask an admin of the chat for a new one (/share in the chat)."
        ),
    )


def _form_text(value: Any) -> str:
    return value if isinstance(value, str) else ""
