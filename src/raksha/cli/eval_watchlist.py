"""`raksha eval watchlist`: measure the face watchlist core on a labelled identity set
(docs/watchlist.md).

Importing this module registers the command on the `raksha eval` group.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from raksha.cli.train import eval_app
from raksha.errors import RakshaError

if TYPE_CHECKING:
    from raksha.ml.evaluation.watchlist import ImageRecord


def _targets(values: list[str] | None) -> tuple[float, ...]:
    from raksha.ml.evaluation.watchlist import DEFAULT_TARGET_FMRS

    if not values:
        return DEFAULT_TARGET_FMRS
    out: list[float] = []
    for text in values:
        for part in text.split(","):
            try:
                v = float(part)
            except ValueError:
                v = math.nan
            if not 0.0 < v < 1.0:
                raise RakshaError(f"--target-fmr must be a rate in (0, 1), got {part.strip()!r}")
            out.append(v)
    return tuple(sorted(set(out)))


@eval_app.command("watchlist")
def eval_watchlist(
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="Identity set: a folder with identities.csv, pairs.csv and the photos."
        ),
    ],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here.")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write summary, JSON and plots into this folder."),
    ] = None,
    target_fmr: Annotated[
        list[str] | None,
        typer.Option(
            "--target-fmr",
            help="False-match rate to find the threshold for; repeat or separate by commas "
            "(default 0.001 and 0.01).",
        ),
    ] = None,
    enrol: Annotated[
        int,
        typer.Option("--enrol", min=1, help="Photos enrolled per identity (the first that pass)."),
    ] = 1,
    resamples: Annotated[
        int, typer.Option("--resamples", min=0, help="Bootstrap resamples (by identity).")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    models: Annotated[
        Path | None, typer.Option("--models", help="Model directory (else RAKSHA_MODELS).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-photo lines.")] = False,
    probe_face_px: Annotated[
        list[float] | None,
        typer.Option(
            "--probe-face-px",
            min=8,
            max=512,
            help="Also measure with probes shrunk so their face is this wide and JPEG-"
            "compressed, like a camera's (repeat for several sizes, e.g. 64 48 32).",
        ),
    ] = None,
) -> None:
    """Enrolment refusals, pair verification ROC and the 1:N watchlist's true- and
    false-match rates with thresholds for target false-match rates (bootstrap 95 %
    intervals by identity), on a development identity set."""
    from raksha.ml.evaluation.watchlist import run_watchlist_eval, summary_lines, write_report

    for path, option in ((json_out, "--json"),):
        if path is not None and path.is_dir():
            raise RakshaError(f"{option} {path} is a folder; give a file name")
    if report is not None and report.exists() and not report.is_dir():
        raise RakshaError(f"--report {report} is a file; give a folder")
    if not data.is_dir():
        raise RakshaError(f"--data {data} is not a folder")
    targets = _targets(target_fmr)
    if report is not None:
        from raksha.ml.evaluation.report import pyplot

        pyplot()  # a missing plotting extra is said now, not after the run

    def progress(i: int, n: int, rec: ImageRecord) -> None:
        if quiet:
            return
        face = "no face" if rec.width_px is None else f"face {rec.width_px:.0f} px"
        verdict = "enrolable" if rec.reason is None else f"refused: {rec.reason}"
        typer.echo(f"[{i + 1}/{n}] {rec.file} ({rec.identity}): {face}, {verdict}", err=True)

    result = run_watchlist_eval(
        data,
        models_dir=models,
        per_identity=enrol,
        targets=targets,
        resamples=resamples,
        seed=seed,
        on_image=progress,
        probe_face_px=probe_face_px or (),
    )
    for line in summary_lines(result):
        typer.echo(line)
    try:
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8")
            typer.echo(f"wrote results to {json_out}")
        if report is not None:
            write_report(result, report)
            typer.echo(f"wrote the report (summary.txt, results.json, plots) to {report}")
    except OSError as exc:
        raise RakshaError(f"cannot write results: {exc.strerror or exc}: {exc.filename}") from None
