"""The event-level benchmark: the product's own analysis over labelled clips (and unlabelled
calm footage), alerts matched to distress segments, and an operating curve over the entry
threshold.

Each video is analysed once, by `raksha.pipeline.video.analyze_video` (what `raksha analyze`
runs) with the expression classifier wrapped so that the distress scorer's inputs are
recorded (`raksha.ml.evaluation.replay`). The figures at the configured settings come from the
live pass; every other point of the curve replays the recorded inputs through a fresh
`DistressScorer`, which is checked to reproduce the live pass exactly at the configured
settings. Definitions: `raksha.ml.evaluation.event_metrics` and docs/events.md.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raksha.config import AnalysisConfig
from raksha.distress.config import DistressConfig
from raksha.errors import RakshaError
from raksha.ml.evaluation.clip_labels import ClipLabels, read_sidecar
from raksha.ml.evaluation.event_metrics import (
    AlertAt,
    ClipMatch,
    EventMetrics,
    Window,
    match_clip,
    summarize,
)
from raksha.ml.evaluation.replay import (
    Alert,
    Recorder,
    Recording,
    RecordingClassifier,
    replay,
    same_as_live,
    with_enter_threshold,
)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm")
#: Entry thresholds of the operating curve (besides the configured one).
DEFAULT_THRESHOLDS = tuple(round(0.30 + 0.05 * i, 2) for i in range(13))
#: Face-size bins (short side of the face, px) that recall is broken down by.
FACE_BINS = ((0, 36), (36, 48), (48, 96), (96, 10_000))


class ReplayMismatch(RakshaError):
    """Replaying the recorded scorer inputs did not give the live pass's results."""


@dataclass(frozen=True, slots=True)
class ClipInput:
    """A video to analyse and its labels (None: calm footage, no distress anywhere)."""

    video: Path
    labels: ClipLabels | None


def _videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)


def _need_folder(folder: Path, option: str) -> None:
    if not folder.exists():
        raise RakshaError(f"{option} {folder}: no such folder")
    if not folder.is_dir():
        raise RakshaError(f"{option} {folder} is a file; give a folder")


def find_clips(clips: Path, calm: Path | None = None) -> tuple[list[ClipInput], list[Path]]:
    """The labelled clips of ``clips`` (every ``*.json`` sidecar and the clip it names) and
    every video of ``calm``; also the videos of ``clips`` left out for want of a sidecar."""
    _need_folder(clips, "--clips")
    inputs: list[ClipInput] = []
    labelled: set[Path] = set()
    for sidecar in sorted(clips.glob("*.json")):
        labels = read_sidecar(sidecar)
        video = clips / labels.clip
        if not video.is_file():
            raise RakshaError(
                f"sidecar {sidecar} names clip {labels.clip}, which is not in {clips}"
            )
        inputs.append(ClipInput(video, labels))
        labelled.add(video.resolve())
    skipped = [v for v in _videos(clips) if v.resolve() not in labelled]
    if calm is not None:
        _need_folder(calm, "--calm")
        calm_videos = _videos(calm)
        if not calm_videos:
            raise RakshaError(f"--calm {calm}: no video files ({', '.join(VIDEO_SUFFIXES)})")
        inputs.extend(ClipInput(v, None) for v in calm_videos)
    if not inputs:
        raise RakshaError(f"--clips {clips}: no clips with a sidecar (.json) in it")
    return inputs, skipped


@dataclass
class ClipRun:
    """One analysed video: its recorded scorer inputs and the live pass's alerts."""

    input: ClipInput
    duration_s: float
    fps_analysed: float
    recording: Recording
    wall_s: float

    @property
    def name(self) -> str:
        return self.input.video.name


def analyse_clips(
    inputs: Sequence[ClipInput],
    cfg: AnalysisConfig,
    models_dir: Path | None = None,
    on_clip: Callable[[int, ClipRun], None] | None = None,
) -> list[ClipRun]:
    """Analyse every video once, as `raksha analyze` does, recording the scorer's inputs."""
    from raksha.pipeline.analyzer import Models
    from raksha.pipeline.video import analyze_video

    models = Models.load(cfg, models_dir)
    reader = RecordingClassifier(models.classifier)
    recording_models = dataclasses.replace(models, classifier=reader)
    runs: list[ClipRun] = []
    for i, item in enumerate(inputs):
        recorder = Recorder(reader)
        result = analyze_video(
            str(item.video), cfg, models=recording_models, on_frame=recorder.on_frame
        )
        if len(recorder.recording.live_alerts) != len(result.events):
            raise ReplayMismatch(f"{item.video}: events opened and events reported differ")
        info = result.info
        if info.frame_count and info.native_fps:
            duration = info.frame_count / info.native_fps
        else:
            last = result.frames[-1].t if result.frames else 0.0
            duration = last + 1.0 / result.fps_analysed
        if item.labels is not None:
            frame = 1.0 / item.labels.fps
            if info.frame_count and abs(duration - item.labels.duration_s) > 1.5 * frame:
                raise RakshaError(
                    f"clip {item.video} lasts {duration:.2f} s but its sidecar says "
                    f"{item.labels.duration_s:.2f} s"
                )
            duration = item.labels.duration_s
        run = ClipRun(item, duration, result.fps_analysed, recorder.recording, result.wall_s)
        runs.append(run)
        if on_clip is not None:
            on_clip(i, run)
    return runs


