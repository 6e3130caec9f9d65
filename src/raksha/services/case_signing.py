"""The deployment's key for signing case exports (Ed25519, `evidence.signing_key_file`).

    fingerprint = write_signing_key(Path("/etc/raksha/case-signing.pem"))  # keygen-signing
    key = load_signing_key(cfg.evidence.signing_key_file)

Every problem with the key file is one line naming the setting and the path (never the key).
The fingerprint, `SHA256:` and the hex SHA-256 of the 32 raw public-key bytes, is what a
court or a verifier compares with the one the deployment published.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from raksha.errors import ConfigError, RakshaError

SETTING = "evidence.signing_key_file"
#: The public key's name inside a case export.
PUBLIC_KEY_NAME = "signing_key.pub"
KEYGEN = "raksha evidence keygen-signing --out FILE"


class SigningKeyError(ConfigError):
    """The signing key file is not set, missing, unreadable or not an Ed25519 private key."""


class PublicKeyError(RakshaError):
    """A public key to verify with is missing, unreadable or not an Ed25519 public key."""

    exit_code = 2


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_signing_key(path: Path | None) -> Ed25519PrivateKey:
    if path is None:
        raise SigningKeyError(f"{SETTING} is not set: make a key with `{KEYGEN}` and name it there")
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(
            f"{SETTING} {path} does not exist (make one with `{KEYGEN}`)"
        ) from None
    except OSError as exc:
        raise SigningKeyError(f"{SETTING} {path}: {exc.strerror or 'unreadable'}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(
            f"{SETTING} {path} is not an unencrypted PEM private key (make one with `{KEYGEN}`)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{SETTING} {path} is not an Ed25519 private key")
    return key


def write_signing_key(out: Path) -> str:
    """Write a new private key to `out` (mode 0600, never over an existing file); its public
    fingerprint."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{out} exists; not overwriting a signing key") from None
    except OSError as exc:
        raise SigningKeyError(f"cannot write {out}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return fingerprint(key.public_key())


def read_public_key(data: bytes, where: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM bytes; PublicKeyError names `where`."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise PublicKeyError(f"{where} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise PublicKeyError(f"{where} is not an Ed25519 public key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PublicKeyError(f"cannot read the public key {path}: {exc.strerror or exc}") from None
    return read_public_key(data, f"the public key {path}")


def parse_fingerprint(text: str) -> str:
    """A published fingerprint as `fingerprint` writes it (`SHA256:` and 64 lowercase hex
    digits); the prefix, case, colons and spaces are optional. PublicKeyError otherwise."""
    value = "".join(text.split()).lower()
    value = value.removeprefix("sha256:").replace(":", "")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise PublicKeyError(
            f"the fingerprint {text.strip()[:80]!r} is not SHA256: and 64 hex digits"
        )
    return "SHA256:" + value
