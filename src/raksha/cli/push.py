"""`raksha push keygen`: a VAPID key pair for Web Push (alerts.push)."""

from __future__ import annotations

import base64

import typer

app = typer.Typer(help="Web Push (VAPID) keys.", no_args_is_help=True, rich_markup_mode=None)


@app.command("keygen")
def keygen() -> None:
    """Print a new VAPID private key (put it in the variable `alerts.push.vapid_key_env`
    names, e.g. RAKSHA_VAPID_KEY, readable by the service user only) and its public key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from raksha.services.push import public_key_of

    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    private = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    typer.echo(f"RAKSHA_VAPID_KEY={private}")
    typer.echo(f"# public (application server) key: {public_key_of(private)}")
