"""Signed checkpoints of the audit chain's head, kept outside the database.

    key = load_private_key(Path("audit-key.pem"))            # raksha audit keygen
    write_checkpoint(log, key, Path("/var/lib/raksha/audit-checkpoints.jsonl"))
    problems = check_checkpoints(log, path, public_key)       # raksha audit verify --checkpoints

Each checkpoint is one JSON line `{"seq", "hash", "at", "sig"}`: the number and hash of the
newest entry, when, and an Ed25519 signature over `raksha-audit-checkpoint|seq|hash|at`. The
file lives apart from the database (another disk, another machine, a write-once sink), so
someone who can rewrite the database cannot rewrite it without the private key. Checking:

- a checkpoint whose entry is gone: the log was **truncated** (entries deleted, the head
  moved back, the chain rebuilt shorter);
- a checkpoint whose entry now has another hash: the chain was **recomputed** from there;
- a line whose signature fails: the checkpoint file itself was edited.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import select

from raksha.audit.log import AuditLog, AuditProblem
from raksha.audit.tables import audit_head, audit_log
from raksha.errors import ConfigError
from raksha.incidents.model import utcnow
from raksha.store._db import db_errors

_DOMAIN = "raksha-audit-checkpoint"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: datetime
    sig: str

    def message(self) -> bytes:
        return f"{_DOMAIN}|{self.seq}|{self.hash}|{self.at.isoformat()}".encode()


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"cannot read the audit signing key {path}: {type(exc).__name__}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"cannot read the audit public key {path}: {type(exc).__name__}"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key")
    return key


def write_checkpoint(log: AuditLog, key: Ed25519PrivateKey, path: Path) -> Checkpoint:
    """Sign the chain's head now and append it to `path` (created 0600, fsync'd)."""
    with db_errors("cannot read the audit head"), log.engine.connect() as c:
        head = c.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
    at = utcnow()
    unsigned = Checkpoint(int(head.seq), str(head.hash), at, "")
    sig = base64.b64encode(key.sign(unsigned.message())).decode()
    cp = Checkpoint(unsigned.seq, unsigned.hash, at, sig)
    line = json.dumps({"seq": cp.seq, "hash": cp.hash, "at": at.isoformat(), "sig": sig})
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigError(f"cannot write the checkpoint file {path}: {exc.strerror}") from None
    return cp


def read_checkpoints(path: Path) -> list[Checkpoint | str]:
    """The checkpoints of `path`, in order; a line that is not one comes back as a string
    saying which line and why."""
    out: list[Checkpoint | str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the checkpoint file {path}: {type(exc).__name__}") from None
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            d = json.loads(raw)
            out.append(
                Checkpoint(
                    int(d["seq"]), str(d["hash"]), datetime.fromisoformat(d["at"]), str(d["sig"])
                )
            )
        except (ValueError, KeyError, TypeError):
            out.append(f"line {n} is not a checkpoint")
    return out


def check_checkpoints(log: AuditLog, path: Path, public: Ed25519PublicKey) -> list[AuditProblem]:
    """Every way the log disagrees with the signed checkpoints in `path`."""
    problems: list[AuditProblem] = []
    checkpoints = read_checkpoints(path)
    wanted = [c.seq for c in checkpoints if isinstance(c, Checkpoint)]
    found: dict[int, str] = {}
    if wanted:
        with db_errors("cannot read the audit log"), log.engine.connect() as c:
            rows = c.execute(
                select(audit_log.c.seq, audit_log.c.hash).where(audit_log.c.seq.in_(wanted))
            ).all()
        found = {int(r.seq): str(r.hash) for r in rows}
    for cp in checkpoints:
        if isinstance(cp, str):
            problems.append(AuditProblem(0, f"checkpoint file: {cp}"))
            continue
        try:
            public.verify(base64.b64decode(cp.sig), cp.message())
        except (InvalidSignature, ValueError, TypeError):
            problems.append(
                AuditProblem(cp.seq, f"the checkpoint of {cp.at.isoformat()} has a bad signature")
            )
            continue
        if cp.seq == 0:
            continue  # signed while the log was empty
        have = found.get(cp.seq)
        if have is None:
            problems.append(
                AuditProblem(
                    cp.seq,
                    f"missing, though signed as the head at {cp.at.isoformat()} "
                    "(the log was truncated)",
                )
            )
        elif have != cp.hash:
            problems.append(
                AuditProblem(
                    cp.seq,
                    f"its hash differs from the one signed at {cp.at.isoformat()} "
                    "(the chain was recomputed)",
                )
            )
    return problems
