"""Readers for labelled face-expression data (numpy only; no torch).

Two layouts are understood:

* FER+ layout: ``images/`` holding the PNG crops and ``label.csv`` with the verbatim FER+ votes
  (no header: name, face box, then ten vote columns: neutral, happiness, surprise, sadness, anger,
  disgust, fear, contempt, unknown, NF).
* Folder-per-class layout: one sub-folder per class (``anger/``, ``fear/`` ...) holding images.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
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

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}

DatasetFormat = Literal["ferplus", "folders"]


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

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.images.shape[0] != n or self.labels.shape != (n,):
            raise ValueError("names, images and labels must have the same length")
        if self.targets.shape != (n, len(EXPRESSION_CLASSES)):
            raise ValueError(f"targets must be (N, {len(EXPRESSION_CLASSES)})")

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
        )


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
    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE
    img = cv2.imread(str(path), flag)
    if img is None:
        raise DatasetError(f"cannot read image {path}")
    return np.asarray(img, dtype=np.uint8)


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


def read_ferplus(
    root: Path,
    *,
    color: bool = False,
    size: int | None = None,
    keep: Literal["majority", "usable", "all"] = "majority",
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
    images = [_read_image(image_dir / names[i], color) for i in idx]
    return FaceDataset(
        names=tuple(names[i] for i in idx),
        images=_stack(images, size, root),
        labels=labels[idx],
        targets=targets[idx],
    )


def read_folders(root: Path, *, color: bool = False, size: int | None = 48) -> FaceDataset:
    """Read a folder-per-class layout (``anger/``, ``fear/``, ``happy/`` ...).

    Folders whose name is not a known class are ignored; at least one must be known."""
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DatasetError(f"dataset folder {root} {what}")
    names: list[str] = []
    images: list[npt.NDArray[np.uint8]] = []
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
                images.append(_read_image(f, color))
                labels.append(k)
    if known == 0:
        raise DatasetError(
            f"{root} has no class folders; expected some of {sorted(set(FOLDER_ALIASES))}"
        )
    lab = np.asarray(labels, dtype=np.int64)
    targets = np.zeros((len(lab), len(EXPRESSION_CLASSES)), dtype=np.float32)
    targets[np.arange(len(lab)), lab] = 1.0
    return FaceDataset(
        names=tuple(names), images=_stack(images, size, root), labels=lab, targets=targets
    )


def read_dataset(
    root: Path, fmt: DatasetFormat | None = None, *, color: bool = False, size: int | None = 48
) -> FaceDataset:
    """Read ``root`` in the given layout, or guess it (``label.csv`` present -> FER+)."""
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DatasetError(f"dataset folder {root} {what}")
    if fmt is None:
        fmt = "ferplus" if (root / "label.csv").is_file() else "folders"
    if fmt == "ferplus":
        return read_ferplus(root, color=color, size=size)
    return read_folders(root, color=color, size=size)
