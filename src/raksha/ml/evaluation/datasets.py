"""Readers for labelled face-expression data (numpy only; no torch).

Three layouts are understood:

* Labels layout: ``labels.csv`` with a ``file,label`` header (the file path relative to the
  folder; the label one of the eight expression names or a common alias) and an optional
  ``metadata.csv`` with a ``file`` column plus any per-image columns (performer, movie,
  ethnicity ...). Images may be any format OpenCV or Pillow opens (TIFF, palette PNG, GIF).
* FER+ layout: ``images/`` holding the PNG crops and ``label.csv`` with the verbatim FER+ votes
  (no header: name, face box, then ten vote columns: neutral, happiness, surprise, sadness, anger,
  disgust, fear, contempt, unknown, NF).
* Folder-per-class layout: one sub-folder per class (``anger/``, ``fear/`` ...) holding images.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from raksha.domain import EXPRESSION_CLASSES
from raksha.errors import RakshaError

#: The ten FER+ vote columns, in file order.
FERPLUS_VOTE_COLUMNS: tuple[str, ...] = (*EXPRESSION_CLASSES, "unknown", "NF")

#: Folder names accepted for each canonical class in folder-per-class data.
FOLDER_ALIASES: dict[str, str] = {
    "neutral": "neutral",
    "happiness": "happiness",
    "happy": "happiness",
    "surprise": "surprise",
    "surprised": "surprise",
    "sadness": "sadness",
    "sad": "sadness",
    "anger": "anger",
    "angry": "anger",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "contempt": "contempt",
}

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}

DatasetFormat = Literal["ferplus", "folders", "labels"]


class DatasetError(RakshaError):
    """A dataset folder is missing, empty or not in the expected layout."""


@dataclass(frozen=True, slots=True)
class FaceDataset:
    """Face crops with labels.

    ``images`` is (N, H, W) uint8 grayscale or (N, H, W, 3) uint8 BGR; ``labels`` (N,) holds the
    index of the majority class in ``EXPRESSION_CLASSES`` (-1 when the votes name no majority);
    ``targets`` (N, 8) float32 holds the vote distribution over the eight emotions (one-hot for
    folder data).
    """

    names: tuple[str, ...]
    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.int64]
    targets: npt.NDArray[np.float32]
    #: Per-image text columns (from ``metadata.csv`` / ``labels.csv``), one value per row.
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Listed images left out because no face was found in them (``--detect``).
    no_face: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.images.shape[0] != n or self.labels.shape != (n,):
            raise ValueError("names, images and labels must have the same length")
        if self.targets.shape != (n, len(EXPRESSION_CLASSES)):
            raise ValueError(f"targets must be (N, {len(EXPRESSION_CLASSES)})")
        for name, values in self.columns.items():
            if len(values) != n:
                raise ValueError(f"column {name!r} has {len(values)} values for {n} images")

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> FaceDataset:
        """The rows selected by a boolean mask or an index array."""
        idx = np.flatnonzero(index) if index.dtype == np.bool_ else np.asarray(index)
        return FaceDataset(
            names=tuple(self.names[i] for i in idx),
            images=self.images[idx],
            labels=self.labels[idx],
            targets=self.targets[idx],
            columns={k: tuple(v[i] for i in idx) for k, v in self.columns.items()},
            no_face=self.no_face,
        )

    def column(self, name: str) -> tuple[str, ...] | None:
        """The values of a per-image column, or None when the dataset has no such column."""
        return self.columns.get(name)


def concat(parts: list[FaceDataset]) -> FaceDataset:
    """One dataset of several (same image size); columns that some parts lack are blank."""
    if not parts:
        raise ValueError("nothing to concatenate")
    keys = sorted({k for p in parts for k in p.columns})
    return FaceDataset(
        names=tuple(n for p in parts for n in p.names),
        images=np.concatenate([p.images for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        targets=np.concatenate([p.targets for p in parts]),
        columns={
            k: tuple(v for p in parts for v in (p.columns.get(k) or ("",) * len(p))) for k in keys
        },
        no_face=tuple(n for p in parts for n in p.no_face),
    )


def observer_targets(data: FaceDataset, observer_share: float) -> FaceDataset:
    """Soft targets that mix the label with observers' votes where a set has them
    (``share_<expression>`` columns, as taiwan-tcce-performers): ``(1 - observer_share)`` x
    the label + ``observer_share`` x the votes. Neutral faces keep a one-hot target (that
    set's observers had no neutral option)."""
    cols = {c: data.columns.get(f"share_{c}") for c in EXPRESSION_CLASSES}
    if not any(v is not None for v in cols.values()) or observer_share <= 0:
        return data
    votes = np.zeros_like(data.targets)
    for k, c in enumerate(EXPRESSION_CLASSES):
        values = cols[c]
        if values is None:
            continue
        for i, v in enumerate(values):
            try:
                votes[i, k] = max(float(v), 0.0)
            except ValueError:
                votes[i, k] = 0.0
    total = votes.sum(axis=1, keepdims=True)
    usable = (total[:, 0] > 0) & (data.labels != EXPRESSION_CLASSES.index("neutral"))
    mixed = data.targets.copy()
    mixed[usable] = (1 - observer_share) * data.targets[usable] + observer_share * (
        votes[usable] / total[usable]
    )
    return FaceDataset(data.names, data.images, data.labels, mixed, data.columns, data.no_face)


def majority_labels(votes: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """FER+ majority rule over (N, 10) votes: single votes are dropped as noise; the top class
    counts only if it holds more than half of the remaining votes and is an emotion; else -1."""
    v = np.where(votes <= 1, 0.0, votes).astype(np.float64)
    total = v.sum(axis=1)
    top = v.argmax(axis=1)
    top_votes = v[np.arange(len(v)), top]
    ok = (total > 0) & (top_votes * 2 > total) & (top < len(EXPRESSION_CLASSES))
    return np.where(ok, top, -1).astype(np.int64)


def soft_targets(
    votes: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Emotion vote distributions (N, 8) and a mask of the rows usable for training.

    Single votes are dropped as noise (as in the FER+ paper) unless that leaves no emotion vote;
    a row is usable when its top emotion has strictly more votes than "unknown" and than "not a
    face"."""
    v = votes.astype(np.float64)
    cleaned = np.where(v <= 1, 0.0, v)
    empty = cleaned[:, : len(EXPRESSION_CLASSES)].sum(axis=1) == 0
    cleaned[empty] = v[empty]
    emo = cleaned[:, : len(EXPRESSION_CLASSES)]
    emo_total = emo.sum(axis=1)
    top_emotion = emo.max(axis=1)
    usable = (emo_total > 0) & (top_emotion > cleaned[:, len(EXPRESSION_CLASSES) :].max(axis=1))
    targets = np.zeros_like(emo)
    np.divide(emo, emo_total[:, None], out=targets, where=emo_total[:, None] > 0)
    return targets.astype(np.float32), usable


def _read_image(path: Path, color: bool) -> npt.NDArray[np.uint8]:
    """An 8-bit BGR (``color``) or grey image; formats OpenCV cannot read (GIF, some TIFF
    and palette files) are read with Pillow."""
    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE
    img = cv2.imread(str(path), flag) if path.is_file() else None
    if img is None and path.is_file():
        img = _read_with_pillow(path, color)
    if img is None:
        what = "is not an image we can read" if path.is_file() else "does not exist"
        raise DatasetError(f"image {path} {what}")
    return np.asarray(img, dtype=np.uint8)


def _read_with_pillow(path: Path, color: bool) -> npt.NDArray[np.uint8] | None:
    try:
        from PIL import Image

        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception:  # any decoder failure means "not an image we can read"
        return None
    code = cv2.COLOR_RGB2BGR if color else cv2.COLOR_RGB2GRAY
    return np.asarray(cv2.cvtColor(rgb, code), dtype=np.uint8)


def _stack(
    images: list[npt.NDArray[np.uint8]], size: int | None, where: Path
) -> npt.NDArray[np.uint8]:
    if not images:
        raise DatasetError(f"no images found in {where}")
    if size is not None:
        images = [
            img
            if img.shape[:2] == (size, size)
            else np.asarray(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA), np.uint8)
            for img in images
        ]
    shapes = {img.shape for img in images}
    if len(shapes) != 1:
        raise DatasetError(f"images in {where} differ in size ({sorted(shapes)[:3]}); pass a size")
    return np.stack(images)


def read_ferplus_votes(root: Path) -> tuple[list[str], npt.NDArray[np.float32]]:
    """Image names and their (N, 10) vote counts from ``root/label.csv``."""
    label_file = root / "label.csv"
    if not label_file.is_file():
        raise DatasetError(f"{root} is not a FER+ folder: label.csv is missing")
    names: list[str] = []
    rows: list[list[float]] = []
    with label_file.open(newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row:
                continue
            if len(row) != 2 + len(FERPLUS_VOTE_COLUMNS):
                raise DatasetError(
                    f"{label_file}:{lineno}: expected {2 + len(FERPLUS_VOTE_COLUMNS)} columns, "
                    f"got {len(row)}"
                )
            try:
                rows.append([float(x) for x in row[2:]])
            except ValueError as err:
                raise DatasetError(f"{label_file}:{lineno}: vote counts must be numbers") from err
            names.append(row[0].strip())
    if not names:
        raise DatasetError(f"{label_file} lists no images")
    return names, np.asarray(rows, dtype=np.float32)


#: Turns one whole BGR image into a face crop, or None when it finds no face (``--detect``).
Cropper = Callable[[npt.NDArray[np.uint8]], "npt.NDArray[np.uint8] | None"]


def centre_square(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The largest centred square of an image, so that a non-square image is cut, never
    squashed, before it is resized for a model."""
    h, w = image.shape[:2]
    side = min(h, w)
    y, x = (h - side) // 2, (w - side) // 2
    return image[y : y + side, x : x + side]


def _load_faces(
    paths: list[Path], color: bool, size: int | None, cropper: Cropper | None, where: Path
) -> tuple[list[int], npt.NDArray[np.uint8], list[int]]:
    """Read the images; with a cropper, each whole image (BGR) goes through it. Returns the
    indices kept, the stacked faces and the indices where the cropper found no face."""
    kept: list[int] = []
    missing: list[int] = []
    faces: list[npt.NDArray[np.uint8]] = []
    for i, path in enumerate(paths):
        if cropper is None:
            img = _read_image(path, color)
            if size is not None and img.shape[0] != img.shape[1]:
                img = centre_square(img)
        else:
            found = cropper(_read_image(path, True))
            if found is None:
                missing.append(i)
                continue
            img = found
            if not color and img.ndim == 3:
                img = np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        kept.append(i)
        faces.append(img)
    if not faces and missing:
        raise DatasetError(f"no face was found in any of the {len(missing)} images of {where}")
    return kept, _stack(faces, size, where), missing


def read_ferplus(
    root: Path,
    *,
    color: bool = False,
    size: int | None = None,
    keep: Literal["majority", "usable", "all"] = "majority",
    cropper: Cropper | None = None,
) -> FaceDataset:
    """Read a FER+-layout folder.

    ``keep="majority"`` keeps the images with a majority emotion (for evaluation),
    ``"usable"`` those whose top vote is an emotion (for training on soft targets),
    ``"all"`` every listed image."""
    root = Path(root)
    names, votes = read_ferplus_votes(root)
    labels = majority_labels(votes)
    targets, usable = soft_targets(votes)
    if keep == "majority":
        mask = labels >= 0
    elif keep == "usable":
        mask = usable
    else:
        mask = np.ones(len(names), dtype=bool)
    idx = np.flatnonzero(mask)
    image_dir = root / "images"
    if not image_dir.is_dir():
        image_dir = root
    kept, images, missing = _load_faces(
        [image_dir / names[i] for i in idx], color, size, cropper, root
    )
    idx_kept = idx[kept]
    return FaceDataset(
        names=tuple(names[i] for i in idx_kept),
        images=images,
        labels=labels[idx_kept],
        targets=targets[idx_kept],
        no_face=tuple(names[idx[i]] for i in missing),
    )


def read_folders(
    root: Path, *, color: bool = False, size: int | None = 48, cropper: Cropper | None = None
) -> FaceDataset:
    """Read a folder-per-class layout (``anger/``, ``fear/``, ``happy/`` ...).

    Folders whose name is not a known class are ignored; at least one must be known."""
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DatasetError(f"dataset folder {root} {what}")
    names: list[str] = []
    paths: list[Path] = []
    labels: list[int] = []
    known = 0
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        cls = FOLDER_ALIASES.get(sub.name.lower())
        if cls is None:
            continue
        known += 1
        k = EXPRESSION_CLASSES.index(cls)
        for f in sorted(sub.iterdir()):
            if f.suffix.lower() in _IMAGE_SUFFIXES:
                names.append(f"{sub.name}/{f.name}")
                paths.append(f)
                labels.append(k)
    if known == 0:
        raise DatasetError(
            f"{root} has no class folders; expected some of {sorted(set(FOLDER_ALIASES))}"
        )
    if not paths:
        raise DatasetError(f"no images found in {root}")
    kept, images, missing = _load_faces(paths, color, size, cropper, root)
    return _labelled(names, labels, kept, images, missing, {})


def _labelled(
    names: list[str],
    labels: list[int],
    kept: list[int],
    images: npt.NDArray[np.uint8],
    missing: list[int],
    columns: dict[str, list[str]],
) -> FaceDataset:
    lab = np.asarray([labels[i] for i in kept], dtype=np.int64)
    targets = np.zeros((len(lab), len(EXPRESSION_CLASSES)), dtype=np.float32)
    targets[np.arange(len(lab)), lab] = 1.0
    return FaceDataset(
        names=tuple(names[i] for i in kept),
        images=images,
        labels=lab,
        targets=targets,
        columns={k: tuple(v[i] for i in kept) for k, v in columns.items()},
        no_face=tuple(names[i] for i in missing),
    )


def _read_csv(path: Path, need: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of each data row; the line numbers count blank lines too."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            absent = [c for c in need if c not in header]
            if absent:
                raise DatasetError(
                    f"{path}: the header must name {', '.join(need)}; it lacks {', '.join(absent)}"
                    f" (it has {', '.join(header) or 'nothing'})"
                )
            reader.fieldnames = header
            return [
                (reader.line_num, {k: (v or "").strip() for k, v in row.items() if k})
                for row in reader
            ]
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path} is not UTF-8 text: {err.reason}") from None
    except csv.Error as err:
        raise DatasetError(f"{path}: not a CSV file: {err}") from None


#: Chooses the rows to read from the per-image columns (a split by subject), before any
#: image is read or searched for a face.
RowFilter = Callable[[dict[str, tuple[str, ...]]], "npt.NDArray[np.bool_]"]


def read_labelled(
    root: Path,
    *,
    color: bool = False,
    size: int | None = 48,
    cropper: Cropper | None = None,
    rows: RowFilter | None = None,
) -> FaceDataset:
    """Read the labels layout: ``labels.csv`` (``file,label``) and optional ``metadata.csv``.

    Every column of both files other than ``file`` and ``label`` becomes a per-image column
    (``FaceDataset.columns``). A label that is not an expression name (nor an alias) is an
    error naming the line; so is a listed file that does not exist."""
    root = Path(root)
    label_file = root / "labels.csv"
    if not label_file.is_file():
        raise DatasetError(f"{root} is not a labels-layout folder: labels.csv is missing")
    listed = _read_csv(label_file, ("file", "label"))
    if not listed:
        raise DatasetError(f"{label_file} lists no images")
    names: list[str] = []
    labels: list[int] = []
    extra: dict[str, dict[str, str]] = {}
    for lineno, row in listed:
        cls = FOLDER_ALIASES.get(row["label"].lower())
        if cls is None:
            raise DatasetError(
                f"{label_file}:{lineno}: unknown label {row['label']!r}; "
                f"expected one of {list(EXPRESSION_CLASSES)}"
            )
        names.append(row["file"])
        labels.append(EXPRESSION_CLASSES.index(cls))
        extra[row["file"]] = {k: v for k, v in row.items() if k not in ("file", "label")}
    meta_file = root / "metadata.csv"
    if meta_file.is_file():
        for _, row in _read_csv(meta_file, ("file",)):
            if row["file"] in extra:
                extra[row["file"]].update(
                    {k: v for k, v in row.items() if k not in ("file", "label")}
                )
    keys = sorted({k for values in extra.values() for k in values})
    columns = {k: [extra[n].get(k, "") for n in names] for k in keys}
    if rows is not None:
        pick = np.flatnonzero(rows({k: tuple(v) for k, v in columns.items()})).tolist()
        names = [names[i] for i in pick]
        labels = [labels[i] for i in pick]
        columns = {k: [v[i] for i in pick] for k, v in columns.items()}
        if not names:
            raise DatasetError(f"{root}: no images in the rows asked for")
    kept, images, missing = _load_faces([root / n for n in names], color, size, cropper, root)
    return _labelled(names, labels, kept, images, missing, columns)


def guess_format(root: Path) -> DatasetFormat:
    """``label.csv`` (FER+'s verbatim votes) -> FER+, ``labels.csv`` -> labels layout, else
    folder per class. FER+ folders may carry a ``labels.csv`` of their own, hence the order."""
    if (root / "label.csv").is_file():
        return "ferplus"
    return "labels" if (root / "labels.csv").is_file() else "folders"


def read_dataset(
    root: Path,
    fmt: DatasetFormat | None = None,
    *,
    color: bool = False,
    size: int | None = 48,
    cropper: Cropper | None = None,
    rows: RowFilter | None = None,
) -> FaceDataset:
    """Read ``root`` in the given layout, or guess it (see ``guess_format``). With a
    ``cropper`` each whole image is passed through it (face detection and the runtime's crop)
    and images where it finds no face are listed in ``no_face``. ``rows`` picks the rows to
    read from the per-image columns first (layouts without columns get none)."""
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DatasetError(f"dataset folder {root} {what}")
    if fmt is None:
        fmt = guess_format(root)
    if fmt == "labels":
        return read_labelled(root, color=color, size=size, cropper=cropper, rows=rows)
    if rows is not None:
        rows({})  # no per-image columns: the filter says why it cannot choose
    if fmt == "ferplus":
        return read_ferplus(root, color=color, size=size, cropper=cropper)
    return read_folders(root, color=color, size=size, cropper=cropper)
