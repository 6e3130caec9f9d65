"""`raksha evidence`: retention (`purge`), legal holds (`hold`, `release`, `holds`) and the
signed case export (`export`, `verify`, `keygen-signing`). Every change is audited."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from raksha.cli import evidence_keys
from raksha.cli.options import DEFAULT_CONFIG, ConfigOpt

if TYPE_CHECKING:
    from raksha.config import RunConfig
    from raksha.store.repository import IncidentStore

app = typer.Typer(help="Evidence files.", no_args_is_help=True, rich_markup_mode=None)
evidence_keys.register(app)  # keygen, rotate-key

By = Annotated[str, typer.Option("--by", help="Who does it (your name, for the audit log).")]
Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")]
IncidentArg = Annotated[str, typer.Argument(help="The incident's id.")]


def _open(config: Path) -> tuple[RunConfig, IncidentStore]:
    from raksha.config import load_run_config
    from raksha.site.load import storage_url
    from raksha.store.repository import IncidentStore

    cfg = load_run_config(config)
    return cfg, IncidentStore.open(storage_url(cfg))


@app.command("purge")
def purge(
    config: ConfigOpt = DEFAULT_CONFIG,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
) -> None:
    """Delete the evidence of incidents older than evidence.retention_days (cases still
    CONFIRMED or DISPATCHED, and incidents under a legal hold, keep theirs), and files no
    incident refers to (left by a crash, older than 10 minutes). Each deletion is written
    to the audit log. `raksha run` and `raksha serve` also do this every
    evidence.purge_every_s seconds."""
    from raksha.services.retention import purge_expired_evidence, sweep_orphaned_evidence
    from raksha.services.retention_timer import spool_path, spooled_evidence

    cfg, store = _open(config)
    try:
        report = purge_expired_evidence(
            store, cfg.evidence.dir, cfg.evidence.retention_days, dry_run=dry_run
        )
        orphans = sweep_orphaned_evidence(
            store, cfg.evidence.dir, keep=spooled_evidence(spool_path(cfg)), dry_run=dry_run
        )
    finally:
        store.close()
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"{verb} {report.files_deleted} file(s), {report.bytes_deleted} bytes, of "
        f"{len(report.incidents)} incident(s) opened before {report.cutoff:%Y-%m-%d %H:%M}Z; "
        f"{report.kept_active} active case(s) keep their evidence; {report.kept_held} "
        f"incident(s) kept for a legal hold; {verb} {orphans.files_deleted} file(s) no "
        "incident refers to"
    )


@app.command("hold")
def hold(
    incident: IncidentArg,
    case: Annotated[str, typer.Option("--case", help="The case number (FIR, court case).")],
    reason: Reason,
    by: By,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Place a legal hold: the incident's evidence is never purged while it is in force.
    Says how many evidence files are still on disk (0 when retention deleted them already:
    the hold is recorded all the same)."""
    from raksha.audit.log import AuditLog
    from raksha.cli.users import cli_actor
    from raksha.services.holds import HoldService

    _, store = _open(config)
    try:
        service = HoldService(store, AuditLog(store.engine))
        h = service.place_local(by, incident, case_number=case, reason=reason, via=cli_actor())
        left = service.evidence_left_local(incident)
    finally:
        store.close()
    typer.echo(f"hold {h.id} placed on incident {incident} for case {h.case_number} by {by}")
    typer.echo(left.message)


