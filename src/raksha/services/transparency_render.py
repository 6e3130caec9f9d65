"""The transparency pack as files: one HTML page, the same content as Markdown, the figures as
JSON, and a bilingual (Hindi and English) public notice per hotspot.

    written = write_pack(pack, Path("pack"))
    # pack/index.html, pack/transparency.md, pack/transparency.json,
    # pack/notices/<hotspot>.md and .html

The page and the Markdown are built from one list of blocks (headings, paragraphs, lists,
tables, bar charts), so they say the same thing. Every text from the config or the store is
escaped where it is written: `html.escape` in HTML, Markdown's own escapes (and HTML
entities, which Markdown renderers pass through as text) in Markdown. The charts are inline
SVG (no script, nothing fetched, no plotting library), and the tables beside them give the
same numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from pathlib import Path

from raksha.errors import RakshaError
from raksha.services.transparency import (
    DatasetAccuracy,
    HotspotPlace,
    IncidentRow,
    PrecisionFigure,
    Setting,
    TransparencyPack,
)
from raksha.store.stats import zone

__all__ = ["notice_name", "render_html", "render_markdown", "render_notice", "write_pack"]

#: What a missing value reads as, in each language.
NOT_STATED = "not stated"
NOT_STATED_HI = "उल्लेख नहीं किया गया"


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: str
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Para:
    text: str
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Bullets:
    items: tuple[str, ...]
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Bars:
    """Horizontal bars, one per item; `unit` "%" shows the values (0..1) as percentages."""

    title: str
    items: tuple[tuple[str, float], ...]
    unit: str = ""


Block = Heading | Para | Bullets | Table | Bars


# ---- numbers ---------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f}%"


def _ci(pair: tuple[float, float] | None) -> str:
    return "" if pair is None else f" ({_pct(pair[0])} to {_pct(pair[1])})"


def _value(v: str | float | int | bool) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _or_gap(value: str | None) -> str:
    return value if value else f"{NOT_STATED} (gap)"


# ---- the pack's content ----------------------------------------------------------------------


def _settings_table(settings: Sequence[Setting]) -> Table:
    return Table(
        ("setting", "value", "what it does"),
        tuple((s.key, _value(s.value), s.meaning) for s in settings),
    )


INCIDENT_HEADERS = (
    "station",
    "month",
    "opened",
    "confirmed",
    "dispatched",
    "resolved",
    "dismissed",
    "open",
)


def _incident_cells(r: IncidentRow) -> tuple[str, ...]:
    return (
        r.station,
        r.month,
        str(r.opened),
        str(r.confirmed),
        str(r.dispatched),
        str(r.resolved),
        str(r.dismissed),
        str(r.open),
    )


def _incident_table(rows: Sequence[IncidentRow], total: IncidentRow) -> Table:
    return Table(INCIDENT_HEADERS, (*(_incident_cells(r) for r in rows), _incident_cells(total)))


PRECISION_HEADERS = (
    "scope",
    "station",
    "real",
    "dismissed",
    "judged",
    "not yet judged",
    "precision",
    "95% interval",
    "review",
)


def _precision_cells(prefix: str, f: PrecisionFigure) -> tuple[str, ...]:
    interval = "-" if f.low is None or f.high is None else f"{_pct(f.low)} to {_pct(f.high)}"
    return (
        f"{prefix}{f.key}",
        f.station or "-",
        str(f.real),
        str(f.dismissed),
        str(f.judged),
        str(f.pending),
        _pct(f.precision),
        interval,
        "REVIEW" if f.review else "",
    )


def _dataset_cells(d: DatasetAccuracy) -> tuple[str, ...]:
    return (
        d.dataset,
        d.model or "-",
        "-" if d.n is None else str(d.n),
        _pct(d.accuracy) + _ci(d.accuracy_ci),
        _pct(d.distress_recall) + _ci(d.distress_recall_ci),
        _pct(d.neutral_as_distress) + _ci(d.neutral_as_distress_ci),
    )


def _local_day(pack: TransparencyPack, last: bool) -> str:
    tz = zone(pack.tz)
    t = pack.until - timedelta(microseconds=1) if last else pack.since
    return t.astimezone(tz).date().isoformat()


def pack_blocks(pack: TransparencyPack) -> list[Block]:
    """The pack's content, for both the page and the Markdown."""
    c = pack.contacts
    t = pack.tracking
    out: list[Block] = [
        Heading(1, "Raksha transparency pack" + (f": {c.operator}" if c.operator else "")),
        Para(
            f"Figures of the {pack.days} local days {_local_day(pack, False)} to "
            f"{_local_day(pack, True)} ({pack.tz}), read from the live configuration and the "
            f"incident store on {pack.generated_at.astimezone(zone(pack.tz)):%Y-%m-%d %H:%M} "
            f"{pack.tz}. Charts are drawn as inline SVG; the tables give the same numbers."
        ),
        Heading(2, "Gaps"),
    ]
    if pack.gaps:
        out += [
            Para("What the configuration does not state (each is repeated where it applies):"),
            Bullets(pack.gaps),
        ]
    else:
        out.append(Para("None: every value the pack asks for is stated in the configuration."))

    # 1
    out += [
        Heading(2, "1. What is tracked and how"),
        Para(
            f"Expression model: {t.model}. Each face is read as one of the classes below; "
            "the distress evidence of a frame is the sum of weight x probability over them "
            "(clipped to 0..1). Classes with weight 0 do not count."
        ),
        Table(("expression class", "weight"), tuple((k, f"{w:g}") for k, w in t.weights.items())),
        Heading(3, "Decision thresholds and timing"),
        _settings_table(t.decision),
        Heading(3, "Face quality"),
        _settings_table(t.quality),
        Heading(3, "Person-relative signal: " + ("on" if t.relative_on else "off")),
        _settings_table(t.relative),
        Heading(3, "What an incident keeps"),
        _settings_table(t.evidence),
        Heading(3, "What the system does"),
        Bullets(t.does),
        Heading(3, "What the system does not do"),
        Bullets(t.does_not),
        Para(f"Shadow model: {t.shadow}."),
    ]

    # 2
    out += [
        Heading(2, "2. Where the cameras are and why"),
        Table(
            (
                "hotspot",
                "name",
                "station",
                "latitude",
                "longitude",
                "cameras",
                "purpose",
                "legal basis",
            ),
            tuple(
                (
                    p.id,
                    p.name or "-",
                    p.station or "-",
                    f"{p.lat:.5f}",
                    f"{p.lon:.5f}",
                    ", ".join(cam.id + ("" if cam.enabled else " (disabled)") for cam in p.cameras)
                    or "-",
                    _or_gap(p.purpose),
                    _or_gap(p.legal_basis),
                )
                for p in pack.places
            ),
        ),
    ]
    place_gaps = [
        f"hotspot {p.id} has no {what}"
        for p in pack.places
        for what, value in (("purpose", p.purpose), ("legal basis", p.legal_basis))
        if not value
    ]
    if place_gaps:
        out += [Para("Not stated in the config:"), Bullets(tuple(place_gaps))]
    if not pack.places:
        out.append(Para("No hotspots are configured."))

    # 3
    a = pack.access
    bound = {u.role for u in a.users if u.station_bound}

    def cell(roles: tuple[str, ...], role: str, scoped: bool) -> str:
        if role not in roles:
            return ""
        return "own station" if scoped and role in bound else "yes"

    out += [
        Heading(2, "3. Who can see what"),
        Table(
            ("permission", "what it allows", *a.roles),
            tuple(
                (r.rule, r.meaning, *(cell(r.roles, role, r.station_scoped) for role in a.roles))
                for r in a.rules
            ),
        ),
        Para(f"Station scoping: {a.station_scoping}."),
        Table(
            ("role", "bound to a station", "active users", "disabled users"),
            tuple(
                (u.role, "yes" if u.station_bound else "no", str(u.active), str(u.disabled))
                for u in a.users
            ),
        ),
    ]

    # 4
    r = pack.retention
    out += [
        Heading(2, "4. Retention and deletion"),
        Table(
            ("", "value"),
            (
                ("evidence kept (days)", str(r.retention_days)),
                ("encrypted at rest", "yes" if r.encrypt else "no"),
                (
                    "automatic purge",
                    f"every {r.purge_every_s:g} s" if r.purge_every_s > 0 else "off",
                ),
                ("purges in the period (evidence.purged)", str(r.purges)),
                ("files deleted in the period", str(r.files_deleted)),
                ("bytes deleted in the period", str(r.bytes_deleted)),
                ("legal holds in force now", str(r.holds_in_force)),
                ("legal holds placed in the period", str(r.holds_placed)),
                ("legal holds lifted in the period", str(r.holds_lifted)),
                ("evidence views (evidence.view)", str(r.views)),
                ("unblurred views (evidence.unblur)", str(r.unblurs)),
                ("case exports (evidence.exported)", str(r.exports)),
            ),
        ),
    ]

    # 5
    acc = pack.accuracy
    out.append(Heading(2, "5. Measured accuracy"))
    if acc.datasets:
        out += [
            Para(
                f"From {acc.eval_source or 'the results given'} (raksha eval expression). "
                f"The live model is {acc.live_model}."
                + (
                    f" Intervals: {acc.datasets[0].interval_method}."
                    if acc.datasets[0].interval_method
                    else ""
                )
            ),
            Table(
                (
                    "dataset",
                    "model",
                    "faces",
                    "accuracy",
                    "distress recall (fear + sadness)",
                    "neutral read as distress",
                ),
                tuple(_dataset_cells(d) for d in acc.datasets),
            ),
        ]
    else:
        out.append(
            Para(
                f"No measured accuracy was supplied for the live model {acc.live_model} "
                "(gap). See docs/expression-model.md for the model's card."
            )
        )
    out += [
        Heading(3, "Field precision"),
        Para(
            "Of the camera incidents opened in the period that officers judged, the share they "
            "found real (confirmed, dispatched or resolved). A camera is marked REVIEW with at "
            f"least {acc.min_judged} judged and a precision below {_pct(acc.floor)}."
        ),
        Table(
            PRECISION_HEADERS,
            (
                _precision_cells("", acc.overall),
                *(_precision_cells("station ", s) for s in acc.stations),
                *(_precision_cells("camera ", cam) for cam in acc.cameras),
            ),
        ),
    ]
    judged = [(f"{cam.key}", cam.precision) for cam in acc.cameras if cam.precision is not None]
    if judged:
        out.append(
            Bars(
                "Field precision per camera", tuple((k, v) for k, v in judged if v is not None), "%"
            )
        )

    # 6
    inc = pack.incidents
    out += [
        Heading(2, "6. Incidents and outcomes"),
        Para(
            "Per station and local month of opening, by each incident's state now: confirmed, "
            "dispatched and resolved ones were confirmed by an officer; dismissed ones were "
            "false alarms; open ones are not yet judged. The last row adds up every row."
        ),
        Heading(3, "Raised by cameras"),
        _incident_table(inc.camera, inc.camera_total),
        Heading(3, "SOS (raised by people)"),
        _incident_table(inc.sos, inc.sos_total),
    ]
    months: dict[str, float] = {}
    for row in inc.camera:
        months[row.month] = months.get(row.month, 0) + row.opened
    if months:
        out.append(Bars("Camera incidents opened per month", tuple(sorted(months.items()))))

    # 7
    out += [Heading(2, "7. Watchlist use"), Para(f"Watchlist: {pack.watchlist}.")]

    # 8
    out += [
        Heading(2, "8. Impact assessment (DPIA / FRIA)"),
        Para(
            "DPIA reference: "
            + (c.dpia_reference if c.dpia_reference else f"{NOT_STATED} (gap)")
            + ". The sections below are filled from the figures above; a gap is named where "
            "the configuration states nothing."
        ),
    ]
    for s in pack.dpia:
        out.append(Heading(3, s.title))
        if s.statements:
            out.append(Bullets(s.statements))
        if s.gaps:
            out += [Para("Gaps:"), Bullets(s.gaps)]

    # Notices and limits
    out += [
        Heading(2, "Public notices"),
        Para("A notice in Hindi and English for each hotspot, for signage:"),
        Bullets(
            tuple(f"{p.label}: notices/{notice_name(pack.places, p)}.html" for p in pack.places)
        ),
        Heading(2, "What this pack does not show"),
        Para(
            "These counts describe the system, not the people it saw. An incident is a "
            "reading of a face, not a finding about a person; a dismissed incident is not a "
            "person's fault, and a station with more incidents is not a more dangerous place: "
            "it may simply have more cameras. Field precision counts what officers judged, "
            "and officers can be wrong."
        ),
    ]
    return out


