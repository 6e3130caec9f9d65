"""A signed case export of one incident, and its verification.

    exporter = CaseExporter(store, audit, evidence_store, cfg.evidence.signing_key_file)
    export = exporter.export(caller, incident_id)           # the zip's bytes, audited
    report = verify_case_export(Path("case.zip"))          # or public_key=Path("trusted.pub")

The zip holds the evidence files decrypted to their plain bytes (`evidence/<n>-<name>`, read
only after their recorded SHA-256 matched), `incident.json`, `history.json`, `audit.json`
(every audit entry about the incident or its files, with its chain hashes), `model.json`,
`certificate.txt` and `certificate.html` (`raksha.services.case_certificate`), and
`manifest.json`: every other file with its SHA-256 and size, the export time, the exporter and
the deployment. `manifest.sig` is the Ed25519 signature over the exact bytes of manifest.json
with the deployment's key (`evidence.signing_key_file`), whose public half is
`signing_key.pub` (its fingerprint is in the manifest). Each export is audited as
`evidence.exported` with the SHA-256 of its manifest.

Verifying checks the signature (with a key the verifier trusts, else the one in the zip, and
the report says which), then every listed file's hash and size, and names each file altered,
missing or not listed.
"""

from __future__ import annotations

import hashlib
import json
import socket
import zipfile
import zlib
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


def _access(entries: list[AuditEntry], target: str) -> tuple[Access, ...]:
    return tuple(
        Access(iso(e.at) or "", e.actor, ACCESS[e.action])
        for e in entries
        if e.target == target and e.action in ACCESS
    )


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
        entries = self.audit.about([iid, f"incident:{iid}"], [f"incident:{iid}/"])
        files: dict[str, bytes] = {}
        records: list[RecordFacts] = []
        missing: list[dict[str, Any]] = []
        for n, ev in enumerate(incident.evidence, start=1):
            data = self._read(ev)
            name = _plain_name(n, ev)
            stored = Path(ev.path).name
            if data is not None:
                files[name] = data
            else:
                missing.append({"name": stored, "sha256": ev.sha256, "reason": "not on disk"})
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
                    note=None
                    if data is not None
                    else "the file is no longer on disk "
                    "(deleted by the retention policy, or lost); its recorded hashes stay",
                    access=_access(entries, f"incident:{iid}/evidence:{n}"),
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
            incident_access=_access(entries, f"incident:{iid}"),
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


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    incident_id: str | None = None
    fingerprint: str | None = None
    #: "trusted" (the verifier's --public-key) or "embedded" (signing_key.pub of the zip).
    key_source: str = "embedded"
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _member(zf: zipfile.ZipFile, name: str) -> bytes | None:
    """The member's bytes; None when it cannot be read back intact (a bad CRC)."""
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
        return None


def _key_for(
    zf: zipfile.ZipFile, names: set[str], public_key: Path | None, report: VerifyReport
) -> Ed25519PublicKey | None:
    if public_key is not None:
        report.key_source = "trusted"
        return load_public_key(public_key)
    if PUBLIC_KEY_NAME not in names:
        report.problems.append(f"missing: {PUBLIC_KEY_NAME} (give the public key to trust)")
        return None
    raw = _member(zf, PUBLIC_KEY_NAME)
    if raw is None:
        report.problems.append(f"altered: {PUBLIC_KEY_NAME}")
        return None
    try:
        return read_public_key(raw, PUBLIC_KEY_NAME)
    except RakshaError as exc:
        report.problems.append(f"altered: {exc}")
        return None


def _check_files(
    zf: zipfile.ZipFile, names: set[str], listed: list[Any], report: VerifyReport
) -> None:
    seen: set[str] = set()
    for item in listed:
        name = str(item.get("name", "")) if isinstance(item, dict) else ""
        if not name:
            report.problems.append("the manifest lists a file without a name")
            continue
        seen.add(name)
        if name not in names:
            report.problems.append(f"missing: {name}")
            continue
        data = _member(zf, name)
        report.files_checked += 1
        if data is None or _sha(data) != item.get("sha256") or len(data) != item.get("bytes"):
            report.problems.append(f"altered: {name}")
    for name in sorted(names - seen - UNLISTED):
        report.problems.append(f"extra: {name} (not in the manifest)")


def verify_case_export(path: Path, *, public_key: Path | None = None) -> VerifyReport:
    """Check the signature of the manifest, then every file against it (see the module)."""
    report = VerifyReport()
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise CaseExportError(f"{path} does not exist") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise CaseExportError(f"{path} is not a readable zip file: {exc}") from None
    with zf:
        listing = zf.namelist()
        names = set(listing)
        for name in sorted({n for n in listing if listing.count(n) > 1}):
            report.problems.append(f"extra: {name} appears more than once")
        if MANIFEST not in names:
            raise CaseExportError(f"{path} holds no {MANIFEST}: not a Raksha case export")
        manifest = _member(zf, MANIFEST)
        signature = _member(zf, SIGNATURE) if SIGNATURE in names else None
        key = _key_for(zf, names, public_key, report)
        if manifest is None:
            report.problems.append(f"altered: {MANIFEST}")
            return report
        if signature is None:
            report.problems.append(f"missing: {SIGNATURE}")
        if key is not None:
            report.fingerprint = fingerprint(key)
            if signature is not None:
                try:
                    key.verify(signature, manifest)
                except InvalidSignature:
                    report.problems.append(
                        f"the signature does not match: {MANIFEST} was altered or signed with "
                        f"another key than {report.fingerprint}"
                    )
        try:
            doc = json.loads(manifest)
        except ValueError:
            report.problems.append(f"altered: {MANIFEST} is not JSON")
            return report
        if not isinstance(doc, dict):
            report.problems.append(f"altered: {MANIFEST} is not a manifest")
            return report
        report.incident_id = str(doc.get("incident_id") or "") or None
        named = (doc.get("signature") or {}).get("public_key_fingerprint")
        if report.fingerprint is not None and named != report.fingerprint:
            report.problems.append(
                f"the manifest names signing key {named}, not {report.fingerprint}"
            )
        listed = doc.get("files")
        _check_files(zf, names, listed if isinstance(listed, list) else [], report)
    return report
