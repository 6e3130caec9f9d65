"""`raksha eval make-clips` and `raksha eval events`: the event-level benchmark (docs/events.md).

Importing this module registers both commands on the `raksha eval` group.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from raksha.cli.options import OptionalConfigOpt
from raksha.cli.train import eval_app
from raksha.errors import RakshaError


@eval_app.command("make-clips")
def make_clips_cmd(
    data: Annotated[
        Path, typer.Option("--data", help="Labels-layout face set with a performer column.")
    ],
    out: Annotated[Path, typer.Option("--out", help="New or empty folder for clips + sidecars.")],
    split: Annotated[
        str, typer.Option("--split", help="Performers of this split only: train, tune or test.")
    ] = "test",
    count: Annotated[int, typer.Option("--count", min=1, help="Number of clips.")] = 30,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    fps: Annotated[int, typer.Option("--fps", min=1, max=60, help="Frames per second.")] = 10,
    background: Annotated[
        str,
        typer.Option(
            "--background",
            help="'auto' (the street video beside the data set, else a gradient), "
            "'gradient', or a video file.",
        ),
    ] = "auto",
) -> None:
    """Make labelled clips (one performer each: neutral -> distress -> neutral, calm peaks,
    long calm stretches) with a sidecar JSON per clip. Research data: write them outside
    the repository or under an ignored folder."""
    from raksha.ml.evaluation.clipgen import CYCLE, MadeClip, make_clips, resolve_background

    def done(clip: MadeClip) -> None:
        segs = ", ".join(
            f"{s.expression} {s.end_s - s.start_s:.1f} s" for s in clip.labels.segments[:4]
        )
        more = "" if len(clip.labels.segments) <= 4 else f" (+{len(clip.labels.segments) - 4})"
        typer.echo(
            f"{clip.path.name}: {clip.labels.duration_s:.1f} s, face {clip.labels.face_px} px: "
            f"{segs}{more}"
        )

    made = make_clips(
        data,
        out,
        split=split,
        count=count,
        seed=seed,
        fps=fps,
        background=resolve_background(data, background),
        on_clip=done,
    )
    kinds = {k: sum(1 for m in made if m.plan.kind == k) for k in dict.fromkeys(CYCLE)}
    minutes = sum(m.labels.duration_s for m in made) / 60
    performers = sorted({m.labels.performer for m in made})
    typer.echo(
        f"wrote {len(made)} clips ({', '.join(f'{n} {k}' for k, n in kinds.items())}; "
        f"{minutes:.1f} min) of performers {', '.join(performers)} ({split} split) to {out}"
    )


def _thresholds(text: str | None) -> tuple[float, ...]:
    from raksha.ml.evaluation.events import DEFAULT_THRESHOLDS

    if text is None:
        return DEFAULT_THRESHOLDS
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or any(not 0.05 < v <= 1.0 for v in values):
        raise RakshaError(
            f"--thresholds must be numbers in (0.05, 1] separated by commas, got {text!r}"
        )
    return values


@eval_app.command("events")
def eval_events(
    clips: Annotated[
        Path, typer.Option("--clips", help="Folder of clips with sidecars (make-clips).")
    ],
    calm: Annotated[
        Path | None,
        typer.Option("--calm", help="Folder of unlabelled videos that show no distress."),
    ] = None,
    config: OptionalConfigOpt = None,
    expression_model: Annotated[
        str | None,
        typer.Option(
            "--expression-model", help="Expression model (registry name or .onnx with card)."
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here.")
    ] = None,
    curve: Annotated[
        Path | None, typer.Option("--curve", help="Write the operating curve as a PNG here.")
    ] = None,
    models: Annotated[
        Path | None, typer.Option("--models", help="Model directory (else RAKSHA_MODELS).")
    ] = None,
    late_s: Annotated[
        float,
        typer.Option(
            "--late-s", min=0.0, help="Alerts up to this long after a segment's end count."
        ),
    ] = 0.0,
    thresholds: Annotated[
        str | None,
        typer.Option("--thresholds", help="Entry thresholds of the curve, e.g. 0.4,0.5,0.6."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-clip lines.")] = False,
) -> None:
    """Event recall, false alarms per camera-hour and time to alert of the analysis as
    configured, over labelled clips (and calm videos), with an operating curve over the
    entry threshold replayed from the same analysis pass."""
    from rich.console import Console

    from raksha.config import load_analysis_config
    from raksha.ml.evaluation.event_report import print_event_report, write_curve
    from raksha.ml.evaluation.events import ClipRun, find_clips, run_benchmark

    for path, option in ((json_out, "--json"), (curve, "--curve")):
        if path is not None and path.is_dir():
            raise RakshaError(f"{option} {path} is a folder; give a file name")
    if curve is not None:
        from raksha.ml.evaluation.report import pyplot

        pyplot()  # a missing plotting extra is said now, not after the benchmark
    steps = _thresholds(thresholds)
    cfg = load_analysis_config(config)
    if expression_model is not None:
        cfg = cfg.model_copy(
            update={"expression": cfg.expression.model_copy(update={"model": expression_model})}
        )
    inputs, skipped = find_clips(clips, calm)
    err = Console(stderr=True)

    def progress(i: int, run: ClipRun) -> None:
        if not quiet:
            err.print(
                f"[{i + 1}/{len(inputs)}] {run.name}: {len(run.recording.frames)} frames, "
                f"{len(run.recording.live_alerts)} alerts ({run.wall_s:.1f} s)",
                highlight=False,
            )

    bench = run_benchmark(
        inputs,
        cfg,
        models_dir=models,
        thresholds=steps,
        late_s=late_s,
        skipped=skipped,
        on_clip=progress,
    )
    bench.meta.update({"clips_dir": str(clips), "calm_dir": None if calm is None else str(calm)})
    print_event_report(bench, Console())
    try:
        if curve is not None:
            write_curve(bench, curve)
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(bench.to_json(), indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise RakshaError(f"cannot write results: {exc.strerror or exc}: {exc.filename}") from None