def _on_subject(labels: ClipLabels | None, alert: Alert) -> bool:
    """Whether the alert's face is the clip's subject: its centre inside the face square."""
    if labels is None:
        return True
    square = labels.box_at(alert.t)
    if square is None:
        return True
    x1, y1, x2, y2 = alert.box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return square[0] <= cx <= square[2] and square[1] <= cy <= square[3]


def _windows(labels: ClipLabels | None) -> list[Window]:
    return [] if labels is None else [Window(s.start_s, s.end_s) for s in labels.distress()]


@dataclass(frozen=True, slots=True)
class Scored:
    """All clips scored with one distress configuration."""

    cfg: DistressConfig
    alerts: list[list[Alert]]
    matches: list[ClipMatch]
    metrics: EventMetrics


def score(
    runs: Sequence[ClipRun], cfg: DistressConfig, alerts: list[list[Alert]], late_s: float
) -> Scored:
    """Match each run's ``alerts`` to its distress segments."""
    matches = []
    for run, found in zip(runs, alerts, strict=True):
        labels = run.input.labels
        at = [AlertAt(a.t, _on_subject(labels, a)) for a in found]
        matches.append(match_clip(_windows(labels), at, run.duration_s, late_s))
    return Scored(cfg, alerts, matches, summarize(matches))


def score_replayed(runs: Sequence[ClipRun], cfg: DistressConfig, late_s: float) -> Scored:
    """The runs replayed through a scorer with ``cfg``, then scored."""
    return score(runs, cfg, [replay(r.recording, cfg).alerts for r in runs], late_s)


def check_replay(runs: Sequence[ClipRun], cfg: DistressConfig) -> None:
    """Raise ReplayMismatch unless replaying with the live ``cfg`` gives the live results."""
    for run in runs:
        if not same_as_live(run.recording, replay(run.recording, cfg)):
            raise ReplayMismatch(
                f"{run.input.video}: replaying the recorded inputs did not reproduce the live "
                "pass; the pipeline feeds the distress scorer something this benchmark does "
                "not record"
            )


def curve_thresholds(cfg: DistressConfig, thresholds: Sequence[float]) -> list[float]:
    return sorted({round(t, 4) for t in thresholds} | {cfg.enter_threshold})


@dataclass
class EventBenchmark:
    """The benchmark's outcome: the configured point and the operating curve."""

    runs: list[ClipRun]
    skipped: list[Path]
    expression_model: str
    late_s: float
    configured: Scored
    curve: list[Scored]
    wall_s: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> EventMetrics:
        return self.configured.metrics

    def recall_by(self, key: Callable[[ClipRun, str], str | None]) -> dict[str, EventMetrics]:
        """Recall (and times to alert) of the distress segments grouped by ``key(run,
        expression)``; segments whose key is None are left out."""
        groups: dict[str, list[ClipMatch]] = {}
        for run, m in zip(self.runs, self.configured.matches, strict=True):
            distress = run.input.labels.distress() if run.input.labels else ()
            for seg, tta in zip(distress, m.time_to_alert, strict=True):
                name = key(run, seg.expression)
                if name is not None:
                    groups.setdefault(name, []).append(ClipMatch((tta,), (), 0.0))
        return {k: summarize(v) for k, v in sorted(groups.items())}

    def by_expression(self) -> dict[str, EventMetrics]:
        return self.recall_by(lambda _run, expression: expression)

    def by_face_px(self) -> dict[str, EventMetrics]:
        def size_bin(run: ClipRun, _expression: str) -> str | None:
            px = run.input.labels.face_px if run.input.labels else None
            for lo, hi in FACE_BINS:
                if px is not None and lo <= px < hi:
                    return f"{lo}-{hi}" if hi < 10_000 else f">={lo}"
            return None

        return self.recall_by(size_bin)

    def false_alarms(self) -> list[dict[str, Any]]:
        """Where each false alarm of the configured point opened."""
        return false_alarm_rows(self.runs, self.configured)

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": "events",
            **self.meta,
            "expression_model": self.expression_model,
            "distress": self.configured.cfg.model_dump(mode="json"),
            "late_s": self.late_s,
            "clips": {
                "labelled": sum(1 for r in self.runs if r.input.labels is not None),
                "calm_videos": sum(1 for r in self.runs if r.input.labels is None),
                "skipped_without_sidecar": [p.name for p in self.skipped],
                "hours": round(sum(r.duration_s for r in self.runs) / 3600, 4),
                "frames_analysed": sum(len(r.recording.frames) for r in self.runs),
            },
            "metrics": metrics_json(self.metrics),
            "by_expression": {k: recall_json(v) for k, v in self.by_expression().items()},
            "by_face_px": {k: recall_json(v) for k, v in self.by_face_px().items()},
            "false_alarm_list": self.false_alarms(),
            "curve": [
                {
                    "enter_threshold": s.cfg.enter_threshold,
                    "exit_threshold": s.cfg.exit_threshold,
                    **metrics_json(s.metrics),
                    "false_alarms_by_place": dict(
                        Counter(row["place"] for row in false_alarm_rows(self.runs, s))
                    ),
                }
                for s in self.curve
            ],
            "per_clip": [_clip_json(r, self.configured, i) for i, r in enumerate(self.runs)],
            "wall_s": round(self.wall_s, 1),
        }


