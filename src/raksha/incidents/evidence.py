"""Evidence capture: the subject's face and the full frame with every other face blurred.

Files go to `<evidence_dir>/<incident_id>/face.jpg` (kind FACE) and `frame_blurred.jpg` (kind
FRAME_BLURRED), with `.enc` appended when encrypted and `-1`, `-2`, … when a name is taken
(another capture for the same incident, or a re-encryption by a key rotation). Every write is
atomic: a temporary file in the same folder, fsync, rename, fsync of the folder. Files are
created with mode 0600 in folders of mode 0700.

Two SHA-256 are recorded per file: `sha256` over the bytes stored on disk (the ciphertext when
encrypted), so anyone can check a file against the record without the key, and
`content_sha256` over the plain JPEG or MP4, which stays the same through a key rotation (the
hash a court certificate names).

Encryption at rest is on by default: Fernet from `cryptography` (AES-128-CBC with
HMAC-SHA256, authenticated). The keys come from a key file (`evidence.key_file`: one key per
line, the first encrypts, the others are older keys still accepted for reading during a
rotation; `raksha evidence keygen` writes one) or, without a file, from an environment
variable (`evidence.key_env`, default `RAKSHA_EVIDENCE_KEY`: one key, or several separated by
commas, the first encrypting). `KeyRing` reads them; `read_checked` decrypts.

Privacy: other faces are pixelated over boxes grown by `blur_expand` on each side, then
smoothed, so no identity survives. The subject's own (ungrown) box is never blurred.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from raksha.errors import ConfigError, RakshaError
from raksha.incidents.model import EvidenceFile, EvidenceKind

if TYPE_CHECKING:
    from raksha.site.config import EvidenceConfig

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
Box = Sequence[float] | npt.NDArray[np.floating]

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """fsync a folder, so a file created or renamed in it survives a crash."""
    _fsync_dir(path)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fernet(key: bytes | str) -> object:
    from cryptography.fernet import Fernet

    return Fernet(key.encode() if isinstance(key, str) else key)


def new_key() -> bytes:
    """A new random Fernet key (urlsafe base64 of 32 bytes)."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key()


NO_KEY_HINT = (
    "set evidence.key_file to a key file (make one with `raksha evidence keygen --out FILE`) "
    "or the {env} environment variable to a Fernet key, or evidence.encrypt: false to keep "
    "evidence in the clear"
)


def _parse_keys(text: str, where: str) -> tuple[bytes, ...]:
    keys: list[bytes] = []
    for raw in text.replace(",", "\n").splitlines():
        value = raw.strip()
        if not value or value.startswith("#"):
            continue
        try:
            _fernet(value)
        except (ValueError, TypeError):
            raise ConfigError(
                f"{where} holds something that is not a Fernet key (32 bytes, urlsafe base64)"
            ) from None
        keys.append(value.encode())
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Where the evidence keys are: a key file, else an environment variable. `load` reads
    them now (the first encrypts; all decrypt) or raises ConfigError naming the file or the
    variable, never a key."""

    env_var: str = "RAKSHA_EVIDENCE_KEY"
    file: Path | None = None

    def describe(self) -> str:
        return f"key file {self.file}" if self.file is not None else f"${self.env_var}"

    def load(self, env: Mapping[str, str] | None = None) -> tuple[bytes, ...]:
        if self.file is not None:
            try:
                text = Path(self.file).read_text(encoding="ascii")
            except FileNotFoundError:
                raise ConfigError(
                    f"evidence.key_file {self.file} does not exist (make one with "
                    "`raksha evidence keygen --out FILE`)"
                ) from None
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
                raise ConfigError(f"evidence.key_file {self.file}: {why}") from None
            keys = _parse_keys(text, f"evidence.key_file {self.file}")
            if not keys:
                raise ConfigError(f"evidence.key_file {self.file} holds no key")
            return keys
        env = os.environ if env is None else env
        value = env.get(self.env_var)
        if not value:
            raise ConfigError(
                "evidence encryption is on (the default) but there is no key: "
                + NO_KEY_HINT.format(env=self.env_var)
            )
        keys = _parse_keys(value, self.env_var)
        if not keys:
            raise ConfigError(f"{self.env_var} holds no key")
        return keys


def load_key(env_var: str, env: Mapping[str, str] | None = None) -> bytes:
    """The (first) Fernet key from `env_var`; ConfigError names the variable (never the
    value)."""
    return KeyRing(env_var).load(env)[0]


def encrypt_bytes(data: bytes, key: bytes) -> bytes:
    from cryptography.fernet import Fernet

    return Fernet(key).encrypt(data)


def decrypt_bytes(data: bytes, key: bytes | Sequence[bytes]) -> bytes:
    """The plain bytes; `key` may be several keys (any of them may have encrypted it)."""
    from cryptography.fernet import Fernet, InvalidToken, MultiFernet

    keys = [key] if isinstance(key, bytes) else list(key)
    try:
        return MultiFernet([Fernet(k) for k in keys]).decrypt(data)
    except InvalidToken:
        raise ValueError("evidence cannot be decrypted with this key (or it was altered)") from None


def read_evidence(path: Path | str, key: bytes | None = None) -> bytes:
    """The JPEG bytes of an evidence file (decrypted when it ends in `.enc`)."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".enc":
        if key is None:
            raise ValueError(f"{path.name} is encrypted: a key is needed")
        return decrypt_bytes(data, key)
    return data


