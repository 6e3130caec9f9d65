"""Model registry: names, file names, sha256, where to find weights and how to fetch them.

Weights are looked up, in order, in:

1. the directory passed in (`--models` on the command line, `models_dir` in the config),
2. the directory named by the environment variable ``RAKSHA_MODELS``,
3. ``~/.cache/raksha/models``,
4. the models shipped inside the package (``raksha/assets/models``).

The first directory that holds the file wins, and that file must match the registered sha256.
Hashes are cached by (path, size, mtime), so asking for the same model again costs one `stat`.

Besides the built-in third-party entries, every model card (``<name>.json``) in the package's
``assets/models`` folder becomes an entry: that is how the project ships models it trained.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from raksha.errors import ModelError

log = logging.getLogger(__name__)

ENV_MODELS = "RAKSHA_MODELS"
#: The folder inside the package that holds the project's own models and their cards.
PACKAGED_DIR = Path(__file__).resolve().parent / "assets" / "models"

Status = Literal["present", "missing", "corrupt"]


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One registered model file."""

    name: str
    file: str
    sha256: str
    #: Size in bytes, or None when the card does not say.
    size: int | None
    #: face-detection | expression | face-embedding
    task: str
    license: str
    #: The upstream file at a pinned commit (provenance; for converted models, the original).
    source: str | None
    #: Where `fetch` downloads the exact registered file from; None when it cannot be fetched
    #: (converted models, models shipped inside the package).
    fetch_url: str | None
    description: str
    #: How the file was made from `source`, when it is not a verbatim copy.
    conversion: str | None = None
    #: The model card JSON, for models described by one (the project's own models).
    card: Path | None = None


def _gh(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


_LIBFD = ("ShiqiYu/libfacedetection.train", "0047ac24afb1a50a0c6105001c89d1b5b805dbf1")
_ULTRA = (
    "Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB",
    "dffdddda9794a50607cba8f318507a28c1c27cab",
)
_OARRIAGA = ("oarriaga/face_classification", "b861d21b0e76ca5514cdeb5b56a689b7318584f4")
_MOBILEFACE = ("becauseofAI/MobileFace", "128cea33b928dc9bb6d1963202b57a97f5661ccf")
_KERAS_CONVERSION = (
    "Keras .hdf5 converted to ONNX (tf2onnx 1.17.0, opset 13), batch dimension made symbolic, "
    "output renamed to 'probs'"
)


def _builtin_entries() -> tuple[ModelEntry, ...]:
    yunet_s = _gh(*_LIBFD, "onnx/yunet_s_640_640.onnx")
    yunet_n = _gh(*_LIBFD, "onnx/yunet_n_640_640.onnx")
    ultra = _gh(*_ULTRA, "models/onnx/version-RFB-320.onnx")
    mini = _gh(*_OARRIAGA, "trained_models/emotion_models/fer2013_mini_XCEPTION.102-0.66.hdf5")
    big = _gh(*_OARRIAGA, "trained_models/fer2013_big_XCEPTION.54-0.66.hdf5")
    mface = _gh(*_MOBILEFACE, "MobileFace_Identification/MobileFace_Identification_V2-0000.params")
    return (
        ModelEntry(
            name="yunet-s",
            file="face_detection_yunet_2023mar.onnx",
            sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
            size=232_589,
            task="face-detection",
            license="Apache-2.0 (opencv_zoo copy: MIT)",
            source=yunet_s,
            fetch_url=yunet_s,
            description="YuNet-s face detector: boxes + 5 landmarks, for cv2.FaceDetectorYN",
        ),
        ModelEntry(
            name="yunet-n",
            file="yunet_n_640_640.onnx",
            sha256="25a606a145a5b6d7271ae138fbd00eba91dad8b83222ae3f2c7ecd0f4a7b0e31",
            size=317_466,
            task="face-detection",
            license="Apache-2.0",
            source=yunet_n,
            fetch_url=yunet_n,
            description="YuNet-n face detector (larger, better on hard faces), cv2.FaceDetectorYN",
        ),
        ModelEntry(
            name="ultraface-rfb-320",
            file="ultraface_version-RFB-320.onnx",
            sha256="34cd7e60aeff28744c657de7a3dc64e872d506741de66987f3426f2b79f88017",
            size=1_270_727,
            task="face-detection",
            license="MIT",
            source=ultra,
            fetch_url=ultra,
            description="Ultra-Light RFB-320 face detector: boxes only, 320x240 RGB input",
        ),
        ModelEntry(
            name="fer-mini-xception",
            file="fer_mini_xception_fer2013.onnx",
            sha256="74c75d40280b431c691e08b058d51d3f58d1176ac755bc24a2cc930a6b1382c3",
            size=236_177,
            task="expression",
            license="MIT (data: FER2013)",
            source=mini,
            fetch_url=None,
            conversion=_KERAS_CONVERSION,
            description="mini-Xception on FER2013: 7 expressions from a 64x64 grey face crop",
        ),
        ModelEntry(
            name="fer-big-xception",
            file="fer_big_xception_fer2013.onnx",
            sha256="8e6c228ba7f9c1dd33a0e701f1d4abeb1687d2fac3602616a766f9f58013c4c3",
            size=827_523,
            task="expression",
            license="MIT (data: FER2013)",
            source=big,
            fetch_url=None,
            conversion=_KERAS_CONVERSION,
            description="big-Xception on FER2013: 7 expressions from a 64x64 grey face crop",
        ),
        ModelEntry(
            name="mobileface-v2",
            file="mobileface_identification_v2.onnx",
            sha256="4b532d295a704b5769a98ee877b2c4d6fd77612439074ebb41a64f79347ba454",
            size=3_595_153,
            task="face-embedding",
            license="MIT",
            source=mface,
            fetch_url=None,
            conversion=(
                "MXNet .params + -symbol.json converted with mx.onnx.export_model (opset 19), "
                "output renamed to 'embedding'"
            ),
            description="MobileFace V2 256-d face embedding, 112x112 aligned face, raw 0-255 input",
        ),
    )


BUILTIN: tuple[ModelEntry, ...] = _builtin_entries()


# --- the project's own models, described by model cards --------------------------------------


def entry_from_card(card_path: Path) -> ModelEntry:
    """A registry entry from a model card JSON (name, task, file, sha256 are required;
    optional: bytes, license, description)."""
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read model card {card_path}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"model card {card_path} must hold a JSON object")
    missing = [k for k in ("name", "task", "file", "sha256") if not isinstance(data.get(k), str)]
    if missing:
        raise ModelError(f"model card {card_path} lacks the text field(s): {', '.join(missing)}")
    size = data.get("bytes")
    lic = data.get("license")
    return ModelEntry(
        name=data["name"],
        file=data["file"],
        sha256=data["sha256"].lower(),
        size=size if isinstance(size, int) else None,
        task=data["task"],
        license=lic if isinstance(lic, str) else "see model card",
        source=None,
        fetch_url=None,
        description=str(data.get("description", f"{data['task']} model (project-trained)")),
        card=card_path,
    )


