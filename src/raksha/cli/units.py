"""`raksha units list`: the patrol units as the store knows them (status, last position)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from raksha.cli.options import DEFAULT_CONFIG, ConfigOpt

app = typer.Typer(
    help="Patrol units: status and last known position.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("list")
def units_list(
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every configured unit: status, the incident it serves, where and when it last reported."""
    from rich.console import Console
    from rich.table import Table

    from raksha.config import load_run_config
    from raksha.services.deployment import configure_store
    from raksha.site.load import storage_url
    from raksha.store.repository import IncidentStore
    from raksha.store.serialize import iso

    cfg = load_run_config(config)
    store = configure_store(IncidentStore.open(storage_url(cfg)), cfg)
    try:
        units = store.units()
    finally:
        store.close()
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = [
        {
            "id": u.id,
            "kind": u.kind,
            "station_id": u.station_id,
            "status": u.status.value,
            "incident_id": u.incident_id,
            "lat": u.lat,
            "lon": u.lon,
            "position_at": iso(u.position_at),
            "position_age_s": None
            if u.position_at is None
            else round((now - u.position_at).total_seconds(), 1),
        }
        for u in units
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title=f"{len(rows)} patrol unit(s)")
    for column in ("unit", "kind", "station", "status", "incident", "last position", "age"):
        table.add_column(column)
    for r in rows:
        where = "base" if r["lat"] is None else f"{r['lat']}, {r['lon']}"
        age = "" if r["position_age_s"] is None else f"{r['position_age_s']} s"
        table.add_row(
            str(r["id"]),
            str(r["kind"]),
            str(r["station_id"]),
            str(r["status"]),
            str(r["incident_id"] or "")[:8],
            where,
            age,
        )
    Console().print(table)