@app.command("release")
def release(
    incident: IncidentArg,
    reason: Reason,
    by: By,
    case: Annotated[
        str | None, typer.Option("--case", help="Lift only this case's hold (default: all).")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Lift the incident's legal holds in force; the retention policy applies again."""
    from raksha.audit.log import AuditLog
    from raksha.cli.users import cli_actor
    from raksha.services.holds import HoldService

    _, store = _open(config)
    try:
        lifted = HoldService(store, AuditLog(store.engine)).lift_local(
            by, incident, reason=reason, via=cli_actor(), case_number=case
        )
    finally:
        store.close()
    cases = ", ".join(h.case_number for h in lifted)
    typer.echo(f"lifted {len(lifted)} hold(s) on incident {incident} (case {cases}) by {by}")


@app.command("holds")
def holds(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """List the legal holds in force."""
    from raksha.audit.log import AuditLog
    from raksha.services.holds import HoldService

    _, store = _open(config)
    try:
        found = HoldService(store, AuditLog(store.engine)).in_force()
    finally:
        store.close()
    if not found:
        typer.echo("no legal hold in force")
        return
    for h in found:
        typer.echo(
            f"{h.incident_id}  hold {h.id}  case {h.case_number}  by {h.placed_by}  "
            f"{h.placed_at:%Y-%m-%d %H:%M}Z  {h.reason}"
        )


@app.command("keygen-signing")
def keygen_signing(
    out: Annotated[Path, typer.Option("--out", help="Private key file to write (PEM, 0600).")],
) -> None:
    """Make the deployment's Ed25519 key for signing case exports (set
    evidence.signing_key_file to it); prints the public fingerprint to publish."""
    from raksha.services.case_signing import write_signing_key

    fp = write_signing_key(out)
    typer.echo(f"wrote {out}; public key fingerprint {fp}")


@app.command("export")
def export(
    incident: IncidentArg,
    out: Annotated[Path, typer.Option("--out", help="The zip to write.")],
    by: Annotated[
        str | None, typer.Option("--by", help="Who exports (default: this OS account).")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Write the incident's signed case export: its evidence decrypted, the record, history,
    audit entries, model, a certificate (BSA 2023 s.63 Part A) and a signed manifest.
    Audited as evidence.exported."""
    from raksha.audit.log import AuditLog
    from raksha.cli.users import cli_actor
    from raksha.errors import RakshaError
    from raksha.incidents.evidence import EvidenceWriter
    from raksha.services.case_export import CaseExporter
    from raksha.services.case_signing import load_signing_key

    if out.exists():
        raise RakshaError(f"{out} exists; not overwriting")
    cfg, store = _open(config)
    try:
        load_signing_key(cfg.evidence.signing_key_file)  # fail before any work
        found = store.get_incident(incident)
        if found is None:
            raise RakshaError(f"no incident {incident}")
        reader = EvidenceWriter(
            cfg.evidence.dir, key_env=cfg.evidence.key_env, key_file=cfg.evidence.key_file
        )
        exporter = CaseExporter(
            store, AuditLog(store.engine), reader, cfg.evidence.signing_key_file
        )
        result = exporter.export_local(by or cli_actor(), found, via=cli_actor())
    finally:
        store.close()
    try:
        out.write_bytes(result.data)
    except OSError as exc:
        raise RakshaError(f"cannot write {out}: {exc.strerror or exc}") from None
    typer.echo(
        f"wrote {out}: {result.files} file(s), manifest sha256 {result.manifest_sha256}, "
        f"signed by {result.fingerprint}"
    )


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="The case export (zip).")],
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="Trust this public key (PEM) of the deployment."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Trust the key of this deployment config (its evidence.signing_key_file).",
        ),
    ] = None,
    fingerprint: Annotated[
        str | None,
        typer.Option("--fingerprint", help="Trust the key with this published fingerprint."),
    ] = None,
) -> None:
    """Check a case export: the manifest's signature, then every file's SHA-256. Exit 0 when
    all is as signed by a key you trust (--public-key, --config or --fingerprint), 1 naming
    each file altered, missing or extra (or a bad signature), 2 when all is as signed but
    by a key nobody vouched for (the one inside the zip, which a forger can replace)."""
    from raksha.errors import RakshaError
    from raksha.services.case_export import TrustedKey, verify_case_export

    given = [
        o
        for o, v in (
            ("--public-key", public_key),
            ("--config", config),
            ("--fingerprint", fingerprint),
        )
        if v is not None
    ]
    if len(given) > 1:
        raise RakshaError(f"give one key to trust, not {' and '.join(given)}")
    trust: TrustedKey | None = None
    if public_key is not None:
        trust = TrustedKey.from_public_key_file(public_key)
    elif config is not None:
        from raksha.config import load_run_config

        cfg = load_run_config(config)
        trust = TrustedKey.from_signing_key_file(cfg.evidence.signing_key_file, str(config))
    elif fingerprint is not None:
        trust = TrustedKey.from_fingerprint(fingerprint)
    report = verify_case_export(file, trust=trust)
    if trust is not None:
        typer.echo(f"checked against the trusted key {trust.fingerprint} ({trust.source})")
    for problem in report.problems:
        typer.echo(f"FAILED: {problem}", err=True)
    if report.problems:
        if not report.trusted and report.fingerprint is not None:
            typer.echo(f"(signed by the key inside the export, {report.fingerprint})", err=True)
        raise typer.Exit(1)
    if not report.trusted:
        typer.echo(
            f"UNTRUSTED: signed by a key nobody vouched for (fingerprint {report.fingerprint}): "
            "the files are as that key signed them, but anyone can make a key and sign "
            "altered files; give --public-key, --config or --fingerprint of the deployment",
            err=True,
        )
        raise typer.Exit(2)
    typer.echo(
        f"verified: incident {report.incident_id}, {report.files_checked} file(s) as signed "
        f"by {report.fingerprint}"
    )