# ---- the notices -----------------------------------------------------------------------------


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def notice_name(places: Sequence[HotspotPlace], place: HotspotPlace) -> str:
    """The notice's file name (no extension): the hotspot id, with any character unsafe in a
    file name replaced; made unique with the hotspot's position when two ids collide."""

    def safe(p: HotspotPlace) -> str:
        name = _SAFE.sub("_", p.id).strip(".") or "hotspot"
        return name

    name = safe(place)
    same = [p for p in places if safe(p) == name]
    if len(same) > 1:
        name = f"{name}-{same.index(place) + 1}"
    return name


def notice_blocks(pack: TransparencyPack, place: HotspotPlace) -> list[Block]:
    c = pack.contacts
    r = pack.retention
    station = place.station_name or place.station
    blocks: list[Block] = [
        Heading(1, f"इस स्थान पर कैमरा निगरानी: {place.label}", "hi"),
        Heading(1, f"Cameras watch this place: {place.label}", "en"),
        Heading(2, "यह कैमरा क्या करता है", "hi"),
        Bullets(
            (
                "यह चेहरों के भाव पढ़कर दिखाई देने वाले संकट (जैसे डर या दुःख) को पहचानने का "
                "प्रयास करता है, ताकि पुलिस मदद के लिए पहुँच सके।",
                "हर चेतावनी को एक पुलिस अधिकारी देखता है; अधिकारी की पुष्टि के बिना किसी को नहीं भेजा जाता।",
                "आपात स्थिति में 112 डायल करें।",
            ),
            "hi",
        ),
        Heading(2, "What the camera does", "en"),
        Bullets(
            (
                "It reads facial expressions to spot visible distress (such as fear or "
                "sadness), so that police can come to help.",
                "A police officer looks at every alert; nobody is sent without an officer's "
                "confirmation.",
                "In an emergency, dial 112.",
            ),
            "en",
        ),
        Heading(2, "यह कैमरा क्या नहीं करता", "hi"),
        Bullets(
            (
                "यह आपकी पहचान नहीं करता: न चेहरा पहचान, न किसी सूची से मिलान।",
                "यह आने-जाने वालों का वीडियो नहीं रखता: तस्वीरें और कुछ सेकंड का वीडियो केवल "
                "चेतावनी होने पर सहेजे जाते हैं, और उनमें अन्य लोगों के चेहरे धुंधले किए जाते "
                "हैं।",
            ),
            "hi",
        ),
        Heading(2, "What the camera does not do", "en"),
        Bullets(
            (
                "It does not identify you: no face recognition, no matching against any list.",
                "It does not keep video of passers-by: pictures and a few seconds of video are "
                "stored only when an alert is raised, with other people's faces blurred.",
            ),
            "en",
        ),
        Heading(2, "कौन चलाता है, क्यों और किस आधार पर", "hi"),
        Bullets(
            (
                f"संचालक: {c.operator or NOT_STATED_HI}",
                f"ज़िम्मेदार थाना: {station or NOT_STATED_HI}",
                f"उद्देश्य: {place.purpose or NOT_STATED_HI}",
                f"कानूनी आधार: {place.legal_basis or NOT_STATED_HI}",
            ),
            "hi",
        ),
        Heading(2, "Who runs it, why, and on what basis", "en"),
        Bullets(
            (
                f"Operator: {c.operator or NOT_STATED}",
                f"Responsible police station: {station or NOT_STATED}",
                f"Purpose: {place.purpose or NOT_STATED}",
                f"Legal basis: {place.legal_basis or NOT_STATED}",
            ),
            "en",
        ),
        Heading(2, "तस्वीरें कितने समय तक रखी जाती हैं", "hi"),
        Para(
            f"तस्वीरें {r.retention_days} दिन बाद हटा दी जाती हैं, जब तक किसी मामले के लिए "
            "उनकी ज़रूरत न हो।" + (" वे एन्क्रिप्ट करके रखी जाती हैं।" if r.encrypt else ""),
            "hi",
        ),
        Heading(2, "How long pictures are kept", "en"),
        Para(
            f"Pictures are deleted after {r.retention_days} days unless a case needs them."
            + (" They are stored encrypted." if r.encrypt else ""),
            "en",
        ),
        Heading(2, "शिकायत या प्रश्न", "hi"),
        Bullets(
            (
                f"शिकायत: {c.complaint_url or NOT_STATED_HI}",
                f"संपर्क: {c.contact or NOT_STATED_HI}",
                f"डेटा संरक्षण अधिकारी: {c.dpo_contact or NOT_STATED_HI}",
            ),
            "hi",
        ),
        Heading(2, "Complaints and questions", "en"),
        Bullets(
            (
                f"Complaints: {c.complaint_url or NOT_STATED}",
                f"Contact: {c.contact or NOT_STATED}",
                f"Data-protection officer: {c.dpo_contact or NOT_STATED}",
            ),
            "en",
        ),
    ]
    return blocks


