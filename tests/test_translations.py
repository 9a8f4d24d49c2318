"""The Japanese message catalog: complete, placeholders intact, compiled .mo up to date."""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from tests.conftest import login

PROJECT = Path(__file__).resolve().parent.parent
TRANSLATIONS = PROJECT / "auditapp" / "translations"
JA_PO = TRANSLATIONS / "ja" / "LC_MESSAGES" / "messages.po"
JA_MO = TRANSLATIONS / "ja" / "LC_MESSAGES" / "messages.mo"
# The same keywords as `make translations` (on top of pybabel's defaults: _, gettext, ...).
EXTRA_KEYWORDS = ["_l", "lazy_gettext"]

# A %-conversion: %(name)s, %s, %d, ... and the escaped %% (Jinja's newstyle gettext
# always %-formats, so a lone % in a template message breaks the page).
_CONVERSION = re.compile(
    r"%(?:\((?P<name>\w+)\))?[-#0 +]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[diouxXeEfFgGcrsa%]"
)


def _key(message) -> tuple:
    return message.id, message.context


def _strings(value) -> list[str]:
    """A message's id or string as a list (plural messages hold a tuple)."""
    return list(value) if isinstance(value, list | tuple) else [value or ""]


def _conversions(text: str) -> Counter:
    """The %-placeholders of a text (%% excluded)."""
    return Counter(m.group(0) for m in _CONVERSION.finditer(text) if m.group(0) != "%%")


def _has_lone_percent(text: str) -> bool:
    return "%" in _CONVERSION.sub("", text)


def _read_po(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f)


def _messages(catalog: Catalog) -> dict[tuple, object]:
    """Translatable messages (not the header) by (msgid, context)."""
    return {_key(m): m for m in catalog if m.id}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Catalog:
    """The messages in the current sources, extracted as `make translations` does."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    argv = ["pybabel", "-q", "extract", "-F", str(PROJECT / "babel.cfg"), "-o", str(pot)]
    for keyword in EXTRA_KEYWORDS:
        argv += ["-k", keyword]
    assert not CommandLineInterface().run([*argv, str(PROJECT)])
    return _read_po(pot)


@pytest.fixture(scope="module")
def ja() -> Catalog:
    """The committed Japanese catalog."""
    return _read_po(JA_PO)


def test_extraction_finds_messages(extracted):
    """Extraction from Python and templates works (guards against an empty method map)."""
    files = {loc.split("/")[-1] for m in extracted if m.id for loc, _line in m.locations}
    assert len(_messages(extracted)) > 100
    assert {"login.html", "users.py", "filters.py"} <= files


def test_every_message_has_a_japanese_translation(extracted, ja):
    """Every msgid in the sources has a non-empty, non-fuzzy Japanese translation."""
    translated = _messages(ja)
    missing, fuzzy, empty = [], [], []
    for key, message in _messages(extracted).items():
        entry = translated.get(key)
        if entry is None:
            missing.append(message.id)
        elif entry.fuzzy:
            fuzzy.append(message.id)
        elif not all(s.strip() for s in _strings(entry.string)):
            empty.append(message.id)
    problems = {"not in the .po": missing, "fuzzy": fuzzy, "untranslated": empty}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, (
        f"Japanese catalog incomplete: {problems}. Run `make translations`, translate "
        f"{JA_PO.relative_to(PROJECT)}, then run `make translations` again."
    )


def test_japanese_catalog_has_no_fuzzy_entries(ja):
    """No entry (nor the header) is fuzzy: pybabel compile would skip it."""
    assert not ja.fuzzy, "the .po header is marked fuzzy"
    assert not [m.id for m in ja if m.id and m.fuzzy]


def test_placeholders_match(ja):
    """Each msgstr uses exactly the %-placeholders of its msgid and no stray %."""
    wrong = []
    for message in ja:
        if not message.id or not message.string:
            continue
        expected = _conversions(_strings(message.id)[0])
        for string in _strings(message.string):
            if _conversions(string) != expected or _has_lone_percent(string):
                wrong.append((message.id, string))
    assert not wrong, f"placeholders differ between msgid and msgstr: {wrong}"


def test_compiled_mo_matches_po(ja):
    """The committed .mo holds exactly what compiling the .po gives (same catalog, not bytes)."""
    buffer = io.BytesIO()
    write_mo(buffer, ja)
    buffer.seek(0)
    expected = read_mo(buffer)
    with JA_MO.open("rb") as f:
        committed = read_mo(f)

    def table(catalog: Catalog) -> dict[tuple, object]:
        return {key: m.string for key, m in _messages(catalog).items()}

    assert table(committed) == table(expected), (
        "messages.mo is out of date: run `make translations` (or pybabel compile)"
    )
    assert committed.plural_forms == expected.plural_forms


def test_login_page_in_japanese(client):
    """With Accept-Language: ja the sign-in page is in Japanese, placeholders filled."""
    html = client.get("/login", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert '<html lang="ja">' in html
    assert "ログイン" in html and "Sign in" not in html
    assert "時刻は Asia/Tokyo で表示しています。" in html


def test_login_page_in_english(client):
    """With Accept-Language: en the sign-in page stays in English."""
    html = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Sign in" in html and "ログイン" not in html


def test_lazy_service_message_in_japanese(client, users):
    """A lazy message raised by a service (wrong password) is shown in Japanese."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ja"
    response = login(client, users["employee"], "not-the-password-at-all")
    assert response.status_code == 401
    assert "メールアドレスまたはパスワードが正しくありません。" in response.get_data(as_text=True)
