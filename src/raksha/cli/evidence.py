"""`raksha evidence purge`: delete evidence past its retention period (audited)."""

from __future__ import annotations

from typing import Annotated

import typer

from raksha.cli.options import DEFAULT_CONFIG, ConfigOpt

app = typer.Typer(help="Evidence files.", no_args_is_help=True, rich_markup_mode=None)


@app.command("purge")
def purge(
    config: ConfigOpt = DEFAULT_CONFIG,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
) -> None:
    """Delete the evidence of incidents older than evidence.retention_days (cases still
    CONFIRMED or DISPATCHED keep theirs), and files no incident refers to (left by a crash,
    older than 10 minutes). Each deletion is written to the audit log."""
    from raksha.config import load_run_config
    from raksha.services.retention import purge_expired_evidence, sweep_orphaned_evidence
    from raksha.site.load import storage_url
    from raksha.store.repository import IncidentStore

    cfg = load_run_config(config)
    store = IncidentStore.open(storage_url(cfg))
    try:
        report = purge_expired_evidence(
            store, cfg.evidence.dir, cfg.evidence.retention_days, dry_run=dry_run
        )
        orphans = sweep_orphaned_evidence(store, cfg.evidence.dir, dry_run=dry_run)
    finally:
        store.close()
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"{verb} {report.files_deleted} file(s), {report.bytes_deleted} bytes, of "
        f"{len(report.incidents)} incident(s) opened before {report.cutoff:%Y-%m-%d %H:%M}Z; "
        f"{report.kept_active} active case(s) keep their evidence; {verb} "
        f"{orphans.files_deleted} file(s) no incident refers to"
    )