# ---- HTML ------------------------------------------------------------------------------------


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _lang(lang: str | None) -> str:
    return f' lang="{_e(lang)}"' if lang else ""


BAR_W, LABEL_W, ROW_H = 260, 150, 22


def _svg(chart: Bars) -> str:
    top = max((v for _k, v in chart.items), default=0.0)
    scale = 1.0 if chart.unit == "%" else (top or 1.0)
    height = ROW_H * len(chart.items) + 28
    width = LABEL_W + BAR_W + 70
    parts = [
        f'<svg role="img" aria-label="{_e(chart.title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" '
        'font-family="sans-serif" font-size="12">',
        f"<title>{_e(chart.title)}</title>",
        f'<text x="0" y="14" font-weight="bold">{_e(chart.title)}</text>',
    ]
    for i, (label, value) in enumerate(chart.items):
        y = 24 + i * ROW_H
        w = max(0.0, min(1.0, value / scale)) * BAR_W
        shown = _pct(value) if chart.unit == "%" else f"{value:g}"
        short = label if len(label) <= 22 else label[:21] + "…"
        parts += [
            f'<text x="0" y="{y + 14}">{_e(short)}</text>',
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{ROW_H - 6}" '
            f'fill="#3b6ea5"><title>{_e(label)}: {_e(shown)}</title></rect>',
            f'<text x="{LABEL_W + w + 4:.1f}" y="{y + 14}">{_e(shown)}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def _html_blocks(blocks: Iterable[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}{_lang(b.lang)}>{_e(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p{_lang(b.lang)}>{_e(b.text)}</p>")
        elif isinstance(b, Bullets):
            items = "".join(f"<li>{_e(i)}</li>" for i in b.items)
            out.append(f"<ul{_lang(b.lang)}>{items}</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{_e(h)}</th>" for h in b.headers)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in b.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            out.append(f"<figure>{_svg(b)}</figure>")
    return "\n".join(out)


STYLE = (
    "body{font-family:sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;"
    "line-height:1.45}table{border-collapse:collapse;margin:.5rem 0 1rem}"
    "th,td{border:1px solid #999;padding:.2rem .5rem;text-align:left;vertical-align:top}"
    "th{background:#eee}figure{margin:.5rem 0 1rem}"
)


def _page(title: str, body: str, lang: str = "en") -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{_e(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


def render_html(pack: TransparencyPack) -> str:
    return _page("Raksha transparency pack", _html_blocks(pack_blocks(pack)))


# ---- Markdown --------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def _m(text: object) -> str:
    """Text safe in Markdown: its markup characters escaped, `<`, `>` and `&` as HTML
    entities (so that a name holding a tag stays text), on one line."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())


def _md_blocks(blocks: Iterable[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {_m(b.text)}")
        elif isinstance(b, Para):
            out.append(_m(b.text))
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {_m(i)}" for i in b.items))
        elif isinstance(b, Table):
            lines = [
                "| " + " | ".join(_m(h) for h in b.headers) + " |",
                "|" + "|".join("---" for _ in b.headers) + "|",
            ]
            lines += ["| " + " | ".join(_m(v) for v in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        else:
            out.append(f"({_m(b.title)}: a chart in index.html; the table above has the numbers)")
    return "\n\n".join(out) + "\n"


def render_markdown(pack: TransparencyPack) -> str:
    return _md_blocks(pack_blocks(pack))


def render_notice(pack: TransparencyPack, place: HotspotPlace) -> tuple[str, str]:
    """The notice of one hotspot as (Markdown, HTML)."""
    blocks = notice_blocks(pack, place)
    title = f"कैमरा सूचना / Camera notice: {place.label}"
    return _md_blocks(blocks), _page(title, _html_blocks(blocks), lang="hi")


# ---- files -----------------------------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RakshaError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_pack(pack: TransparencyPack, out_dir: Path) -> list[Path]:
    """Write the pack's files under `out_dir` (made if missing); the paths written.
    RakshaError naming the path when one cannot be written."""
    notices = out_dir / "notices"
    try:
        notices.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RakshaError(f"cannot create {notices}: {exc.strerror or exc}") from None
    written: list[tuple[Path, str]] = [
        (out_dir / "index.html", render_html(pack)),
        (out_dir / "transparency.md", render_markdown(pack)),
        (
            out_dir / "transparency.json",
            json.dumps(pack.to_json(), indent=2, ensure_ascii=False) + "\n",
        ),
    ]
    for place in pack.places:
        md, page = render_notice(pack, place)
        name = notice_name(pack.places, place)
        written += [(notices / f"{name}.md", md), (notices / f"{name}.html", page)]
    for path, text in written:
        _write(path, text)
    return [p for p, _ in written]
