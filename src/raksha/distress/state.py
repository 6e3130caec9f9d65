"""One tracked face's distress state machine (pure: no I/O, no clock of its own).

    IDLE --score >= enter--> PENDING --held min_duration_s and confirmed--> ACTIVE (event opens)
    PENDING --score < enter--> IDLE
    ACTIVE --score < exit held for exit_hold_s--> COOLDOWN (event closes)
    COOLDOWN --cooldown_s elapsed--> IDLE

The score is the smoothed value of each frame's evidence or, when `cfg.relative` is on, of
max(absolute_weight * evidence, relative), where
relative = quality * clip(relative_gain * (reading - baseline), 0, 1): the reading (the
evidence before face quality) measured against the person's own usual reading
(`raksha.distress.baseline`), so that a face the model reads as mostly neutral still shows
a change from calm to fear.

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

from raksha.distress.baseline import Baseline
from raksha.distress.config import DistressConfig
from raksha.distress.smoothing import clip01, ema_alpha
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
    #: This frame's relative evidence; None when the frame was gated, before the baseline is
    #: established, or with `relative` off.
    relative: float | None = None
    #: The baseline (the person's usual reading before quality) the frame was judged
    #: against; None as for `relative`.
    baseline: float | None = None


class TrackState:
    """The temporal distress state of one track. Feed it frames in time order with `step`."""

    def __init__(self, track_id: int, cfg: DistressConfig, source_id: str = "") -> None:
        self.track_id = int(track_id)
        self.source_id = source_id
        self._cfg = cfg
        self.phase = Phase.IDLE
        #: Smoothed score; None until the first evidence (and after an evidence gap).
        self._score: float | None = None
        #: The absolute evidence, the reading before quality and the relative evidence,
        #: smoothed as the score is (valid while `_score` is not None).
        self._abs = 0.0
        self._reading = 0.0
        self._rel = 0.0
        #: The person's own usual reading; kept across evidence gaps (same track, same face).
        self._baseline = (
            Baseline(
                cfg.baseline_s,
                cfg.baseline_down_half_life_s,
                cfg.baseline_up_half_life_s,
                max_step_s=cfg.max_gap_s,
            )
            if cfg.relative
            else None
        )
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
        self._peak_abs = 0.0
        self._peak_rel = 0.0
        self._peak_baseline: float | None = None
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

    @property
    def baseline(self) -> float | None:
        """The person's baseline (None until established, or with `relative` off)."""
        return None if self._baseline is None else self._baseline.value

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
        quality: float = 1.0,
    ) -> StepResult:
        """Advance to time `t` with this frame's evidence (None: the face was gated out).

        `probs`/`labels` are the frame's expression distribution, kept (smoothed) only to
        report the expression at the event's peak. `quality` (in (0,1]) is the factor the
        evidence was already multiplied by: the baseline learns the reading before it, so
        that a face merely growing sharper or nearer does not look like a change of
        expression, and the relative evidence is weighted by it like the evidence is.
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

        if not 0.0 < quality <= 1.0:
            raise ValueError(f"quality of a readable face must be in (0,1], got {quality}")
        e = clip01(float(evidence))
        reading = e if quality == 1.0 else clip01(e / quality)
        base = None if self._baseline is None else self._baseline.at(t)
        rel = None if base is None else quality * clip01(cfg.relative_gain * (reading - base))
        # With the relative part on, the absolute evidence counts at its weight from the first
        # frame (also before the baseline is known); off, the evidence alone, as before.
        x = max(cfg.absolute_weight * e, rel or 0.0) if cfg.relative else e
        if self._score is None or self.last_evidence_t is None:
            alpha = 1.0  # seed the averages with the first reading
            score, self._abs, self._reading, self._rel = x, e, reading, rel or 0.0
        else:
            alpha = ema_alpha(t - self.last_evidence_t, cfg.half_life_s)
            score = clip01(self._score + alpha * (x - self._score))
            self._abs = clip01(self._abs + alpha * (e - self._abs))
            self._reading = clip01(self._reading + alpha * (reading - self._reading))
            self._rel = clip01(self._rel + alpha * ((rel or 0.0) - self._rel))
        self._score = score
        self.last_evidence_t = t
        self._smooth_expr(alpha, probs, labels)
        high = x >= cfg.enter_threshold

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
                self._peak_abs = self._peak_rel = 0.0
                self._track_peak(t, score, base)
        elif self.phase is Phase.PENDING:
            if score >= cfg.enter_threshold:
                self._high_streak = self._high_streak + 1 if high else 0
                self._confirmed = self._confirmed or self._high_streak >= cfg.confirm_frames
                self._track_peak(t, score, base)
                if self._confirmed and t - self._run_start >= cfg.min_duration_s:
                    self.phase = Phase.ACTIVE
                    self._calm_since = None
                    opened = self._event(None)
            else:
                self.phase = Phase.IDLE
        elif self.phase is Phase.ACTIVE:
            self._track_peak(t, score, base)
            if score < cfg.exit_threshold:
                if self._calm_since is None:
                    self._calm_since = t
                if t - self._calm_since >= cfg.exit_hold_s:
                    closed = self._close(end_s=self._calm_since, now=t)
            else:
                self._calm_since = None
        if self._baseline is not None:
            hold = self.phase in (Phase.PENDING, Phase.ACTIVE) or self._rel >= cfg.exit_threshold
            self._baseline.learn(t, reading, self._reading, hold_up=hold)
        return StepResult(score, self.active, opened, closed, rel, base)

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
            peak_absolute=self._peak_abs,
            peak_relative=None if self._baseline is None else self._peak_rel,
            baseline_at_peak=self._peak_baseline,
        )

    def _track_peak(self, t: float, score: float, baseline: float | None) -> None:
        self._peak_abs = max(self._peak_abs, self._abs)
        self._peak_rel = max(self._peak_rel, self._rel)
        if score > self._peak:
            self._peak = score
            self._peak_t = t
            self._peak_expr = self._expr_dict()
            self._peak_baseline = baseline

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
