"""`raksha report response-times`: time to acknowledge, to dispatch, for the unit to
acknowledge, to travel and to be on scene (p50/p95 per station, per patrol unit and overall),
as a table, a JSON file and a plot. `raksha report precision`: field precision (of the camera
incidents officers judged, the share that were real) per camera, station, hour and model.
`raksha report shadow`: shadow mode's would-be events against the live incidents.
`raksha report transparency`: the public transparency pack (docs/transparency.md). Run on the
server as the deployment's operator: every station is visible, and each report is written to
the audit log under `cli:<os user>`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from raksha.cli.options import DEFAULT_CONFIG, ConfigOpt
from raksha.errors import RakshaError

if TYPE_CHECKING:
    from raksha.services.precision import FieldPrecision
    from raksha.services.reports import ResponseTimes

app = typer.Typer(help="Reports on the incidents.", no_args_is_help=True, rich_markup_mode=None)

EXAMPLE_TIME = "2026-11-22T08:00:00Z"


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time with a zone, or RakshaError naming `option`."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RakshaError(
            f"{option} {value!r} is not an ISO 8601 time (e.g. {EXAMPLE_TIME})"
        ) from None
    if t.utcoffset() is None:
        raise RakshaError(f"{option} {value!r} needs a time zone (e.g. {EXAMPLE_TIME})")
    return t


def duration(seconds: float | None) -> str:
    """45s, 2m05s, 1h02m; '-' for none."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    s = round(abs(seconds))
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m{s % 60:02d}s"
    return f"{sign}{s // 3600}h{s % 3600 // 60:02d}m"


def table_lines(report: ResponseTimes) -> list[str]:
    """The report as a plain table, one figure a line."""
    from raksha.services.reports import PERCENTILE_METHOD, STATION_FIGURES, UNIT_FIGURES
    from raksha.store.serialize import iso

    since = iso(report.since) or "the first"
    until = iso(report.until) or "now"
    lines = [
        f"Response times of incidents opened from {since} to {until} "
        f"({PERCENTILE_METHOD} percentiles)",
        "",
        f"{'':24} {'incidents':>9} {'waiting ack':>11} {'waiting on scene':>16}",
    ]
    groups = [("all stations", report.overall)]
    groups += [(f"station {s}", g) for s, g in report.stations.items()]
    for name, g in groups:
        lines.append(f"{name:24} {g.incidents:>9} {g.waiting_ack:>11} {g.waiting_on_scene:>16}")
    lines += ["", f"{'':24} {'figure':12} {'n':>5} {'p50':>8} {'p95':>8}"]
    for name, g in groups:
        for fig in STATION_FIGURES:
            st = g.figure(fig)
            lines.append(
                f"{name:24} {fig:12} {st.n:>5} {duration(st.p50_s):>8} {duration(st.p95_s):>8}"
            )
    for unit_id, u in report.units.items():
        label = f"unit {unit_id} ({u.jobs} job{'s' if u.jobs != 1 else ''})"
        for fig in UNIT_FIGURES:
            st = u.figure(fig)
            lines.append(
                f"{label:24} {fig:12} {st.n:>5} {duration(st.p50_s):>8} {duration(st.p95_s):>8}"
            )
    return lines


