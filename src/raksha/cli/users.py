"""`raksha users add|list|disable|enable|passwd|totp`: dashboard accounts (there are no
built-in ones)."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from raksha.cli.options import DEFAULT_CONFIG, ConfigOpt
from raksha.errors import RakshaError
from raksha.site.load import storage_url

app = typer.Typer(help="Dashboard users and roles.", no_args_is_help=True, rich_markup_mode=None)

PASSWORD_ENV = "RAKSHA_PASSWORD"


def cli_actor() -> str:
    """Who did it, for the audit log: the operating-system account running the command."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no passwd entry
        name = "unknown"
    return f"cli:{name}"


def _open(config: Path) -> tuple[object, list[str]]:
    from raksha.config import load_run_config
    from raksha.store.repository import IncidentStore

    cfg = load_run_config(config)
    return IncidentStore.open(storage_url(cfg)), [s.id for s in cfg.stations]


def _password() -> str:
    value = os.environ.get(PASSWORD_ENV)
    if value:
        return value
    if not os.isatty(0):
        raise RakshaError(f"no password: set {PASSWORD_ENV} or run in a terminal to be asked")
    first = getpass.getpass("Password: ")
    again = getpass.getpass("Repeat password: ")
    if first != again:
        raise RakshaError("the two passwords differ")
    return first


@app.command("add")
def add(
    username: Annotated[str, typer.Option("--username", help="Login name.")],
    role: Annotated[
        str,
        typer.Option("--role", help="operator | supervisor | control_room | auditor | admin"),
    ],
    config: ConfigOpt = DEFAULT_CONFIG,
    station: Annotated[
        str | None, typer.Option("--station", help="Station id (operator, supervisor).")
    ] = None,
) -> None:
    """Add a user; the password comes from RAKSHA_PASSWORD or a prompt."""
    from raksha.audit.log import AuditLog
    from raksha.auth.users import UserStore, parse_role
    from raksha.store.repository import IncidentStore

    parsed = parse_role(role)
    store, stations = _open(config)
    assert isinstance(store, IncidentStore)
    try:
        user = UserStore(store.engine).add(
            username, parsed, _password(), station_id=station, known_stations=stations or None
        )
        AuditLog(store.engine).append(
            cli_actor(),
            "user.add",
            target=f"user:{user.username}",
            station_id=user.station_id,
            details={"role": user.role.value},
        )
    finally:
        store.close()
    where = f" at station {user.station_id}" if user.station_id else ""
    typer.echo(f"added {user.role.value} {user.username}{where}")


@app.command("list")
def list_users(
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List users (never their password hashes)."""
    from raksha.auth.users import UserStore
    from raksha.store.repository import IncidentStore

    store, _ = _open(config)
    assert isinstance(store, IncidentStore)
    try:
        users = UserStore(store.engine).list()
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([u.to_json() for u in users], indent=1))
        return
    if not users:
        typer.echo("no users yet; add one with: raksha users add --username U --role R")
    for u in users:
        state = "disabled" if u.disabled else "active"
        typer.echo(f"{u.username}\t{u.role.value}\t{u.station_id or '-'}\t{state}")


def _set_disabled(config: Path, username: str, disabled: bool) -> None:
    from raksha.audit.log import AuditLog
    from raksha.auth.sessions import SessionStore
    from raksha.auth.users import UserStore
    from raksha.store.repository import IncidentStore

    store, _ = _open(config)
    assert isinstance(store, IncidentStore)
    try:
        user = UserStore(store.engine).set_disabled(username, disabled)
        ended = SessionStore(store.engine).end_all_for(user.id) if disabled else 0
        AuditLog(store.engine).append(
            cli_actor(),
            "user.disable" if disabled else "user.enable",
            target=f"user:{user.username}",
            details={"sessions_ended": ended},
        )
    finally:
        store.close()
    typer.echo(f"{'disabled' if disabled else 'enabled'} {username}")


@app.command("disable")
def disable(
    username: Annotated[str, typer.Argument(help="Login name.")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Disable a user and end their sessions at once."""
    _set_disabled(config, username, True)


@app.command("enable")
def enable(
    username: Annotated[str, typer.Argument(help="Login name.")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Enable a disabled user again."""
    _set_disabled(config, username, False)


@app.command("passwd")
def passwd(
    username: Annotated[str, typer.Argument(help="Login name.")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Set a user's password (from RAKSHA_PASSWORD or a prompt) and end their sessions: for
    an officer who forgot theirs, or one that may be known to someone else."""
    from raksha.audit.log import AuditLog
    from raksha.auth.sessions import SessionStore
    from raksha.auth.users import UserStore
    from raksha.store.repository import IncidentStore

    store, _ = _open(config)
    assert isinstance(store, IncidentStore)
    try:
        user = UserStore(store.engine).set_password(username, _password())
        ended = SessionStore(store.engine).end_all_for(user.id)
        AuditLog(store.engine).append(
            cli_actor(),
            "user.password_set",
            target=f"user:{user.username}",
            details={"sessions_ended": ended},
        )
    finally:
        store.close()
    typer.echo(f"new password set for {username}; {ended} session(s) ended")


@app.command("totp")
def totp(
    username: Annotated[str, typer.Argument(help="Login name.")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Set up (or replace) a user's second factor: prints the secret and the otpauth:// link
    for their authenticator app, once. Admin, supervisor and control-room accounts need one
    to log in."""
    from raksha.audit.log import AuditLog
    from raksha.auth.totp import provisioning_uri
    from raksha.auth.users import UserStore
    from raksha.store.repository import IncidentStore

    store, _ = _open(config)
    assert isinstance(store, IncidentStore)
    try:
        secret = UserStore(store.engine).enroll_totp(username)
        AuditLog(store.engine).append(cli_actor(), "user.totp_enrolled", target=f"user:{username}")
    finally:
        store.close()
    typer.echo(f"second factor for {username} (show it to them once; it is not shown again):")
    typer.echo(f"  secret: {secret}")
    typer.echo(f"  link:   {provisioning_uri(secret, username)}")
