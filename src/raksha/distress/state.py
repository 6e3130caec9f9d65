"""One tracked face's distress state machine (pure: no I/O, no clock of its own).

    IDLE --score >= enter--> PENDING --held min_duration_s and confirmed--> ACTIVE (event opens)
    PENDING --score < enter--> IDLE
    ACTIVE --score < exit held for exit_hold_s--> COOLDOWN (event closes)
    COOLDOWN --cooldown_s elapsed--> IDLE

Only frames with evidence (a readable face) move the score and the clocks; every duration
is measured between the timestamps of evidence frames. Gated frames (evidence None) hold
the score and the phase. If no evidence arrives for longer than `max_gap_s`, the score is
forgotten: a pending run is dropped and an open event closes at the last evidence time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from raksha.distress.config import DistressConfig
from raksha.domain import DistressEvent


class Phase(StrEnum):
    IDLE = "idle"
    PENDING = "pending"
    ACTIVE = "active"
    COOLDOWN = "cooldown"


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one frame did to a track: its smoothed score and any event change."""

    score: float
    active: bool
    opened: DistressEvent | None = None
    closed: DistressEvent | None = None


def ema_alpha(dt: float, half_life_s: float) -> float:
    """Weight of a new value after `dt` seconds: the old score's weight halves every half-life."""
    if dt <= 0.0:
        return 0.0
    return 1.0 - math.pow(0.5, dt / half_life_s)


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, x))


