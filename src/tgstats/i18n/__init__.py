"""Languages: gettext catalogs through Babel, plural forms, numbers and dates per locale.

Every surface asks for a ``Translator`` and speaks through it::

    t = translator(chat_settings.locale)          # unknown codes fall back to English
    t.gettext("Time zone set to {zone}.", zone=name)
    t.ngettext("{n} message", "{n} messages", count)   # {n} is the count, formatted
    t.number(12345)    # "12,345" / "12 345"
    t.date(day)        # "Oct 5, 2026" / "5 окт. 2026 г."

Messages are English msgids; the catalogs under ``locale/<lang>/LC_MESSAGES/tgstats.po``
hold the other languages, compiled to the ``.mo`` files beside them (committed, so an
editable install and the wheel both have them; ``nox -s i18n`` re-extracts, updates and
compiles, and a test fails when a ``.mo`` is stale or a message is untranslated).

Strings defined at import time (command descriptions, chart titles) are marked with
``N_`` so the extractor finds them, and translated where they are shown.
"""

from __future__ import annotations

import datetime as dt
import gettext as _gettext
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_skeleton, format_time, get_day_names
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

__all__ = [
    "DEFAULT_LOCALE",
    "DOMAIN",
    "LOCALE_DIR",
    "LOCALE_NAMES",
    "N_",
    "SUPPORTED_LOCALES",
    "Translator",
    "negotiate_locale",
    "normalize_locale",
    "script_catalog",
    "script_messages",
    "translator",
]

DOMAIN = "tgstats"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT_LOCALE = "en"
#: The languages with a complete catalog (English is the msgids themselves).
SUPPORTED_LOCALES: tuple[str, ...] = ("en", "ru")
#: Each language's name in itself, for language switches.
LOCALE_NAMES: Mapping[str, str] = {"en": "English", "ru": "Русский"}


def N_(message: str) -> str:
    """Mark a string for extraction without translating it (translate it where it is shown)."""
    return message


def normalize_locale(value: object) -> str | None:
    """``"ru"``, ``"ru-RU"``, ``"RU_ru"`` → ``"ru"``; None when the language is not supported."""
    if not isinstance(value, str):
        return None
    language = value.strip().replace("_", "-").split("-", 1)[0].lower()
    return language if language in SUPPORTED_LOCALES else None


def negotiate_locale(accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """The best supported language for an ``Accept-Language`` header (q-values honoured)."""
    if not accept_language:
        return default
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        language = normalize_locale(tag)
        if language is not None and quality > 0:
            choices.append((-quality, position, language))
    return min(choices)[2] if choices else default


class Translator:
    """One language: messages, plural forms, numbers, dates. Get one with ``translator()``."""

    def __init__(self, locale: str, translations: _gettext.NullTranslations) -> None:
        self.locale = locale
        self.babel_locale = Locale.parse(locale)
        self._translations = translations

    def __repr__(self) -> str:
        return f"Translator({self.locale!r})"

    def gettext(self, message: str, /, **values: object) -> str:
        """The message in this language; ``{name}`` placeholders filled from ``values``."""
        text = self._translations.gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, /, **values: object) -> str:
        """The plural form for ``n`` (Russian has three); ``{n}`` is ``n`` formatted."""
        text = self._translations.ngettext(singular, plural, n)
        return text.format(n=self.number(n), **values)

    def number(self, value: float, digits: int | None = None) -> str:
        """A number with this language's separators (``digits`` decimals when given)."""
        if digits is None:
            return format_decimal(value, locale=self.babel_locale)
        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        return format_decimal(value, format=pattern, locale=self.babel_locale)

    def percent(self, value: float, digits: int = 1) -> str:
        """``value`` in percent (12.5 → "12.5%" / "12,5 %")."""
        pattern = "#,##0" + ("." + "#" * digits if digits > 0 else "") + "%"
        return format_percent(value / 100, format=pattern, locale=self.babel_locale)

    def date(self, value: dt.date, format: str = "medium") -> str:
        return format_date(value, format=format, locale=self.babel_locale)

    def day_month(self, value: dt.date) -> str:
        """Day and short month in this language's order: "Nov 17" / "17 нояб."."""
        return format_skeleton("MMMd", value, locale=self.babel_locale)

    def month_year(self, value: dt.date) -> str:
        """ "Nov 2026" / "нояб. 2026 г."."""
        return format_skeleton("yMMM", value, locale=self.babel_locale)

    def datetime(self, value: dt.datetime, format: str = "medium") -> str:
        return format_datetime(value, format=format, locale=self.babel_locale)

    def time(self, value: dt.datetime, format: str = "short") -> str:
        return format_time(value, format=format, locale=self.babel_locale)

    def weekdays(
        self, width: Literal["abbreviated", "narrow", "short", "wide"] = "abbreviated"
    ) -> tuple[str, ...]:
        """Monday first, in this language (CLDR names)."""
        names = get_day_names(width, locale=self.babel_locale)
        return tuple(str(names[i]) for i in range(7))

    def catalog(self, messages: Iterable[str]) -> dict[str, str]:
        """``{msgid: translation}`` for ``messages`` (the dashboard's script strings)."""
        return {m: self._translations.gettext(m) for m in messages}

    def plural_catalog(self, pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, str]]:
        """``{singular: {CLDR category: form}}`` so a browser can pick forms with
        ``Intl.PluralRules`` (no plural formula evaluated in the page)."""
        samples = _category_samples(self.locale)
        return {
            singular: {
                category: self._translations.ngettext(singular, plural, n)
                for category, n in samples.items()
            }
            for singular, plural in pairs
        }