def plot(report: ResponseTimes, out: Path) -> None:
    """Bars of p50 and p95 (minutes) per station, one panel per figure, as a PNG."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RakshaError("the plot needs matplotlib: pip install 'raksha[report]'") from None
    from raksha.services.reports import STATION_FIGURES

    names = ["all", *report.stations]
    groups = [report.overall, *report.stations.values()]
    fig = Figure(figsize=(max(6.0, 1.2 * len(names) + 2), 2.6 * len(STATION_FIGURES)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(STATION_FIGURES), 1, squeeze=False)[:, 0]
    xs = list(range(len(names)))
    width = 0.38
    for ax, figure_name in zip(axes, STATION_FIGURES, strict=True):
        stats = [g.figure(figure_name) for g in groups]
        p50 = [(s.p50_s or 0.0) / 60 for s in stats]
        p95 = [(s.p95_s or 0.0) / 60 for s in stats]
        ax.bar([x - width / 2 for x in xs], p50, width, label="p50")
        ax.bar([x + width / 2 for x in xs], p95, width, label="p95")
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{n}\n(n={s.n})" for n, s in zip(names, stats, strict=True)])
        ax.set_ylabel("minutes")
        ax.set_title(figure_name.replace("_", " "))
        ax.margins(y=0.15)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", ncol=2)
    fig.suptitle("Response times per station", x=0.02, ha="left")
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.97))
    try:
        fig.savefig(out, format="png", dpi=100)
    except OSError as exc:
        raise RakshaError(f"cannot write plot {out}: {exc.strerror or exc}") from None


@app.command("response-times")
def response_times(
    config: ConfigOpt = DEFAULT_CONFIG,
    since: Annotated[
        str | None, typer.Option("--since", help=f"Opened at or after (ISO, e.g. {EXAMPLE_TIME}).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Opened before (ISO).")] = None,
    station: Annotated[
        list[str] | None, typer.Option("--station", help="Only this station (repeatable).")
    ] = None,
    origin: Annotated[
        str | None, typer.Option("--origin", help="Only 'camera' or 'sos' incidents.")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
    plot_out: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of p50/p95 per station here.")
    ] = None,
) -> None:
    """Response times (p50/p95) per station, per patrol unit and overall.

    Time to acknowledge, to dispatch, for the unit to acknowledge, to travel and to be on
    scene, over the incidents opened in the period; those still waiting are counted."""
    from raksha.cli.users import cli_actor
    from raksha.config import load_run_config
    from raksha.services.reports import response_times_for_operator
    from raksha.site.load import storage_url
    from raksha.store.repository import IncidentStore

    t_since = parse_time(since, "--since")
    t_until = parse_time(until, "--until")
    cfg = load_run_config(config)
    known = [s.id for s in cfg.stations]
    store = IncidentStore.open(storage_url(cfg))
    try:
        report = response_times_for_operator(
            store,
            actor=cli_actor(),
            since=t_since,
            until=t_until,
            stations=station or None,
            origin=origin,
            known_stations=known,
        )
    finally:
        store.close()
    for line in table_lines(report):
        typer.echo(line.rstrip())
    if json_out is not None:
        try:
            json_out.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        except OSError as exc:
            raise RakshaError(f"cannot write {json_out}: {exc.strerror or exc}") from None
        typer.echo(f"wrote {json_out}")
    if plot_out is not None:
        plot(report, plot_out)
        typer.echo(f"wrote {plot_out}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f}%"


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in reasons.items()) or "-"


def precision_lines(report: FieldPrecision) -> list[str]:
    """The field precision as a plain table: overall, per camera, station, hour and model."""
    from raksha.store.serialize import iso

    head = f"{'':28} {'real':>5} {'dism.':>5} {'open':>5} {'precision':>9} {'95% CI':>15}"
    lines = [
        f"Field precision of camera incidents opened from {iso(report.since)} to "
        f"{iso(report.until)} (hours in {report.tz}); real = confirmed, dispatched or resolved",
        f"review: at least {report.min_judged} judged and precision below {_pct(report.floor)}",
    ]
    sections = [
        ("", [report.overall]),
        ("camera ", report.cameras),
        ("station ", report.stations),
        ("hour ", report.hours),
        ("model ", report.models),
    ]
    for prefix, rows in sections:
        lines += ["", head]
        for r in rows:
            sh = r.share
            ci = "-" if sh.n == 0 else f"{_pct(sh.low)}-{_pct(sh.high)}"
            flag = "  REVIEW" if r.review else ""
            name = f"{prefix}{r.key}"[:28]
            lines.append(
                f"{name:28} {r.real:>5} {r.dismissed:>5} {r.pending:>5} "
                f"{_pct(sh.value):>9} {ci:>15}  {_reasons(r.reasons)}{flag}"
            )
    return lines


@app.command("precision")
def precision(
    config: ConfigOpt = DEFAULT_CONFIG,
    days: Annotated[
        int | None,
        typer.Option("--days", help="Local days back, today included (default precision.days)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Field precision: of the camera incidents officers judged, the share that were real.

    Per camera (flagged REVIEW below the configured floor), per station, per local hour of
    day and per model, with 95 % Wilson intervals and the reasons of the dismissals."""
    from raksha.cli.users import cli_actor
    from raksha.config import load_run_config
    from raksha.services.precision import field_precision_for_operator
    from raksha.site.load import storage_url
    from raksha.store.repository import IncidentStore

    cfg = load_run_config(config)
    store = IncidentStore.open(storage_url(cfg))
    try:
        report = field_precision_for_operator(
            store,
            actor=cli_actor(),
            settings=cfg.precision,
            days=days,
            tz=cfg.timezone,
            known_stations=[s.id for s in cfg.stations],
        )
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    for line in precision_lines(report):
        typer.echo(line.rstrip())


