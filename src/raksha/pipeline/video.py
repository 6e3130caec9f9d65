"""Analyse one video end to end and collect per-frame results and distress events."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raksha.config import AnalysisConfig
from raksha.domain import DistressEvent, Frame, FrameAnalysis, SourceInfo
from raksha.domain.types import round_or_none
from raksha.pipeline.analyzer import STAGES, FaceReadings, FrameAnalyzer, Located, Models
from raksha.sources.base import FrameSource


@dataclass
class VideoAnalysis:
    video: str
    info: SourceInfo
    fps_analysed: float
    expression_model: str
    labels: tuple[str, ...]
    frames: list[FrameAnalysis] = field(default_factory=list)
    events: list[DistressEvent] = field(default_factory=list)
    wall_s: float = 0.0
    #: With track-guided detection: the analysed frames searched whole (the others were
    #: searched only about the faces of the frame before); None without it.
    whole_frame_searches: int | None = None

    def stage_seconds(self) -> dict[str, list[float]]:
        return {s: [f.timings.get(s, 0.0) for f in self.frames] for s in STAGES}

    def to_json(self) -> dict[str, Any]:
        return {
            "video": self.video,
            "fps_analysed": round(self.fps_analysed, 4),
            "width": self.info.width,
            "height": self.info.height,
            "expression_model": self.expression_model,
            "expression_classes": list(self.labels),
            "frames": self._frames_json(),
            "events": [event_to_json(e) for e in self.events],
            "summary": {
                "frames_analysed": len(self.frames),
                "faces": sum(len(f.faces) for f in self.frames),
                "tracks": len({x.track_id for f in self.frames for x in f.faces if x.track_id > 0}),
                "events": len(self.events),
                "whole_frame_searches": self.whole_frame_searches,
                "wall_s": round(self.wall_s, 3),
            },
        }

    def _frames_json(self) -> list[dict[str, Any]]:
        """Per frame and face: `in_event` is true inside one of that track's events as the
        event list gives them (start to end), so the two agree; `alarm_active` is the live
        state machine's flag, which rises only once the minimum duration is met and holds
        through the exit hysteresis (when a live camera would have raised the alarm)."""
        spans: dict[int, list[tuple[float, float]]] = {}
        for e in self.events:
            end = e.end_s if e.end_s is not None else float("inf")
            spans.setdefault(e.track_id, []).append((e.start_s, end))
        out = []
        for frame in self.frames:
            doc = frame.to_json()
            for face in doc["faces"]:
                face["alarm_active"] = face["in_event"]
                face["in_event"] = any(
                    a - 1e-6 <= frame.t <= b + 1e-6 for a, b in spans.get(face["track_id"], ())
                )
            out.append(doc)
        return out


def event_to_json(e: DistressEvent) -> dict[str, Any]:
    return {
        "track_id": e.track_id,
        "start_s": round(e.start_s, 3),
        "end_s": None if e.end_s is None else round(e.end_s, 3),
        "peak_distress": round(e.peak_distress, 4),
        "peak_t": round(e.peak_t, 3),
        "expression_at_peak": {k: round(v, 4) for k, v in e.expression_at_peak.items()},
        "top_expression_at_peak": e.top_expression_at_peak,
        "peak_absolute": round_or_none(e.peak_absolute),
        "peak_relative": round_or_none(e.peak_relative),
        "baseline_at_peak": round_or_none(e.baseline_at_peak),
    }


def analyze_video(
    video: str,
    cfg: AnalysisConfig,
    *,
    models: Models | None = None,
    models_dir: Path | None = None,
    annotated: Path | None = None,
    on_start: Callable[[SourceInfo, int | None], None] | None = None,
    on_frame: Callable[[FrameAnalysis], None] | None = None,
) -> VideoAnalysis:
    """Run the analysis stages over every analysed frame of `video` (a path or URL).

    `on_start(info, expected_frames)` and `on_frame(analysis)` let a caller show progress.
    """
    from raksha.pipeline.annotate import AnnotatedWriter, draw
    from raksha.sources.factory import open_source
    from raksha.sources.realtime import read_ahead

    models = models if models is not None else Models.load(cfg, models_dir)
    # Decoded ahead by a thread of its own (cfg.source.read_ahead_frames): the "decode" stage
    # is then the time the analysis waited for its next frame.
    source = read_ahead(open_source(video, cfg.source, source_id="video"), cfg.source)
    writer: AnnotatedWriter | None = None
    started = time.perf_counter()
    try:
        info = source.info
        fps = cfg.source.fps if info.native_fps is None else min(cfg.source.fps, info.native_fps)
        expected = None
        if info.frame_count and info.native_fps:
            expected = int(info.frame_count / info.native_fps * fps) + 1
        if on_start is not None:
            on_start(info, expected)
        result = VideoAnalysis(
            video=video,
            info=info,
            fps_analysed=fps,
            expression_model=models.expression_model,
            labels=models.classifier.labels,
        )
        analyzer = FrameAnalyzer(cfg, models, source_id="video")
        if annotated is not None:
            writer = AnnotatedWriter(annotated, info.width, info.height, fps)
        frames = _timed_frames(source)
        analysed = (
            _overlapped(analyzer, frames)
            if cfg.expression.overlap
            else ((frame, analyzer.analyze(frame, decode_s)) for frame, decode_s in frames)
        )
        for frame, analysis in analysed:
            result.frames.append(analysis)
            result.events.extend(analysis.closed)
            if writer is not None:
                writer.write(draw(frame.image, analysis))
            if on_frame is not None:
                on_frame(analysis)
        result.events.extend(analyzer.finish())
        result.events.sort(key=lambda e: (e.start_s, e.track_id))
        result.wall_s = time.perf_counter() - started
        if analyzer.regions is not None:
            result.whole_frame_searches = analyzer.regions.whole_frames
        return result
    finally:
        source.close()
        if writer is not None:
            writer.close()


def _timed_frames(source: FrameSource) -> Iterator[tuple[Frame, float]]:
    """Each frame of `source` with the seconds its read took."""
    while True:
        d0 = time.perf_counter()
        frame = source.read()
        decode_s = time.perf_counter() - d0
        if frame is None:
            return
        yield frame, decode_s


def _overlapped(
    analyzer: FrameAnalyzer, frames: Iterable[tuple[Frame, float]]
) -> Iterator[tuple[Frame, FrameAnalysis]]:
    """`analyzer.analyze` over `frames`, with each frame's faces read (expressions,
    sharpness) on a thread of their own while the next frame is located. Frames come out in
    order, each exactly as `analyze` would give it: the tracker and the distress scorer run
    only on this thread, in frame order."""
    pending: deque[tuple[Located, Future[FaceReadings]]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="expression") as pool:
        try:
            for frame, decode_s in frames:
                located = analyzer.locate(frame, decode_s)
                pending.append((located, pool.submit(analyzer.read_faces, located)))
                if len(pending) > 1:
                    done, readings = pending.popleft()
                    yield done.frame, analyzer.score(done, readings.result())
            while pending:
                done, readings = pending.popleft()
                yield done.frame, analyzer.score(done, readings.result())
        finally:
            for _, readings in pending:  # stopped early (an error, or the caller stopped)
                readings.cancel()