class TrackState:
    """The temporal distress state of one track. Feed it frames in time order with `step`."""

    def __init__(self, track_id: int, cfg: DistressConfig, source_id: str = "") -> None:
        self.track_id = int(track_id)
        self.source_id = source_id
        self._cfg = cfg
        self.phase = Phase.IDLE
        #: Smoothed score; None until the first evidence (and after an evidence gap).
        self._score: float | None = None
        #: Smoothed expression distribution (same smoothing as the score), for the report.
        self._expr: npt.NDArray[np.float64] | None = None
        self._labels: tuple[str, ...] = ()
        self.last_seen: float | None = None
        self.last_evidence_t: float | None = None
        # The current run (PENDING, then the open event).
        self._run_start = 0.0
        self._high_streak = 0
        self._confirmed = False
        self._peak = 0.0
        self._peak_t = 0.0
        self._peak_expr: dict[str, float] = {}
        # ACTIVE: when the score first fell below exit in the current calm stretch.
        self._calm_since: float | None = None
        self._cooldown_until = -math.inf

    # -- read-only views -------------------------------------------------------------
    @property
    def score(self) -> float:
        """The smoothed score (0 before any evidence)."""
        return 0.0 if self._score is None else self._score

    @property
    def active(self) -> bool:
        return self.phase is Phase.ACTIVE

    def open_event(self) -> DistressEvent | None:
        """A snapshot of the open event (end_s None), or None when no event is open."""
        return self._event(None) if self.active else None

    # -- transitions -----------------------------------------------------------------
    def step(
        self,
        t: float,
        evidence: float | None,
        probs: npt.NDArray[np.floating] | None = None,
        labels: Sequence[str] = (),
    ) -> StepResult:
        """Advance to time `t` with this frame's evidence (None: the face was gated out).

        `probs`/`labels` are the frame's expression distribution, kept (smoothed) only to
        report the expression at the event's peak.
        """
        if self.last_seen is not None and t < self.last_seen:
            raise ValueError(
                f"track {self.track_id}: time went backwards ({t} after {self.last_seen})"
            )
        cfg = self._cfg
        closed: DistressEvent | None = None
        if self.last_evidence_t is not None and t - self.last_evidence_t > cfg.max_gap_s:
            closed = self._forget(now=t)
        self.last_seen = t
        if evidence is None or not math.isfinite(evidence):
            return StepResult(self.score, self.active, None, closed)

        e = _clip01(float(evidence))
        if self._score is None or self.last_evidence_t is None:
            alpha = 1.0  # seed the average with the first reading
            score = e
        else:
            alpha = ema_alpha(t - self.last_evidence_t, cfg.half_life_s)
            score = _clip01(self._score + alpha * (e - self._score))
        self._score = score
        self.last_evidence_t = t
        self._smooth_expr(alpha, probs, labels)
        high = e >= cfg.enter_threshold

        opened: DistressEvent | None = None
        if self.phase is Phase.COOLDOWN and t >= self._cooldown_until:
            self.phase = Phase.IDLE

        if self.phase is Phase.IDLE:
            if score >= cfg.enter_threshold:
                self.phase = Phase.PENDING
                self._run_start = t
                self._high_streak = 1 if high else 0
                self._confirmed = False
                self._peak = -1.0
                self._track_peak(t, score)
        elif self.phase is Phase.PENDING:
            if score >= cfg.enter_threshold:
                self._high_streak = self._high_streak + 1 if high else 0
                self._confirmed = self._confirmed or self._high_streak >= cfg.confirm_frames
                self._track_peak(t, score)
                if self._confirmed and t - self._run_start >= cfg.min_duration_s:
                    self.phase = Phase.ACTIVE
                    self._calm_since = None
                    opened = self._event(None)
            else:
                self.phase = Phase.IDLE
        elif self.phase is Phase.ACTIVE:
            self._track_peak(t, score)
            if score < cfg.exit_threshold:
                if self._calm_since is None:
                    self._calm_since = t
                if t - self._calm_since >= cfg.exit_hold_s:
                    closed = self._close(end_s=self._calm_since, now=t)
            else:
                self._calm_since = None
        return StepResult(score, self.active, opened, closed)

    def close(self, end_s: float) -> DistressEvent | None:
        """Force-close the open event (stream end, lost track) with `end_s`; None if none."""
        if not self.active:
            return None
        return self._close(end_s=end_s, now=end_s)

    # -- internals -------------------------------------------------------------------
    def _forget(self, now: float) -> DistressEvent | None:
        """No evidence for longer than max_gap_s: drop the score and any run or event."""
        closed = None
        if self.phase is Phase.ACTIVE and self.last_evidence_t is not None:
            closed = self._close(end_s=self.last_evidence_t, now=now)
        elif self.phase is Phase.PENDING:
            self.phase = Phase.IDLE
        self._score = None
        self._expr = None
        self.last_evidence_t = None
        return closed

    def _close(self, end_s: float, now: float) -> DistressEvent:
        event = self._event(end_s)
        self.phase = Phase.COOLDOWN
        self._cooldown_until = now + self._cfg.cooldown_s
        self._calm_since = None
        return event

    def _event(self, end_s: float | None) -> DistressEvent:
        return DistressEvent(
            track_id=self.track_id,
            start_s=self._run_start,
            end_s=end_s,
            peak_distress=self._peak,
            peak_t=self._peak_t,
            expression_at_peak=dict(self._peak_expr),
            source_id=self.source_id,
        )

    def _track_peak(self, t: float, score: float) -> None:
        if score > self._peak:
            self._peak = score
            self._peak_t = t
            self._peak_expr = self._expr_dict()

    def _smooth_expr(
        self, alpha: float, probs: npt.NDArray[np.floating] | None, labels: Sequence[str]
    ) -> None:
        if probs is None:
            return
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        if p.shape[0] != len(labels) or not np.all(np.isfinite(p)):
            return
        if self._expr is None or tuple(labels) != self._labels or alpha >= 1.0:
            self._expr = p.copy()
            self._labels = tuple(labels)
        else:
            self._expr += alpha * (p - self._expr)

    def _expr_dict(self) -> dict[str, float]:
        if self._expr is None:
            return {}
        return {name: float(v) for name, v in zip(self._labels, self._expr, strict=True)}
