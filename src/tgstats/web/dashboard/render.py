"""Jinja2 rendering for the dashboard: autoescaped templates and fingerprinted asset URLs.

Every template is autoescaped (``.html`` or not), so a chat title such as
``<img src=x onerror=alert(1)>`` reaches the page as text. Asset URLs carry a
short content hash (``/static/dashboard/chat.js?v=3f2a9c1e``) so browsers may
cache them for long and still pick up a new release at once.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Response

from tgstats import __version__
from tgstats.i18n import Translator, translator

__all__ = ["STATIC_DIR", "STATIC_PATH", "TEMPLATE_DIR", "asset_url", "render_page"]

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
STATIC_PATH = "/static/dashboard"

#: Pages hold a session's data: never cache them in shared caches or the back-forward cache.
PAGE_HEADERS = {"Cache-Control": "no-store"}


@lru_cache(maxsize=64)
def _fingerprint(name: str) -> str:
    path = (STATIC_DIR / name).resolve()
    if STATIC_DIR not in path.parents or not path.is_file():
        raise FileNotFoundError(f"no dashboard asset {name!r}")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def asset_url(name: str) -> str:
    """The URL of a file under ``static/``, with its content hash as a cache buster."""
    return f"{STATIC_PATH}/{name}?v={_fingerprint(name)}"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,  # every template, whatever its extension
        undefined=StrictUndefined,  # a typo in a template fails loudly in tests
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = asset_url
    env.globals["version"] = __version__
    return env


def render_page(
    template: str, *, status_code: int = 200, t: Translator | None = None, **context: Any
) -> Response[str]:
    """Render ``templates/<template>`` to an HTML response (not cached by anyone), in the
    language of ``t`` (English when None): templates call ``_("...", name=value)`` and
    ``ngettext(singular, plural, n)``; their results are escaped like any other value."""
    t = t or translator(None)
    context.setdefault("signed_in", False)
    context.setdefault("principal_kind", None)
    context.setdefault("csrf_token", None)
    context.update(_=t.gettext, gettext=t.gettext, ngettext=t.ngettext, lang=t.locale, i18n=t)
    html = _environment().get_template(template).render(**context)
    return Response(
        content=html,
        status_code=status_code,
        media_type="text/html; charset=utf-8",
        headers=PAGE_HEADERS,
    )