def _clip_box(box: Box, w: int, h: int, grow: float = 0.0) -> tuple[int, int, int, int] | None:
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    if not all(np.isfinite([x1, y1, x2, y2])) or x2 <= x1 or y2 <= y1:
        return None
    gx, gy = (x2 - x1) * grow, (y2 - y1) * grow
    ix1 = max(0, int(np.floor(x1 - gx)))
    iy1 = max(0, int(np.floor(y1 - gy)))
    ix2 = min(w, int(np.ceil(x2 + gx)))
    iy2 = min(h, int(np.ceil(y2 + gy)))
    if ix2 <= ix1 or iy2 <= iy1:
        return None
    return ix1, iy1, ix2, iy2


def anonymize(region: U8, blocks: int = 4) -> U8:
    """A region made unrecognisable: pixelated to about `blocks` cells across, smoothed."""
    import cv2

    h, w = region.shape[:2]
    cells = max(1, blocks)
    sw = max(1, min(w, cells if w <= h else round(cells * w / h)))
    sh = max(1, min(h, cells if h <= w else round(cells * h / w)))
    small = cv2.resize(region, (sw, sh), interpolation=cv2.INTER_AREA)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    k = max(3, (min(w, h) // cells) | 1)
    return np.asarray(cv2.GaussianBlur(big, (k, k), 0), dtype=np.uint8)


def blur_other_faces(
    image: U8,
    subject_box: Box | None,
    other_boxes: Sequence[Box] | npt.NDArray[np.floating],
    grow: float,
) -> U8:
    """A copy of `image` with each of `other_boxes` (grown by `grow`) anonymised; the
    subject's own box is kept as it was."""
    h, w = image.shape[:2]
    out = image.copy()
    for box in other_boxes:
        r = _clip_box(box, w, h, grow)
        if r is None:
            continue
        x1, y1, x2, y2 = r
        out[y1:y2, x1:x2] = anonymize(image[y1:y2, x1:x2])
    if subject_box is not None:
        s = _clip_box(subject_box, w, h)
        if s is not None:
            x1, y1, x2, y2 = s
            out[y1:y2, x1:x2] = image[y1:y2, x1:x2]
    return out


def face_crop(image: U8, box: Box, margin: float) -> U8:
    h, w = image.shape[:2]
    r = _clip_box(box, w, h, margin)
    if r is None:
        raise ValueError(f"subject box {list(box)} lies outside the {w}x{h} frame")
    x1, y1, x2, y2 = r
    return image[y1:y2, x1:x2]


def _encode_jpeg(image: U8, quality: int) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - only on an invalid image
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())


def _free_name(folder: Path, stem: str, suffix: str) -> Path:
    candidate = folder / f"{stem}{suffix}"
    n = 1
    while candidate.exists():
        candidate = folder / f"{stem}-{n}{suffix}"
        n += 1
    return candidate


class EvidenceStore(Protocol):
    """Where evidence lives: written by the incident sink, read (checked) by the services,
    removed when unused or expired."""

    def capture(
        self,
        incident_id: str,
        image: U8,
        subject_box: Box,
        other_boxes: Sequence[Box] | npt.NDArray[np.floating] = (),
    ) -> list[EvidenceFile]: ...

    def read(self, ev: EvidenceFile) -> bytes: ...

    def discard(self, files: Sequence[EvidenceFile]) -> None: ...


class EvidenceWriter:
    """Evidence files on a local disk: writes an incident's files and records their hashes,
    reads them back after checking the hash (decrypting with the key), removes unused ones.
    The one `EvidenceStore` so far."""

    def __init__(
        self,
        directory: Path,
        *,
        key: bytes | None = None,
        key_env: str = "RAKSHA_EVIDENCE_KEY",
        key_file: Path | None = None,
        older_keys: Sequence[bytes] = (),
        face_margin: float = 0.3,
        blur_expand: float = 0.2,
        jpeg_quality: int = 92,
    ) -> None:
        self.directory = Path(directory)
        self._key = key
        #: Keys still accepted for reading (a rotation in progress), after `key`.
        self._older = tuple(older_keys)
        #: Where `read` finds the keys when none was given (the dashboard reads them per
        #: file, so a key set after start, or a missing one, shows as a 503, not a dead
        #: server).
        self.keys = KeyRing(key_env, key_file)
        self.face_margin = face_margin
        self.blur_expand = blur_expand
        self.jpeg_quality = jpeg_quality
        for k in (key, *self._older):
            if k is not None:
                _fernet(k)  # fail early on a bad key
        #: The key file's mtime when its keys were read (a rotation changes it).
        self._keys_mtime = self._key_file_mtime()

    def _key_file_mtime(self) -> float | None:
        if self.keys.file is None:
            return None
        try:
            return Path(self.keys.file).stat().st_mtime
        except OSError:
            return None

    def _refresh_keys(self) -> None:
        """A running process writes with the key file's new first key after a rotation's
        `--new` (checked at each capture: a stat, rarely a read)."""
        if self._key is None or self.keys.file is None:
            return
        mtime = self._key_file_mtime()
        if mtime is None or mtime == self._keys_mtime:
            return
        try:
            keys = self.keys.load()
        except RakshaError as exc:  # mid-rewrite or broken: keep the keys in hand
            log.warning("evidence key file changed but cannot be read: %s", exc)
            return
        self._key, self._older, self._keys_mtime = keys[0], keys[1:], mtime

    @property
    def key_env(self) -> str:
        return self.keys.env_var

    @property
    def encrypts(self) -> bool:
        return self._key is not None

    def __repr__(self) -> str:
        return f"EvidenceWriter({str(self.directory)!r}, encrypted={self.encrypts})"

    @classmethod
    def from_config(
        cls, cfg: EvidenceConfig, env: Mapping[str, str] | None = None
    ) -> EvidenceWriter:
        keys = KeyRing(cfg.key_env, cfg.key_file).load(env) if cfg.encrypt else ()
        return cls(
            cfg.dir,
            key=keys[0] if keys else None,
            older_keys=keys[1:],
            key_env=cfg.key_env,
            key_file=cfg.key_file,
            face_margin=cfg.face_margin,
            blur_expand=cfg.blur_expand,
            jpeg_quality=cfg.jpeg_quality,
        )

    def incident_dir(self, incident_id: str) -> Path:
        if not _SAFE_ID.match(incident_id) or incident_id in {".", ".."}:
            raise ValueError(f"incident id {incident_id!r} is not a safe folder name")
        return self.directory / incident_id

    def _store(
        self, folder: Path, kind: EvidenceKind, stem: str, jpeg: bytes, ext: str = ".jpg"
    ) -> EvidenceFile:
        self._refresh_keys()
        if self._key is not None:
            data, suffix = encrypt_bytes(jpeg, self._key), f"{ext}.enc"
        else:
            data, suffix = jpeg, ext
        path = _free_name(folder, stem, suffix)
        atomic_write(path, data)
        return EvidenceFile(
            kind=kind,
            path=str(path),
            sha256=hashlib.sha256(data).hexdigest(),
            bytes=len(data),
            content_sha256=hashlib.sha256(jpeg).hexdigest(),
        )

    def capture(
        self,
        incident_id: str,
        image: U8,
        subject_box: Box,
        other_boxes: Sequence[Box] | npt.NDArray[np.floating] = (),
    ) -> list[EvidenceFile]:
        """Write the subject's face crop and the frame with every other face blurred.

        `image` is the BGR frame, boxes are xyxy pixels. Returns [face, frame_blurred]
        (the `EvidenceFile` of `raksha.incidents.model`; paths are `str`).
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"evidence needs an HxWx3 uint8 BGR frame, got {image.shape}")
        scene = blur_other_faces(image, subject_box, other_boxes, self.blur_expand)
        # Cut from the blurred frame: a neighbour inside the margin stays anonymous here too.
        face = face_crop(scene, subject_box, self.face_margin)
        face_jpeg = _encode_jpeg(face, self.jpeg_quality)
        scene_jpeg = _encode_jpeg(scene, self.jpeg_quality)
        folder = self.incident_dir(incident_id)
        new_dir = not folder.exists()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if new_dir:
            _fsync_dir(folder.parent)
        return [
            self._store(folder, EvidenceKind.FACE, "face", face_jpeg),
            self._store(folder, EvidenceKind.FRAME_BLURRED, "frame_blurred", scene_jpeg),
        ]

    def store_clip(self, incident_id: str, mp4: bytes) -> EvidenceFile:
        """Write an event clip (already blurred and encoded: `raksha.incidents.clip`) into
        the incident's folder, encrypted like the stills."""
        folder = self.incident_dir(incident_id)
        new_dir = not folder.exists()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if new_dir:
            _fsync_dir(folder.parent)
        return self._store(folder, EvidenceKind.CLIP, "clip", mp4, ".mp4")

    def read(self, ev: EvidenceFile) -> bytes:
        """The plain JPEG bytes of `ev` after checking its recorded SHA-256 (raises
        EvidenceMissing, EvidenceIntegrityError, EvidenceKeyError)."""
        self._refresh_keys()
        known = (self._key, *self._older) if self._key is not None else None
        return read_checked(ev, self.keys, keys=known)

    def discard(self, files: Sequence[EvidenceFile]) -> None:
        """Remove files written for an event that did not need them (a merge into an
        incident with a higher peak), and their incident folder when it is left empty."""
        folders = set()
        for f in files:
            path = Path(f.path)
            path.unlink(missing_ok=True)
            folders.add(path.parent)
        for folder in folders:
            if folder.parent == self.directory:
                # Not empty (other files of that incident) or already gone: leave it.
                with contextlib.suppress(OSError):
                    folder.rmdir()


class EvidenceMissing(RakshaError):
    """The evidence file recorded for an incident is not on disk."""


class EvidenceIntegrityError(RakshaError):
    """The evidence file's SHA-256 differs from the one recorded when it was captured."""


class EvidenceKeyError(RakshaError):
    """The evidence is encrypted and the key is missing or wrong."""


def read_checked(
    ev: EvidenceFile, ring: KeyRing | str, *, keys: Sequence[bytes] | bytes | None = None
) -> bytes:
    """The plain bytes of `ev` after checking its recorded SHA-256 (the keys: `keys`, else
    read from `ring` now; a str is an environment variable's name)."""
    path = Path(ev.path)
    try:
        raw = path.read_bytes()
    except OSError:
        raise EvidenceMissing(f"evidence file {path.name} is missing") from None
    digest = hashlib.sha256(raw).hexdigest()
    if not hmac.compare_digest(digest, ev.sha256):
        raise EvidenceIntegrityError(
            f"evidence file {path.name} fails its integrity check: SHA-256 {digest[:12]}… "
            f"differs from the recorded {ev.sha256[:12]}…"
        )
    if path.suffix != ".enc":
        return raw
    if keys is None:
        try:
            keys = (KeyRing(ring) if isinstance(ring, str) else ring).load()
        except RakshaError as exc:
            raise EvidenceKeyError(str(exc)) from None
    try:
        return decrypt_bytes(raw, keys)
    except ValueError as exc:
        raise EvidenceKeyError(f"evidence file {path.name}: {exc}") from None


#: In an incident's evidence folder while the incident waits in a spool for the store (a
#: database outage): the orphan sweep leaves such a folder alone, wherever the spool is
#: (a cluster host's spool is on its own node, the folder on the shared evidence mount).
WAITING_MARK = ".waiting-for-store"


def mark_waiting(paths: Sequence[str], incident_id: str) -> None:
    """Mark the folders of `paths` as holding evidence of an incident not stored yet."""
    for folder in {Path(p).parent for p in paths}:
        try:
            (folder / WAITING_MARK).write_text(incident_id + "\n", encoding="utf-8")
        except OSError as exc:  # the spool still keeps it; only the sweep's guard is lost
            log.warning("cannot mark evidence folder %s as waiting: %s", folder, exc)


def unmark_waiting(paths: Sequence[str]) -> None:
    """The incident is stored: its folders are ordinary evidence again."""
    for folder in {Path(p).parent for p in paths}:
        with contextlib.suppress(OSError):
            (folder / WAITING_MARK).unlink(missing_ok=True)
