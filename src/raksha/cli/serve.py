"""`raksha serve`: the station dashboard (API + web pages) over the incident store."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from raksha.cli.options import DEFAULT_CONFIG, ConfigOpt
from raksha.errors import RakshaError


def serve(
    config: ConfigOpt = DEFAULT_CONFIG,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
    certfile: Annotated[
        Path | None, typer.Option("--ssl-certfile", help="Serve https with this certificate.")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile", help="Its private key.")] = None,
    secure_cookies: Annotated[
        bool | None,
        typer.Option(
            "--secure-cookies/--no-secure-cookies",
            help="Force the Secure cookie flag (default: on when the request came over https).",
        ),
    ] = None,
    list_audit_every_s: Annotated[
        float,
        typer.Option(
            "--list-audit-every-s",
            min=0,
            help="One incident.list audit entry per user and filter at most this often "
            "(seconds); 0 audits every list. Views, evidence and actions are always audited.",
        ),
    ] = 300.0,
) -> None:
    """Serve the dashboard: log in with a user made by `raksha users add`."""
    import uvicorn

    from raksha.api.app import create_app
    from raksha.api.settings import ApiSettings
    from raksha.config import load_run_config

    if (certfile is None) != (keyfile is None):
        raise RakshaError("give both --ssl-certfile and --ssl-keyfile, or neither")
    _check_listen(host, port, certfile, keyfile)
    cfg = load_run_config(config)
    digest = hashlib.sha256(config.read_bytes()).hexdigest()
    settings = ApiSettings(
        secure_cookies=True if certfile is not None else secure_cookies,
        config_path=str(config),
        list_audit_every_s=list_audit_every_s,
        # The escalation timer and the MQTT intake run here as well as in `raksha run`:
        # each deadline fires once whichever process sees it first.
        background_jobs=True,
    )
    app = create_app(cfg, settings=settings)
    ctx = app.state.raksha
    record_config(ctx, str(config), digest)
    ctx.sessions.purge_expired()
    if not ctx.users.list():
        typer.echo(
            "no users yet: add one with `raksha users add --config FILE --username U --role R`",
            err=True,
        )
    warning = plain_http_warning(host, certfile is not None)
    if warning:
        typer.echo(warning, err=True)
    scheme = "https" if certfile else "http"
    typer.echo(f"Raksha dashboard on {scheme}://{host}:{port}/ (store {cfg.storage.display_url})")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=UVICORN_LOGGING,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        proxy_headers=False,
    )


#: uvicorn's own loggers, formatted through `RedactingFormatter` (a request line or an error
#: may echo a URL with a token in its query).
UVICORN_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "redacted": {
            "()": "raksha.redact.RedactingFormatter",
            "fmt": "%(levelname)s %(name)s: %(message)s",
        }
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "redacted",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}


def plain_http_warning(host: str, tls: bool) -> str | None:
    """A warning when the dashboard would serve plain http beyond this machine (sessions,
    incidents and evidence would cross the network readable); None otherwise."""
    import ipaddress

    if tls:
        return None
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        loopback = False
    if loopback:
        return None
    return (
        f"warning: serving plain http on {host}: logins, incidents and evidence cross the "
        "network unencrypted; give --ssl-certfile and --ssl-keyfile, or listen on 127.0.0.1 "
        "behind a TLS proxy"
    )


def _check_listen(host: str, port: int, certfile: Path | None, keyfile: Path | None) -> None:
    """Fail with one clear line (before anything is recorded) when the address is taken or
    the certificate and key cannot be loaded, instead of the server's own traceback."""
    import socket
    import ssl

    if certfile is not None and keyfile is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile)
        except ssl.SSLError:
            raise RakshaError(
                f"cannot load TLS certificate {certfile} with key {keyfile}: "
                "not a matching PEM certificate and private key"
            ) from None
        except OSError as err:
            reason = err.strerror or err
            raise RakshaError(
                f"cannot load TLS certificate {certfile} with key {keyfile}: {reason}"
            ) from None
    try:
        socket.create_server((host, port)).close()
    except OSError as err:
        reason = str(err.strerror or err).split(" (while attempting")[0]
        raise RakshaError(f"cannot listen on {host}:{port}: {reason}") from None


def record_config(ctx: object, path: str, digest: str) -> None:
    """Audit the configuration in force: `config.loaded`, or `config.changed` when its SHA-256
    differs from the one recorded at the previous start."""
    from raksha.api.context import ApiContext
    from raksha.cli.users import cli_actor

    assert isinstance(ctx, ApiContext)
    last = [
        e
        for e in ctx.audit.entries(action="config.loaded", newest_first=True, limit=1)
        + ctx.audit.entries(action="config.changed", newest_first=True, limit=1)
    ]
    last.sort(key=lambda e: e.seq, reverse=True)
    previous = str(last[0].details.get("sha256")) if last else None
    action = "config.changed" if previous is not None and previous != digest else "config.loaded"
    ctx.audit.append(
        cli_actor(),
        action,
        target=f"config:{path}",
        details={"sha256": digest, "previous_sha256": previous},
    )
