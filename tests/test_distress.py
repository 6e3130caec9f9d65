"""The temporal distress scorer: evidence, face quality, the per-track state machine."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from raksha.distress import (
    DistressConfig,
    DistressScorer,
    StepResult,
    TrackState,
    distress_evidence,
    ema_alpha,
    face_quality,
    face_sharpness,
)
from raksha.domain import DistressEvent, FaceDetections

#: FER2013 models' classes, mapped to canonical names (no contempt).
FER7 = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
PROPS = settings(deadline=None, max_examples=150)


# -- helpers ---------------------------------------------------------------------------
def probs_row(**p: float) -> np.ndarray:
    """A FER7 probability row; whatever is not given goes to neutral."""
    row = np.zeros(len(FER7), np.float32)
    for name, v in p.items():
        row[FER7.index(name)] = v
    row[FER7.index("neutral")] += 1.0 - row.sum()
    return row


NEUTRAL = probs_row()
FEAR = probs_row(fear=0.85, sadness=0.05)
HAPPY = probs_row(happiness=0.9)


def faces_of(n: int, size: float = 100.0, score: float = 0.95) -> FaceDetections:
    boxes = np.array([[10 + 150 * i, 10, 10 + 150 * i + size, 10 + size] for i in range(n)])
    return FaceDetections(
        boxes=boxes.astype(np.float32),
        scores=np.full(n, score, np.float32),
        landmarks=np.zeros((n, 5, 2), np.float32),
    )


def run_one_face(
    scorer: DistressScorer,
    segments: list[tuple[float, np.ndarray]],
    fps: float = 5.0,
    size: float = 100.0,
    sharpness: float = 500.0,
    t0: float = 0.0,
) -> tuple[list[tuple[float, DistressEvent]], list[tuple[float, DistressEvent]], list[float]]:
    """Feed track 1 through segments of (seconds, probs row); returns opened, closed, scores."""
    opened: list[tuple[float, DistressEvent]] = []
    closed: list[tuple[float, DistressEvent]] = []
    scores: list[float] = []
    t = t0
    faces = faces_of(1, size)
    for seconds, row in segments:
        for _ in range(round(seconds * fps)):
            samples, op, cl = scorer.update(
                t,
                np.array([1], np.int64),
                row[None, :],
                FER7,
                faces,
                np.array([sharpness], np.float32),
            )
            scores.append(samples[0].score)
            opened += [(t, e) for e in op]
            closed += [(t, e) for e in cl]
            t = round(t + 1.0 / fps, 9)
    return opened, closed, scores


# -- evidence --------------------------------------------------------------------------
def test_evidence_is_the_weighted_sum_by_class_name() -> None:
    labels = ("neutral", "fear", "sadness", "anger")
    probs = np.array([[0.2, 0.5, 0.25, 0.05], [1.0, 0.0, 0.0, 0.0]], np.float32)
    w = {"fear": 1.0, "sadness": 0.6, "anger": 0.2, "contempt": 0.9}
    got = distress_evidence(probs, labels, w)
    # 0.5*1.0 + 0.25*0.6 + 0.05*0.2 = 0.66; contempt is not an output, so it adds nothing.
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [0.66, 0.0], atol=1e-6)


def test_evidence_is_clipped_to_one_and_column_order_does_not_matter() -> None:
    w = {"fear": 1.0, "sadness": 1.0}
    a = distress_evidence(np.array([[0.7, 0.3, 0.0]], np.float32), ("fear", "sadness", "x"), w)
    b = distress_evidence(np.array([[0.0, 0.3, 0.7]], np.float32), ("x", "sadness", "fear"), w)
    assert a[0] == pytest.approx(1.0) and b[0] == pytest.approx(1.0)
    big = distress_evidence(np.array([[1.0, 1.0]], np.float32), ("fear", "sadness"), w)
    assert big[0] == 1.0


def test_evidence_rejects_a_shape_that_does_not_match_the_labels() -> None:
    with pytest.raises(ValueError, match="probs must be"):
        distress_evidence(np.zeros((2, 3), np.float32), FER7, {"fear": 1.0})


# -- quality ---------------------------------------------------------------------------
def test_face_quality_hand_computed() -> None:
    cfg = DistressConfig(
        min_face_px=24, full_face_px=48, min_sharpness=15, full_sharpness=60, min_detector_score=0.6
    )
    size = np.array([36, 48, 100, 20, 100, 100, 100, 24], np.float32)
    det = np.array([0.9, 0.9, 0.9, 0.9, 0.5, 0.9, 0.9, 0.9], np.float32)
    sharp = np.array([60, 37.5, 1000, 500, 500, 10, np.nan, 500], np.float32)
    q = face_quality(size, det, sharp, cfg)
    # 36 px: (36-24)/(48-24) = 0.5; sharpness 37.5: (37.5-15)/(60-15) = 0.5; the smaller wins.
    np.testing.assert_allclose(q, [0.5, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0], atol=1e-6)
    assert q.dtype == np.float32


def test_face_quality_with_equal_floor_and_full_is_a_step() -> None:
    cfg = DistressConfig(min_face_px=30, full_face_px=30, min_sharpness=0, full_sharpness=0)
    q = face_quality(
        np.array([29.9, 30.0, 31.0], np.float32),
        np.ones(3, np.float32),
        np.zeros(3, np.float32),
        cfg,
    )
    np.testing.assert_array_equal(q, [0.0, 1.0, 1.0])


ASTRONAUT_BOX = np.array([[178, 62, 178 + 90, 62 + 113]], np.float32)


def test_face_sharpness_is_higher_on_the_real_face_than_on_its_blurred_copy(
    faces_dir: Path,
) -> None:
    img = cv2.imread(str(faces_dir / "astronaut.jpg"))
    assert img is not None
    sharp = face_sharpness(img, ASTRONAUT_BOX)
    blurred = face_sharpness(cv2.GaussianBlur(img, (0, 0), 3), ASTRONAUT_BOX)
    assert sharp.shape == (1,) and sharp.dtype == np.float32
    assert sharp[0] > 4 * blurred[0] > 0
    cfg = DistressConfig()
    # The defaults treat the sharp photo as fully usable and the blurred one as degraded.
    assert sharp[0] >= cfg.full_sharpness
    assert blurred[0] < cfg.full_sharpness


def test_face_sharpness_looks_only_inside_the_box(faces_dir: Path) -> None:
    img = cv2.imread(str(faces_dir / "astronaut.jpg"))
    assert img is not None
    noisy = img.copy()
    x1, y1, x2, y2 = ASTRONAUT_BOX[0].astype(int)
    mask = np.ones(img.shape[:2], bool)
    mask[y1:y2, x1:x2] = False
    noisy[mask] = np.random.default_rng(0).integers(0, 256, (int(mask.sum()), 3), np.uint8)
    assert face_sharpness(noisy, ASTRONAUT_BOX)[0] == face_sharpness(img, ASTRONAUT_BOX)[0]
    # Boxes outside the image, or too thin to measure, score 0 instead of failing.
    out = face_sharpness(img, np.array([[-50, -50, -10, -10], [10, 10, 11, 60]], np.float32))
    np.testing.assert_array_equal(out, [0.0, 0.0])
    assert face_sharpness(img, np.zeros((0, 4), np.float32)).shape == (0,)


# -- smoothing -------------------------------------------------------------------------
def test_smoothing_gives_the_same_score_at_any_analysis_rate() -> None:
    # The smoothing of the absolute evidence alone (no baseline, no absolute weight).
    cfg = DistressConfig(half_life_s=0.7, relative=False)
    finals = []
    for fps in (2.0, 5.0, 25.0):
        state = TrackState(1, cfg)
        state.step(0.0, 0.0)
        r = StepResult(0.0, False)
        for k in range(1, round(2.0 * fps) + 1):
            r = state.step(k / fps, 0.9)
        finals.append(r.score)
    expected = 0.9 * (1.0 - 0.5 ** (2.0 / 0.7))
    np.testing.assert_allclose(finals, expected, rtol=1e-9)
    assert ema_alpha(0.0, 1.0) == 0.0
    assert ema_alpha(1.0, 1.0) == pytest.approx(0.5)


# -- property tests over random configurations and frame timings ----------------------
#: The default (0.7), 1.0 (the absolute evidence in full) and anything in (0, 1].
ABSOLUTE_WEIGHT = st.one_of(st.just(0.7), st.just(1.0), st.floats(0.0, 1.0, exclude_min=True))


@st.composite
def configs(draw: st.DrawFn) -> DistressConfig:
    enter = draw(st.floats(0.05, 1.0))
    exit_ = draw(st.floats(0.0, enter, exclude_max=True))
    down = draw(st.floats(0.05, 20.0))
    return DistressConfig(
        enter_threshold=enter,
        exit_threshold=exit_,
        half_life_s=draw(st.floats(0.02, 5.0)),
        min_duration_s=draw(st.sampled_from([0.0, draw(st.floats(0.0, 5.0))])),
        exit_hold_s=draw(st.sampled_from([0.0, draw(st.floats(0.0, 5.0))])),
        cooldown_s=draw(st.sampled_from([0.0, draw(st.floats(0.0, 20.0))])),
        max_gap_s=draw(st.floats(0.05, 5.0)),
        confirm_frames=draw(st.integers(2, 4)),
        relative=draw(st.booleans()),
        relative_gain=draw(st.floats(0.5, 5.0)),
        absolute_weight=draw(ABSOLUTE_WEIGHT),
        baseline_s=draw(st.floats(0.05, 5.0)),
        baseline_down_half_life_s=down,
        baseline_up_half_life_s=draw(st.floats(down, 120.0)),
    )


DT = st.one_of(st.just(0.0), st.floats(0.0, 0.5), st.floats(0.0, 6.0))
LEVEL = st.one_of(st.none(), st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))


@st.composite
def timelines(draw: st.DrawFn) -> list[tuple[float, float | None]]:
    """Blocks of frames, each block at one evidence level (with jitter) and one frame step."""
    frames: list[tuple[float, float | None]] = []
    t = draw(st.floats(0.0, 100.0))
    for _ in range(draw(st.integers(1, 8))):
        level = draw(LEVEL)
        dt = draw(DT)
        jitter = draw(st.floats(0.0, 0.3))
        for _ in range(draw(st.integers(1, 25))):
            t += dt if draw(st.booleans()) else draw(DT)
            e = level
            if e is not None and jitter and draw(st.booleans()):
                e = min(1.0, max(0.0, e + draw(st.floats(-jitter, jitter))))
            if draw(st.integers(0, 9)) == 0:
                e = None  # a gated frame now and then
            frames.append((t, e))
    return frames


def check_run(cfg: DistressConfig, frames: list[tuple[float, float | None]]) -> list[StepResult]:
    """Run one track through `frames` and assert properties (b)-(e) and the smoothing rule.

    The state machine runs on each frame's combined evidence: with the relative part off,
    the evidence itself; on, the larger of absolute_weight * evidence (from the first frame)
    and the frame's relative evidence (0 until the track has a baseline)."""
    state = TrackState(7, cfg)
    results = [state.step(t, e, probs_row(fear=0.5), FER7) for t, e in frames]
    ev_idx = [i for i, (_, e) in enumerate(frames) if e is not None]
    combined = [
        None
        if e is None
        else max(cfg.absolute_weight * e, r.relative or 0.0)
        if cfg.relative
        else e
        for (_, e), r in zip(frames, results, strict=True)
    ]
    for (_, e), r in zip(frames, results, strict=True):
        assert cfg.relative or r.relative is None
        if r.relative is not None:
            assert e is not None and r.baseline is not None
            want_rel = min(1.0, max(0.0, cfg.relative_gain * (e - r.baseline)))
            assert r.relative == pytest.approx(want_rel, abs=1e-12)

    # (e) scores stay in [0,1]; and the score follows the time-based average exactly.
    prev: int | None = None
    for i in ev_idx:
        t = frames[i][0]
        e = combined[i]
        assert e is not None
        s = results[i].score
        assert 0.0 <= s <= 1.0
        if prev is None or t - frames[prev][0] > cfg.max_gap_s:
            assert s == pytest.approx(e, abs=1e-12)  # (re)seeded by the first reading
        else:
            sp = results[prev].score
            want = sp + ema_alpha(t - frames[prev][0], cfg.half_life_s) * (e - sp)
            assert s == pytest.approx(want, abs=1e-9)
        prev = i
    assert all(0.0 <= r.score <= 1.0 for r in results)

    active = False
    calm_since: float | None = None
    last_ev_t: float | None = None
    last_close_t = -math.inf
    for i, ((t, e), r) in enumerate(zip(frames, results, strict=True)):
        stale = last_ev_t is not None and t - last_ev_t > cfg.max_gap_s
        if r.opened is not None:
            ev = r.opened
            assert not active and ev.end_s is None
            # (d) never during cooldown
            assert t >= last_close_t + cfg.cooldown_s
            # (b) the run started at an evidence frame at least min_duration_s earlier, and the
            # score stayed >= enter on every evidence frame since, with enough high frames.
            assert t - ev.start_s >= cfg.min_duration_s
            run = [j for j in ev_idx if j <= i and frames[j][0] >= ev.start_s]
            assert run and frames[run[0]][0] == ev.start_s
            assert all(results[j].score >= cfg.enter_threshold for j in run)
            streak = best = 0
            for j in run:
                high = (combined[j] or 0.0) >= cfg.enter_threshold
                streak = streak + 1 if high else 0
                best = max(best, streak)
            assert best >= cfg.confirm_frames
            assert ev.peak_distress >= cfg.enter_threshold
            assert ev.start_s <= ev.peak_t <= t
            active, calm_since = True, None
        elif active:
            # (c) an open event closes exactly when the exit condition has held exit_hold_s
            # (or when the face has been unreadable for longer than max_gap_s).
            expect_close = stale
            end_s = last_ev_t
            if not stale and e is not None:
                if r.score < cfg.exit_threshold:
                    calm_since = t if calm_since is None else calm_since
                    if t - calm_since >= cfg.exit_hold_s:
                        expect_close, end_s = True, calm_since
                else:
                    calm_since = None
            if expect_close:
                assert r.closed is not None, f"frame {i} should have closed the event"
                assert r.closed.end_s == end_s
                assert r.closed.start_s <= r.closed.peak_t <= r.closed.end_s
                active, last_close_t = False, t
            else:
                assert r.closed is None, f"frame {i} closed the event too early"
        else:
            assert r.closed is None
        assert r.active == active
        if stale:
            last_ev_t = None
        if e is not None:
            last_ev_t = t
    return results


