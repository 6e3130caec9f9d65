"""A signed case export of one incident, and its verification.

    exporter = CaseExporter(store, audit, evidence_store, cfg.evidence.signing_key_file)
    export = exporter.export(caller, incident_id)           # the zip's bytes, audited
    report = verify_case_export(Path("case.zip"), public_key=Path("trusted.pub"))
    report = verify_case_export(path, trust=TrustedKey.from_fingerprint("SHA256:..."))

The zip holds the evidence files decrypted to their plain bytes (`evidence/<n>-<name>`, read
only after their recorded SHA-256 matched), `incident.json`, `history.json`, `audit.json`
(every audit entry about the incident or its files, with its chain hashes), `model.json`,
`certificate.txt` and `certificate.html` (`raksha.services.case_certificate`), and
`manifest.json`: every other file with its SHA-256 and size, the export time, the exporter and
the deployment. `manifest.sig` is the Ed25519 signature over the exact bytes of manifest.json
with the deployment's key (`evidence.signing_key_file`), whose public half is
`signing_key.pub` (its fingerprint is in the manifest). Each export is audited as
`evidence.exported` with the SHA-256 of its manifest.

Verifying checks the signature, then every listed file's hash and size, and names each file
altered, missing or not listed. Only a key the verifier vouches for (`TrustedKey`: a public
key file, the deployment's own signing key, or a published fingerprint) makes an export
verified: anyone can rebuild the manifest of altered files and sign it with a key of their
own shipped in the zip, so an intact export signed only by its embedded key is reported as
such (`VerifyReport.ok` is False, the command line exits 2). The zip is read defensively: a
member's size in the zip must be the manifest's, members are hashed in chunks and never read
past that size or `MAX_MEMBER_BYTES`, and an encrypted, damaged or oddly compressed member or
a malformed manifest is one problem line, never an exception.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import lzma
import socket
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from raksha import __version__
from raksha.audit.log import AuditEntry, AuditLog
from raksha.auth.access import Rule
from raksha.errors import RakshaError
from raksha.incidents.evidence import (
    EvidenceIntegrityError,
    EvidenceKeyError,
    EvidenceMissing,
    EvidenceStore,
)
from raksha.incidents.model import EvidenceFile, Incident, utcnow
from raksha.services.case_certificate import (
    Access,
    CertificateFacts,
    RecordFacts,
    certificate_html,
    certificate_text,
)
from raksha.services.case_signing import (
    PUBLIC_KEY_NAME,
    SigningKeyError,
    fingerprint,
    load_public_key,
    load_signing_key,
    parse_fingerprint,
    public_pem,
    read_public_key,
)
from raksha.services.errors import Conflict, Unavailable
from raksha.services.incidents import Caller
from raksha.services.scope import scoped_incident
from raksha.store import holds
from raksha.store.repository import IncidentStore
from raksha.store.serialize import action_to_json, incident_to_json, iso

FORMAT = "raksha-case-export/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
#: Not listed in the manifest: the manifest itself and its signature.
UNLISTED = frozenset({MANIFEST, SIGNATURE})
#: Audit actions that count as access to an evidence file, and what the certificate says.
ACCESS = {
    "evidence.view": "viewed",
    "evidence.unblur": "viewed the original",
    "incident.view": "opened the incident",
    "evidence.hold_placed": "placed a legal hold",
    "evidence.hold_lifted": "lifted a legal hold",
    "evidence.exported": "exported the case",
    "evidence.purged": "deleted by retention",
    "evidence.purge_failed": "retention could not delete it",
    "evidence.rekeyed": "re-encrypted under a new key",
}


class CaseExportError(RakshaError):
    """The file is not a case export that can be read (not a zip, no manifest)."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class Deployment:
    host: str
    software: str

    @classmethod
    def here(cls) -> Deployment:
        return cls(socket.gethostname(), f"raksha {__version__}")


@dataclass(frozen=True, slots=True)
class CaseExport:
    data: bytes
    incident_id: str
    manifest_sha256: str
    fingerprint: str
    files: int

    @property
    def filename(self) -> str:
        return f"raksha-case-{self.incident_id}.zip"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _plain_name(n: int, ev: EvidenceFile) -> str:
    name = Path(ev.path).name
    return f"evidence/{n}-{name.removesuffix('.enc')}"


def _names(entry: AuditEntry) -> set[str]:
    """The stored evidence file names an incident-wide entry names in its details: the files
    a purge deleted (`deleted`, `failed`) or a key rotation re-encrypted (`files`)."""
    out: set[str] = set()
    for key in ("deleted", "failed", "files"):
        items = entry.details.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, dict):
                out |= {
                    v for k in ("name", "file", "new_file") if isinstance(v := item.get(k), str)
                }
    return out


