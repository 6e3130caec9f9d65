"""`raksha models list | verify | fetch` (being written)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Model weights: list, verify, fetch.", no_args_is_help=True)