def false_alarm_rows(runs: Sequence[ClipRun], scored: Scored) -> list[dict[str, Any]]:
    """Each false alarm: clip, time, track, ``place`` (passer-by, calm video, calm segment,
    other segment) and ``where`` (the segment's expression, seconds after distress)."""
    out = []
    for run, found, m in zip(runs, scored.alerts, scored.matches, strict=True):
        labels = run.input.labels
        for alert, verdict in zip(found, m.verdicts, strict=True):
            if verdict != "false alarm":
                continue
            if labels is None:
                place = where = "calm video"
            elif not _on_subject(labels, alert):
                place = where = "passer-by"
            else:
                seg = labels.segment_at(alert.t)
                place, where = f"{seg.kind} segment", f"{seg.kind} ({seg.expression})"
                ended = [d.end_s for d in labels.distress() if d.end_s <= alert.t]
                if ended:
                    where += f", {alert.t - max(ended):.1f} s after distress"
            out.append(
                {
                    "clip": run.name,
                    "t": round(alert.t, 2),
                    "track_id": alert.track_id,
                    "place": place,
                    "where": where,
                }
            )
    return out


def _num(x: float, digits: int = 4) -> float | None:
    return None if math.isnan(x) else round(x, digits)


def metrics_json(m: EventMetrics) -> dict[str, Any]:
    lo, hi = m.recall_interval95()
    return {
        "distress_segments": m.distress_segments,
        "detected": m.detected,
        "recall": _num(m.recall),
        "recall_95ci": [_num(lo), _num(hi)],
        "false_alarms": m.false_alarms,
        "non_distress_hours": round(m.non_distress_h, 4),
        "false_alarms_per_hour": _num(m.false_alarms_per_hour, 3),
        "false_alarms_per_hour_upper95": _num(m.false_alarms_per_hour_upper95, 3),
        "duplicates": m.duplicates,
        "time_to_alert_p50_s": _num(m.time_to_alert(50), 2),
        "time_to_alert_p95_s": _num(m.time_to_alert(95), 2),
    }


def recall_json(m: EventMetrics) -> dict[str, Any]:
    """The recall figures only (for groups of distress segments)."""
    doc = metrics_json(m)
    return {k: doc[k] for k in _RECALL_KEYS}


_RECALL_KEYS = (
    "distress_segments",
    "detected",
    "recall",
    "recall_95ci",
    "time_to_alert_p50_s",
    "time_to_alert_p95_s",
)


def _clip_json(run: ClipRun, scored: Scored, i: int) -> dict[str, Any]:
    labels = run.input.labels
    m = scored.matches[i]
    distress = labels.distress() if labels else ()
    return {
        "clip": run.name,
        "performer": labels.performer if labels else None,
        "face_px": labels.face_px if labels else None,
        "duration_s": round(run.duration_s, 2),
        "frames_analysed": len(run.recording.frames),
        "wall_s": round(run.wall_s, 2),
        "distress": [
            {
                "start_s": s.start_s,
                "end_s": s.end_s,
                "expression": s.expression,
                "time_to_alert_s": None if tta is None else round(tta, 2),
            }
            for s, tta in zip(distress, m.time_to_alert, strict=True)
        ],
        "alerts": [
            {"t": round(a.t, 2), "track_id": a.track_id, "verdict": v}
            for a, v in zip(scored.alerts[i], m.verdicts, strict=True)
        ],
    }


def run_benchmark(
    inputs: Sequence[ClipInput],
    cfg: AnalysisConfig,
    *,
    models_dir: Path | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    late_s: float = 0.0,
    skipped: Sequence[Path] = (),
    on_clip: Callable[[int, ClipRun], None] | None = None,
) -> EventBenchmark:
    """Analyse ``inputs`` once, score the live pass, and replay it for the curve."""
    if late_s < 0:
        raise RakshaError(f"--late-s must be >= 0, got {late_s}")
    started = time.perf_counter()
    runs = analyse_clips(inputs, cfg, models_dir, on_clip)
    check_replay(runs, cfg.distress)
    live = score(runs, cfg.distress, [r.recording.live_alerts for r in runs], late_s)
    curve = []
    for t in curve_thresholds(cfg.distress, thresholds):
        if t == cfg.distress.enter_threshold:
            curve.append(live)
        else:
            curve.append(score_replayed(runs, with_enter_threshold(cfg.distress, t), late_s))
    return EventBenchmark(
        runs=list(runs),
        skipped=list(skipped),
        expression_model=cfg.expression.model,
        late_s=late_s,
        configured=live,
        curve=curve,
        wall_s=time.perf_counter() - started,
        meta={"analysis_fps": cfg.source.fps},
    )
