"""Settings for the face tracker."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ByteTrackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["bytetrack"] = "bytetrack"
    #: Detections at or above this score may start new tracks and are matched first.
    high_score: float = Field(0.8, gt=0, le=1)
    #: Detections between this and `high_score` only extend existing tracks (second pass).
    low_score: float = Field(0.5, ge=0, le=1)
    #: Minimum IoU (against the motion-predicted box) for a match in each pass.
    match_iou: float = Field(0.2, gt=0, lt=1)
    #: A track not seen for this many seconds is dropped (seconds, not frames, so the same
    #: value works at any analysis rate).
    max_lost_s: float = Field(2.0, gt=0)
    #: Third pass for fast faces, whose boxes may not overlap from one analysed frame to
    #: the next: a high-score detection still unmatched may continue a track seen on the
    #: previous update if its centre lies within this many standard deviations of the
    #: track's predicted centre (Kalman) and its size is within a factor 1.5. 0 disables it.
    centre_gate_sigma: float = Field(3.0, ge=0)


TrackerConfig = ByteTrackConfig
