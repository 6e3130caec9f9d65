"""Evidence key rotation: every evidence file re-encrypted under the current key, without a
moment where a row points at a file it does not match, and without ever dropping a key a
file still needs.

    add_key(cfg.evidence)                                           # a new key, first in the file
    report = rotate_evidence(store, cfg.evidence, audit)            # re-encrypt what needs it
    retire_old_keys(cfg.evidence)                                   # once nothing needs the old

Per incident, under the incident's row lock (the one the retention purge and legal holds
take, so a purge never runs between reading a file and moving its row): for each file not
yet under the first key, decrypt with any known key (checking the content hash recorded at
capture), encrypt with the first key into a new file created exclusively beside it, point the
row at the new file and write the audit entry (`evidence.rekeyed`: every file's old and new
on-disk SHA-256 and its content hash) in the same transaction, and delete the old file only
after that commits. A crash leaves either the old row and file with an unreferenced new file,
or the new row and file with an unreferenced old one; the orphan sweep removes the leftover.
Files stored in the clear (before encryption was turned on) are encrypted the same way.

A running `raksha run` or `serve` notices a changed key file at its next capture and writes
with the new key from then on (`EvidenceWriter`). `retire_old_keys` reads every file under
the evidence folder, referenced or not (spooled incidents too), and refuses while any needs
an old key or cannot be read; the keys it drops are appended to `<key file>.retired` (mode
0600) rather than destroyed, for the deployment to keep offline or destroy by its policy.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from raksha.audit.log import AuditLog
from raksha.errors import ConfigError, RakshaError
from raksha.incidents.evidence import (
    KeyRing,
    decrypt_bytes,
    encrypt_bytes,
    fsync_dir,
    new_key,
)
from raksha.incidents.model import EvidenceFile
from raksha.site.config import EvidenceConfig
from raksha.store import evidence_rows, holds
from raksha.store.errors import IncidentNotFound
from raksha.store.repository import IncidentStore

ACTOR = "system:key-rotation"


@dataclass
class RotationReport:
    files: int = 0
    rekeyed: int = 0
    encrypted: int = 0
    current: int = 0
    missing: int = 0
    failed: list[str] = field(default_factory=list)


def _create_new(path: Path, data: bytes) -> Path:
    """Write `data` to a new file beside `path` (`face-r1.jpg.enc`, `-r2`, ...), created
    exclusively: two rotations at once never write the same file."""
    name = path.name
    base = name[: -len(".enc")] if name.endswith(".enc") else name
    stem, dot, ext = base.partition(".")
    tmp = path.with_name(f".{stem}.{os.getpid()}.rotate.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        n = 1
        while True:
            target = path.with_name(f"{stem}-r{n}{dot}{ext}.enc")
            try:
                os.link(tmp, target)
            except FileExistsError:
                n += 1
                continue
            fsync_dir(path.parent)
            return target
    finally:
        tmp.unlink(missing_ok=True)


def _is_current(raw: bytes, current: bytes) -> bool:
    try:
        decrypt_bytes(raw, current)
    except ValueError:
        return False
    return True


def _rotate_file(
    ev: EvidenceFile, keys: tuple[bytes, ...], report: RotationReport, where: str
) -> EvidenceFile | None:
    """The re-encrypted copy of `ev` (written), or None when it needs nothing or cannot be."""
    path = Path(ev.path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        report.missing += 1
        return None
    except OSError as exc:
        report.failed.append(f"{path.name} ({where}): cannot be read ({exc.strerror or exc})")
        return None
    if not hmac.compare_digest(hashlib.sha256(raw).hexdigest(), ev.sha256):
        report.failed.append(f"{path.name} ({where}): fails its hash")
        return None
    encrypted = path.suffix == ".enc"
    if encrypted and _is_current(raw, keys[0]):
        report.current += 1
        return None
    try:
        plain = decrypt_bytes(raw, keys) if encrypted else raw
    except ValueError:
        report.failed.append(f"{path.name} ({where}): no known key opens it")
        return None
    content = hashlib.sha256(plain).hexdigest()
    if ev.content_sha256 is not None and content != ev.content_sha256:
        report.failed.append(f"{path.name} ({where}): content altered")
        return None
    data = encrypt_bytes(plain, keys[0])
    try:
        target = _create_new(path, data)
    except OSError as exc:
        report.failed.append(f"{path.name} ({where}): cannot write ({exc.strerror or exc})")
        return None
    return EvidenceFile(
        kind=ev.kind,
        path=str(target),
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        content_sha256=ev.content_sha256 or content,
    )


def rotate_evidence(
    store: IncidentStore,
    cfg: EvidenceConfig,
    audit: AuditLog,
    *,
    env: dict[str, str] | None = None,
) -> RotationReport:
    """Re-encrypt every evidence file not yet under the first key (and encrypt plain ones)."""
    del audit  # entries are written inside each incident's transaction (AuditLog.append_in)
    keys = KeyRing(cfg.key_env, cfg.key_file).load(env)
    report = RotationReport()
    for incident in store.list_incidents(limit=None):
        old_files: list[Path] = []
        made: list[Path] = []
        created: list[Path] = []
        try:
            with holds.locked(store.engine, incident.id, "re-encrypt the evidence") as conn:
                changes: list[dict[str, str | None]] = []
                for ev in evidence_rows.files_of(conn, incident.id):
                    report.files += 1
                    new = _rotate_file(ev, keys, report, f"incident {incident.id}")
                    if new is None:
                        continue
                    made.append(Path(new.path))
                    created.append(Path(new.path))
                    if not evidence_rows.replace_file_in(conn, incident.id, ev.path, new):
                        continue  # (the row moved meanwhile; the new copy goes below)
                    made.remove(Path(new.path))
                    old_files.append(Path(ev.path))
                    was_encrypted = ev.path.endswith(".enc")
                    report.rekeyed += was_encrypted
                    report.encrypted += not was_encrypted
                    changes.append(
                        {
                            "file": Path(ev.path).name,
                            "new_file": Path(new.path).name,
                            "old_sha256": ev.sha256,
                            "new_sha256": new.sha256,
                            "content_sha256": new.content_sha256,
                        }
                    )
                if changes:
                    AuditLog.append_in(
                        conn,
                        ACTOR,
                        "evidence.rekeyed",
                        target=incident.id,
                        station_id=incident.station_id,
                        details={"files": changes},
                    )
        except IncidentNotFound:
            continue
        except BaseException:
            for path in created:  # the transaction did not commit: no row took them
                path.unlink(missing_ok=True)
            raise
        for path in made:  # copies no row took
            path.unlink(missing_ok=True)
        for path in old_files:  # only now: their rows point at the new files
            path.unlink(missing_ok=True)
    return report


def _key_path(cfg: EvidenceConfig) -> Path:
    if cfg.key_file is None:
        raise ConfigError(
            f"keys can be added and retired only in a key file (evidence.key_file); with keys "
            f"in ${cfg.key_env}, put the new key first there (comma-separated, the old after "
            "it), run rotate-key, then remove the old key there"
        )
    return Path(cfg.key_file).resolve()  # a symlinked key file is written where it points


def _write_keys(path: Path, keys: tuple[bytes, ...]) -> None:
    """The key file, replaced whole (mode 0600), atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(b"".join(k + b"\n" for k in keys))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RakshaError(f"cannot write the key file {path}: {exc.strerror or exc}") from None