@app.command("shadow")
def shadow(
    config: ConfigOpt = DEFAULT_CONFIG,
    days: Annotated[
        int | None,
        typer.Option("--days", help="Local days back, today included (default precision.days)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Shadow mode against the live side, per camera: the shadow's would-be events, how many
    the live side also raised, and of those how many officers judged real."""
    from raksha.cli.users import cli_actor
    from raksha.config import load_run_config
    from raksha.services.errors import Invalid
    from raksha.services.shadow import comparison_json, shadow_report_for_operator
    from raksha.services.stats import MAX_DAYS, period
    from raksha.site.load import storage_url
    from raksha.store.repository import IncidentStore

    cfg = load_run_config(config)
    n = cfg.precision.days if days is None else days
    if not 1 <= n <= MAX_DAYS:
        raise Invalid(f"--days must be between 1 and {MAX_DAYS}")
    since, until = period(n, cfg.timezone)
    store = IncidentStore.open(storage_url(cfg))
    try:
        report = shadow_report_for_operator(store, actor=cli_actor(), since=since, until=until)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(comparison_json(report), indent=2))
        return
    typer.echo(f"Shadow events against live incidents, the last {n} days ({cfg.timezone})")
    if not report.cameras:
        typer.echo("no shadow events (is `shadow:` set in the config?)")
        return
    typer.echo(
        f"{'camera':20} {'shadow':>6} {'both':>5} {'judged':>6} {'real':>5} "
        f"{'shadow only':>11} {'live':>5} {'live caught':>11}  models"
    )
    for cam, c in report.cameras.items():
        typer.echo(
            f"{cam[:20]:20} {c.events:>6} {c.overlap:>5} {c.overlap_judged:>6} "
            f"{c.overlap_real:>5} {c.shadow_only:>11} {c.live:>5} {c.live_caught:>11}  "
            + ", ".join(sorted(c.models))
        )


@app.command("transparency")
def transparency(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the pack into.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    days: Annotated[
        int, typer.Option("--days", help="Local days back, today included (1 to 366).")
    ] = 365,
    eval_json: Annotated[
        Path | None,
        typer.Option(
            "--eval-json", help="Measured accuracy: a `raksha eval expression --json` file."
        ),
    ] = None,
) -> None:
    """The transparency pack: what is tracked, where and why, who sees what, retention,
    measured accuracy, incidents and outcomes, and the impact assessment's sections, as
    index.html, transparency.md and transparency.json, with a Hindi and English public
    notice per hotspot under notices/. Gaps in the config are named, never filled in."""
    from raksha.cli.users import cli_actor
    from raksha.config import load_run_config
    from raksha.services.transparency import read_eval_results, transparency_for_operator
    from raksha.services.transparency_render import write_pack
    from raksha.site.load import storage_url
    from raksha.store.repository import IncidentStore

    cfg = load_run_config(config)
    results = read_eval_results(eval_json) if eval_json is not None else ()
    store = IncidentStore.open(storage_url(cfg))
    try:
        pack = transparency_for_operator(
            cfg,
            store,
            actor=cli_actor(),
            days=days,
            eval_results=results,
            eval_source=None if eval_json is None else eval_json.name,
        )
    finally:
        store.close()
    written = write_pack(pack, out)
    notices = sum(1 for p in written if p.parent.name == "notices")
    typer.echo(f"wrote the transparency pack to {out}/ ({out / 'index.html'})")
    typer.echo(
        f"{len(written) - notices} pack files, {notices} notice files; "
        f"{len(pack.gaps)} gap{'s' if len(pack.gaps) != 1 else ''} named"
    )
