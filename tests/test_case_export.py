"""The signed case export and its verification (issue 19), over a real SQLite store with
evidence encrypted at rest.

- the zip holds the evidence decrypted (its bytes hash to the content SHA-256 recorded at
  capture), the record, history, audit entries with their chain hashes, the model, the
  certificate and a manifest signed with the deployment's Ed25519 key; it verifies;
- one altered byte in an evidence file, a missing or extra file, another signature, or a
  different trusted key fails verification, naming what is wrong;
- the export is audited with the manifest's hash; a bad signing key is one clear line;
- the command line (keygen-signing, export, verify) and the API (scoped like the CSV export).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from typer.testing import CliRunner

from dashboard_support import STATION_A, STATION_B, add_incident, dashboard
from raksha.audit.log import AuditLog
from raksha.auth.roles import Role
from raksha.auth.users import User
from raksha.cli import app as cli_app
from raksha.domain.routing import Route
from raksha.errors import RakshaError
from raksha.incidents.evidence import EvidenceWriter
from raksha.incidents.model import Action, NewIncident, utcnow
from raksha.services.case_export import CaseExporter, Deployment, verify_case_export
from raksha.services.case_signing import SigningKeyError, load_signing_key, write_signing_key
from raksha.services.errors import NotFound, Unavailable
from raksha.services.holds import HoldService
from raksha.services.incidents import Caller, IncidentService
from raksha.store import IncidentStore

KEY_ENV = "RAKSHA_CASE_TEST_KEY"
DEPLOYMENT = Deployment("lko-control-01", "raksha test")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    key = Fernet.generate_key()
    monkeypatch.setenv(KEY_ENV, key.decode())
    url = f"sqlite:///{tmp_path / 'case.db'}"
    store = IncidentStore.open(url)
    writer = EvidenceWriter(tmp_path / "ev", key=key)
    new = NewIncident(
        camera_id="cam-7",
        hotspot_id="charbagh-gate",
        station_id=STATION_A,
        peak_distress=0.81,
        expression_at_peak={"fear": 0.7, "neutral": 0.3},
        model_name="ferplus-8",
        model_sha256="b" * 64,
        thresholds={"enter_threshold": 0.55},
        route=Route(STATION_A, "nearest", 120.0, ()),
    )
    image = np.random.default_rng(3).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    iid = store.create_incident(new, writer.capture(new.id, image, (40, 20, 100, 90)), {}, ["x"])
    store.apply_action(iid, Action.ACKNOWLEDGE, "op_a", note="on it")
    audit = AuditLog(store.engine)
    reader = EvidenceWriter(tmp_path / "ev", key_env=KEY_ENV)
    sup = Caller(User(2, "sup_a", Role.SUPERVISOR, STATION_A, False, utcnow(), None), "10.0.0.2")
    # A view of the face, and a hold: the certificate's custody and the audit entries.
    IncidentService(store, audit, reader).evidence(sup, iid, 1, unblur=False, reason=None)
    HoldService(store, audit).place(sup, iid, case_number="FIR 12/2026", reason="court order")
    signing = tmp_path / "signing.pem"
    write_signing_key(signing)
    exporter = CaseExporter(store, audit, reader, signing, deployment=DEPLOYMENT)
    yield {
        "store": store,
        "audit": audit,
        "iid": iid,
        "sup": sup,
        "exporter": exporter,
        "signing": signing,
        "tmp": tmp_path,
        "url": url,
    }
    store.close()


def _export(world: dict[str, object]) -> tuple[Path, bytes]:
    exporter = world["exporter"]
    assert isinstance(exporter, CaseExporter)
    result = exporter.export(world["sup"], str(world["iid"]))  # type: ignore[arg-type]
    out = Path(str(world["tmp"])) / "case.zip"
    out.write_bytes(result.data)
    return out, result.data


def _fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


def _pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _public_file(key: Ed25519PublicKey, out: Path) -> Path:
    out.write_bytes(_pem(key))
    return out


def _rewrite(src: Path, dst: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of the zip with members replaced (None: removed) or added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in change:
                data = change.pop(info.filename)
                if data is not None:
                    zout.writestr(info, data)
            else:
                zout.writestr(info, zin.read(info.filename))
        for name, data in change.items():
            if data is not None:
                zout.writestr(name, data)
    return dst


def test_the_export_holds_the_case_and_verifies(world: dict[str, object]) -> None:
    path, data = _export(world)
    store = world["store"]
    assert isinstance(store, IncidentStore)
    incident = store.get_incident(str(world["iid"]))
    assert incident is not None
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        manifest_bytes = zf.read("manifest.json")
        manifest = json.loads(manifest_bytes)
        pictures = sorted(n for n in names if n.startswith("evidence/"))
        assert pictures == ["evidence/1-face.jpg", "evidence/2-frame_blurred.jpg"]
        for name, ev in zip(pictures, incident.evidence, strict=True):
            plain = zf.read(name)
            assert plain[:2] == b"\xff\xd8"  # a JPEG, not the Fernet token on disk
            assert hashlib.sha256(plain).hexdigest() == ev.content_sha256
        audit = json.loads(zf.read("audit.json"))["entries"]
        assert {"evidence.view", "evidence.hold_placed"} <= {e["action"] for e in audit}
        assert all(len(e["hash"]) == 64 and len(e["prev_hash"]) == 64 for e in audit)
        assert json.loads(zf.read("model.json")) == {
            "model_name": "ferplus-8",
            "model_sha256": "b" * 64,
            "thresholds": {"enter_threshold": 0.55},
        }
        assert [a["action"] for a in json.loads(zf.read("history.json"))] == ["acknowledge"]
        assert json.loads(zf.read("incident.json"))["id"] == incident.id
        cert = zf.read("certificate.txt").decode()
        html = zf.read("certificate.html").decode()
    assert manifest["exported_by"] == "sup_a" and manifest["deployment"]["host"] == "lko-control-01"
    listed = {f["name"] for f in manifest["files"]}
    assert listed == names - {"manifest.json", "manifest.sig"}
    for text in (cert, html):
        assert "Bharatiya Sakshya Adhiniyam" in text and "SHA-256" in text
        assert "cam-7" in text and "charbagh-gate" in text and "lko-control-01" in text
        assert all(ev.content_sha256 in text and ev.sha256 in text for ev in incident.evidence)
        assert "AES-128-CBC" in text and "FIR 12/2026" in text and "sup_a" in text
    assert "Signature:" in cert and "viewed" in cert
    fp = manifest["signature"]["public_key_fingerprint"]
    key = load_signing_key(Path(str(world["signing"])))
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert fp == "SHA256:" + hashlib.sha256(pub).hexdigest()

    report = verify_case_export(path)
    assert report.intact, report.problems
    assert report.key_source == "embedded" and report.fingerprint == fp
    assert not report.ok and report.exit_code == 2  # intact, but nobody vouched for the key
    assert report.incident_id == incident.id and report.files_checked == len(listed)
    trusted = Path(str(world["tmp"])) / "trusted.pub"
    trusted.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert verify_case_export(path, public_key=trusted).key_source == "trusted"
    assert verify_case_export(path, public_key=trusted).ok
    assert verify_case_export(path, public_key=trusted).exit_code == 0

    audit_log = world["audit"]
    assert isinstance(audit_log, AuditLog)
    (entry,) = audit_log.entries(action="evidence.exported")
    assert entry.actor == "sup_a" and entry.target == f"incident:{incident.id}"
    assert entry.details["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    assert audit_log.verify().ok


def test_one_altered_byte_in_an_evidence_file_fails_naming_it(world: dict[str, object]) -> None:
    path, _ = _export(world)
    with zipfile.ZipFile(path) as zf:
        face = bytearray(zf.read("evidence/1-face.jpg"))
    face[len(face) // 2] ^= 0x01
    altered = _rewrite(path, path.with_name("altered.zip"), {"evidence/1-face.jpg": bytes(face)})
    report = verify_case_export(altered)
    assert report.problems == ["altered: evidence/1-face.jpg"]
    # A byte flipped in the zip itself (its CRC no longer matches): the same verdict.
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("evidence/2-frame_blurred.jpg")
    raw[info.header_offset + 30 + len(info.filename) + 100] ^= 0xFF
    flipped = path.with_name("flipped.zip")
    flipped.write_bytes(bytes(raw))
    assert verify_case_export(flipped).problems == ["altered: evidence/2-frame_blurred.jpg"]


def test_missing_extra_and_altered_manifest_files_are_named(world: dict[str, object]) -> None:
    path, _ = _export(world)
    changed = _rewrite(
        path,
        path.with_name("changed.zip"),
        {"history.json": None, "notes.txt": b"added later", "model.json": b"{}\n"},
    )
    problems = verify_case_export(changed).problems
    assert sorted(problems) == [
        "altered: model.json",
        "extra: notes.txt (not in the manifest)",
        "missing: history.json",
    ]


def test_another_signature_or_trusted_key_fails(world: dict[str, object]) -> None:
    path, _ = _export(world)
    with zipfile.ZipFile(path) as zf:
        manifest = zf.read("manifest.json")
    other = Ed25519PrivateKey.generate()
    forged = _rewrite(path, path.with_name("forged.zip"), {"manifest.sig": other.sign(manifest)})
    problems = verify_case_export(forged).problems
    assert len(problems) == 1 and problems[0].startswith("the signature does not match")
    # A re-signed manifest with the forger's key in the zip: the embedded key's fingerprint
    # is not the manifest's, and a verifier's trusted key refuses it.
    other_pem = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    doc = json.loads(manifest)
    doc["files"] = [f for f in doc["files"] if f["name"] != "signing_key.pub"] + [
        {
            "name": "signing_key.pub",
            "sha256": hashlib.sha256(other_pem).hexdigest(),
            "bytes": len(other_pem),
        }
    ]
    resigned = json.dumps(doc).encode()
    swapped = _rewrite(
        path,
        path.with_name("swapped.zip"),
        {
            "manifest.json": resigned,
            "manifest.sig": other.sign(resigned),
            "signing_key.pub": other_pem,
        },
    )
    assert any("names signing key" in p for p in verify_case_export(swapped).problems)
    trusted = path.with_name("trusted.pub")
    trusted.write_bytes(
        load_signing_key(Path(str(world["signing"])))
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert not verify_case_export(swapped, public_key=trusted).ok
    stranger = path.with_name("stranger.pub")
    stranger.write_bytes(other_pem)
    problems = verify_case_export(path, public_key=stranger).problems
    assert any(p.startswith("the signature does not match") for p in problems)


def test_export_is_scoped_and_a_bad_signing_key_is_one_line(
    world: dict[str, object], tmp_path: Path
) -> None:
    exporter = world["exporter"]
    assert isinstance(exporter, CaseExporter)
    iid = str(world["iid"])
    other = Caller(User(3, "sup_b", Role.SUPERVISOR, STATION_B, False, utcnow(), None))
    with pytest.raises(NotFound):
        exporter.export(other, iid)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(Fernet.generate_key().decode())
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = tmp_path / "rsa.pem"
    rsa_key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    for path, words in (
        (None, "is not set"),
        (tmp_path / "nope.pem", "does not exist"),
        (folder, "Is a directory"),
        (garbage, "not an unencrypted PEM private key"),
        (rsa_key, "not an Ed25519 private key"),
    ):
        with pytest.raises(SigningKeyError) as err:
            load_signing_key(path)
        text = str(err.value)
        assert "evidence.signing_key_file" in text and words in text and "\n" not in text
        if path is not None:
            assert str(path) in text
        exporter.signing_key_file = path
        with pytest.raises(Unavailable):
            exporter.export(world["sup"], iid)  # type: ignore[arg-type]
    audit = world["audit"]
    assert isinstance(audit, AuditLog)
    assert audit.entries(action="evidence.exported") == []


def test_cli_keygen_export_and_verify(world: dict[str, object], tmp_path: Path) -> None:
    run = CliRunner().invoke
    key = tmp_path / "deploy-signing.pem"
    r = run(cli_app, ["evidence", "keygen-signing", "--out", str(key)])
    assert r.exit_code == 0, r.output
    assert "SHA256:" in r.output and "PRIVATE" not in r.output
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    again = run(cli_app, ["evidence", "keygen-signing", "--out", str(key)])
    assert again.exit_code != 0 and "not overwriting" in str(again.exception)
    config = tmp_path / "raksha.yaml"
    evidence = {"dir": str(tmp_path / "ev"), "key_env": KEY_ENV, "signing_key_file": str(key)}
    config.write_text(
        yaml.safe_dump({"storage": {"url": world["url"]}, "evidence": evidence}), encoding="utf-8"
    )
    out = tmp_path / "cli-case.zip"
    iid = str(world["iid"])
    r = run(
        cli_app,
        [
            "evidence",
            "export",
            iid,
            "--out",
            str(out),
            "--by",
            "Insp. Rao",
            "--config",
            str(config),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "manifest sha256" in r.output
    r = run(cli_app, ["evidence", "verify", str(out)])
    assert r.exit_code == 2, r.output
    assert "UNTRUSTED: signed by a key nobody vouched for" in r.output
    assert "verified" not in r.output
    fp = load_signing_key(key).public_key()
    for trust in (
        ["--config", str(config)],
        ["--fingerprint", _fingerprint(fp)],
        ["--fingerprint", _fingerprint(fp).removeprefix("SHA256:").upper()],
        ["--public-key", str(_public_file(fp, tmp_path / "deploy.pub"))],
    ):
        r = run(cli_app, ["evidence", "verify", str(out), *trust])
        assert r.exit_code == 0, (trust, r.output)
        assert "verified" in r.output and "UNTRUSTED" not in r.output
    r = run(cli_app, ["evidence", "verify", str(out), "--fingerprint", "SHA256:12ab"])
    assert isinstance(r.exception, RakshaError) and r.exception.exit_code == 2
    assert "64 hex digits" in str(r.exception) and "\n" not in str(r.exception)
    with zipfile.ZipFile(out) as zf:
        frame = bytearray(zf.read("evidence/2-frame_blurred.jpg"))
    frame[-10] ^= 0x20
    bad = _rewrite(out, tmp_path / "bad.zip", {"evidence/2-frame_blurred.jpg": bytes(frame)})
    r = run(cli_app, ["evidence", "verify", str(bad)])
    assert r.exit_code == 1 and "altered: evidence/2-frame_blurred.jpg" in r.output
    assert "verified" not in r.output
    r = run(cli_app, ["evidence", "verify", str(tmp_path / "raksha.yaml")])
    assert r.exit_code != 0 and "not a readable zip" in str(r.exception)
    audit = world["audit"]
    assert isinstance(audit, AuditLog)
    (entry,) = audit.entries(action="evidence.exported")
    assert entry.actor == "Insp. Rao" and entry.details["via"].startswith("cli:")
    # No key configured: one line naming the setting, nothing written.
    evidence["signing_key_file"] = str(tmp_path / "missing.pem")
    config.write_text(
        yaml.safe_dump({"storage": {"url": world["url"]}, "evidence": evidence}), encoding="utf-8"
    )
    r = run(
        cli_app,
        ["evidence", "export", iid, "--out", str(tmp_path / "x.zip"), "--config", str(config)],
    )
    assert isinstance(r.exception, SigningKeyError) and "evidence.signing_key_file" in str(
        r.exception
    )
    assert not (tmp_path / "x.zip").exists()


def test_the_api_export_is_scoped_and_verifies(tmp_path: Path, faces_dir: Path) -> None:
    with dashboard("sqlite", tmp_path, faces_dir) as dash:
        own = add_incident(dash.store, dash.writer, dash.image, STATION_A)
        other = add_incident(dash.store, dash.writer, dash.image, STATION_B)
        url = f"/api/incidents/{own}/export.zip"
        ctx = dash.app.state.raksha
        assert dash.client("sup_a").get(url).status_code == 503  # no signing key configured
        key = tmp_path / "signing.pem"
        write_signing_key(key)
        ctx.evidence = ctx.evidence.model_copy(update={"signing_key_file": key})
        assert dash.client("op_a").get(url).status_code == 403
        assert dash.client("aud").get(url).status_code == 403
        assert dash.client("sup_a").get(f"/api/incidents/{other}/export.zip").status_code == 404
        r = dash.client("cr").get(f"/api/incidents/{other}/export.zip")
        assert r.status_code == 200
        r = dash.client("sup_a").get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        assert f"raksha-case-{own}.zip" in r.headers["content-disposition"]
        saved = tmp_path / "api.zip"
        saved.write_bytes(r.content)
        report = verify_case_export(
            saved, public_key=_public_file(load_signing_key(key).public_key(), tmp_path / "api.pub")
        )
        assert report.ok and report.incident_id == own
        exported = ctx.audit.entries(action="evidence.exported")
        assert [e.actor for e in exported] == ["cr", "sup_a"]
        assert exported[1].details["manifest_sha256"] == r.headers["x-raksha-manifest-sha256"]


# ---- a forger, hostile zips, retention and key rotation in the certificate ---------------------


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _forge(
    path: Path,
    dst: Path,
    change: dict[str, bytes],
    key: Ed25519PrivateKey,
    edit: dict[str, object] | None = None,
) -> Path:
    """What a forger without the deployment's key makes: files replaced, the manifest rebuilt
    over them with the forger's fingerprint (and `edit` applied), signed with the forger's
    key, whose public half is shipped as signing_key.pub."""
    files = {**_members(path), **change, "signing_key.pub": _pem(key.public_key())}
    doc = json.loads(files.pop("manifest.json"))
    files.pop("manifest.sig")
    doc["signature"]["public_key_fingerprint"] = _fingerprint(key.public_key())
    doc["files"] = [
        {"name": n, "sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)}
        for n, d in sorted(files.items())
    ]
    doc.update(edit or {})
    manifest = json.dumps(doc).encode()
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in {**files, "manifest.json": manifest}.items():
            zout.writestr(name, data)
        zout.writestr("manifest.sig", key.sign(manifest))
    return dst


def _cli_config(world: dict[str, object], tmp_path: Path) -> Path:
    config = tmp_path / "site.yaml"
    evidence = {"dir": str(tmp_path / "ev"), "key_env": KEY_ENV}
    evidence["signing_key_file"] = str(world["signing"])
    config.write_text(
        yaml.safe_dump({"storage": {"url": world["url"]}, "evidence": evidence}), encoding="utf-8"
    )
    return config


def _verify_cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli_app, ["evidence", "verify", *args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    return r.exit_code, r.output


def test_a_forged_export_is_untrusted_without_a_key_and_fails_with_the_real_one(
    world: dict[str, object], tmp_path: Path
) -> None:
    path, _ = _export(world)
    with zipfile.ZipFile(path) as zf:
        face = bytearray(zf.read("evidence/1-face.jpg"))
    face[len(face) // 2] ^= 0x01
    forger = Ed25519PrivateKey.generate()
    forged = _forge(path, tmp_path / "forged.zip", {"evidence/1-face.jpg": bytes(face)}, forger)
    # Everything in the forged zip is consistent with the forger's own key ...
    report = verify_case_export(forged)
    assert report.intact and not report.ok and report.exit_code == 2
    code, out = _verify_cli(str(forged))
    assert code == 2, out
    assert "UNTRUSTED: signed by a key nobody vouched for" in out
    assert _fingerprint(forger.public_key()) in out and "verified" not in out
    # ... and fails against the deployment's key, however it is given.
    real = load_signing_key(Path(str(world["signing"]))).public_key()
    for trust in (
        ["--public-key", str(_public_file(real, tmp_path / "real.pub"))],
        ["--config", str(_cli_config(world, tmp_path))],
        ["--fingerprint", _fingerprint(real)],
    ):
        code, out = _verify_cli(str(forged), *trust)
        assert code == 1, (trust, out)
        assert "FAILED" in out and "verified" not in out
    code, out = _verify_cli(str(forged), "--public-key", str(tmp_path / "real.pub"))
    assert "the signature does not match" in out
    code, out = _verify_cli(str(forged), "--fingerprint", _fingerprint(real))
    assert f"not the trusted {_fingerprint(real)}" in out
    # The genuine export verifies against each of them.
    for trust in (
        ["--public-key", str(tmp_path / "real.pub")],
        ["--config", str(tmp_path / "site.yaml")],
        ["--fingerprint", _fingerprint(real)],
    ):
        code, out = _verify_cli(str(path), *trust)
        assert code == 0 and "verified" in out, (trust, out)
    r = CliRunner().invoke(
        cli_app,
        ["evidence", "verify", str(path), "--fingerprint", _fingerprint(real), "--config", "x"],
    )
    assert isinstance(r.exception, RakshaError) and "give one key to trust" in str(r.exception)


def _raw_zip(dst: Path, members: list[tuple[str, bytes, int, int, int, int]]) -> Path:
    """A zip written by hand: (name, payload as stored, method, flag bits, CRC-32, size
    declared) per member, so that the test can declare what zipfile would not write."""
    out, central = bytearray(), bytearray()
    for name, payload, method, flags, crc, size in members:
        offset, raw = len(out), name.encode()
        out += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, len(payload), size,
            len(raw), 0,
        )  # fmt: skip
        out += raw + payload
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, 0, 0x21, crc, len(payload),
            size, len(raw), 0, 0, 0, 0, 0, offset,
        )  # fmt: skip
        central += raw
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(out), 0
    )
    dst.write_bytes(bytes(out + central + end))
    return dst


def _with_member(
    path: Path, dst: Path, name: str, payload: bytes, method: int, flags: int, crc: int, size: int
) -> Path:
    members = [(n, d, 0, 0, zlib.crc32(d), len(d)) for n, d in _members(path).items() if n != name]
    return _raw_zip(dst, [*members, (name, payload, method, flags, crc, size)])


def _bomb(size: int) -> tuple[bytes, int]:
    """`size` zero bytes deflated (raw, as in a zip): a few MB; and their CRC-32."""
    packer = zlib.compressobj(1, zlib.DEFLATED, -15)
    block, parts, crc = bytes(1 << 24), [], 0
    for start in range(0, size, len(block)):
        chunk = block[: min(len(block), size - start)]
        parts.append(packer.compress(chunk))
        crc = zlib.crc32(chunk, crc)
    parts.append(packer.flush())
    return b"".join(parts), crc


def test_hostile_zips_are_one_line_each_never_a_traceback(
    world: dict[str, object], tmp_path: Path
) -> None:
    from raksha.services import case_export

    path, _ = _export(world)
    name = "evidence/1-face.jpg"
    face = _members(path)[name]
    crc = zlib.crc32(face)
    cases = {
        "size.zip": (face, 0, 0, crc, len(face) + 7),  # declared larger than the manifest says
        "encrypted.zip": (face, 0, 0x1, crc, len(face)),  # the encrypted flag
        "method.zip": (face, 99, 0, crc, len(face)),  # a compression method nobody knows
    }
    for file, member in cases.items():
        bad = _with_member(path, tmp_path / file, name, *member)
        report = verify_case_export(bad)
        assert len(report.problems) == 1 and report.problems[0].startswith(f"altered: {name}")
        code, out = _verify_cli(str(bad))
        assert code == 1 and f"FAILED: altered: {name}" in out, (file, out)
    assert verify_case_export(tmp_path / "size.zip").problems == [f"altered: {name}"]
    assert "encrypted" in verify_case_export(tmp_path / "encrypted.zip").problems[0]

    # A few MB that inflate past the cap: declared as the manifest's size (read stops there),
    # or honestly declared in a manifest re-signed to match (never read at all).
    big = case_export.MAX_MEMBER_BYTES + (64 << 20)
    bomb, bomb_crc = _bomb(big)
    assert len(bomb) < 8 << 20
    lying = _with_member(path, tmp_path / "lying.zip", name, bomb, 8, 0, bomb_crc, len(face))
    code, out = _verify_cli(str(lying))
    assert code == 1 and f"FAILED: altered: {name}" in out, out
    forger = Ed25519PrivateKey.generate()
    honest = _forge(path, tmp_path / "honest.zip", {}, forger)
    files = _members(honest)
    doc = json.loads(files["manifest.json"])
    for f in doc["files"]:
        if f["name"] == name:
            f["bytes"] = big
    manifest = json.dumps(doc).encode()
    files.update({"manifest.json": manifest, "manifest.sig": forger.sign(manifest)})
    members = [(n, d, 0, 0, zlib.crc32(d), len(d)) for n, d in files.items() if n != name]
    huge = _raw_zip(tmp_path / "huge.zip", [*members, (name, bomb, 8, 0, bomb_crc, big)])
    report = verify_case_export(huge)
    assert report.problems == [f"altered: {name} (larger than a case export holds; not read)"]
    code, out = _verify_cli(str(huge))
    assert code == 1 and f"FAILED: altered: {name}" in out

    # A manifest of the wrong shapes (re-signed, so the signature is not what fails).
    for edit, words in (
        ({"signature": "x"}, "signature.public_key_fingerprint"),
        ({"files": "all"}, "files is not a list"),
        ({"files": [{"name": 3}]}, "files[0] has no name"),
        ({"files": [{"name": name, "sha256": "00", "bytes": 1}]}, "has no SHA-256"),
        ({"files": [{"name": name, "sha256": "0" * 64, "bytes": "1"}]}, "has no size"),
        ({"incident_id": ["x"]}, "incident_id"),
        ({"files": [{"name": "x", "sha256": "0" * 64, "bytes": 1}] * 10_001}, "more than"),
    ):
        bad = _forge(path, tmp_path / "shape.zip", {}, forger, edit)
        (problem,) = verify_case_export(bad).problems
        assert problem.startswith("altered: manifest.json is not a valid manifest"), problem
        assert words in problem, problem
        code, out = _verify_cli(str(bad))
        assert code == 1 and "FAILED: altered: manifest.json" in out, out
    (tmp_path / "shape.zip").unlink()
    # The same file listed twice, and a zip of too many entries.
    twice = _forge(
        path,
        tmp_path / "twice.zip",
        {},
        forger,
        {"files": [*json.loads(_members(honest)["manifest.json"])["files"]] * 2},
    )
    assert any("lists" in p and "2 times" in p for p in verify_case_export(twice).problems)
    many = _raw_zip(
        tmp_path / "many.zip",
        [(f"f{n}", b"", 0, 0, 0, 0) for n in range(case_export.MAX_ENTRIES + 1)],
    )
    code, out = _verify_cli(str(many))
    assert code == 1 and "more than 10000" in out


def test_the_certificate_lists_retention_deletions_and_key_rotations(
    world: dict[str, object],
) -> None:
    from datetime import timedelta

    from raksha.services.retention import purge_expired_evidence

    store, audit, iid = world["store"], world["audit"], str(world["iid"])
    assert isinstance(store, IncidentStore) and isinstance(audit, AuditLog)
    incident = store.get_incident(iid)
    assert incident is not None
    HoldService(store, audit).lift_local("sup_a", iid, reason="case closed", via="test")
    # A key rotation and the retention purge audit the incident by its bare id.
    face = Path(incident.evidence[0].path).name
    audit.append(
        "system:key-rotation",
        "evidence.rekeyed",
        target=iid,
        station_id=STATION_A,
        details={"files": [{"file": face, "new_file": face, "content_sha256": "c" * 64}]},
    )
    tmp = Path(str(world["tmp"]))
    report = purge_expired_evidence(store, tmp / "ev", 30, now=utcnow() + timedelta(days=60))
    assert report.incidents == [iid]
    path, data = _export(world)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = json.loads(zf.read("audit.json"))["entries"]
        cert = zf.read("certificate.txt").decode()
        html = zf.read("certificate.html").decode()
        manifest = json.loads(zf.read("manifest.json"))
    by_action = {e["action"]: e for e in entries}
    assert by_action["evidence.purged"]["target"] == iid
    assert by_action["evidence.rekeyed"]["target"] == iid
    incident_part = cert.split("4. Access to the incident")[1]
    for text in (incident_part, html):
        assert "system:retention" in text and "deleted by retention" in text
        assert "system:key-rotation" in text and "re-encrypted under a new key" in text
    face_part = cert.split("evidence/1-face.jpg")[1].split("evidence/2-")[0]
    assert "deleted by retention" in face_part and "re-encrypted under a new key" in face_part
    assert "deleted by the retention policy on" in face_part
    assert {r["reason"] for r in manifest["records_not_included"]} == {"deleted by retention"}
    assert verify_case_export(path).intact
