"""`raksha evidence keygen` and `raksha evidence rotate-key`: the keys evidence is encrypted
with (registered on the `raksha evidence` app by `register`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from raksha.cli.options import DEFAULT_CONFIG, ConfigOpt
from raksha.errors import RakshaError


def keygen(
    out: Annotated[Path, typer.Option("--out", help="The key file to write (mode 0600).")],
) -> None:
    """Write a new evidence key file: set evidence.key_file to it. Keep a copy somewhere safe
    (offline): without the key the evidence cannot be read."""
    from raksha.incidents.evidence import new_key

    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RakshaError(f"{out} exists; a key file is never overwritten") from None
    except OSError as exc:
        raise RakshaError(f"cannot write {out}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(new_key() + b"\n")
    typer.echo(f"wrote a new evidence key to {out}; set evidence.key_file: {out.resolve()}")


def rotate_key(
    config: ConfigOpt = DEFAULT_CONFIG,
    new: Annotated[
        bool,
        typer.Option(
            "--new",
            help="First put a new key at the head of evidence.key_file (the old stay for reading).",
        ),
    ] = False,
    retire: Annotated[
        bool,
        typer.Option(
            "--retire",
            help="Afterwards drop the old keys from the key file (only when every file is "
            "under the new one).",
        ),
    ] = False,
) -> None:
    """Re-encrypt every evidence file under the first key (and encrypt files stored in the
    clear). Safe to stop and run again. Rotation: `rotate-key --new`, then (once `raksha
    run`/`serve` have picked up the new key) `rotate-key --retire`, which drops the old
    keys only when no file under the evidence folder needs them."""
    from raksha.audit.log import AuditLog
    from raksha.config import load_run_config
    from raksha.services.evidence_keys import add_key, retire_old_keys, rotate_evidence
    from raksha.site.load import storage_url
    from raksha.store.repository import IncidentStore

    cfg = load_run_config(config)
    if not cfg.evidence.encrypt:
        raise RakshaError("evidence.encrypt is false: turn it on before rotating keys")
    if new and retire:
        raise RakshaError(
            "--new and --retire go in separate runs: restart `raksha run`/`serve` (or let them "
            "capture once: they reload a changed key file) between them"
        )
    if new:
        count = add_key(cfg.evidence)
        typer.echo(f"a new key heads {cfg.evidence.key_file} ({count} keys in it)")
    store = IncidentStore.open(storage_url(cfg))
    try:
        report = rotate_evidence(store, cfg.evidence, AuditLog(store.engine))
        typer.echo(
            f"{report.files} evidence file(s): {report.rekeyed} re-encrypted, "
            f"{report.encrypted} encrypted (were in the clear), {report.current} already under "
            f"the current key, {report.missing} missing on disk"
        )
        for problem in report.failed:
            typer.echo(f"  not rotated: {problem}", err=True)
        if report.failed:
            raise typer.Exit(1)
        if retire:
            dropped = retire_old_keys(cfg.evidence)
            typer.echo(
                f"dropped {dropped} old key(s) from {cfg.evidence.key_file} (kept in "
                f"{cfg.evidence.key_file}.retired: store it offline or destroy it by policy)"
            )
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.command("keygen")(keygen)
    app.command("rotate-key")(rotate_key)
