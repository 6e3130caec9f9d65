"""Person-relative distress: each track's baseline, and the relative evidence measured from it.

A face the model reads as mostly neutral moves its evidence only a little when the person
becomes frightened (0.05 -> 0.45). The relative part must catch that change when it lasts,
and must never alert on a face whose reading does not change at all, however high it sits.
With the relative part on, the absolute evidence counts at `absolute_weight`: a steady face
opens an event only if absolute_weight * evidence reaches the entry level.

With the defaults (entry 0.55, relative_gain 1.5, absolute_weight 0.7) a rise of
0.55 / 1.5 = 0.367 above the baseline reaches the entry level, and the absolute evidence
alone needs 0.55 / 0.7 = 0.786.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from raksha.distress import Baseline, DistressConfig, DistressScorer, StepResult, TrackState
from raksha.domain import FaceDetections, FaceResult, FrameAnalysis
from raksha.pipeline.video import event_to_json

PROPS = settings(deadline=None, max_examples=150)
#: FER2013 models' classes, mapped to canonical names (no contempt).
FER7 = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
#: Fear alone counts, so a row's fear probability *is* its evidence, whatever the defaults.
FEAR_ONLY = {"fear": 1.0}


def fear_row(fear: float) -> np.ndarray:
    row = np.zeros(len(FER7), np.float32)
    row[FER7.index("fear")] = fear
    row[FER7.index("neutral")] = 1.0 - fear
    return row


def one_face(size: float = 100.0) -> FaceDetections:
    return FaceDetections(
        boxes=np.array([[10.0, 10.0, 10.0 + size, 10.0 + size]], np.float32),
        scores=np.array([0.95], np.float32),
        landmarks=np.zeros((1, 5, 2), np.float32),
    )


def frames_at(start: float, seconds: float, steps: list[float]) -> list[float]:
    """Frame times from `start` for `seconds`, stepping through `steps` (cycled)."""
    out, t, k = [], start, 0
    while t < start + seconds:
        out.append(t)
        t += steps[k % len(steps)]
        k += 1
    return out


# -- the baseline on its own --------------------------------------------------------------
def test_baseline_is_the_mean_of_the_first_window_and_nothing_before() -> None:
    b = Baseline(window_s=2.0, down_half_life_s=5.0, up_half_life_s=60.0, max_step_s=2.0)
    for t, e in [(10.0, 0.1), (10.5, 0.2), (11.0, 0.3), (11.9, 0.2)]:
        assert b.at(t) is None and b.value is None
        b.learn(t, e, level=e, hold_up=False)
        assert not b.established
    # The first frame at the end of the window is judged by the window's mean.
    assert b.at(12.0) == pytest.approx(0.2)
    assert b.established and b.value == pytest.approx(0.2)


def test_a_late_frame_closes_the_window_with_the_frames_before_it() -> None:
    """Irregular frames: the window holds one reading; the next comes after it ended."""
    b = Baseline(window_s=2.0, down_half_life_s=5.0, up_half_life_s=60.0, max_step_s=2.0)
    b.learn(0.0, 0.3, level=0.3, hold_up=False)
    assert b.at(1.99) is None
    assert b.at(2.7) == pytest.approx(0.3)
    # Without asking `at` first, learning past the window closes it the same way.
    c = Baseline(window_s=2.0, down_half_life_s=5.0, up_half_life_s=60.0, max_step_s=2.0)
    c.learn(0.0, 0.3, level=0.3, hold_up=False)
    c.learn(2.7, 0.3, level=0.3, hold_up=False)
    assert c.value == pytest.approx(0.3)


def established(value: float, t: float = 0.0, max_step_s: float = 1000.0) -> Baseline:
    b = Baseline(window_s=1.0, down_half_life_s=5.0, up_half_life_s=60.0, max_step_s=max_step_s)
    b.learn(t, value, level=value, hold_up=False)
    assert b.at(t + 1.0) == pytest.approx(value)
    return b


def test_the_baseline_falls_quickly_and_rises_slowly() -> None:
    down = established(0.4)
    down.learn(5.0, 0.0, level=0.0, hold_up=False)  # 5 s after the last frame learnt
    assert down.value == pytest.approx(0.2)  # one 5 s half-life down
    up = established(0.2)
    up.learn(5.0, 1.0, level=1.0, hold_up=False)
    assert up.value == pytest.approx(0.2 + 0.8 * (1 - 0.5 ** (5 / 60)))  # 5 s of 60 s
    up.learn(65.0, 1.0, level=1.0, hold_up=False)
    assert up.value == pytest.approx(1.0 - 0.8 * 0.5 ** (65 / 60))


def test_held_it_does_not_rise_but_still_falls() -> None:
    b = established(0.3)
    b.learn(30.0, 0.9, level=0.9, hold_up=True)
    assert b.value == pytest.approx(0.3)
    b.learn(35.0, 0.1, level=0.1, hold_up=True)
    assert b.value == pytest.approx(0.2)


def test_it_follows_the_level_not_the_frames_own_reading() -> None:
    b = established(0.5)
    b.learn(5.0, evidence=1.0, level=0.0, hold_up=False)
    assert b.value == pytest.approx(0.25)


def test_a_long_unreadable_stretch_counts_as_max_step_at_most() -> None:
    b = established(0.0, max_step_s=2.0)
    b.learn(601.0, 1.0, level=1.0, hold_up=False)  # 600 s since the last frame
    assert b.value == pytest.approx(1 - 0.5 ** (2.0 / 60))


def test_baseline_refuses_non_positive_settings() -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        Baseline(window_s=0.0, down_half_life_s=5.0, up_half_life_s=60.0, max_step_s=2.0)


# -- the relative signal in a track -----------------------------------------------------
def test_no_relative_signal_before_the_baseline_and_gated_frames_do_not_count() -> None:
    cfg = DistressConfig(weights=FEAR_ONLY)
    state = TrackState(1, cfg)
    seen = [(t, state.step(t, e)) for t, e in [(0.0, 0.1), (0.4, None), (1.0, 0.3), (1.9, None)]]
    assert all(r.relative is None and r.baseline is None for _, r in seen)
    r = state.step(2.0, 0.5)
    assert r.baseline == pytest.approx(0.2)  # (0.1 + 0.3) / 2: the gated frames left out
    assert r.relative == pytest.approx(cfg.relative_gain * 0.3)
    assert state.baseline is not None


def test_with_relative_off_nothing_is_learnt() -> None:
    state = TrackState(1, DistressConfig(relative=False))
    results = [state.step(t, 0.05 if t < 3 else 0.45) for t in frames_at(0.0, 10.0, [0.2])]
    assert all(r.relative is None and r.baseline is None for r in results)
    assert not any(r.opened for r in results) and state.baseline is None


def run_track(
    cfg: DistressConfig, frames: list[tuple[float, float | None]]
) -> tuple[TrackState, list[tuple[float, float | None, StepResult]]]:
    """One track through `frames` of (time, evidence or None): the state and every step."""
    state = TrackState(1, cfg)
    return state, [(t, e, state.step(t, e)) for t, e in frames]


def test_a_resting_sad_face_does_not_alert() -> None:
    """Read steadily as 0.45 from the first frame: high, but it never changes."""
    cfg = DistressConfig()
    state, out = run_track(cfg, [(t, 0.45) for t in frames_at(0.0, 120.0, [0.2])])
    results = [r for _, _, r in out]
    assert not any(r.opened for r in results)
    assert state.baseline == 0.45
    assert all(r.relative in (None, 0.0) for r in results)


def test_calm_to_fearish_for_five_seconds_opens_an_event_only_the_relative_part_sees() -> None:
    """0.05 -> 0.45: a rise of 0.40 (relative 0.6), the absolute evidence below the entry
    level even in full."""
    frames = [(t, 0.05 if t < 3.0 else 0.45 if t < 8.0 else 0.05) for t in frames_at(0, 14, [0.2])]
    opened = [r.opened for *_, r in run_track(DistressConfig(), frames)[1] if r.opened]
    assert len(opened) == 1
    ev = opened[0]
    assert ev.start_s >= 3.0 and ev.peak_t < 8.0
    assert ev.peak_absolute is not None and ev.peak_absolute < 0.46
    assert ev.peak_relative is not None and ev.peak_relative >= 0.55
    assert ev.baseline_at_peak == pytest.approx(0.05, abs=0.005)
    # The same person scored without the relative part: nothing.
    off = run_track(DistressConfig(relative=False), frames)[1]
    assert not any(r.opened for _, _, r in off)


def test_a_change_of_under_a_second_does_not_open_an_event() -> None:
    frames = [(t, 0.45 if 3.0 <= t < 3.9 else 0.05) for t in frames_at(0, 12, [0.2])]
    assert not any(r.opened for _, _, r in run_track(DistressConfig(), frames)[1])


def test_the_baseline_does_not_creep_up_during_an_event() -> None:
    """A change held for a minute keeps its event open: the baseline waits."""
    frames = [(t, 0.05 if t < 3.0 else 0.45) for t in frames_at(0, 63, [0.2])]
    state, out = run_track(DistressConfig(), frames)
    assert sum(1 for _, _, r in out if r.opened) == 1
    assert state.active
    assert state.baseline is not None and state.baseline < 0.06


def test_a_slow_drift_is_absorbed() -> None:
    """From 0.05 to 0.45 over ten minutes: the baseline follows, no event opens."""
    frames = [(t, 0.05 + 0.4 * min(1.0, t / 600.0)) for t in frames_at(0, 900, [0.2])]
    state, out = run_track(DistressConfig(), frames)
    assert not any(r.opened for _, _, r in out)
    assert state.baseline is not None and state.baseline > 0.35


# -- properties ---------------------------------------------------------------------------
@st.composite
def relative_configs(draw: st.DrawFn) -> DistressConfig:
    enter = draw(st.floats(0.05, 1.0))
    down = draw(st.floats(0.05, 30.0))
    return DistressConfig(
        enter_threshold=enter,
        exit_threshold=draw(st.floats(0.0, enter, exclude_max=True)),
        half_life_s=draw(st.floats(0.02, 5.0)),
        min_duration_s=draw(st.floats(0.0, 5.0)),
        max_gap_s=draw(st.floats(0.05, 5.0)),
        relative_gain=draw(st.floats(0.1, 20.0)),
        absolute_weight=draw(
            st.one_of(st.just(0.7), st.just(1.0), st.floats(0.0, 1.0, exclude_min=True))
        ),
        baseline_s=draw(st.floats(0.01, 10.0)),
        baseline_down_half_life_s=down,
        baseline_up_half_life_s=draw(st.floats(down, 300.0)),
    )


STEPS = st.lists(st.floats(0.05, 3.0), min_size=1, max_size=8)


@PROPS
@given(
    cfg=relative_configs(),
    level=st.floats(0.0, 1.0),
    steps=STEPS,
    gated=st.lists(st.booleans(), min_size=1, max_size=10),
    seconds=st.floats(0.0, 120.0),
)
def test_an_expression_that_never_changes_never_opens_an_event_through_the_relative_part(
    cfg: DistressConfig, level: float, steps: list[float], gated: list[bool], seconds: float
) -> None:
    """Constant evidence (with gated frames and any timing): the relative evidence is 0 on
    every readable frame once there is a baseline, the baseline is the level itself, and
    the track scores exactly as it would without the relative part on its absolute
    evidence at `absolute_weight`."""
    frames = [
        (t, None if gated[k % len(gated)] else level)
        for k, t in enumerate(frames_at(0.0, seconds, steps))
    ]
    _, out = run_track(cfg, frames)
    weighted = [(t, None if e is None else cfg.absolute_weight * e) for t, e in frames]
    _, off = run_track(cfg.model_copy(update={"relative": False}), weighted)
    for (_, e, r), (*_, r_off) in zip(out, off, strict=True):
        assert r.relative in (None, 0.0)
        assert r.baseline in (None, level)
        if e is None:
            assert r.relative is None
        assert r.score == r_off.score and r.active == r_off.active
        assert (r.opened is None) == (r_off.opened is None)
        assert (r.closed is None) == (r_off.closed is None)
    if cfg.absolute_weight * level < cfg.enter_threshold:
        assert not any(r.opened for *_, r in out)


# -- absolute_weight ---------------------------------------------------------------------
@PROPS
@given(
    cfg=relative_configs(),
    share=st.one_of(st.just(1.0), st.floats(0.0, 1.0)),
    steps=STEPS,
    gated=st.lists(st.booleans(), min_size=1, max_size=10),
    seconds=st.floats(0.0, 120.0),
)
def test_a_steady_face_below_enter_over_absolute_weight_never_opens_an_event(
    cfg: DistressConfig, share: float, steps: list[float], gated: list[bool], seconds: float
) -> None:
    """Constant evidence e with absolute_weight * e < enter_threshold (up to e = 1 where the
    weight allows it; any timing, gated frames, any settings): the score is exactly
    absolute_weight * e on every readable frame, and no event ever opens."""
    level = min(1.0, share * cfg.enter_threshold / cfg.absolute_weight)
    while cfg.absolute_weight * level >= cfg.enter_threshold:  # rounding at share = 1
        level = float(np.nextafter(level, 0.0))
    frames = [
        (t, None if gated[k % len(gated)] else level)
        for k, t in enumerate(frames_at(0.0, seconds, steps))
    ]
    _, out = run_track(cfg, frames)
    for _, e, r in out:
        assert r.opened is None and not r.active
        assert r.score in (0.0, cfg.absolute_weight * level)
        if e is not None:
            assert r.score == cfg.absolute_weight * level


@PROPS
@given(
    cfg=relative_configs(),
    share=st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0)),
    steps=st.lists(st.floats(0.01, 0.99), min_size=1, max_size=8),
    extra=st.integers(0, 20),
)
def test_a_steady_face_at_or_above_enter_over_absolute_weight_opens_once_held_long_enough(
    cfg: DistressConfig, share: float, steps: list[float], extra: int
) -> None:
    """Constant evidence e with absolute_weight * e >= enter_threshold, read on frames less
    than max_gap_s apart: the event opens on the first frame at least min_duration_s after
    the first one (and with confirm_frames frames), on the absolute part alone (the
    relative evidence stays 0), and stays open."""
    floor = cfg.enter_threshold / cfg.absolute_weight
    assume(floor <= 1.0)
    level = min(1.0, floor + share * (1.0 - floor))
    while cfg.absolute_weight * level < cfg.enter_threshold:  # rounding at share = 0
        level = float(np.nextafter(level, 2.0))
    assume(level <= 1.0)
    times, k = [0.0], 0
    while times[-1] < cfg.min_duration_s or len(times) < cfg.confirm_frames:
        times.append(times[-1] + steps[k % len(steps)] * cfg.max_gap_s)
        k += 1
    should_open = len(times) - 1
    for _ in range(extra):
        times.append(times[-1] + steps[k % len(steps)] * cfg.max_gap_s)
        k += 1
    _, out = run_track(cfg, [(t, level) for t in times])
    opened = [i for i, (*_, r) in enumerate(out) if r.opened]
    assert opened == [should_open]
    assert all(r.active for *_, r in out[should_open:])
    assert all(r.relative in (None, 0.0) for *_, r in out)
    ev = out[should_open][2].opened
    assert ev is not None and ev.start_s == 0.0
    assert ev.peak_absolute == pytest.approx(level) and ev.peak_relative == 0.0


def test_with_the_defaults_a_face_first_seen_distressed_needs_evidence_0_79() -> None:
    """0.55 / 0.7 = 0.786: read at 0.78 from the first frame, never; at 0.79, after 1 s."""
    frames = frames_at(0.0, 30.0, [0.2])
    low = run_track(DistressConfig(), [(t, 0.78) for t in frames])[1]
    assert not any(r.opened for *_, r in low)
    high = run_track(DistressConfig(), [(t, 0.79) for t in frames])[1]
    assert [t for t, _, r in high if r.opened] == [pytest.approx(1.0)]
    # Without the relative part (and its weight) both open.
    off = DistressConfig(relative=False)
    assert any(r.opened for *_, r in run_track(off, [(t, 0.78) for t in frames])[1])


#: Irregular frame steps between 0.05 and 0.5 s (2 to 20 frames a second).
IRREGULAR = st.lists(st.floats(0.05, 0.5), min_size=1, max_size=12)


@PROPS
@given(
    calm=st.floats(0.0, 0.14),
    rise=st.floats(0.4, 0.5),
    calm_s=st.floats(2.5, 30.0),
    held_s=st.floats(5.0, 20.0),
    steps=IRREGULAR,
)
def test_a_sustained_shift_opens_an_event_inside_it(
    calm: float, rise: float, calm_s: float, held_s: float, steps: list[float]
) -> None:
    """Calm (0-0.14), then a rise of 0.4-0.5 (0.367 reaches the entry level), up to at most
    0.54, held 5-20 s (default settings): the absolute evidence alone, even in full, never
    opens an event; with the relative part, one opens while the rise lasts."""
    high = min(calm + rise, 0.54)  # still a rise of at least 0.4
    frames = [
        (t, high if calm_s <= t < calm_s + held_s else calm)
        for t in frames_at(0, calm_s + held_s + 10, steps)
    ]
    cfg = DistressConfig()
    _, out = run_track(cfg, frames)
    opened = [(t, r.opened) for t, _, r in out if r.opened]
    assert len(opened) == 1
    t_open, ev = opened[0]
    assert calm_s <= ev.start_s < t_open < calm_s + held_s
    assert ev.peak_relative is not None and ev.peak_relative >= cfg.enter_threshold
    _, off = run_track(cfg.model_copy(update={"relative": False}), frames)
    assert not any(r.opened for *_, r in off)


@PROPS
@given(
    calm=st.floats(0.0, 0.15),
    peak=st.floats(0.0, 1.0),
    calm_s=st.floats(2.5, 30.0),
    brief_s=st.floats(0.0, 0.5),
    steps=IRREGULAR,
)
def test_a_change_of_a_fraction_of_a_second_never_opens_an_event(
    calm: float, peak: float, calm_s: float, brief_s: float, steps: list[float]
) -> None:
    frames = [
        (t, peak if calm_s <= t < calm_s + brief_s else calm)
        for t in frames_at(0, calm_s + 10, steps)
    ]
    _, out = run_track(DistressConfig(), frames)
    assert not any(r.opened for *_, r in out)


@PROPS
@given(
    cfg=relative_configs(),
    frames=st.lists(
        st.tuples(st.floats(0.0, 2.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0)), max_size=80
    ),
)
def test_a_face_whose_quality_stays_below_the_entry_level_never_opens_an_event(
    cfg: DistressConfig, frames: list[tuple[float, float, float]]
) -> None:
    """Both parts are weighted by quality, so a poor face cannot alert through either."""
    state, t = TrackState(1, cfg), 0.0
    for dt, reading, share in frames:
        t += dt
        quality = max(share * cfg.enter_threshold, 1e-6) * (1 - 1e-9)
        r = state.step(t, reading * quality, quality=quality)
        assert r.opened is None and r.score < cfg.enter_threshold
        assert r.relative is None or r.relative <= quality


def test_quality_outside_zero_to_one_is_refused_for_a_readable_face() -> None:
    state = TrackState(1, DistressConfig())
    for bad in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(ValueError, match="quality"):
            state.step(1.0, 0.2, quality=bad)
    assert state.step(1.0, None, quality=0.0).relative is None  # gated: no reading at all


# -- through the scorer with real arrays, and into the JSON ------------------------------
def test_the_scorer_reports_the_parts_per_face_and_per_event() -> None:
    cfg = DistressConfig(weights=FEAR_ONLY)
    scorer = DistressScorer(cfg, source_id="cam-3")
    faces, sharp = one_face(), np.array([500.0], np.float32)
    calm, afraid = fear_row(0.05), fear_row(0.45)
    opened, last = [], None
    for t in frames_at(0.0, 10.0, [0.2]):
        row = afraid if t >= 3.0 else calm
        samples, op, _ = scorer.update(t, np.array([1], np.int64), row[None, :], FER7, faces, sharp)
        opened += op
        last = FrameAnalysis(
            t=t,
            index=int(t * 5),
            source_id="cam-3",
            faces=(FaceResult(1, (10.0, 10.0, 110.0, 110.0), 0.95, {}, samples[0]),),
        )
        if t < 2.0:
            assert samples[0].relative is None and samples[0].baseline is None
        else:
            assert samples[0].baseline == pytest.approx(0.05, abs=0.002)
            want = min(1.0, cfg.relative_gain * (float(row[FER7.index("fear")]) - 0.05))
            assert samples[0].relative == pytest.approx(want, abs=0.005)
    assert len(opened) == 1 and opened[0].source_id == "cam-3"
    doc = json.loads(json.dumps(event_to_json(opened[0])))
    assert doc["peak_absolute"] < cfg.enter_threshold <= doc["peak_relative"]
    assert doc["baseline_at_peak"] == pytest.approx(0.05, abs=0.002)
    assert last is not None
    face = last.to_json()["faces"][0]
    assert face["distress_evidence"] == pytest.approx(0.45, abs=1e-4)
    assert face["distress_relative"] == pytest.approx(0.6, abs=0.01)
    assert face["distress_baseline"] == pytest.approx(0.05, abs=0.002)
    assert face["in_event"] is True
    # Untracked faces get no baseline.
    samples, _, _ = scorer.update(
        10.0, np.array([-1], np.int64), afraid[None, :], FER7, faces, sharp
    )
    assert samples[0].relative is None and samples[0].baseline is None


def test_a_resting_sad_face_walking_towards_the_camera_does_not_alert() -> None:
    """Its face grows from 26 to 60 px: quality, and with it the evidence, rises from
    near 0 to the full 0.45 although the expression never changes. The baseline learns the
    reading before quality, so the relative part sees no change."""
    cfg = DistressConfig(weights=FEAR_ONLY)
    scorer = DistressScorer(cfg)
    sad, sharp = fear_row(0.45), np.array([500.0], np.float32)
    evidence, relative, baselines = [], [], []
    for t in frames_at(0.0, 30.0, [0.2]):
        size = min(60.0, 26.0 + 34.0 * t / 10.0)
        samples, opened, _ = scorer.update(
            t, np.array([1], np.int64), sad[None, :], FER7, one_face(size), sharp
        )
        assert opened == []
        evidence.append(samples[0].evidence or 0.0)
        relative.append(samples[0].relative)
        baselines.append(samples[0].baseline)
    assert evidence[0] < 0.1 and evidence[-1] == pytest.approx(0.45, abs=1e-6)
    assert all(r is None or r < 1e-4 for r in relative)
    assert baselines[-1] == pytest.approx(0.45, abs=1e-6)
