"""The catalogs are complete and current, and no user-facing string skips gettext.

- every message the code and the dashboard use (extracted with ``babel.cfg``, as
  ``nox -s i18n`` does) is in every catalog, translated, not fuzzy, with the same
  ``{placeholders}`` and all of the language's plural forms;
- the committed ``.mo`` files are what the ``.po`` files compile to, so an
  editable install and the wheel speak the same language as the source;
- the covered modules (bot replies, chart labels, digest) and the dashboard's
  templates and scripts have no English sentence outside gettext.
"""

from __future__ import annotations

import ast
import re
import string
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from tgstats.i18n import (
    LOCALE_DIR,
    SUPPORTED_LOCALES,
    negotiate_locale,
    normalize_locale,
    translator,
)

ROOT = Path(__file__).resolve().parents[2]
OTHER_LOCALES = [code for code in SUPPORTED_LOCALES if code != "en"]

#: Modules whose every user-facing string must go through gettext.
COVERED_MODULES = [
    "plugins/tgstats_statsbot/replies.py",
    "plugins/tgstats_statsbot/plugin.py",
    "plugins/tgstats_statsbot/arguments.py",
    "plugins/tgstats_mtproto/admin_commands.py",
    "plugins/tgstats_mtproto/commands.py",
    "plugins/tgstats_mtproto/share_commands.py",
    "plugins/tgstats_privacy/commands.py",
    "plugins/tgstats_privacy/digest.py",
    "src/tgstats/charts.py",
    "src/tgstats/web/dashboard/pages.py",
]
TEMPLATES = ROOT / "src/tgstats/web/dashboard/templates"
SCRIPTS = ROOT / "src/tgstats/web/dashboard/static"


