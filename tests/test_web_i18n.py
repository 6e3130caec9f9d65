"""The dashboard in Hindi and English (issue 18), rendered by the real app over a real SQLite
store (FastAPI TestClient):

- the catalogues: every message of the code, templates and page scripts is in messages.pot,
  and each has a Hindi translation that keeps its placeholders and markup;
- every page in Hindi shows no English message untranslated (its visible text, titles,
  placeholders and labels, with the data such as ids, station names and times left aside);
- the switch in the header sets the `lang` cookie; Accept-Language alone chooses Hindi;
  English stays the default (the other web tests and the browser tests read English);
- the page scripts get their messages in the page's language, and two languages rendered at
  once do not mix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard_support import (
    PASSWORD,
    STATION_A,
    STATION_B,
    SUBJECT_BOX,
    face_image,
    fast_settings,
    new_incident,
    site_config,
)
from raksha.api.app import create_app
from raksha.incidents.evidence import EvidenceWriter
from raksha.incidents.model import Origin, Priority
from raksha.store import IncidentStore
from raksha.web import STATIC_DIR, i18n, web_for
from raksha.web.settings import WebSettings

REPO = Path(__file__).resolve().parents[1]
LOCALE = REPO / "src" / "raksha" / "web" / "locale"
USERS = {
    "op_a": ("operator", STATION_A),
    "sup_a": ("supervisor", STATION_A),
    "cr": ("control_room", None),
    "aud": ("auditor", None),
    "adm": ("admin", None),
}
#: Words that read the same in both languages: names, abbreviations and unit symbols.
SAME_IN_BOTH = {
    "raksha",
    "sos",
    "csv",
    "id",
    "utc",
    "sha",
    "fps",
    "ms",
    "km",
    "min",
    "javascript",
    "english",
}
#: Data of this site that happens to spell an English word (an alert channel's name).
DATA_WORDS = {"store"}
PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]|%%")
TAG = re.compile(r"</?[a-zA-Z][^>]*>")
ENTITY = re.compile(r"&\w+;")
DEVANAGARI = re.compile(r"[\u0900-\u097F]")


# ---- the catalogues ------------------------------------------------------------------------


def _catalogue(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def _key(m: Any) -> tuple[str | None, str]:
    msgid = m.id[0] if isinstance(m.id, tuple | list) else m.id
    return m.context, msgid


def _ids(m: Any) -> list[str]:
    return list(m.id) if isinstance(m.id, tuple | list) else [m.id]


def _strings(m: Any) -> list[str]:
    return list(m.string) if isinstance(m.string, tuple | list) else [m.string]


def _sorted(pattern: re.Pattern[str], text: str) -> list[str]:
    return sorted(pattern.findall(text))


def test_the_template_holds_every_message_of_the_sources() -> None:
    """messages.pot is what Babel extracts now with babel.cfg (no message left out of it, none
    that is no longer used)."""
    with (REPO / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: set[tuple[str | None, str]] = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(REPO), method_map, options_map
    ):
        msgid = message[0] if isinstance(message, tuple | list) else message
        found.add((context, msgid))
    template = {_key(m) for m in _catalogue(LOCALE / "messages.pot") if m.id}
    assert found - template == set(), "run pybabel extract (see raksha.web.i18n)"
    assert template - found == set(), "run pybabel extract (see raksha.web.i18n)"
    assert len(template) > 300


def test_every_message_has_its_hindi_with_the_placeholders_and_markup() -> None:
    template = {_key(m): m for m in _catalogue(LOCALE / "messages.pot") if m.id}
    hindi = {_key(m): m for m in _catalogue(i18n.po_path("hi"), "hi") if m.id}
    assert set(hindi) == set(template), "run pybabel update (see raksha.web.i18n)"
    for key, m in hindi.items():
        strings = _strings(m)
        assert not m.fuzzy, key
        assert strings and all(s.strip() for s in strings), f"no Hindi for {key}"
        for source, text in zip(_ids(m) * len(strings), strings, strict=False):
            assert _sorted(PLACEHOLDER, text) == _sorted(PLACEHOLDER, source), key
            assert _sorted(TAG, text) == _sorted(TAG, source), key
            assert _sorted(ENTITY, text) == _sorted(ENTITY, source), key
        if _ids(m) != ["Raksha test alert"]:
            assert all(DEVANAGARI.search(s) for s in strings), f"not in Devanagari: {key}"
    # Compiled in memory at import: gettext reads it.
    with i18n.using("hi"):
        assert i18n.gettext("Incidents") == "घटनाएँ"
        assert i18n.pgettext("history", "unit_ack") == "यूनिट ने स्वीकार किया"
    assert not list(LOCALE.rglob("*.mo")), "the .mo files are compiled at import, not kept"


def test_the_page_scripts_messages_are_all_in_the_catalogue() -> None:
    """Every _("...") and ngettext(...) of the page scripts reaches them in Hindi."""
    scripts = i18n.script_catalogue("hi")
    assert scripts["plural"] == [0, 0, 1] and scripts["lang"] == "hi"
    messages = scripts["messages"]
    for name in ("app.js", "unit.js", "map.js"):
        found = extract_from_file("javascript", STATIC_DIR / name)
        assert found, name
        for _line, message, _comments, _context in found:
            msgid = message[0] if isinstance(message, tuple | list) else message
            assert msgid in messages, f"{name}: {msgid!r}"
            assert all(DEVANAGARI.search(s) for s in _strings_of(messages[msgid])), msgid
    assert i18n.script_catalogue("en")["messages"] == {}


def _strings_of(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


# ---- the site --------------------------------------------------------------------------------


@dataclass
class Site:
    app: FastAPI
    store: IncidentStore
    incidents: dict[str, str] = field(default_factory=dict)
    clients: dict[tuple[str | None, str], TestClient] = field(default_factory=dict)

    def client(self, who: str | None = None, lang: str = "hi") -> TestClient:
        """A client in `lang` (its cookie), logged in as `who` through the login page."""
        key = (who, lang)
        if key not in self.clients:
            c = TestClient(self.app)
            c.cookies.set(i18n.COOKIE, lang)
            if who is not None:
                r = c.post(
                    "/login",
                    data={"username": who, "password": PASSWORD, "next": "/"},
                    follow_redirects=False,
                )
                assert r.status_code == 303, r.text
            self.clients[key] = c
        return self.clients[key]

    def act(self, who: str, iid: str, action: str, **form: str) -> Any:
        c = self.client(who)
        page = c.get(f"/incidents/{iid}").text
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
        assert token
        return c.post(
            f"/incidents/{iid}/act", data={"action": action, "csrf_token": token.group(1), **form}
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("i18n")
    cfg = site_config(f"sqlite:///{folder / 'raksha.db'}", folder / "evidence")
    store = IncidentStore.open(cfg.storage.url)
    app = create_app(cfg, store=store, settings=fast_settings(), web=web_for(cfg, WebSettings()))
    for name, (role, station) in USERS.items():
        app.state.raksha.users.add(name, role, PASSWORD, station_id=station)
    writer = EvidenceWriter(folder / "evidence")
    image = face_image(faces_dir)
    s = Site(app, store)

    def add(name: str, **changes: Any) -> str:
        inc = replace(new_incident(STATION_A), **changes)
        evidence = writer.capture(inc.id, image, SUBJECT_BOX)
        s.incidents[name] = store.create_incident(inc, evidence, {"kind": "distress"}, ["store"])
        return s.incidents[name]

    add("new", peak_absolute=0.31, peak_relative=0.72, baseline_at_peak=0.06)
    add("sos", origin=Origin.SOS, priority=Priority.HIGH, place="Gate 2, Hazratganj")
    add("late", opened_at=datetime.now(UTC) - timedelta(minutes=5))
    escalated = add("escalated")
    store.apply_action(escalated, "escalate", "system:escalation", "test")
    dismissed = add("dismissed")
    store.apply_action(dismissed, "dismiss", "op_a", "a false alarm")
    store.create_incident(new_incident(STATION_B), [], {"kind": "distress"}, ["store"])
    store.set_camera_status("cam-a", True, hotspot_id="a-crossing", station_id=STATION_A)
    with TestClient(app):  # the app's lifespan (event hub) runs for the module
        dispatched = s.incidents["new"]
        assert s.act("op_a", dispatched, "acknowledge").status_code == 200
        assert s.act("op_a", dispatched, "confirm").status_code == 200
        assert s.act("op_a", dispatched, "dispatch", unit_id="pink-a").status_code == 200
        assert s.act("op_a", s.incidents["sos"], "acknowledge").status_code == 200
        assert s.act("op_a", s.incidents["sos"], "confirm").status_code == 200
        yield s
    store.close()


# ---- the pages in Hindi ---------------------------------------------------------------------


def _english_words() -> set[str]:
    """The words of the English messages (placeholders and markup left out)."""
    words: set[str] = set()
    for m in _catalogue(LOCALE / "messages.pot"):
        for text in _ids(m) if m.id else []:
            plain = ENTITY.sub(" ", TAG.sub(" ", PLACEHOLDER.sub(" ", text)))
            words |= {w.lower() for w in re.findall(r"[A-Za-z]{2,}", plain)}
    return words - SAME_IN_BOTH


ENGLISH = _english_words()
#: What a page shows as text: its text nodes and these attributes.
SHOWN_ATTRIBUTES = re.compile(
    r'\s(?:title|placeholder|aria-label|alt|data-label)="([^"]*)"', re.IGNORECASE
)
#: Elements whose text is data or code, not words: scripts (and the JSON blocks), styles, the
#: keys of the keyboard (Enter, Esc), codes and times; an officer's note; an audit entry's
#: recorded details; text marked as English (a service's refusal that has no translation,
#: the switch's "English").
NOT_WORDS = re.compile(
    r"<(script|style|kbd|code|time)\b[^>]*>.*?</\1>"
    r'|<(span|td)\b[^>]*\bclass="(?:note|details)"[^>]*>.*?</\2>'
    r'|<(\w+)\s[^>]*\blang="en"[^>]*>.*?</\3>',
    re.S | re.IGNORECASE,
)
CODE_MARKS = set("0123456789_.:@/-=…#")


def untranslated(html: str) -> list[str]:
    """The English message words a page shows (ids, codes, times and numbers aside)."""
    attributes = " ".join(SHOWN_ATTRIBUTES.findall(html))
    text = TAG.sub(" ", NOT_WORDS.sub(" ", html))
    text = ENTITY.sub(" ", f"{text} {attributes}").replace("&#39;", "'").replace("&#34;", '"')
    offenders = []
    for raw in text.split():
        token = raw.strip("()[]{}.,;:!?“”\"'‘’«»·–—/|×%+<>")
        if not token or set(token) & CODE_MARKS or not re.fullmatch(r"[A-Za-z']+", token):
            continue  # an id, a code, a number, or not Latin script at all
        word = token.lower().strip("'")
        if word.endswith("'s"):
            word = word[:-2]
        if word in ENGLISH and word not in DATA_WORDS:
            offenders.append(raw)
    return offenders


def _hindi_page(c: TestClient, path: str, status: int = 200) -> str:
    r = c.get(path)
    assert r.status_code == status, (path, r.status_code, r.text[:500])
    html = r.text
    assert r.headers["content-language"] == "hi", path
    if not path.startswith("/incidents/rows"):  # the list's rows alone (the live refresh)
        assert '<html lang="hi" ' in html, path
        assert len(DEVANAGARI.findall(html)) > 40, path
    left = untranslated(html)
    assert left == [], f"{path}: English left in the Hindi page: {left}"
    return html


PAGES: list[tuple[str | None, str]] = [
    (None, "/login"),
    (None, "/login?next=/map"),
    (None, "/unit"),
    ("op_a", "/incidents"),
    ("op_a", "/incidents?view=closed"),
    ("op_a", "/incidents?view=all&state=NEW&camera=cam-a&from=2025-03-01&to=2099-01-01&score=10"),
    ("op_a", "/incidents?view=all&camera=cam-none"),
    ("op_a", "/incidents/rows"),
    ("op_a", "/map"),
    ("adm", "/map"),
    ("aud", "/audit"),
    ("aud", "/audit/verify"),
    ("adm", "/users"),
    ("adm", "/users?done=added&user=op_a"),
    ("sup_a", "/reports"),
    ("cr", "/reports?days=30"),
    ("sup_a", "/stats"),
    ("cr", "/stats?days=30"),
    ("op_a", "/account/password"),
    ("op_a", "/account/password?done=1"),
]


@pytest.mark.parametrize(("who", "path"), PAGES)
def test_pages_in_hindi_show_no_english_message(site: Site, who: str | None, path: str) -> None:
    html = _hindi_page(site.client(who), path)
    if path.startswith("/incidents/rows"):
        return
    assert 'aria-current="true">हिन्दी</a>' in html  # the switch shows the language chosen


@pytest.mark.parametrize("name", ["new", "sos", "late", "escalated", "dismissed"])
@pytest.mark.parametrize("who", ["op_a", "sup_a"])
def test_incident_pages_in_hindi_show_no_english_message(site: Site, name: str, who: str) -> None:
    html = _hindi_page(site.client(who), f"/incidents/{site.incidents[name]}")
    assert "घटना" in html
    if name == "new":  # dispatched: the history's actions, the unit, the alert deliveries
        history = re.search(r'<ol class="history" id="history">.*?</ol>', html, re.S)
        assert history and "रवाना किया" in history.group(0) and "pink-a" in history.group(0)
        assert "यूनिट द्वारा स्वीकार" in html  # the unit's running deadline
    if name == "sos" and who == "op_a":  # confirmed: the dispatch form
        assert 'id="units-note"' in html and "रवाना करें" in html


def test_messages_built_in_the_code_are_in_hindi(site: Site) -> None:
    c = site.client("op_a")
    r = c.get("/incidents?q=zz")  # too short
    assert r.status_code == 422 and "घटना आईडी या उसके पहले 4 से 8 अक्षर लिखें।" in r.text
    assert untranslated(r.text) == []
    r = c.get("/incidents?q=ffffffff-nothing")
    assert r.status_code == 404 and "घटना ffffffff-nothing आपके दायरे में नहीं मिली।" in r.text
    r = c.get("/incidents?from=2026-02-01&to=2026-01-01")
    assert r.status_code == 422 and "आरंभ तिथि अंतिम तिथि के बाद की है।" in r.text
    assert untranslated(r.text) == []
    # An error page: its message, its title.
    r = c.get("/users")
    assert r.status_code == 403 and "आपको यह पेज खोलने की अनुमति नहीं है।" in r.text
    assert "<title>त्रुटि 403 · Raksha</title>" in r.text and untranslated(r.text) == []
    # A form's refusal, from the login service and from the page itself.
    anon = TestClient(site.app)
    anon.cookies.set(i18n.COOKIE, "hi")
    r = anon.post("/login", data={"username": "op_a", "password": "not the password"})
    assert "उपयोगकर्ता नाम या पासवर्ड ग़लत है" in r.text and untranslated(r.text) == []
    r = anon.post("/login", data={"username": "", "password": ""})
    assert r.status_code == 400 and "अपना उपयोगकर्ता नाम और पासवर्ड डालें।" in r.text
    # The countdown and the chart's month names come from the code, in Hindi too.
    html = c.get("/incidents").text
    assert re.search(r"स्वीकार: [01]:\d\d शेष", html), "the running deadline"
    assert re.search(r"\d:\d\d की देरी", html), "an overdue deadline"
    stats = site.client("sup_a").get("/stats").text
    month = datetime.now(UTC).strftime("%b")
    assert f" {month}<" not in stats.split('id="chart-days"', 1)[1].split("</svg>", 1)[0]


def test_refusals_with_values_from_the_services_are_in_hindi(site: Site) -> None:
    """A refusal that names things (a state, a unit, a user) comes from the store or a
    service as a `raksha.errors.Message`: the page shows it in Hindi with the values in it,
    the API and the audit keep the English."""
    iid = site.incidents["late"]
    r = site.act("op_a", iid, "dispatch", unit_id="pink-a")
    assert r.status_code == 409
    assert "नई घटना पर रवानगी नहीं हो सकती; अनुमत: स्वीकार, ख़ारिज करें" in r.text
    assert untranslated(r.text) == []
    # A unit already out on another incident: the unit, its status and the incident.
    sos = site.incidents["sos"]
    r = site.act("op_a", sos, "dispatch", unit_id="pink-a")
    assert r.status_code == 409
    busy = site.incidents["new"][:8]
    assert f"गश्ती यूनिट pink-a घटना {busy} पर रवाना है; कोई उपलब्ध यूनिट चुनें" in r.text
    assert untranslated(r.text) == []
    # The same refusal in English, and in the API's JSON.
    c = site.client("op_a", lang="en")
    page = c.get(f"/incidents/{sos}").text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert token
    r = c.post(
        f"/incidents/{sos}/act",
        data={"action": "dispatch", "unit_id": "pink-a", "csrf_token": token.group(1)},
    )
    assert f"patrol unit pink-a is dispatched with incident {busy}; choose" in r.text
    # The users page: a name taken and a weak password.
    admin = site.client("adm")
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', admin.get("/users").text)
    assert token
    form = {"role": "auditor", "csrf_token": token.group(1)}
    strong = "a long river passphrase"
    r = admin.post(
        "/users",
        data={**form, "username": "op_a", "password": strong, "repeat_password": strong},
    )
    assert r.status_code == 409 and "'op_a' नाम का उपयोगकर्ता पहले से है।" in unescape(r.text)
    assert untranslated(r.text) == []
    r = admin.post(
        "/users",
        data={**form, "username": "aud_new", "password": "short", "repeat_password": "short"},
    )
    assert r.status_code == 422 and "कमज़ोर पासवर्ड: पासवर्ड में कम से कम" in r.text
    assert untranslated(r.text) == []


# ---- choosing the language -------------------------------------------------------------------


def test_the_switch_sets_the_cookie_and_goes_back(site: Site) -> None:
    c = TestClient(site.app)
    page = c.get("/login?next=/map").text
    link = re.search(r'<a href="(/lang/hi\?next=[^"]+)" id="lang-hi"', page)
    assert link, "the switch in the header"
    href = link.group(1).replace("&amp;", "&")
    r = c.get(href, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/map"
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith("lang=hi;") and "path=/" in cookie and "samesite=lax" in cookie
    assert "max-age=31536000" in cookie and "httponly" not in cookie
    hindi = c.get("/login?next=/map").text  # the cookie is kept by the client
    assert '<html lang="hi" ' in hindi and "लॉग इन" in hindi
    back = c.get("/lang/en?next=/login", follow_redirects=False)
    assert back.headers["location"] == "/login" and "lang=en;" in back.headers["set-cookie"]
    assert '<html lang="en" ' in c.get("/login").text
    # Only our languages; only a page of this site to go back to.
    assert c.get("/lang/fr", follow_redirects=False).status_code == 404
    away = c.get("/lang/hi?next=//evil.example/x", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/"


def test_accept_language_alone_gives_hindi_and_the_cookie_wins(site: Site) -> None:
    c = TestClient(site.app)
    for header, lang in (
        ("hi", "hi"),
        ("hi-IN,hi;q=0.9,en-US;q=0.8,en;q=0.7", "hi"),
        ("en-IN,en;q=0.9,hi;q=0.8", "en"),
        ("en;q=0.3, hi;q=0.7", "hi"),
        ("fr-FR,fr;q=0.9", "en"),
        ("hi;q=0", "en"),
        ("", "en"),
    ):
        r = c.get("/login", headers={"Accept-Language": header})
        assert f'<html lang="{lang}" ' in r.text, header
        assert r.headers["content-language"] == lang
    unit = c.get("/unit", headers={"Accept-Language": "hi-IN"}).text
    assert '<html lang="hi" ' in unit and "गश्ती यूनिट" in unit
    c.cookies.set(i18n.COOKIE, "en")
    assert '<html lang="en" ' in c.get("/login", headers={"Accept-Language": "hi"}).text
    c.cookies.set(i18n.COOKIE, "xx")  # an unknown choice: as if none
    assert '<html lang="hi" ' in c.get("/login", headers={"Accept-Language": "hi"}).text


def test_english_is_the_default(site: Site) -> None:
    c = TestClient(site.app)
    html = c.get("/login").text
    assert '<html lang="en" ' in html and "<h1>Log in</h1>" in html
    assert not DEVANAGARI.search(html.replace("हिन्दी", ""))
    assert 'id="lang-en" lang="en" hreflang="en" aria-current="true">English</a>' in html
    block = re.search(r'<script type="application/json" id="i18n">(.*?)</script>', html, re.S)
    assert block, "the messages of the page's scripts"
    assert json.loads(block.group(1)) == {"lang": "en", "plural": [1, 0, 1], "messages": {}}
    op = TestClient(site.app)
    r = op.post("/login", data={"username": "op_a", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    page = op.get("/incidents").text
    assert "<th>Deadline</th>" in page and "acknowledge within" in page
    assert '<span class="role">operator · hazratganj</span>' in page
    # Outside a request the code speaks English (the CLI, the tests of the helpers).
    assert i18n.current() == "en" and i18n.gettext("Incidents") == "Incidents"


def test_the_scripts_get_their_messages_in_the_page(site: Site) -> None:
    r = site.client(None).get("/unit")
    html = r.text
    block = re.search(r'<script type="application/json" id="i18n">(.*?)</script>', html, re.S)
    assert block, "the messages of the page's scripts"
    data = json.loads(block.group(1))
    assert data["lang"] == "hi" and data["plural"] == [0, 0, 1]
    assert data["messages"]["Acknowledge within %(time)s"] == "%(time)s के भीतर स्वीकार करें"
    assert data["messages"]["%(count)s open incident"] == [
        "%(count)s खुली घटना",
        "%(count)s खुली घटनाएँ",
    ]
    # Data, never executed: the page's policy still allows scripts from the site only, and
    # the block is JSON with <, > and & escaped.
    assert "<script>" not in html and "script-src 'self'" in r.headers["content-security-policy"]
    assert "</" not in block.group(1)
    js = (STATIC_DIR / "app.js").read_text()
    assert 'getElementById("i18n")' in js and "JSON.parse" in js


def test_languages_do_not_mix_between_concurrent_requests(site: Site) -> None:
    """The Jinja2 environment is shared; the language is each request's own."""

    def fetch(lang: str) -> list[bool]:
        c = TestClient(site.app)
        c.cookies.set(i18n.COOKIE, lang)
        want = "<h1>लॉग इन</h1>" if lang == "hi" else "<h1>Log in</h1>"
        return [want in c.get("/login").text for _ in range(15)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(fetch, ["hi", "en", "hi", "en"]))
    assert all(all(r) for r in results)
