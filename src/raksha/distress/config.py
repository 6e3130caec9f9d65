"""Settings for the temporal distress scorer. Every default is explained in docs/distress.md."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from raksha.domain import EXPRESSION_CLASSES


def _default_weights() -> dict[str, float]:
    return {"fear": 1.0, "sadness": 0.6, "anger": 0.2, "disgust": 0.2}


class DistressConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    #: Per-frame evidence = sum of weight * probability over these expression classes
    #: (clipped to [0,1]). Classes not listed, or that the model does not output, weigh 0.
    weights: dict[str, float] = Field(default_factory=_default_weights)
    #: Face-quality gating: faces smaller than this (short side, px), with a lower detector
    #: score, or blurrier than this (variance of the Laplacian on a 64x64 gray crop) give no
    #: evidence; between the floor and `*_full`, evidence is down-weighted linearly.
    min_face_px: float = Field(24.0, ge=0)
    full_face_px: float = Field(48.0, ge=0)
    min_detector_score: float = Field(0.6, ge=0, le=1)
    min_sharpness: float = Field(15.0, ge=0)
    full_sharpness: float = Field(60.0, ge=0)
    #: Exponential smoothing half-life of the score, in seconds of stream time.
    half_life_s: float = Field(0.5, gt=0)
    #: Hysteresis: an event may open while the smoothed score is >= enter, and closes once
    #: the score has stayed below exit for `exit_hold_s`.
    enter_threshold: float = Field(0.55, gt=0, le=1)
    exit_threshold: float = Field(0.35, ge=0, lt=1)
    #: The score must stay >= enter for this long before an event opens.
    min_duration_s: float = Field(1.0, ge=0)
    #: ... and the run must contain this many consecutive frames whose own (unsmoothed)
    #: evidence is >= enter, so that one odd frame can never open an event.
    confirm_frames: int = Field(2, ge=2, le=100)
    exit_hold_s: float = Field(1.5, ge=0)
    #: After an event closes, the same track cannot open another for this long.
    cooldown_s: float = Field(30.0, ge=0)
    #: A track unseen (or unreadable) for longer than this has its state reset, and any open
    #: event closed.
    max_gap_s: float = Field(2.0, gt=0)
    #: Person-relative evidence: each track learns its own usual reading (the evidence before
    #: face quality), its baseline, and the state machine runs on
    #: max(absolute_weight * evidence, relative), where
    #: relative = quality * clip(relative_gain * (reading - baseline), 0, 1) (0 until the
    #: baseline is established). Off: the evidence alone (absolute_weight unused), as before.
    relative: bool = True
    #: How strongly a rise above the person's own baseline counts: with 1.5, a rise of
    #: enter_threshold / 1.5 (0.37) above the baseline reaches the entry level. Chosen with
    #: absolute_weight on the tune split's event clips (docs/distress.md).
    relative_gain: float = Field(1.5, gt=0)
    #: The baseline is the mean reading of the readable frames in the track's first
    #: `baseline_s` seconds (from its first readable frame); no relative signal before that.
    baseline_s: float = Field(2.0, gt=0)
    #: Afterwards the baseline follows the person's smoothed reading: down with this
    #: half-life (a calmer face is learnt quickly) ...
    baseline_down_half_life_s: float = Field(5.0, gt=0)
    #: ... and up only with this one, and not at all while an event is pending or open or
    #: the smoothed relative signal is at or above `exit_threshold`, so that a change held for
    #: seconds to minutes still stands out, while a slow drift is absorbed.
    baseline_up_half_life_s: float = Field(60.0, gt=0)
    #: Weight of the absolute evidence in the decision when the relative part is on: the
    #: state machine runs on max(absolute_weight * evidence, relative). Below 1, a face must
    #: read as distressed more strongly to open an event on its absolute level alone
    #: (enter_threshold / absolute_weight), while a change from the person's own baseline
    #: counts in full: a model that finds more distress on unfamiliar faces also reads more
    #: calm faces as somewhat distressed, and this keeps those "resting" faces quiet.
    #: 0.7 (absolute alone: evidence >= 0.79) was chosen on the tune split's event clips.
    absolute_weight: float = Field(0.7, gt=0, le=1)

    @field_validator("weights")
    @classmethod
    def _known_classes(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(EXPRESSION_CLASSES))
        if unknown:
            raise ValueError(
                f"unknown expression class(es) {unknown}; known: {list(EXPRESSION_CLASSES)}"
            )
        if any(w < 0 for w in v.values()):
            raise ValueError("weights must be >= 0")
        if not any(w > 0 for w in v.values()):
            raise ValueError("at least one expression class needs a weight above 0")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> DistressConfig:
        if self.exit_threshold >= self.enter_threshold:
            raise ValueError("exit_threshold must be below enter_threshold (hysteresis)")
        if self.full_face_px < self.min_face_px:
            raise ValueError("full_face_px must be >= min_face_px")
        if self.full_sharpness < self.min_sharpness:
            raise ValueError("full_sharpness must be >= min_sharpness")
        if self.baseline_up_half_life_s < self.baseline_down_half_life_s:
            raise ValueError(
                "baseline_up_half_life_s must be >= baseline_down_half_life_s "
                "(the baseline rises slowly, falls quickly)"
            )
        return self