@PROPS
@given(cfg=configs(), frames=timelines())
def test_state_machine_properties_hold_for_any_config_and_timing(
    cfg: DistressConfig, frames: list[tuple[float, float | None]]
) -> None:
    check_run(cfg, frames)


@PROPS
@given(cfg=configs(), frames=timelines())
def test_absolute_weight_one_reproduces_the_earlier_scoring(
    cfg: DistressConfig, frames: list[tuple[float, float | None]]
) -> None:
    """With absolute_weight 1.0 the score is, as before the weight existed, the smoothed
    value of the evidence until the track has a baseline and of max(evidence, relative)
    after; and every state machine property still holds."""
    cfg = cfg.model_copy(update={"relative": True, "absolute_weight": 1.0})
    results = check_run(cfg, frames)
    prev: tuple[float, float] | None = None  # (time, score) of the last readable frame
    for (t, e), r in zip(frames, results, strict=True):
        if e is None:
            continue
        x = e if r.relative is None else max(e, r.relative)  # the earlier formula
        if prev is None or t - prev[0] > cfg.max_gap_s:
            want = x
        else:
            want = prev[1] + ema_alpha(t - prev[0], cfg.half_life_s) * (x - prev[1])
        assert r.score == pytest.approx(want, abs=1e-9)
        prev = (t, r.score)