@lru_cache(maxsize=1)
def script_messages() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The messages the dashboard's scripts use (their location in the template is a
    ``.js`` file): ``(singulars, (singular, plural) pairs)``, for the page's catalog."""
    from babel.messages.pofile import read_po

    with open(LOCALE_DIR / f"{DOMAIN}.pot", "rb") as fh:
        template = read_po(fh)
    singulars: list[str] = []
    pairs: list[tuple[str, str]] = []
    for message in template:
        if not message.id or not any(path.endswith(".js") for path, _ in message.locations):
            continue
        if isinstance(message.id, tuple | list):
            pairs.append((str(message.id[0]), str(message.id[1])))
        else:
            singulars.append(str(message.id))
    return tuple(singulars), tuple(pairs)


def script_catalog(t: Translator) -> dict[str, object]:
    """What a dashboard page embeds for its scripts: ``{"messages": {...}, "plurals": {...}}``
    (empty for English, whose msgids are the text)."""
    if t.locale == DEFAULT_LOCALE:
        return {"messages": {}, "plurals": {}}
    singulars, pairs = script_messages()
    return {"messages": t.catalog(singulars), "plurals": t.plural_catalog(pairs)}


@lru_cache(maxsize=8)
def _category_samples(locale: str) -> dict[str, int]:
    """A whole number for each CLDR plural category of the language (one: 1, few: 2, ...)."""
    rule = Locale.parse(locale).plural_form
    samples: dict[str, int] = {}
    for n in range(0, 200):
        samples.setdefault(rule(n), n)
    return samples


@lru_cache(maxsize=len(SUPPORTED_LOCALES) + 1)
def _translator(locale: str) -> Translator:
    if locale == DEFAULT_LOCALE:
        return Translator(locale, _gettext.NullTranslations())
    translations = Translations.load(str(LOCALE_DIR), [locale], domain=DOMAIN)
    if not isinstance(translations, Translations):  # no .mo: a broken install, say so
        raise RuntimeError(f"no compiled catalog for {locale!r} under {LOCALE_DIR}")
    return Translator(locale, translations)


def translator(locale: str | None) -> Translator:
    """The ``Translator`` for a chat's or a page's language; unsupported codes give English."""
    try:
        return _translator(normalize_locale(locale) or DEFAULT_LOCALE)
    except UnknownLocaleError:  # pragma: no cover - SUPPORTED_LOCALES are all CLDR locales
        return _translator(DEFAULT_LOCALE)
