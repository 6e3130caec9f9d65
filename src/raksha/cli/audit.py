"""`raksha audit verify`: check the audit log's hash chain (exit 0 intact, 1 broken)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@app.command("verify")
def verify(
    config: Annotated[
        Path, typer.Option("--config", envvar="RAKSHA_CONFIG", help="Deployment YAML.")
    ] = Path("raksha.yaml"),
) -> None:
    """Walk the chain; name every entry where it breaks. Exit 1 when broken."""
    from raksha.audit.log import AuditLog
    from raksha.config import load_run_config
    from raksha.site.load import storage_url
    from raksha.store.repository import IncidentStore

    cfg = load_run_config(config)
    store = IncidentStore.open(storage_url(cfg))
    try:
        result = AuditLog(store.engine).verify()
    finally:
        store.close()
    if result.ok:
        typer.echo(
            f"audit log ok: {result.entries} entries, head {result.head_seq} "
            f"sha256 {result.head_hash}"
        )
        for action, n in sorted(result.actions.items()):
            typer.echo(f"  {action}: {n}")
        return
    typer.echo(f"audit log BROKEN ({result.entries} entries read):", err=True)
    for p in result.problems:
        typer.echo(f"  {p}", err=True)
    raise typer.Exit(1)
