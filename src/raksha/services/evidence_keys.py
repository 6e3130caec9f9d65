"""Evidence key rotation: every evidence file re-encrypted under the current key, without a
moment where a row points at a file it does not match.

    report = rotate_evidence(store, cfg.evidence, audit)            # re-encrypt what needs it
    add_key(cfg.evidence)                                           # a new key, first in the file

Per file: decrypt with any known key (checking the content hash recorded at capture), encrypt
with the first key into a new file beside it, point the row at the new file in one
transaction, then delete the old file. A crash leaves either the old row and file with an
unreferenced new file, or the new row and file with an unreferenced old one; the orphan sweep
(`raksha evidence purge`) removes the leftover. Files stored in the clear (before encryption
was turned on) are encrypted the same way. Each incident's changes are one audit entry
(`evidence.rekeyed`) with every file's old and new on-disk SHA-256 and its content hash.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

from raksha.audit.log import AuditLog
from raksha.errors import ConfigError, RakshaError
from raksha.incidents.evidence import (
    KeyRing,
    atomic_write,
    decrypt_bytes,
    encrypt_bytes,
    new_key,
)
from raksha.incidents.model import EvidenceFile
from raksha.site.config import EvidenceConfig
from raksha.store import evidence_rows
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


def _new_path(path: Path) -> Path:
    """A free name beside `path` for its re-encrypted copy (`face-1.jpg.enc`, ...)."""
    name = path.name
    base = name[: -len(".enc")] if name.endswith(".enc") else name
    stem, dot, ext = base.partition(".")
    n = 1
    while True:
        candidate = path.with_name(f"{stem}-r{n}{dot}{ext}.enc")
        if not candidate.exists():
            return candidate
        n += 1


def _is_current(raw: bytes, current: bytes) -> bool:
    try:
        decrypt_bytes(raw, current)
    except ValueError:
        return False
    return True


def rotate_evidence(
    store: IncidentStore,
    cfg: EvidenceConfig,
    audit: AuditLog,
    *,
    env: dict[str, str] | None = None,
) -> RotationReport:
    """Re-encrypt every evidence file not yet under the first key (and encrypt plain ones)."""
    keys = KeyRing(cfg.key_env, cfg.key_file).load(env)
    current = keys[0]
    report = RotationReport()
    for incident in store.list_incidents(limit=None):
        changes: list[dict[str, str | None]] = []
        for ev in incident.evidence:
            report.files += 1
            path = Path(ev.path)
            try:
                raw = path.read_bytes()
            except OSError:
                report.missing += 1
                continue
            if not hmac.compare_digest(hashlib.sha256(raw).hexdigest(), ev.sha256):
                report.failed.append(f"{path.name} (incident {incident.id}): fails its hash")
                continue
            encrypted = path.suffix == ".enc"
            if encrypted and _is_current(raw, current):
                report.current += 1
                continue
            try:
                plain = decrypt_bytes(raw, keys) if encrypted else raw
            except ValueError:
                report.failed.append(f"{path.name} (incident {incident.id}): no known key opens it")
                continue
            content = hashlib.sha256(plain).hexdigest()
            if ev.content_sha256 is not None and content != ev.content_sha256:
                report.failed.append(f"{path.name} (incident {incident.id}): content altered")
                continue
            data = encrypt_bytes(plain, current)
            target = _new_path(path)
            atomic_write(target, data)
            new = EvidenceFile(
                kind=ev.kind,
                path=str(target),
                sha256=hashlib.sha256(data).hexdigest(),
                bytes=len(data),
                content_sha256=ev.content_sha256 or content,
            )
            if not evidence_rows.replace_file(store.engine, incident.id, ev.path, new):
                target.unlink(missing_ok=True)  # purged meanwhile: nothing to keep
                continue
            path.unlink(missing_ok=True)
            report.rekeyed += encrypted
            report.encrypted += not encrypted
            changes.append(
                {
                    "file": path.name,
                    "new_file": target.name,
                    "old_sha256": ev.sha256,
                    "new_sha256": new.sha256,
                    "content_sha256": new.content_sha256,
                }
            )
        if changes:
            audit.append(
                ACTOR,
                "evidence.rekeyed",
                target=incident.id,
                station_id=incident.station_id,
                details={"files": changes},
            )
    return report


def _write_keys(path: Path, keys: tuple[bytes, ...]) -> None:
    """The key file, replaced whole (mode 0600)."""
    data = b"".join(k + b"\n" for k in keys)
    atomic_write(path, data)
    os.chmod(path, 0o600)


def add_key(cfg: EvidenceConfig) -> int:
    """Put a new key first in the key file (the old ones stay, for reading); the number of
    keys now in it. Only for a key file: keys in an environment variable are the
    deployment's to change."""
    if cfg.key_file is None:
        raise ConfigError(
            f"a new key can be added only to a key file (evidence.key_file); with keys in "
            f"${cfg.key_env}, put the new key first there (comma-separated, the old after it) "
            "and run rotate-key again"
        )
    keys = KeyRing(cfg.key_env, cfg.key_file).load()
    fresh = (new_key(), *keys)
    _write_keys(Path(cfg.key_file), fresh)
    return len(fresh)


def retire_old_keys(store: IncidentStore, cfg: EvidenceConfig) -> int:
    """Drop every key but the first from the key file once no evidence file needs them; the
    number of keys dropped. Refused while any file is not under the first key."""
    if cfg.key_file is None:
        raise ConfigError(
            f"old keys are retired from a key file only; with ${cfg.key_env}, remove them there"
        )
    keys = KeyRing(cfg.key_env, cfg.key_file).load()
    if len(keys) == 1:
        return 0
    for incident in store.list_incidents(limit=None):
        for ev in incident.evidence:
            path = Path(ev.path)
            try:
                raw = path.read_bytes()
            except OSError:
                continue
            if path.suffix != ".enc" or not _is_current(raw, keys[0]):
                raise RakshaError(
                    f"{path.name} (incident {incident.id}) is not under the current key yet: "
                    "run `raksha evidence rotate-key` first"
                )
    _write_keys(Path(cfg.key_file), keys[:1])
    return len(keys) - 1