def _extracted() -> dict[str, tuple[str, ...]]:
    """msgid -> (msgid, plural?) of every message in the code, as ``pybabel extract`` sees it."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found: dict[str, tuple[str, ...]] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map
    ):
        ids = message if isinstance(message, tuple) else (message,)
        ids = tuple(i for i in ids if i)
        if ids:
            found[ids[0]] = ids
    return found


def _catalog(code: str):  # type: ignore[no-untyped-def]
    with open(LOCALE_DIR / code / "LC_MESSAGES" / "tgstats.po", "rb") as fh:
        return read_po(fh, locale=code)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.fixture(scope="module")
def extracted() -> dict[str, tuple[str, ...]]:
    found = _extracted()
    assert len(found) > 150  # the extraction itself worked
    return found


@pytest.mark.parametrize("code", OTHER_LOCALES)
def test_every_message_is_translated(code: str, extracted) -> None:
    catalog = _catalog(code)
    assert not catalog.fuzzy, "a fuzzy header makes pybabel compile skip the catalog"
    plural_forms = catalog.num_plurals
    missing, untranslated, broken = [], [], []
    for msgid, ids in extracted.items():
        message = catalog.get(ids if len(ids) > 1 else msgid)
        if message is None:
            missing.append(msgid)
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if "fuzzy" in message.flags or not all(forms):
            untranslated.append(msgid)
            continue
        if len(ids) > 1 and len(forms) != plural_forms:
            broken.append(f"{msgid!r}: {len(forms)} plural forms, {code} has {plural_forms}")
        wanted = set().union(*(_fields(i) for i in ids))
        for form in forms:
            if _fields(form) - wanted or (len(ids) == 1 and _fields(form) != wanted):
                broken.append(f"{msgid!r}: placeholders {sorted(_fields(form))}")
    assert not missing, f"not in the {code} catalog (run nox -s i18n): {missing}"
    assert not untranslated, f"untranslated in {code}: {untranslated}"
    assert not broken, broken
    stale = [
        m.id
        for m in catalog
        if m.id and (m.id[0] if isinstance(m.id, tuple) else m.id) not in extracted
    ]
    assert not stale, f"the {code} catalog has messages no code uses: {stale}"


@pytest.mark.parametrize("code", OTHER_LOCALES)
def test_committed_mo_matches_the_po(code: str) -> None:
    compiled = BytesIO()
    write_mo(compiled, _catalog(code))
    compiled.seek(0)
    with open(LOCALE_DIR / code / "LC_MESSAGES" / "tgstats.mo", "rb") as fh:
        committed = read_mo(fh)
    fresh = read_mo(compiled)
    as_dict = lambda cat: {str(m.id): str(m.string) for m in cat if m.id}  # noqa: E731
    assert as_dict(committed) == as_dict(fresh), "stale .mo: run nox -s i18n"


def test_plural_forms_and_formats_follow_the_language() -> None:
    ru, en = translator("ru"), translator("en")
    forms = [ru.ngettext("{n} day", "{n} days", n) for n in (1, 2, 5, 11, 21, 22, 25, 101, 111)]
    assert forms == [
        "1 день",
        "2 дня",
        "5 дней",
        "11 дней",
        "21 день",
        "22 дня",
        "25 дней",
        "101 день",
        "111 дней",
    ]
    assert [en.ngettext("{n} day", "{n} days", n) for n in (1, 2, 21)] == [
        "1 day",
        "2 days",
        "21 days",
    ]
    assert en.number(1234567) == "1,234,567"
    assert ru.number(1234567).replace("\xa0", " ") == "1 234 567"
    assert ru.number(2.5, 1) == "2,5"
    from datetime import date

    assert en.date(date(2026, 10, 5)) == "Oct 5, 2026"
    assert ru.date(date(2026, 10, 5)).replace("\u202f", " ") == "5 окт. 2026 г."
    assert ru.weekdays()[0] == "пн" and en.weekdays()[0] == "Mon"


def test_language_codes_and_accept_language() -> None:
    assert normalize_locale("ru-RU") == "ru" and normalize_locale("EN_gb") == "en"
    assert normalize_locale("de") is None and normalize_locale(7) is None
    assert negotiate_locale("de-DE,de;q=0.9,ru;q=0.8,en;q=0.7") == "ru"
    assert negotiate_locale("en;q=0.5, ru;q=0.9") == "ru"
    assert negotiate_locale("ru;q=0, fr") == "en"
    assert negotiate_locale("garbage;q=x,,;") == "en"
    assert negotiate_locale(None) == "en"
    assert translator("xx").locale == "en"


# --------------------------------------------------------------------------- coverage

#: Literal text that is not language: commands and their arguments, units, separators.
_CODE_LIKE = re.compile(r"^[\s\W\d_]*$|^/\w+|^[\w.@:/-]+$")


def _sentences_outside_gettext(path: Path) -> list[str]:
    """String literals with two or more words that are shown to people but not translated.

    Skipped: docstrings, gettext/N_ arguments, log calls, SQL (``text(...)``/``sql(...)``),
    exception messages of internal errors, dictionary keys, and code-like strings.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skip.add(id(body[0].value))
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func, "value", None)
            owner_name = getattr(owner, "id", "")
            if (
                name in {"gettext", "ngettext", "N_", "text", "sql", "compile", "getLogger"}
                or (owner_name in {"log", "logging"})
                or name
                in {
                    "RuntimeError",
                    "ValueError",
                    "TypeError",
                    "DeliveryError",
                    "LookupError",
                    "PeriodError",
                }
            ):
                for sub in ast.walk(node):
                    skip.add(id(sub))
        if isinstance(node, ast.keyword) and node.arg in {"loc", "description", "unit"}:
            skip.add(id(node.value))  # matplotlib positions, metric descriptions
        if isinstance(node, ast.Dict):
            for key in node.keys:
                if key is not None:
                    skip.add(id(key))
        if isinstance(node, ast.Assign | ast.AnnAssign):  # SQL and patterns kept in constants
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(
                isinstance(t, ast.Name) and t.id.isupper() and t.id.startswith("_") for t in targets
            ):
                for sub in ast.walk(node):
                    skip.add(id(sub))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            for value in node.values:
                skip.add(id(value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        words = re.findall(r"[^\W\d_]{2,}", text)
        if len(words) >= 2 and not _CODE_LIKE.match(text.strip()):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text.strip()[:60]!r}")
    return found


#: Strings the check sees that are not shown to people (markup, keys, protocol words).
_NOT_LANGUAGE = {
    "top, hours, days, history, words,",  # subcommand names, shown as typed
    "media, reactions, members, topics, me",
    "media, reactions, members, answers,",
    "topics, me",
}


def test_no_sentence_outside_gettext_in_the_covered_modules() -> None:
    found = []
    for module in COVERED_MODULES:
        path = ROOT / module
        if path.exists():
            found += [
                line
                for line in _sentences_outside_gettext(path)
                if not any(repr(allowed)[1:-1] in line for allowed in _NOT_LANGUAGE)
            ]
    assert not found, "wrap these in gettext (ctx.i18n / t.gettext / N_):\n" + "\n".join(found)


class _TemplateText(HTMLParser):
    """Text and human-readable attributes of a template, with Jinja expressions removed."""

    READABLE = {"title", "placeholder", "aria-label", "alt"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._skip += 1
        for name, value in attrs:
            if name in self.READABLE and value:
                self.text.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


_JINJA = re.compile(
    r"{%-?\s*block\s+body_(?:class|attrs)\s*%}.*?{%\s*endblock\s*%}"  # attributes, not text
    r"|{%-?\s*trans\b.*?endtrans\s*-?%}|{{.*?}}|{%.*?%}|{#.*?#}",
    re.DOTALL,
)


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_have_no_text_outside_gettext(template: str) -> None:
    source = (TEMPLATES / template).read_text(encoding="utf-8")
    parser = _TemplateText()
    parser.feed(_JINJA.sub("", source))
    leftovers = [
        t.strip()
        for t in parser.text
        if re.search(r"[^\W\d_]{2,}", t)
        and t.strip().replace("·", "").split()
        != ["tgstats"] * len(t.strip().replace("·", "").split())
    ]
    assert not leftovers, f"{template}: wrap in {{{{ _('...') }}}}: {leftovers}"


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.js")))
def test_scripts_have_no_sentence_outside_gettext(script: str) -> None:
    """A quoted run of two or more words that starts with a capital letter (a sentence or a
    label) must be the argument of ``gettext(...)`` / ``ngettext(...)`` (common.js)."""
    source = (SCRIPTS / script).read_text(encoding="utf-8")
    source = re.sub(r"^\s*//[^\n]*$", "", source, flags=re.MULTILINE)
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    found = []
    for match in re.finditer(r"""(['"`])((?:\\.|(?!\1).)*?)\1""", source):
        text = match.group(2)
        sentence = re.match(r"[A-Z…][a-z]+(?:[ ,.:;!?'’-]+\w+)+", text) and " " in text
        if not sentence or "${" in text:
            continue
        before = source[max(0, match.start() - 200) : match.start()]
        if re.search(r"\b(gettext|ngettext)\(\s*$|\bngettext\(\s*\"[^\"]*\",\s*$", before):
            continue
        found.append(text)
    assert not found, f"{script}: wrap in gettext(...): {found}"