@PROPS
@given(
    cfg=configs(),
    before=st.lists(st.tuples(DT, st.sampled_from([0.0, None])), max_size=30),
    spike=st.tuples(DT, st.one_of(st.just(1.0), st.floats(0.0, 1.0))),
    after=st.lists(
        st.tuples(st.one_of(st.just(0.0), st.floats(0.0, 0.05), DT), st.sampled_from([0.0, None])),
        max_size=60,
    ),
)
def test_a_single_frame_spike_never_opens_an_event(
    cfg: DistressConfig,
    before: list[tuple[float, float | None]],
    spike: tuple[float, float],
    after: list[tuple[float, float | None]],
) -> None:
    frames: list[tuple[float, float | None]] = []
    t = 0.0
    for dt, e in [*before, spike, *after]:
        t += dt
        frames.append((t, e))
    results = check_run(cfg, frames)
    assert not any(r.opened for r in results)


@PROPS
@given(cfg=configs(), frames=timelines())
def test_the_scorer_keeps_the_same_properties_for_a_tracked_face(
    cfg: DistressConfig, frames: list[tuple[float, float | None]]
) -> None:
    """Through DistressScorer (quality 1), a track behaves like its TrackState alone."""
    scorer = DistressScorer(cfg.model_copy(update={"weights": {"fear": 1.0}}))
    reference = TrackState(1, scorer.cfg)
    faces = faces_of(1)
    for t, e in frames:
        gated = e is None
        row = probs_row(fear=0.0 if gated else e)
        samples, opened, closed = scorer.update(
            t,
            np.array([1], np.int64),
            row[None, :],
            FER7,
            faces_of(1, size=5.0) if gated else faces,
            np.array([500.0], np.float32),
        )
        if reference.last_seen is not None and t - reference.last_seen > cfg.max_gap_s:
            ended = reference.close(reference.last_seen)
            assert closed[:1] == ([ended] if ended else [])
            closed = closed[1:]
            reference = TrackState(1, scorer.cfg)
        want = reference.step(t, None if gated else float(row[FER7.index("fear")]), row, FER7)
        assert samples[0].score == pytest.approx(want.score, abs=1e-6)
        assert samples[0].active == want.active
        assert len(opened) == (want.opened is not None)
        assert len(closed) == (want.closed is not None)
        assert (samples[0].evidence is None) == gated


