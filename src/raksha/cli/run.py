"""`raksha run`, `raksha incidents list` and `raksha demo`."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from raksha.cli.options import DEFAULT_CONFIG, ConfigOpt
from raksha.errors import RakshaError

incidents_app = typer.Typer(help="Stored incidents.", no_args_is_help=True, rich_markup_mode=None)

ModelsOpt = Annotated[
    Path | None, typer.Option("--models", help="Model directory (else RAKSHA_MODELS).")
]


def local_time(value: str | None, zone: str) -> str:
    """An ISO time from the store as a person reads it: date, time and zone
    (`2026-12-06 11:33:30 IST`)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not value:
        return ""
    when = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return when.strftime("%Y-%m-%d %H:%M:%S %Z")


def _incident_table(rows: list[dict[str, Any]], title: str, zone: str = "UTC") -> Any:
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
            local_time(r["opened_at"], zone),
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
    *,
    stop_on_interrupt: bool = False,
    cluster: str | None = None,
) -> int:
    """Run until done or stopped; the number of incidents this run opened (merged
    re-detections not counted). With `stop_on_interrupt`, a Ctrl-C is raised again once the
    cameras are stopped (the demo then stops its dashboard too)."""
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

    coordinator = None
    if cluster is None:
        runtime = build_runtime(
            cfg, models_dir=models, exit_at_end=exit_at_end, on_stored=on_stored
        )
    else:
        runtime, coordinator = _cluster_runtime(cfg, cluster, models, exit_at_end)

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
        waiting = runtime.sink.unsaved if runtime.sink is not None else 0
        return (
            f"{title} — DATABASE UNREACHABLE, analysis goes on; {waiting} incident(s) "
            f"waiting to be stored ({outage[0][:120]})"
        )

    def handle_signal(_sig: int, _frame: object) -> None:
        runtime.stopping.set()

    old = signal.signal(signal.SIGTERM, handle_signal)
    interrupted: list[bool] = []
    runtime.start()
    try:
        if live_table:
            zone = cfg.timezone
            with Live(
                _incident_table([], title, zone), console=console, refresh_per_second=2
            ) as live:
                runtime.wait(tick=lambda: live.update(_incident_table(current(), heading(), zone)))
                live.update(_incident_table(current(), heading(), zone))
            if not console.is_terminal:  # rich leaves the last table line unterminated there
                console.line()
        else:
            runtime.wait()
    except KeyboardInterrupt:
        interrupted.append(True)
    finally:
        stats = [w.stats for w in runtime.pipelines]
        runtime.stop()
        signal.signal(signal.SIGTERM, old)
    if coordinator is not None:
        _print_cluster(coordinator)
        return int(coordinator.opened)
    for s in stats:
        state = "error: " + s.last_error if s.errors and s.last_error else "ok"
        # Plain echo: one line per camera however long the error (no wrapping, no markup).
        lat = s.p95_latency_ms()
        p95 = f", p95 capture to score {lat:.0f} ms" if lat is not None else ""
        typer.echo(
            f"camera {s.camera_id}: {s.frames} frames, {s.faces} faces, {s.events} events "
            f"({state}); {s.dropped} frames dropped{p95}"
        )
    if interrupted and stop_on_interrupt:
        raise KeyboardInterrupt
    return len(opened)


def _cluster_runtime(
    cfg: Any, address: str, models: Path | None, exit_at_end: bool
) -> tuple[Any, Any]:
    try:
        from raksha.cluster.run import cluster_runtime
    except ImportError as exc:  # ray is an extra
        raise RakshaError(
            f"--cluster needs the cluster extra ({exc.name} is not installed): "
            "pip install 'raksha[cluster]'"
        ) from None
    return cluster_runtime(cfg, address, models_dir=models, exit_at_end=exit_at_end)


def _print_cluster(coordinator: Any) -> None:
    """One line per camera from its host's last report, and every camera moved."""
    status = coordinator.status()
    for _, (node, c) in sorted(coordinator.camera_reports().items()):
        state = "error: " + c.last_error if c.errors and c.last_error else "ok"
        p95 = f", p95 capture to score {c.p95_latency_ms:.0f} ms" if c.p95_latency_ms else ""
        typer.echo(
            f"camera {c.camera_id} (node {node[:12]}): {c.frames} frames, {c.faces} faces, "
            f"{c.events} events ({state}); {c.dropped} frames dropped{p95}"
        )
    for m in status.moves:
        back = f"analysed again after {m.back_after_s:.1f} s" if m.back_after_s else "not back"
        typer.echo(
            f"camera {m.camera_id} moved from node {m.from_node[:12]} to node "
            f"{(m.to_node or '-')[:12]}: {back}"
        )
    for cam in status.unplaced:
        typer.echo(f"camera {cam}: no host had room for it")


def run(
    config: ConfigOpt = DEFAULT_CONFIG,
    exit_at_end: Annotated[
        bool,
        typer.Option(
            "--exit-at-end",
            help="Play file cameras once and exit when they have ended and incidents are stored.",
        ),
    ] = False,
    models: ModelsOpt = None,
    table: Annotated[bool, typer.Option("--table/--no-table", help="Live incident table.")] = True,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="Run the cameras on a Ray cluster: auto, ray://HOST:PORT or HOST:PORT "
            "(docs/deploy-cluster.md; needs raksha[cluster] and PostgreSQL).",
        ),
    ] = None,
) -> None:
    """Run every enabled camera: detect distress, store incidents, send alerts."""
    new = _run(config, models, exit_at_end, table, "Raksha incidents", cluster=cluster)
    typer.echo(f"{new} new incident(s) stored")


@incidents_app.command("list")
def incidents_list(
    config: ConfigOpt = DEFAULT_CONFIG,
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
        Console().print(_incident_table(rows, f"{len(rows)} incident(s)", cfg.timezone))
