"""The certificate of a case export, for the officer who produces the records in court.

Modelled on Part A of the certificate of section 63(4)(c) of the Bharatiya Sakshya Adhiniyam,
2023 (the party's statement about an electronic record): for each record its SHA-256 and the
algorithm, the device and computer that produced it, how it was produced and kept, who had
access, the date, and a blank for the responsible officer's signature. The wording is
Raksha's own; the officer checks it, completes the blanks and signs. Part B (an expert's
statement) is not part of it.

    text = certificate_text(facts)
    html = certificate_html(facts)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

ALGORITHM = "SHA-256 (FIPS 180-4)"
ENCRYPTION = "Fernet: AES-128-CBC with HMAC-SHA256, key held by the deployment"
BLANK = "______________________________"


@dataclass(frozen=True, slots=True)
class Access:
    at: str
    actor: str
    what: str


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """One electronic record: as exported (`name`, `sha256`), or not included (`note`)."""

    name: str
    kind: str
    stored_name: str
    #: Of the bytes in the export (the plain picture or clip); None when not included.
    sha256: str | None
    #: Recorded at capture: of the bytes kept on disk, and of the plain content.
    recorded_sha256: str
    recorded_content_sha256: str | None
    bytes: int | None
    encrypted_at_rest: bool
    note: str | None = None
    access: tuple[Access, ...] = ()


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    incident_id: str
    camera_id: str
    hotspot: str
    station_id: str
    host: str
    software: str
    captured_at: str
    model: str
    exported_at: str
    exported_by: str
    records: tuple[RecordFacts, ...]
    holds: tuple[str, ...] = ()
    incident_access: tuple[Access, ...] = field(default_factory=tuple)


def _device(f: CertificateFacts) -> list[str]:
    return [
        f"Camera: {f.camera_id} at hotspot {f.hotspot}, served by police station {f.station_id}.",
        f"Computer: the Raksha deployment on host {f.host} ({f.software}), which analysed the "
        f"camera's video and wrote the records; expression model {f.model}.",
    ]


def _production(f: CertificateFacts) -> list[str]:
    lines = [
        f"The records were produced automatically at {f.captured_at} (UTC), when the system "
        "scored sustained distress on the camera's live video: a crop of the subject's face "
        "and the frame with every other face pixelated at capture, and (where listed) a clip "
        "of the seconds before and after, cut from the camera's frames held in memory, with "
        "every other face pixelated in each frame.",
        "Each record's SHA-256 was computed and stored in the incident database when it was "
        "written; the file was kept on the deployment's disk (mode 0600) and read back for "
        "this export only after its stored hash matched.",
        "Every view, hold and export of the records is appended to the deployment's "
        "hash-chained audit log (audit.json in this export holds the entries of this incident "
        "with their chain hashes).",
    ]
    if f.holds:
        lines.append("Legal hold in force at export: case " + ", ".join(f.holds) + ".")
    return lines


def _record_lines(r: RecordFacts) -> list[str]:
    out = [f"{r.name} ({r.kind})"]
    if r.sha256 is not None:
        out.append(f"  SHA-256 of the record as exported: {r.sha256}")
        out.append(f"  Size: {r.bytes} bytes")
    else:
        out.append(f"  Not included: {r.note}")
    out.append(f"  Stored as {r.stored_name}; SHA-256 recorded at capture: {r.recorded_sha256}")
    if r.recorded_content_sha256 is not None:
        out.append(f"  SHA-256 of the content recorded at capture: {r.recorded_content_sha256}")
    out.append(f"  Encryption at rest: {ENCRYPTION if r.encrypted_at_rest else 'none'}")
    if r.access:
        out.append("  Access recorded in the audit log:")
        out += [f"    {a.at}  {a.actor}  {a.what}" for a in r.access]
    else:
        out.append("  Access recorded in the audit log: none")
    return out


def certificate_text(f: CertificateFacts) -> str:
    lines = [
        "Certificate under section 63(4)(c) of the Bharatiya Sakshya Adhiniyam, 2023",
        "Part A (to be completed and signed by the party producing the electronic records)",
        "",
        f"I, {BLANK} (name), {BLANK} (designation), of police station {f.station_id},",
        "state that the electronic records listed below, exported from the Raksha system for",
        f"incident {f.incident_id}, were produced and kept as follows.",
        "",
        "1. Device and computer that produced the records",
        *(f"   {s}" for s in _device(f)),
        "",
        "2. How the records were produced and kept",
        *(f"   {s}" for s in _production(f)),
        "",
        f"3. The records (hash algorithm: {ALGORITHM})",
    ]
    for r in f.records:
        lines += [f"   {s}" for s in _record_lines(r)]
    if not f.records:
        lines.append("   No evidence file is recorded for this incident.")
    lines += ["", "4. Access to the incident recorded in the audit log"]
    lines += [f"   {a.at}  {a.actor}  {a.what}" for a in f.incident_access] or ["   none"]
    lines += [
        "",
        f"Exported on {f.exported_at} (UTC) by {f.exported_by}. The export's manifest.json lists",
        "every file of the export with its SHA-256 and is signed (manifest.sig, Ed25519) with the",
        "deployment's key (signing_key.pub); `raksha evidence verify` checks both.",
        "",
        "To the best of my knowledge and belief, the computer was operating properly during the",
        "period the records were produced and kept, and the records are a true reproduction of",
        "the information it holds.",
        "",
        f"Signature:   {BLANK}",
        f"Name:        {BLANK}",
        f"Designation: {BLANK}",
        f"Date:        {BLANK}",
        f"Place:       {BLANK}",
        "",
    ]
    return "\n".join(lines)


def _access_html(items: tuple[Access, ...]) -> str:
    if not items:
        return "<p>none</p>"
    rows = "".join(
        f"<tr><td>{escape(a.at)}</td><td>{escape(a.actor)}</td><td>{escape(a.what)}</td></tr>"
        for a in items
    )
    return f"<table><tr><th>When (UTC)</th><th>Who</th><th>What</th></tr>{rows}</table>"


def _record_html(r: RecordFacts) -> str:
    if r.sha256 is not None:
        head = (
            f"<p>SHA-256 of the record as exported: <code>{escape(r.sha256)}</code><br>"
            f"Size: {r.bytes} bytes</p>"
        )
    else:
        head = f"<p>Not included: {escape(r.note or '')}</p>"
    content = (
        f"<br>SHA-256 of the content recorded at capture: "
        f"<code>{escape(r.recorded_content_sha256)}</code>"
        if r.recorded_content_sha256 is not None
        else ""
    )
    return (
        f"<h3>{escape(r.name)} ({escape(r.kind)})</h3>{head}"
        f"<p>Stored as <code>{escape(r.stored_name)}</code>; SHA-256 recorded at capture: "
        f"<code>{escape(r.recorded_sha256)}</code>{content}<br>"
        f"Encryption at rest: {escape(ENCRYPTION if r.encrypted_at_rest else 'none')}</p>"
        f"<p>Access recorded in the audit log:</p>{_access_html(r.access)}"
    )


def certificate_html(f: CertificateFacts) -> str:
    device = "".join(f"<li>{escape(s)}</li>" for s in _device(f))
    production = "".join(f"<li>{escape(s)}</li>" for s in _production(f))
    records = "".join(_record_html(r) for r in f.records) or (
        "<p>No evidence file is recorded for this incident.</p>"
    )
    blank = "<span class='blank'></span>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Certificate, incident {escape(f.incident_id)}</title>
<style>body{{font-family:serif;max-width:50em;margin:2em auto;line-height:1.4}}
code{{font-size:.85em;word-break:break-all}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:.2em .5em;text-align:left}}
.blank{{display:inline-block;min-width:18em;border-bottom:1px solid #000}}</style></head>
<body>
<h1>Certificate under section 63(4)(c), Bharatiya Sakshya Adhiniyam, 2023</h1>
<p><strong>Part A</strong> (to be completed and signed by the party producing the electronic
records)</p>
<p>I, {blank} (name), {blank} (designation), of police station
{escape(f.station_id)}, state that the electronic records listed below, exported from the
Raksha system for incident <code>{escape(f.incident_id)}</code>, were produced and kept as
follows.</p>
<h2>1. Device and computer that produced the records</h2><ul>{device}</ul>
<h2>2. How the records were produced and kept</h2><ul>{production}</ul>
<h2>3. The records (hash algorithm: {escape(ALGORITHM)})</h2>{records}
<h2>4. Access to the incident recorded in the audit log</h2>{_access_html(f.incident_access)}
<p>Exported on {escape(f.exported_at)} (UTC) by {escape(f.exported_by)}. The export's
<code>manifest.json</code> lists every file of the export with its SHA-256 and is signed
(<code>manifest.sig</code>, Ed25519) with the deployment's key (<code>signing_key.pub</code>);
<code>raksha evidence verify</code> checks both.</p>
<p>To the best of my knowledge and belief, the computer was operating properly during the
period the records were produced and kept, and the records are a true reproduction of the
information it holds.</p>
<p>Signature: {blank}<br>Name: {blank}<br>Designation: {blank}<br>Date: {blank}<br>
Place: {blank}</p>
</body></html>
"""