def discover_cards(folder: Path) -> list[ModelEntry]:
    """Entries for every model card ``*.json`` in `folder`; unreadable cards are logged and
    skipped so that one bad card does not take the whole registry down."""
    if not folder.is_dir():
        return []
    found: list[ModelEntry] = []
    for card in sorted(folder.glob("*.json")):
        try:
            found.append(entry_from_card(card))
        except ModelError as err:
            log.warning("skipping model card: %s", err)
    return found


def list_models() -> list[ModelEntry]:
    """Built-in entries, then the project's packaged models (a card never hides a built-in)."""
    entries = list(BUILTIN)
    names = {e.name for e in entries}
    for entry in discover_cards(PACKAGED_DIR):
        if entry.name in names:
            log.warning("model card %s reuses built-in name %r; ignored", entry.card, entry.name)
            continue
        names.add(entry.name)
        entries.append(entry)
    return entries


def get_entry(name: str) -> ModelEntry:
    entries = list_models()
    for entry in entries:
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in entries)
    raise ModelError(f"unknown model {name!r}; known models: {known}")


# --- where files are looked for ---------------------------------------------------------------


def cache_dir() -> Path:
    return Path.home() / ".cache" / "raksha" / "models"


def default_models_dir() -> Path:
    """Where `fetch` puts files when no directory is given: RAKSHA_MODELS, else the cache."""
    env = os.environ.get(ENV_MODELS, "").strip()
    return Path(env).expanduser() if env else cache_dir()


def search_dirs(models_dir: Path | None = None) -> list[Path]:
    """The directories searched, in order, without duplicates."""
    dirs: list[Path] = []
    if models_dir is not None:
        dirs.append(Path(models_dir).expanduser())
    env = os.environ.get(ENV_MODELS, "").strip()
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(cache_dir())
    dirs.append(PACKAGED_DIR)
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


# --- hashing with a cache ----------------------------------------------------------------------

_hash_lock = threading.Lock()
_hash_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached by (absolute path, size, mtime_ns)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _hash_lock:
        cached = _hash_cache.get(key)
    if cached is not None:
        return cached
    digest = _hash_file(path)
    with _hash_lock:
        _hash_cache[key] = digest
    return digest