def add_key(cfg: EvidenceConfig) -> int:
    """Put a new key first in the key file (the old ones stay, for reading); the number of
    keys now in it."""
    path = _key_path(cfg)
    keys = KeyRing(cfg.key_env, path).load()
    fresh = (new_key(), *keys)
    _write_keys(path, fresh)
    return len(fresh)


def _needs_old_key(root: Path, current: bytes) -> str | None:
    """The first file under the evidence folder that is not readable with `current` alone
    (why), or None."""
    if not root.is_dir():
        return None
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix != ".enc":
            return f"{path} is stored in the clear: run `raksha evidence rotate-key` first"
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return f"{path} cannot be read ({exc.strerror or exc}): nothing is retired"
        if not _is_current(raw, current):
            return f"{path} is not under the current key yet: run `raksha evidence rotate-key`"
    return None


def retire_old_keys(cfg: EvidenceConfig) -> int:
    """Drop every key but the first from the key file once no file under the evidence folder
    needs them; the number dropped (appended to `<key file>.retired`). Refused, naming the
    file, while any file needs an old key, is in the clear or cannot be read."""
    path = _key_path(cfg)
    keys = KeyRing(cfg.key_env, path).load()
    if len(keys) == 1:
        return 0
    problem = _needs_old_key(Path(cfg.dir), keys[0])
    if problem is not None:
        raise RakshaError(problem)
    backup = path.with_name(path.name + ".retired")
    try:
        fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as f:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            f.write(f"# retired {stamp}\n".encode() + b"".join(k + b"\n" for k in keys[1:]))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise RakshaError(
            f"cannot keep the retired keys in {backup}: {exc.strerror or exc}"
        ) from None
    _write_keys(path, keys[:1])
    return len(keys) - 1
