"""The `raksha` command line. Each command group lives in its own module."""

from __future__ import annotations

import logging
import sys

import typer

from raksha.errors import RakshaError

app = typer.Typer(
    name="raksha",
    help="Raksha: accountable distress detection on city cameras.",
    no_args_is_help=True,
    # Plain help: fits 80 columns, no `<bool>` after every flag.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from raksha import __version__

        typer.echo(f"raksha {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """Raksha: accountable distress detection on city cameras."""


def _register() -> None:
    from raksha.cli import (
        analyze,
        audit,
        config_cmd,
        demo,
        evidence,
        models,
        run,
        serve,
        train,
        users,
    )

    app.command("analyze")(analyze.analyze)
    app.command("run")(run.run)
    app.command("demo")(demo.demo)
    app.command("serve")(serve.serve)
    app.add_typer(run.incidents_app, name="incidents")
    app.add_typer(evidence.app, name="evidence")
    app.add_typer(users.app, name="users")
    app.add_typer(audit.app, name="audit")
    from raksha.cli import push, report, units

    app.add_typer(report.app, name="report")
    app.add_typer(push.app, name="push")
    app.add_typer(units.app, name="units")
    from raksha.cli import watchlist

    app.add_typer(watchlist.app, name="watchlist")
    app.add_typer(models.app, name="models")
    app.add_typer(config_cmd.app, name="config")
    app.add_typer(train.train_app, name="train")
    app.add_typer(train.eval_app, name="eval")
    from raksha.cli import eval_events, eval_watchlist, train_soup  # noqa: F401  (more commands)


_register()


LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.WARNING) -> None:
    """Log to stderr through `RedactingFormatter`: no line (message, arguments, traceback)
    can carry a password, token or query secret."""
    from raksha.redact import RedactingFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback.

    Usage errors (unknown option, missing argument) are reported by typer itself, also with
    exit code 2.
    """
    configure_logging()
    try:
        app()
    except RakshaError as err:
        print(f"raksha: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("raksha: interrupted", file=sys.stderr)
        sys.exit(130)