# -- example scenarios -----------------------------------------------------------------
def test_sustained_fear_opens_exactly_one_event_inside_the_fear_and_it_closes_after() -> None:
    cfg = DistressConfig()
    scorer = DistressScorer(cfg, source_id="cam-7")
    opened, closed, _ = run_one_face(scorer, [(2.0, NEUTRAL), (3.0, FEAR), (6.0, NEUTRAL)])
    assert len(opened) == 1 and len(closed) == 1
    t_open, ev = opened[0]
    fear_start, fear_end = 2.0, 5.0
    assert fear_start + cfg.min_duration_s <= t_open < fear_end
    assert fear_start <= ev.start_s < t_open and ev.end_s is None
    assert ev.source_id == "cam-7" and ev.track_id == 1
    t_close, done = closed[0]
    assert fear_end < t_close <= fear_end + 3.0
    assert done.start_s == ev.start_s and done.end_s is not None
    assert fear_end <= done.end_s <= t_close
    assert fear_start <= done.peak_t <= fear_end
    assert done.peak_distress >= cfg.enter_threshold
    assert done.top_expression_at_peak == "fear"
    assert set(done.expression_at_peak) == set(FER7)
    assert scorer.open_events() == [] and scorer.finish(t_close + 10) == []


def test_sustained_happiness_opens_nothing() -> None:
    scorer = DistressScorer(DistressConfig())
    opened, closed, scores = run_one_face(scorer, [(2.0, NEUTRAL), (10.0, HAPPY), (2.0, NEUTRAL)])
    assert opened == [] and closed == []
    assert max(scores) < 0.05