def _hash_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# --- status and lookup ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelStatus:
    entry: ModelEntry
    status: Status
    #: The file found (present or corrupt), else None.
    path: Path | None
    #: The directories that were searched.
    searched: tuple[Path, ...]
    #: sha256 of the file found, else None.
    actual_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "present"

    @property
    def problem(self) -> str | None:
        """One line saying what is wrong and how to fix it; None when the file is fine."""
        e = self.entry
        if self.status == "corrupt":
            return (
                f"model {e.name!r}: file {self.path} is corrupt: sha256 {self.actual_sha256}, "
                f"expected {e.sha256}; delete it and get the file again"
            )
        if self.status == "missing":
            where = ", ".join(str(d) for d in self.searched)
            return f"model {e.name!r}: file {e.file} not found in: {where}. {how_to_get(e)}"
        return None


def how_to_get(entry: ModelEntry) -> str:
    if entry.fetch_url is not None:
        first = f"run `raksha models fetch {entry.name}` on a machine with internet, or "
    else:
        first = ""
    return (
        f"To fix: {first}copy {entry.file} into one of those directories, "
        f"or set {ENV_MODELS} (or --models) to a directory that holds it"
    )


def verify(name: str, models_dir: Path | None = None) -> ModelStatus:
    """Find model `name` and check its sha256; never raises for a missing or corrupt file
    (see `ModelStatus.problem`), raises ModelError for an unknown name."""
    entry = get_entry(name)
    dirs = tuple(search_dirs(models_dir))
    for d in dirs:
        candidate = d / entry.file
        if not candidate.is_file():
            continue
        try:
            actual = file_sha256(candidate)
        except OSError as exc:
            raise ModelError(f"model {name!r}: cannot read {candidate}: {exc}") from None
        status: Status = "present" if actual == entry.sha256 else "corrupt"
        return ModelStatus(entry, status, candidate, dirs, actual)
    return ModelStatus(entry, "missing", None, dirs)


def model_path(name: str, models_dir: Path | None = None) -> Path:
    """Path of model `name`, with its sha256 verified; ModelError when missing or corrupt."""
    st = verify(name, models_dir)
    if st.path is None or not st.ok:
        raise ModelError(st.problem or f"model {name!r} is not usable")
    return st.path


def verify_file(path: Path, sha256: str, what: str) -> None:
    """Raise ModelError unless the file at `path` has the given sha256."""
    if not path.is_file():
        raise ModelError(f"{what}: file {path} not found")
    actual = file_sha256(path)
    if actual != sha256.lower():
        raise ModelError(
            f"{what}: file {path} is corrupt: sha256 {actual}, expected {sha256.lower()}"
        )


# --- fetching ---------------------------------------------------------------------------------


def fetch(
    name: str,
    dest_dir: Path,
    *,
    url: str | None = None,
    timeout_s: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download model `name` into `dest_dir` and verify it; returns the file's path.

    The download goes to a temporary file in `dest_dir` that is renamed into place only after
    its sha256 matched, so a failed or wrong download leaves nothing behind. A file already
    present with the right sha256 is kept and not downloaded again.
    """
    entry = get_entry(name)
    src = url or entry.fetch_url
    if src is None:
        why = (
            f"it was converted ({entry.conversion}) from {entry.source}"
            if entry.conversion
            else "it has no download address"
        )
        raise ModelError(
            f"model {name!r} cannot be fetched: {why}. Copy {entry.file} from a machine that "
            f"has it, or pass --url with the address of the exact file (sha256 {entry.sha256})"
        )
    dest_dir = Path(dest_dir).expanduser()
    final = dest_dir / entry.file
    if final.is_file() and file_sha256(final) == entry.sha256:
        return final
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create model directory {dest_dir}: {exc}") from None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.file}.", suffix=".part", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _download(src, out, timeout_s, progress)
        if actual != entry.sha256:
            raise ModelError(
                f"model {name!r}: download from {src} has sha256 {actual}, expected "
                f"{entry.sha256}; not saved"
            )
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return final


def _download(
    url: str,
    out: Any,
    timeout_s: float,
    progress: Callable[[int, int | None], None] | None,
) -> str:
    """Stream `url` into the open binary file `out`; returns the sha256 of what was written."""
    if not url.startswith(("http://", "https://", "file://")):
        raise ModelError(f"cannot fetch from {url!r}: only http(s) and file URLs are supported")
    h = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            while block := resp.read(1 << 16):
                out.write(block)
                h.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
    except urllib.error.HTTPError as exc:
        raise ModelError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelError(f"download of {url} failed: {reason}") from None
    return h.hexdigest()
