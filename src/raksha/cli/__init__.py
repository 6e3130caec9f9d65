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
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from raksha.cli import analyze, models

    app.command("analyze")(analyze.analyze)
    app.add_typer(models.app, name="models")
    try:  # training and evaluation commands (issue: our own expression model)
        from raksha.cli import train
    except ImportError:  # pragma: no cover - only while that module is being written
        return
    app.add_typer(train.train_app, name="train")
    app.add_typer(train.eval_app, name="eval")


_register()


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        # With standalone_mode=False click returns the code of `typer.Exit(code)`
        # instead of exiting; pass it on.
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc != 0:
            sys.exit(rc)
    except RakshaError as err:
        print(f"raksha: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("raksha: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except BaseException as err:  # click usage errors and the like
        import click

        if isinstance(err, click.exceptions.Exit):
            sys.exit(err.exit_code)
        if isinstance(err, click.ClickException):
            print(f"raksha: error: {err.format_message()}", file=sys.stderr)
            sys.exit(err.exit_code)
        if isinstance(err, click.exceptions.Abort):
            print("raksha: aborted", file=sys.stderr)
            sys.exit(1)
        raise