def test_weak_model_noise_on_a_neutral_face_opens_nothing() -> None:
    """The FER2013 models often read a calm face as a little fearful or sad, frame to frame."""
    cfg = DistressConfig()
    scorer = DistressScorer(cfg)
    rng = np.random.default_rng(1)
    a, b = probs_row(fear=0.3, sadness=0.2), probs_row(sadness=0.3, fear=0.2, anger=0.1)
    segments = []
    for k in range(300):  # 60 s at 5 fps
        row = (a if k % 2 else b) + rng.uniform(0, 0.05, len(FER7)).astype(np.float32)
        segments.append((0.2, row / row.sum()))
    opened, _, scores = run_one_face(scorer, segments)
    assert opened == []
    assert max(scores) < cfg.enter_threshold


@pytest.mark.parametrize(
    ("size", "sharpness", "score"),
    [(16.0, 500.0, 0.95), (100.0, 5.0, 0.95), (100.0, 500.0, 0.3), (30.0, 500.0, 0.95)],
    ids=["tiny", "blurry", "doubtful-detection", "small"],
)
def test_poor_faces_never_open_an_event(size: float, sharpness: float, score: float) -> None:
    cfg = DistressConfig()
    scorer = DistressScorer(cfg)
    faces = faces_of(1, size, score)
    terror = probs_row(fear=1.0)
    for k in range(100):
        samples, opened, _ = scorer.update(
            k * 0.2, np.array([1]), terror[None, :], FER7, faces, np.array([sharpness])
        )
        assert opened == []
        if size < cfg.min_face_px or sharpness < cfg.min_sharpness or score < 0.6:
            assert samples[0].evidence is None and samples[0].quality == 0.0
        else:
            # a 30 px face is readable but only a quarter trusted: full fear counts 0.25
            assert samples[0].evidence == pytest.approx(0.25)
    # The same face, big and sharp, does open one.
    op, _, _ = run_one_face(scorer, [(3.0, terror)], t0=100.0)
    assert len(op) == 1


