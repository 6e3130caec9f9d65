"""`raksha analyze VIDEO`: per-person expression and distress timelines for one video."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from raksha.cli.options import OptionalConfigOpt
from raksha.errors import RakshaError


def analyze(
    video: Annotated[str, typer.Argument(help="A video file, or an rtsp:// / http(s):// URL.")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full results as JSON here.")
    ] = None,
    annotated: Annotated[
        Path | None,
        typer.Option("--annotated", help="Write an annotated MP4 (boxes, ids, expression, bar)."),
    ] = None,
    fps: Annotated[
        float | None,
        typer.Option("--fps", min=0.1, max=120, help="Frames analysed per second (default 5)."),
    ] = None,
    config: OptionalConfigOpt = None,
    models: Annotated[
        Path | None, typer.Option("--models", help="Model directory (else RAKSHA_MODELS).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")] = False,
) -> None:
    """Analyse a video: faces, tracks, expressions and distress events."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from raksha.config import load_analysis_config
    from raksha.pipeline.video import analyze_video

    cfg = load_analysis_config(config)
    if fps is not None:
        cfg = cfg.model_copy(update={"source": cfg.source.model_copy(update={"fps": fps})})
    if json_out is not None:
        _check_writable(json_out)
    if annotated is not None and annotated.is_dir():
        raise RakshaError(f"--annotated {annotated} is a directory; give a file name")

    err = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]analysing"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} frames"),
        TextColumn("{task.fields[faces]} faces, {task.fields[events]} events"),
        TimeRemainingColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=True,
    )
    task = progress.add_task("analyse", total=None, faces=0, events=0)
    counts = {"faces": 0, "events": 0}

    def on_start(_info: object, expected: int | None) -> None:
        progress.update(task, total=expected)

    def on_frame(a: object) -> None:
        from raksha.domain import FrameAnalysis

        assert isinstance(a, FrameAnalysis)
        counts["faces"] += len(a.faces)
        counts["events"] += len(a.opened)
        progress.update(task, advance=1, faces=counts["faces"], events=counts["events"])

    with progress:
        result = analyze_video(
            video,
            cfg,
            models_dir=models,
            annotated=annotated,
            on_start=on_start,
            on_frame=on_frame,
        )

    if json_out is not None:
        try:
            json_out.write_text(json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise RakshaError(f"cannot write {json_out}: {exc.strerror or exc}") from None
    if not quiet:
        _print_summary(result, Console())


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise RakshaError(f"--json {path} is a directory; give a file name")
    if not path.parent.exists():
        raise RakshaError(f"--json: folder {path.parent} does not exist")


def _print_summary(result: object, console: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from raksha.pipeline.video import VideoAnalysis

    assert isinstance(result, VideoAnalysis) and isinstance(console, Console)
    s = result.to_json()["summary"]
    console.print(
        f"{result.video}: {s['frames_analysed']} frames at {result.fps_analysed:g} fps, "
        f"{s['faces']} faces, {s['tracks']} tracks, {s['events']} distress events "
        f"({s['wall_s']:.1f} s, model {result.expression_model})"
    )
    if result.events:
        table = Table(title="Distress events (each is a prompt for a human to look, not a verdict)")
        for col in ("track", "start s", "end s", "peak", "expression at peak"):
            table.add_column(col)
        for e in result.events:
            table.add_row(
                str(e.track_id),
                f"{e.start_s:.2f}",
                "-" if e.end_s is None else f"{e.end_s:.2f}",
                f"{e.peak_distress:.2f}",
                e.top_expression_at_peak,
            )
        console.print(table)
    sys.stdout.flush()
