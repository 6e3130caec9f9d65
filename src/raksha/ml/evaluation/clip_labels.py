"""The labels of one benchmark clip: its sidecar JSON (``<clip>.json`` beside ``<clip>.mp4``).

A sidecar says what the clip shows and when, as segments that tile the clip:

    {"clip": "003-distress-p12.mp4", "fps": 10, "duration_s": 14.2, "performer": "12",
     "face_px": 61, "segments": [{"start_s": 0.0, "end_s": 4.1, "kind": "calm",
     "expression": "neutral"}, {"start_s": 4.1, "end_s": 9.6, "kind": "distress",
     "expression": "fear"}, ...], "face_boxes": [[x1, y1, x2, y2], ...], "generator": {...}}

``kind`` follows from the expression (KIND_OF): fear and sadness are ``distress``, neutral and
happiness ``calm``, anything else ``other``. A segment starts on the first frame that shows
any of its expression, so a crossfade between two expressions belongs to the segment that
follows it. ``face_boxes`` (optional) is the square the face image covers on each frame,
for telling the subject's alerts from a passer-by's; ``generator`` (optional) records how the
clip was made.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from raksha.domain import EXPRESSION_CLASSES
from raksha.errors import RakshaError

SegmentKind = Literal["calm", "distress", "other"]

#: The kind of segment each expression makes.
KIND_OF: dict[str, SegmentKind] = {
    "neutral": "calm",
    "happiness": "calm",
    "fear": "distress",
    "sadness": "distress",
    "surprise": "other",
    "anger": "other",
    "disgust": "other",
    "contempt": "other",
}

#: Segment ends may miss the clip's duration by this much (rounding to whole frames).
_SLACK_S = 1e-3


class SidecarError(RakshaError):
    """A sidecar file is missing, not JSON, or does not describe its clip."""


class Segment(BaseModel):
    """One stretch of a clip that shows one expression."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    start_s: float = Field(ge=0)
    end_s: float
    kind: SegmentKind
    expression: str

    @model_validator(mode="after")
    def _consistent(self) -> Segment:
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s {self.end_s} is not after start_s {self.start_s}")
        if self.expression not in EXPRESSION_CLASSES:
            raise ValueError(f"unknown expression {self.expression!r}")
        if KIND_OF[self.expression] != self.kind:
            raise ValueError(
                f"expression {self.expression!r} makes a {KIND_OF[self.expression]!r} "
                f"segment, not {self.kind!r}"
            )
        return self


class ClipLabels(BaseModel):
    """Everything a sidecar says about its clip."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    clip: str = Field(min_length=1)
    fps: float = Field(gt=0)
    duration_s: float = Field(gt=0)
    performer: str
    face_px: int = Field(gt=0)
    segments: tuple[Segment, ...] = Field(min_length=1)
    face_boxes: tuple[tuple[int, int, int, int], ...] | None = None
    generator: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _tiles_the_clip(self) -> ClipLabels:
        at = 0.0
        for i, seg in enumerate(self.segments):
            if abs(seg.start_s - at) > _SLACK_S:
                raise ValueError(
                    f"segment {i} starts at {seg.start_s} s, not where the one before ends ({at} s)"
                )
            at = seg.end_s
        if abs(at - self.duration_s) > _SLACK_S:
            raise ValueError(f"segments end at {at} s, the clip at {self.duration_s} s")
        if self.face_boxes is not None:
            frames = round(self.duration_s * self.fps)
            if len(self.face_boxes) != frames:
                raise ValueError(
                    f"{len(self.face_boxes)} face boxes for {frames} frames "
                    f"({self.duration_s} s at {self.fps:g} fps)"
                )
        return self

    def distress(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.kind == "distress")

    def segment_at(self, t: float) -> Segment:
        """The segment that holds time ``t`` (the last one for ``t`` at or past the end)."""
        for seg in self.segments:
            if t < seg.end_s:
                return seg
        return self.segments[-1]

    def box_at(self, t: float) -> tuple[int, int, int, int] | None:
        """The face square on the frame shown at time ``t`` (None without face boxes)."""
        if not self.face_boxes:
            return None
        index = min(len(self.face_boxes) - 1, max(0, math.floor(t * self.fps + 1e-6)))
        return self.face_boxes[index]


def sidecar_path(video: Path) -> Path:
    """Where the sidecar of ``video`` lives: the same name with ``.json``."""
    return video.with_suffix(".json")


def write_sidecar(labels: ClipLabels, path: Path) -> None:
    doc = labels.model_dump(mode="json", exclude_none=True)
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")


def read_sidecar(path: Path) -> ClipLabels:
    """The labels in ``path``; any problem is a SidecarError naming the file and the field."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SidecarError(f"sidecar {path} does not exist") from None
    except UnicodeDecodeError:
        raise SidecarError(f"sidecar {path} is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise SidecarError(
            f"sidecar {path} is not valid JSON (line {err.lineno}: {err.msg})"
        ) from None
    except OSError as err:
        raise SidecarError(f"cannot read sidecar {path}: {err.strerror or err}") from None
    try:
        return ClipLabels.model_validate(doc)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise SidecarError(f"sidecar {path}: {where}: {first['msg']}") from None