def test_a_track_gap_longer_than_max_gap_resets_the_run() -> None:
    cfg = DistressConfig()
    scorer = DistressScorer(cfg)
    # 0.8 s of fear is not enough; after a gap of 3 s the run starts again from scratch.
    op1, _, _ = run_one_face(scorer, [(0.8, FEAR)])
    assert op1 == [] and scorer.track_count == 1
    op2, _, _ = run_one_face(scorer, [(3.0, FEAR)], t0=4.0)
    assert len(op2) == 1
    t_open, ev = op2[0]
    assert ev.start_s >= 4.0 and t_open - ev.start_s >= cfg.min_duration_s


def test_a_lost_track_closes_its_event_at_the_last_sighting_and_comes_back_fresh() -> None:
    cfg = DistressConfig()
    scorer = DistressScorer(cfg)
    opened, _, _ = run_one_face(scorer, [(3.0, FEAR)])
    assert len(opened) == 1
    last_seen = 2.8
    assert [e.track_id for e in scorer.open_events()] == [1]
    # Another face is seen; track 1 is not, for longer than max_gap_s.
    empty = np.zeros((1, len(FER7)), np.float32)
    _, _, closed = scorer.update(4.0, np.array([2]), empty, FER7, faces_of(1), np.array([500.0]))
    assert closed == []  # 1.2 s is within max_gap_s
    t = last_seen + cfg.max_gap_s + 0.1
    _, _, closed = scorer.update(t, np.array([2]), empty, FER7, faces_of(1), np.array([500.0]))
    assert len(closed) == 1 and closed[0].end_s == pytest.approx(last_seen)
    assert scorer.open_events() == [] and scorer.track_count == 1
    # Track 1 returns: a new state, so no cooldown applies, and it can open again.
    again, _, _ = run_one_face(scorer, [(3.0, FEAR)], t0=10.0)
    assert len(again) == 1


