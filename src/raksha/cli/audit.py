"""`raksha audit verify | checkpoint | keygen`: check the audit log's hash chain (exit 0
intact, 1 broken), sign its head into a checkpoint file kept outside the database, and make
the signing key."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from raksha.cli.options import DEFAULT_CONFIG, ConfigOpt

if TYPE_CHECKING:
    from raksha.store.repository import IncidentStore

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True, rich_markup_mode=None)


@app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Private key file to write (PEM, 0600).")],
) -> None:
    """Make an Ed25519 key for signing checkpoints; prints the public key to keep with
    whoever verifies (and never next to the database)."""
    from raksha.audit.checkpoint import new_private_key, private_pem, public_pem
    from raksha.errors import RakshaError

    if out.exists():
        raise RakshaError(f"{out} exists; not overwriting a signing key")
    key = new_private_key()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem(key))
    typer.echo(public_pem(key.public_key()).decode().rstrip())


@app.command("checkpoint")
def checkpoint(
    file: Annotated[Path, typer.Option("--file", help="Checkpoint file (JSON lines, appended).")],
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key (raksha audit keygen).")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Sign the chain's head now and append it to the checkpoint file. Run it on a schedule
    (a systemd timer, cron) and keep the file off the database's machine."""
    from raksha.audit.checkpoint import load_private_key, write_checkpoint
    from raksha.audit.log import AuditLog

    signing = load_private_key(key)
    store = _store(config)
    try:
        cp = write_checkpoint(AuditLog(store.engine), signing, file)
    finally:
        store.close()
    typer.echo(f"checkpoint: head {cp.seq} sha256 {cp.hash} at {cp.at.isoformat()}")


def _store(config: Path) -> IncidentStore:
    """The store as it is: no migration (an auditor's read-only role must do, and checking
    changes nothing)."""
    from raksha.config import load_run_config
    from raksha.site.load import storage_url
    from raksha.store.engine import make_engine
    from raksha.store.repository import IncidentStore

    return IncidentStore(make_engine(storage_url(load_run_config(config))))


@app.command("verify")
def verify(
    config: ConfigOpt = DEFAULT_CONFIG,
    checkpoints: Annotated[
        Path | None,
        typer.Option("--checkpoints", help="Also check the signed checkpoints in this file."),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The checkpoints' public key (PEM).")
    ] = None,
) -> None:
    """Walk the chain; name every entry where it breaks. With `--checkpoints`, also find a
    truncated or recomputed chain. Exit 1 when broken."""
    from raksha.audit.log import AuditLog
    from raksha.errors import RakshaError

    if (checkpoints is None) != (public_key is None):
        raise RakshaError("give both --checkpoints and --public-key, or neither")
    store = _store(config)
    try:
        log = AuditLog(store.engine)
        result = log.verify()
        if checkpoints is not None and public_key is not None:
            from raksha.audit.checkpoint import check_checkpoints, load_public_key

            extra = check_checkpoints(log, checkpoints, load_public_key(public_key))
            result = dataclasses.replace(
                result, ok=result.ok and not extra, problems=[*result.problems, *extra]
            )
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