def _access(
    entries: list[AuditEntry], targets: set[str], file: str | None = None
) -> tuple[Access, ...]:
    """The entries about `targets` (an incident is audited both as `<id>`, by the retention
    purge and the key rotation, and as `incident:<id>`), and those naming the stored `file`."""
    return tuple(
        Access(iso(e.at) or "", e.actor, ACCESS[e.action])
        for e in entries
        if e.action in ACCESS and (e.target in targets or (file is not None and file in _names(e)))
    )


def _purged(entries: list[AuditEntry], file: str) -> AuditEntry | None:
    """The retention purge's entry that deleted the stored `file`, if any."""
    for e in entries:
        if e.action == "evidence.purged" and file in _names(e):
            return e
    return None


class CaseExporter:
    def __init__(
        self,
        store: IncidentStore,
        audit: AuditLog,
        evidence: EvidenceStore,
        signing_key_file: Path | None,
        *,
        deployment: Deployment | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.audit = audit
        self.evidence = evidence
        self.signing_key_file = signing_key_file
        self.deployment = deployment or Deployment.here()
        self._clock = clock

    def export(self, caller: Caller, incident_id: str) -> CaseExport:
        """The signed export for a logged-in caller (`Rule.INCIDENTS_EXPORT`, station-scoped);
        Unavailable when the deployment has no usable signing key or evidence key."""
        incident = scoped_incident(
            self.store, self.audit, caller, incident_id, Rule.INCIDENTS_EXPORT
        )
        try:
            return self._build(incident, caller.name, caller.address, via=None)
        except SigningKeyError as exc:
            raise Unavailable(str(exc)) from None

    def export_local(self, actor: str, incident: Incident, *, via: str) -> CaseExport:
        """The command line's export (it holds the database and the keys already)."""
        return self._build(incident, actor, None, via=via)

    def _read(self, ev: EvidenceFile) -> bytes | None:
        try:
            return self.evidence.read(ev)
        except EvidenceMissing:
            return None
        except EvidenceIntegrityError as exc:
            raise Conflict(f"{exc}; not exported") from None
        except EvidenceKeyError as exc:
            raise Unavailable(str(exc)) from None

    def _build(
        self, incident: Incident, actor: str, address: str | None, *, via: str | None
    ) -> CaseExport:
        key = load_signing_key(self.signing_key_file)
        public = key.public_key()
        print_ = fingerprint(public)
        now = self._clock()
        at = iso(now) or ""
        iid = incident.id
        # The incident is audited both as `<id>` (the retention purge, the key rotation) and
        # as `incident:<id>` (views, holds, exports), its files as `incident:<id>/evidence:N`.
        targets = {iid, f"incident:{iid}"}
        entries = self.audit.about(sorted(targets), [f"incident:{iid}/"])
        files: dict[str, bytes] = {}
        records: list[RecordFacts] = []
        missing: list[dict[str, Any]] = []
        for n, ev in enumerate(incident.evidence, start=1):
            data = self._read(ev)
            name = _plain_name(n, ev)
            stored = Path(ev.path).name
            purge = _purged(entries, stored) if data is None else None
            gone = (
                "the file is no longer on disk "
                "(deleted by the retention policy, or lost); its recorded hashes stay"
                if purge is None
                else f"deleted by the retention policy on {iso(purge.at)} (audit entry "
                f"{purge.seq}); its recorded hashes stay"
            )
            if data is not None:
                files[name] = data
            else:
                reason = "not on disk" if purge is None else "deleted by retention"
                missing.append({"name": stored, "sha256": ev.sha256, "reason": reason})
            records.append(
                RecordFacts(
                    name=name,
                    kind=ev.kind.value,
                    stored_name=stored,
                    sha256=_sha(data) if data is not None else None,
                    recorded_sha256=ev.sha256,
                    recorded_content_sha256=ev.content_sha256,
                    bytes=len(data) if data is not None else None,
                    encrypted_at_rest=stored.endswith(".enc"),
                    note=None if data is not None else gone,
                    access=_access(entries, {f"incident:{iid}/evidence:{n}"}, stored),
                )
            )
        in_force = tuple(
            h.case_number for h in holds.of_incident(self.store.engine, iid, active_only=True)
        )
        facts = CertificateFacts(
            incident_id=iid,
            camera_id=incident.camera_id,
            hotspot=incident.hotspot_id,
            station_id=incident.station_id,
            host=self.deployment.host,
            software=self.deployment.software,
            captured_at=iso(incident.opened_at) or "",
            model=f"{incident.model_name} (SHA-256 {incident.model_sha256 or 'not recorded'})",
            exported_at=at,
            exported_by=actor,
            records=tuple(records),
            holds=in_force,
            incident_access=_access(entries, targets),
        )
        files["incident.json"] = _json(incident_to_json(incident))
        files["history.json"] = _json([action_to_json(a) for a in self.store.actions(iid)])
        files["audit.json"] = _json(
            {
                "incident_id": iid,
                "note": "entries about this incident and its files, with their chain hashes "
                "(raksha.audit.chain: SHA-256 over the canonical JSON of each entry)",
                "entries": [e.to_json() for e in entries],
            }
        )
        files["model.json"] = _json(
            {
                "model_name": incident.model_name,
                "model_sha256": incident.model_sha256,
                "thresholds": incident.thresholds,
            }
        )
        files["certificate.txt"] = certificate_text(facts).encode()
        files["certificate.html"] = certificate_html(facts).encode()
        files[PUBLIC_KEY_NAME] = public_pem(public)
        manifest = _json(
            {
                "format": FORMAT,
                "incident_id": iid,
                "exported_at": at,
                "exported_by": actor,
                "deployment": {"host": self.deployment.host, "software": self.deployment.software},
                "hash_algorithm": "SHA-256",
                "signature": {
                    "algorithm": "Ed25519",
                    "signed_file": MANIFEST,
                    "signature_file": SIGNATURE,
                    "public_key_file": PUBLIC_KEY_NAME,
                    "public_key_fingerprint": print_,
                },
                "files": [
                    {"name": name, "sha256": _sha(data), "bytes": len(data)}
                    for name, data in sorted(files.items())
                ],
                "records_not_included": missing,
            }
        )
        signature = key.sign(manifest)
        data = _zip({**files, MANIFEST: manifest, SIGNATURE: signature}, now)
        digest = _sha(manifest)
        details: dict[str, Any] = {
            "manifest_sha256": digest,
            "files": len(files),
            "bytes": len(data),
            "signing_key": print_,
            "records_not_included": len(missing),
        }
        if via is not None:
            details["via"] = via
        self.audit.append(
            actor,
            "evidence.exported",
            target=f"incident:{iid}",
            station_id=incident.station_id,
            address=address,
            details=details,
        )
        return CaseExport(data, iid, digest, print_, len(files))


def _zip(files: dict[str, bytes], when: datetime) -> bytes:
    import io

    buf = io.BytesIO()
    stamp = (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = 0o600 << 16
            packed = name.endswith((".json", ".txt", ".html"))
            info.compress_type = zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED
            zf.writestr(info, data)
    return buf.getvalue()


# ---- verifying --------------------------------------------------------------------------------

#: At most this many entries in the zip, or files in the manifest (an export holds a dozen).
MAX_ENTRIES = 10_000
#: No member is read past this size (a picture or clip is far smaller), nor more than
#: MAX_TOTAL_BYTES over all: a zip bomb is refused before it is inflated.
MAX_MEMBER_BYTES = 1 << 30
MAX_TOTAL_BYTES = 8 << 30
#: The members read whole: the manifest, its signature and the embedded public key.
SMALL_LIMITS = {MANIFEST: 16 << 20, SIGNATURE: 1024, PUBLIC_KEY_NAME: 64 << 10}
CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")
#: What reading a damaged, encrypted or oddly compressed member raises.
_UNREADABLE: tuple[type[BaseException], ...] = (
    RuntimeError,  # an encrypted member (a password is needed)
    NotImplementedError,  # a compression method zipfile does not know
    zipfile.BadZipFile,  # a bad CRC, a bad local header
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
)


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """The key a verifier vouches for: a public key it holds (`key`) or only the fingerprint
    the deployment published (the zip's own key must then have it). `source` says where it
    came from, for the report."""

    fingerprint: str
    source: str
    key: Ed25519PublicKey | None = None

    @classmethod
    def from_public_key_file(cls, path: Path) -> TrustedKey:
        key = load_public_key(path)
        return cls(fingerprint(key), f"the public key {path}", key)

    @classmethod
    def from_signing_key_file(cls, path: Path | None, where: str) -> TrustedKey:
        """The public half of the deployment's own signing key (`evidence.signing_key_file`
        of the config `where`)."""
        key = load_signing_key(path).public_key()
        return cls(fingerprint(key), f"evidence.signing_key_file of {where}", key)

    @classmethod
    def from_fingerprint(cls, text: str) -> TrustedKey:
        return cls(parse_fingerprint(text), "the published fingerprint")


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    incident_id: str | None = None
    #: The fingerprint of the key the signature was checked with.
    fingerprint: str | None = None
    #: "trusted" (a key or fingerprint the verifier gave) or "embedded" (signing_key.pub of
    #: the zip, which a forger can replace: it shows the files are as signed, not by whom).
    key_source: str = "embedded"
    #: Where the trusted key came from ("the public key trusted.pub", ...).
    trusted_by: str | None = None
    files_checked: int = 0

    @property
    def intact(self) -> bool:
        """Every check passed (the signature, every file): with the embedded key this says
        nothing about who signed."""
        return not self.problems

    @property
    def trusted(self) -> bool:
        return self.key_source == "trusted"

    @property
    def ok(self) -> bool:
        """Verified: intact, and signed by a key the verifier vouched for."""
        return self.intact and self.trusted

    @property
    def exit_code(self) -> int:
        """The command line's: 0 verified, 1 altered (or a bad signature), 2 intact but
        signed by a key nobody vouched for."""
        if self.problems:
            return 1
        return 0 if self.trusted else 2


def _why(exc: BaseException) -> str:
    if isinstance(exc, RuntimeError) and "encrypted" in str(exc):
        return "encrypted, a password is needed"  # zipfile's text names the ZipInfo
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]


def _read_small(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | str:
    """A small member's bytes (the manifest, signature, public key), or why it cannot be
    read: larger than its limit, damaged, encrypted, unknown compression."""
    limit = SMALL_LIMITS[info.filename]
    if info.file_size > limit:
        return f"larger than {limit} bytes"
    try:
        with zf.open(info) as f:
            data = f.read(limit + 1)
    except _UNREADABLE as exc:
        return _why(exc)
    if len(data) > limit:
        return f"larger than {limit} bytes"
    return data


def _digest(zf: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> str | None:
    """The SHA-256 of a member that inflates to exactly `size` bytes, read in chunks and
    never past `size`; None when it does not (or cannot be read: why is raised)."""
    h = hashlib.sha256()
    n = 0
    with zf.open(info) as f:
        while chunk := f.read(min(CHUNK, size - n + 1)):
            n += len(chunk)
            if n > size:
                return None
            h.update(chunk)
    return h.hexdigest() if n == size else None


@dataclass(frozen=True, slots=True)
class _Listed:
    name: str
    sha256: str
    bytes: int


def _manifest_problem(doc: Any) -> str | None:
    """What is wrong with the manifest's structure (one phrase), None when it is sound."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    if doc.get("format") != FORMAT:
        return f"format is not {FORMAT}"
    if not isinstance(doc.get("incident_id"), str):
        return "incident_id is not a string"
    sig = doc.get("signature")
    if not isinstance(sig, dict) or not isinstance(sig.get("public_key_fingerprint"), str):
        return "signature.public_key_fingerprint is missing"
    files = doc.get("files")
    if not isinstance(files, list):
        return "files is not a list"
    if len(files) > MAX_ENTRIES:
        return f"it lists {len(files)} files, more than {MAX_ENTRIES}"
    for n, item in enumerate(files):
        if not isinstance(item, dict):
            return f"files[{n}] is not an object"
        name, digest, size = item.get("name"), item.get("sha256"), item.get("bytes")
        if not isinstance(name, str) or not name or len(name) > 1024:
            return f"files[{n}] has no name"
        if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _HEX:
            return f"files[{n}] ({name[:80]}) has no SHA-256"
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            return f"files[{n}] ({name[:80]}) has no size"
    return None


def _check_files(
    zf: zipfile.ZipFile,
    infos: dict[str, zipfile.ZipInfo],
    listed: list[_Listed],
    report: VerifyReport,
) -> None:
    total = 0
    for twice, count in Counter(i.name for i in listed).items():
        if count > 1:
            report.problems.append(f"altered: {MANIFEST} lists {twice} {count} times")
    for item in listed:
        name = item.name
        info = infos.get(name)
        if info is None:
            report.problems.append(f"missing: {name}")
            continue
        report.files_checked += 1
        if info.file_size != item.bytes:
            report.problems.append(f"altered: {name}")  # its size is not the one signed
            continue
        if info.file_size > MAX_MEMBER_BYTES or total + info.file_size > MAX_TOTAL_BYTES:
            report.problems.append(f"altered: {name} (larger than a case export holds; not read)")
            continue
        total += info.file_size
        try:
            digest = _digest(zf, info, item.bytes)
        except _UNREADABLE as exc:
            if isinstance(exc, (zipfile.BadZipFile, zlib.error, EOFError)):
                report.problems.append(f"altered: {name}")  # damaged: its CRC, its stream
            else:
                report.problems.append(f"altered: {name} (unreadable: {_why(exc)})")
            continue
        if digest is None or not hmac.compare_digest(digest, item.sha256):
            report.problems.append(f"altered: {name}")
    for name in sorted(set(infos) - {i.name for i in listed} - UNLISTED):
        report.problems.append(f"extra: {name} (not in the manifest)")


def _key_for(
    zf: zipfile.ZipFile,
    infos: dict[str, zipfile.ZipInfo],
    trust: TrustedKey | None,
    report: VerifyReport,
) -> Ed25519PublicKey | None:
    """The key to check the signature with: the trusted one, else the zip's own (which must
    have the trusted fingerprint when only that was given)."""
    if trust is not None:
        report.key_source = "trusted"
        report.trusted_by = trust.source
        if trust.key is not None:
            return trust.key
    info = infos.get(PUBLIC_KEY_NAME)
    if info is None:
        report.problems.append(f"missing: {PUBLIC_KEY_NAME} (give the public key to trust)")
        return None
    raw = _read_small(zf, info)
    if isinstance(raw, str):
        report.problems.append(f"altered: {PUBLIC_KEY_NAME} ({raw})")
        return None
    try:
        key = read_public_key(raw, PUBLIC_KEY_NAME)
    except RakshaError as exc:
        report.problems.append(f"altered: {exc}")
        return None
    if trust is not None and fingerprint(key) != trust.fingerprint:
        report.problems.append(
            f"signed with the key {fingerprint(key)}, not the trusted {trust.fingerprint}"
        )
        return None
    return key


def verify_case_export(
    path: Path, *, public_key: Path | None = None, trust: TrustedKey | None = None
) -> VerifyReport:
    """Check the signature of the manifest, then every file against it (see the module).
    `trust` (or `public_key`, a PEM file) is the key the verifier vouches for; without it
    the zip's own key is used and the report is not `ok` however intact the files are."""
    if trust is None and public_key is not None:
        trust = TrustedKey.from_public_key_file(public_key)
    report = VerifyReport()
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise CaseExportError(f"{path} does not exist") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CaseExportError(f"{path} is not a readable zip file: {_why(exc)}") from None
    with zf:
        listing = zf.infolist()
        if len(listing) > MAX_ENTRIES:
            report.problems.append(f"the zip holds {len(listing)} files, more than {MAX_ENTRIES}")
            return report
        infos: dict[str, zipfile.ZipInfo] = {}
        for info in listing:
            infos.setdefault(info.filename, info)
        for name, count in sorted(Counter(i.filename for i in listing).items()):
            if count > 1:
                report.problems.append(f"extra: {name} appears more than once")
        if MANIFEST not in infos:
            raise CaseExportError(f"{path} holds no {MANIFEST}: not a Raksha case export")
        manifest = _read_small(zf, infos[MANIFEST])
        signature = _read_small(zf, infos[SIGNATURE]) if SIGNATURE in infos else None
        key = _key_for(zf, infos, trust, report)
        if key is not None:
            report.fingerprint = fingerprint(key)
        if isinstance(manifest, str):
            report.problems.append(f"altered: {MANIFEST} ({manifest})")
            return report
        if signature is None:
            report.problems.append(f"missing: {SIGNATURE}")
        elif isinstance(signature, str):
            report.problems.append(f"altered: {SIGNATURE} ({signature})")
        elif key is not None:
            try:
                key.verify(signature, manifest)
            except InvalidSignature:
                report.problems.append(
                    f"the signature does not match: {MANIFEST} was altered or signed with "
                    f"another key than {report.fingerprint}"
                )
        try:
            doc = json.loads(manifest)
        except (ValueError, RecursionError):
            report.problems.append(f"altered: {MANIFEST} is not JSON")
            return report
        wrong = _manifest_problem(doc)
        if wrong is not None:
            report.problems.append(f"altered: {MANIFEST} is not a valid manifest ({wrong})")
            return report
        report.incident_id = doc["incident_id"] or None
        named = doc["signature"]["public_key_fingerprint"]
        if report.fingerprint is not None and named != report.fingerprint:
            report.problems.append(
                f"the manifest names signing key {named[:80]}, not {report.fingerprint}"
            )
        listed = [_Listed(f["name"], f["sha256"], f["bytes"]) for f in doc["files"]]
        _check_files(zf, infos, listed, report)
    return report