def test_unreadable_face_for_longer_than_max_gap_closes_the_event() -> None:
    cfg = DistressConfig()
    scorer = DistressScorer(cfg)
    opened, _, _ = run_one_face(scorer, [(3.0, FEAR)])
    assert len(opened) == 1
    # Still tracked, but too blurry to read: the score holds, then the event closes.
    _, closed, _ = run_one_face(scorer, [(1.0, FEAR)], sharpness=1.0, t0=3.0)
    assert closed == [] and len(scorer.open_events()) == 1
    _, closed, _ = run_one_face(scorer, [(2.0, FEAR)], sharpness=1.0, t0=4.0)
    assert len(closed) == 1 and closed[0][1].end_s == pytest.approx(2.8)


def test_cooldown_blocks_a_second_event_from_the_same_track() -> None:
    cfg = DistressConfig(cooldown_s=10.0)
    scorer = DistressScorer(cfg)
    opened, closed, _ = run_one_face(
        scorer, [(3.0, FEAR), (3.0, NEUTRAL), (3.0, FEAR), (3.0, NEUTRAL), (6.0, FEAR)]
    )
    assert len(closed) == 1
    assert len(opened) == 2
    assert opened[1][0] >= closed[0][0] + cfg.cooldown_s


def test_untracked_rows_get_a_sample_but_no_state_and_finish_closes_events() -> None:
    scorer = DistressScorer(DistressConfig())
    rows = np.stack([FEAR, FEAR])
    faces = faces_of(2)
    for k in range(15):
        samples, _, _ = scorer.update(
            k * 0.2, np.array([-1, 3]), rows, FER7, faces, np.array([500.0, 500.0])
        )
        assert samples[0].score == 0.0 and not samples[0].active
        assert samples[0].evidence == pytest.approx(0.88)
    assert scorer.track_count == 1
    assert [e.track_id for e in scorer.open_events()] == [3]
    closed = scorer.finish(3.5)
    assert len(closed) == 1 and closed[0].end_s == pytest.approx(2.8)
    assert scorer.open_events() == [] and scorer.track_count == 0


def test_update_rejects_inconsistent_input() -> None:
    scorer = DistressScorer(DistressConfig())
    one, two = np.array([500.0], np.float32), np.array([500.0, 500.0], np.float32)
    scorer.update(1.0, np.array([1]), FEAR[None, :], FER7, faces_of(1), one)
    with pytest.raises(ValueError, match="backwards"):
        scorer.update(0.5, np.array([1]), FEAR[None, :], FER7, faces_of(1), one)
    with pytest.raises(ValueError, match="duplicate track ids"):
        scorer.update(2.0, np.array([1, 1]), np.stack([FEAR, FEAR]), FER7, faces_of(2), two)
    with pytest.raises(ValueError, match="one row per face"):
        scorer.update(2.0, np.array([1]), FEAR[None, :], FER7, faces_of(2), one)


# -- configuration ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"enter_threshold": 0.4, "exit_threshold": 0.4}, "hysteresis"),
        ({"weights": {"terror": 1.0}}, "unknown expression class"),
        ({"weights": {"fear": 0.0}}, "above 0"),
        ({"weights": {"fear": -1.0}}, ">= 0"),
        ({"full_face_px": 10.0}, "full_face_px"),
        ({"confirm_frames": 1}, "confirm_frames"),
        ({"half_life_s": float("nan")}, "half_life_s"),
        ({"baseline_up_half_life_s": 1.0}, "rises slowly"),
        ({"relative_gain": 0.0}, "relative_gain"),
        ({"baseline_s": 0.0}, "baseline_s"),
        ({"relative_weight": 1.0}, "relative_weight"),
    ],
)
def test_config_rejects_bad_settings(settings_: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DistressConfig.model_validate(settings_)
