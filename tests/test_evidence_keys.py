"""Evidence keys: encryption is on by default with a key file or an environment variable;
clear errors when the key is missing or wrong; `rotate-key` re-encrypts every file under a
new key without losing one (rows follow the files, content hashes stay, audited), encrypts
files stored in the clear, and old keys are retired only when nothing needs them; nothing
readable is left at rest."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from dashboard_support import STATION_A, SUBJECT_BOX, face_image, new_incident
from raksha.audit.log import AuditLog
from raksha.cli import app as cli_app
from raksha.config import RunConfig
from raksha.errors import ConfigError, RakshaError
from raksha.incidents.evidence import EvidenceKeyError, EvidenceWriter, KeyRing
from raksha.services.evidence_keys import add_key, retire_old_keys, rotate_evidence
from raksha.site.config import EvidenceConfig
from raksha.store import IncidentStore

#: What a JPEG, a PNG and an MP4 (its `ftyp` box at byte 4) start with.
MAGIC = ((0, b"\xff\xd8\xff"), (0, b"\x89PNG"), (4, b"ftyp"))


def readable_files(folder: Path) -> list[Path]:
    """Files under `folder` that are a picture or a video as they lie on disk: they start
    like a JPEG, PNG or MP4, or are not a Fernet token (which is all an encrypted file is)."""
    found = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        head = path.read_bytes()[:16]
        magic = any(head[at : at + len(sig)] == sig for at, sig in MAGIC)
        if magic or not head.startswith(b"gAAAAA"):  # Fernet: version byte 0x80, base64
            found.append(path)
    return found


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IncidentStore]:
    s = IncidentStore.open(f"sqlite:///{tmp_path / 'raksha.db'}")
    yield s
    s.close()


def _config(tmp_path: Path, key_file: Path | None = None, **kw: object) -> EvidenceConfig:
    return EvidenceConfig(dir=tmp_path / "evidence", key_file=key_file, **kw)  # type: ignore[arg-type]


def _key_file(tmp_path: Path, *keys: bytes, name: str = "evidence.key") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(k + b"\n" for k in keys))
    path.chmod(0o600)
    return path


def _capture(store: IncidentStore, writer: EvidenceWriter, faces_dir: Path, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        inc = new_incident(STATION_A)
        files = writer.capture(inc.id, face_image(faces_dir), SUBJECT_BOX)
        ids.append(store.create_incident(inc, files, {"kind": "distress"}, ["store"]))
    return ids


def test_encryption_is_on_by_default_and_nothing_is_readable_at_rest(
    tmp_path: Path, store: IncidentStore, faces_dir: Path
) -> None:
    cfg = EvidenceConfig(dir=tmp_path / "evidence")
    assert cfg.encrypt is True
    writer = EvidenceWriter.from_config(
        cfg, {"RAKSHA_EVIDENCE_KEY": Fernet.generate_key().decode()}
    )
    ids = _capture(store, writer, faces_dir, 2)
    assert readable_files(tmp_path / "evidence") == []
    for iid in ids:
        incident = store.get_incident(iid)
        assert incident is not None
        for ev in incident.evidence:
            assert ev.path.endswith(".jpg.enc")
            plain = writer.read(ev)
            assert plain[:3] == b"\xff\xd8\xff"
            assert hashlib.sha256(plain).hexdigest() == ev.content_sha256


def test_missing_or_wrong_keys_say_what_to_do_and_never_show_a_key(tmp_path: Path) -> None:
    cfg = EvidenceConfig(dir=tmp_path / "evidence")
    with pytest.raises(ConfigError) as info:
        EvidenceWriter.from_config(cfg, {})
    message = str(info.value)
    assert "RAKSHA_EVIDENCE_KEY" in message and "evidence.key_file" in message
    assert "raksha evidence keygen" in message and "evidence.encrypt: false" in message
    missing = tmp_path / "nope.key"
    with pytest.raises(ConfigError, match=f"evidence.key_file {missing} does not exist"):
        EvidenceWriter.from_config(_config(tmp_path, missing), {})
    bad = tmp_path / "bad.key"
    bad.write_text("not-a-fernet-key-but-a-secret-42\n")
    with pytest.raises(ConfigError) as info:
        EvidenceWriter.from_config(_config(tmp_path, bad), {})
    assert str(bad) in str(info.value) and "secret-42" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        EvidenceWriter.from_config(cfg, {"RAKSHA_EVIDENCE_KEY": "also-a-secret-99"})
    assert "RAKSHA_EVIDENCE_KEY" in str(info.value) and "secret-99" not in str(info.value)
    # Off on purpose: no key needed, files in the clear.
    assert not EvidenceWriter.from_config(_config(tmp_path, encrypt=False), {}).encrypts


def test_a_wrong_key_cannot_read_the_evidence(
    tmp_path: Path, store: IncidentStore, faces_dir: Path
) -> None:
    k1 = Fernet.generate_key()
    writer = EvidenceWriter.from_config(_config(tmp_path, _key_file(tmp_path, k1)))
    [iid] = _capture(store, writer, faces_dir, 1)
    incident = store.get_incident(iid)
    assert incident is not None
    other = EvidenceWriter.from_config(
        _config(tmp_path, _key_file(tmp_path, Fernet.generate_key(), name="other.key"))
    )
    with pytest.raises(EvidenceKeyError, match="cannot be decrypted"):
        other.read(incident.evidence[0])


def test_rotation_re_encrypts_every_file_then_retires_the_old_key(
    tmp_path: Path, store: IncidentStore, faces_dir: Path
) -> None:
    k1 = Fernet.generate_key()
    key_file = _key_file(tmp_path, k1)
    cfg = _config(tmp_path, key_file)
    ids = _capture(store, EvidenceWriter.from_config(cfg), faces_dir, 3)
    before = {iid: store.get_incident(iid) for iid in ids}
    audit = AuditLog(store.engine)

    assert add_key(cfg) == 2
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    k2 = KeyRing(file=key_file).load()[0]
    assert k2 != k1
    # The old key cannot be retired while files still need it.
    with pytest.raises(RakshaError, match="not under the current key yet"):
        retire_old_keys(cfg)

    report = rotate_evidence(store, cfg, audit)
    assert (report.files, report.rekeyed, report.current, report.failed) == (6, 6, 0, [])
    only_new = EvidenceWriter(cfg.dir, key=k2)
    only_old = EvidenceWriter(cfg.dir, key=k1)
    for iid in ids:
        old, new = before[iid], store.get_incident(iid)
        assert old is not None and new is not None
        for a, b in zip(old.evidence, new.evidence, strict=True):
            assert b.path != a.path and not Path(a.path).exists()
            assert b.sha256 != a.sha256 and b.content_sha256 == a.content_sha256
            assert hashlib.sha256(only_new.read(b)).hexdigest() == a.content_sha256
            with pytest.raises(EvidenceKeyError):
                only_old.read(b)
    entries = [e for e in audit.entries(limit=None) if e.action == "evidence.rekeyed"]
    assert sorted(e.target for e in entries) == sorted(ids)
    assert all(len(e.details["files"]) == 2 for e in entries)
    assert readable_files(cfg.dir) == []

    # A second run has nothing to do; then the old key goes.
    again = rotate_evidence(store, cfg, audit)
    assert (again.rekeyed, again.current) == (0, 6)
    assert retire_old_keys(cfg) == 1
    assert KeyRing(file=key_file).load() == (k2,)
    # The retired key is kept aside (0600), not destroyed: the deployment decides.
    retired = key_file.with_name(key_file.name + ".retired")
    assert k1 in retired.read_bytes() and stat.S_IMODE(os.stat(retired).st_mode) == 0o600
    assert EvidenceWriter.from_config(cfg).read(store.get_incident(ids[0]).evidence[0])  # type: ignore[union-attr]


def test_rotation_encrypts_files_kept_in_the_clear(
    tmp_path: Path, store: IncidentStore, faces_dir: Path
) -> None:
    plain_cfg = _config(tmp_path, encrypt=False)
    [iid] = _capture(store, EvidenceWriter.from_config(plain_cfg), faces_dir, 1)
    assert readable_files(plain_cfg.dir)  # in the clear before
    cfg = _config(tmp_path, _key_file(tmp_path, Fernet.generate_key()))
    report = rotate_evidence(store, cfg, AuditLog(store.engine))
    assert (report.encrypted, report.failed) == (2, [])
    assert readable_files(cfg.dir) == []
    incident = store.get_incident(iid)
    assert incident is not None
    assert EvidenceWriter.from_config(cfg).read(incident.evidence[0])[:3] == b"\xff\xd8\xff"


def test_an_altered_file_is_not_rotated_and_named(
    tmp_path: Path, store: IncidentStore, faces_dir: Path
) -> None:
    cfg = _config(tmp_path, _key_file(tmp_path, Fernet.generate_key()))
    [iid] = _capture(store, EvidenceWriter.from_config(cfg), faces_dir, 1)
    incident = store.get_incident(iid)
    assert incident is not None
    victim = Path(incident.evidence[0].path)
    data = bytearray(victim.read_bytes())
    data[40] ^= 1
    victim.write_bytes(bytes(data))
    add_key(cfg)
    report = rotate_evidence(store, cfg, AuditLog(store.engine))
    assert report.rekeyed == 1 and len(report.failed) == 1
    assert victim.name in report.failed[0] and "fails its hash" in report.failed[0]
    assert victim.exists()  # kept as it is, for whoever investigates


def test_cli_keygen_and_rotate(tmp_path: Path, faces_dir: Path) -> None:
    key_file = tmp_path / "site.key"
    runner = CliRunner()
    r = runner.invoke(cli_app, ["evidence", "keygen", "--out", str(key_file)])
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert runner.invoke(cli_app, ["evidence", "keygen", "--out", str(key_file)]).exit_code != 0
    db = tmp_path / "raksha.db"
    site = {
        "storage": {"url": f"sqlite:///{db}"},
        "evidence": {"dir": str(tmp_path / "evidence"), "key_file": str(key_file)},
        "stations": [{"id": STATION_A, "lat": 26.85, "lon": 80.94}],
    }
    config = tmp_path / "raksha.yaml"
    config.write_text(yaml.safe_dump(site))
    cfg = RunConfig.model_validate(site)
    s2 = IncidentStore.open(f"sqlite:///{db}")
    try:
        _capture(s2, EvidenceWriter.from_config(cfg.evidence), faces_dir, 2)
    finally:
        s2.close()
    both = ["evidence", "rotate-key", "--config", str(config), "--new", "--retire"]
    r = runner.invoke(cli_app, both)
    assert r.exit_code != 0 and "separate runs" in r.output + str(r.exception)
    r = runner.invoke(cli_app, ["evidence", "rotate-key", "--config", str(config), "--new"])
    assert r.exit_code == 0, r.output
    assert "4 re-encrypted" in r.output
    r = runner.invoke(cli_app, ["evidence", "rotate-key", "--config", str(config), "--retire"])
    assert r.exit_code == 0, r.output
    assert "0 re-encrypted" in r.output and "dropped 1 old key" in r.output
    assert len(KeyRing(file=key_file).load()) == 1


def test_a_running_writer_picks_up_a_new_key_and_retire_sees_every_file(
    tmp_path: Path, store: IncidentStore, faces_dir: Path
) -> None:
    """A process that loaded the old key writes with the new one once the key file changes;
    a file the store does not know of (a spooled incident's) still blocks retiring a key it
    needs."""
    key_file = _key_file(tmp_path, Fernet.generate_key())
    cfg = _config(tmp_path, key_file)
    running = EvidenceWriter.from_config(cfg)
    add_key(cfg)
    os.utime(key_file, (1, 1))  # a different mtime even on a coarse clock
    new = KeyRing(file=key_file).load()[0]
    [iid] = _capture(store, running, faces_dir, 1)
    incident = store.get_incident(iid)
    assert incident is not None
    assert EvidenceWriter(cfg.dir, key=new).read(incident.evidence[0])  # the new key alone
    # An unreferenced file under an old key (a spooled incident's evidence) blocks retiring.
    stray = cfg.dir / "spooled-incident" / "face.jpg.enc"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(Fernet(KeyRing(file=key_file).load()[1]).encrypt(b"\xff\xd8\xff..."))
    with pytest.raises(RakshaError, match=r"spooled-incident/face\.jpg\.enc is not under the"):
        retire_old_keys(cfg)
    stray.unlink()
    plain = stray.with_name("face.jpg")
    plain.write_bytes(b"\xff\xd8\xff plain")
    with pytest.raises(RakshaError, match="stored in the clear"):
        retire_old_keys(cfg)
    plain.unlink()
    assert retire_old_keys(cfg) == 1


def test_two_rotations_at_once_lose_nothing(
    tmp_path: Path, store: IncidentStore, faces_dir: Path
) -> None:
    import threading

    cfg = _config(tmp_path, _key_file(tmp_path, Fernet.generate_key()))
    ids = _capture(store, EvidenceWriter.from_config(cfg), faces_dir, 4)
    add_key(cfg)
    reports = []

    def rotate() -> None:
        reports.append(rotate_evidence(store, cfg, AuditLog(store.engine)))

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.rekeyed for r in reports) == 8 and all(r.failed == [] for r in reports)
    reader = EvidenceWriter.from_config(cfg)
    on_disk = sorted(p.name for p in cfg.dir.rglob("*") if p.is_file())
    assert len(on_disk) == 8, on_disk  # no copy left behind, none lost
    for iid in ids:
        incident = store.get_incident(iid)
        assert incident is not None
        for ev in incident.evidence:
            assert hashlib.sha256(reader.read(ev)).hexdigest() == ev.content_sha256
