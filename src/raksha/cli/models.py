"""`raksha models list | verify | fetch`: see which weights are present, check them, get them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from raksha import models as registry
from raksha.errors import ModelError

app = typer.Typer(
    help="Model weights: list, verify, fetch.", no_args_is_help=True, rich_markup_mode=None
)

ModelsOpt = Annotated[
    Path | None,
    typer.Option(
        "--models",
        help="Model directory, searched first (then $RAKSHA_MODELS, ~/.cache/raksha/models).",
        file_okay=False,
    ),
]


def _fail(message: str) -> None:
    print(f"raksha: error: {message}", file=sys.stderr)


@app.command("list")
def list_cmd(
    models: ModelsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the registered models and whether each is present, missing or corrupt."""
    rows = [registry.verify(e.name, models) for e in registry.list_models()]
    if as_json:
        out = [
            {
                "name": st.entry.name,
                "task": st.entry.task,
                "file": st.entry.file,
                "status": st.status,
                "path": None if st.path is None else str(st.path),
                "sha256": st.entry.sha256,
                "size": st.entry.size,
                "license": st.entry.license,
                "source": st.entry.source,
                "fetchable": st.entry.fetch_url is not None,
                "description": st.entry.description,
            }
            for st in rows
        ]
        print(json.dumps(out, indent=2))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    # At 80 columns: name, task, status and the license's first words; the file and the
    # source from 120 columns on (every field: --json).
    wide = console.width >= 120
    table = Table(title="Raksha models", title_justify="left")
    table.add_column("name", no_wrap=True, overflow="ellipsis", max_width=None if wide else 26)
    table.add_column("task", no_wrap=True, min_width=14)
    if wide:
        table.add_column("file", overflow="fold")
    table.add_column("status", no_wrap=True, min_width=7)
    table.add_column(
        "license", overflow="ellipsis", no_wrap=not wide, max_width=None if wide else 20
    )
    if wide:
        table.add_column("source", overflow="fold")
    colour = {"present": "green", "missing": "yellow", "corrupt": "red"}
    for st in rows:
        e = st.entry
        cells = [e.name, e.task]
        if wide:
            cells.append(e.file)
        cells += [f"[{colour[st.status]}]{st.status}[/]", e.license]
        if wide:
            cells.append(_short_source(e))
        table.add_row(*cells)
    console.print(table)
    if not wide:
        console.print("(files and sources: a wider terminal, or --json)", highlight=False)
    searched = ", ".join(str(d) for d in registry.search_dirs(models))
    console.print(f"searched: {searched}", highlight=False, soft_wrap=True)


def _short_source(entry: registry.ModelEntry) -> str:
    """`owner/repo@commit7` for a raw GitHub URL, the URL itself otherwise."""
    if entry.card is not None:
        return f"packaged ({entry.card.name})"
    src = entry.source or "-"
    prefix = "https://raw.githubusercontent.com/"
    if src.startswith(prefix):
        owner, repo, commit, *_ = src[len(prefix) :].split("/")
        return f"{owner}/{repo}@{commit[:7]}"
    return src


@app.command("verify")
def verify_cmd(
    names: Annotated[
        list[str] | None, typer.Argument(help="Models to check (default: all registered).")
    ] = None,
    models: ModelsOpt = None,
) -> None:
    """Check that models are present with the right sha256 (exit 0), else exit 2."""
    wanted = names or [e.name for e in registry.list_models()]
    problems = 0
    for name in wanted:
        try:
            st = registry.verify(name, models)
        except ModelError as err:
            _fail(str(err))
            problems += 1
            continue
        if st.ok:
            print(f"ok       {name}  {st.path}")
        else:
            _fail(st.problem or name)
            problems += 1
    if problems:
        raise typer.Exit(code=2)


@app.command("fetch")
def fetch_cmd(
    names: Annotated[list[str] | None, typer.Argument(help="Models to download.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Fetch every model that has a download address.")
    ] = False,
    models: Annotated[
        Path | None,
        typer.Option(
            "--models",
            help="Where to save (default: $RAKSHA_MODELS, else ~/.cache/raksha/models).",
            file_okay=False,
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Download this one model from URL instead (e.g. a mirror)."),
    ] = None,
) -> None:
    """Download model files and verify their sha256 (needs internet or a --url mirror)."""
    if all_ and names:
        _fail("give model names or --all, not both")
        raise typer.Exit(code=2)
    if all_:
        wanted = [e.name for e in registry.list_models() if e.fetch_url is not None]
    elif names:
        wanted = list(names)
    else:
        _fail("name the models to fetch, or pass --all")
        raise typer.Exit(code=2)
    if url is not None and len(wanted) != 1:
        _fail("--url goes with exactly one model name")
        raise typer.Exit(code=2)
    dest = models if models is not None else registry.default_models_dir()
    problems = 0
    for name in wanted:
        try:
            path = registry.fetch(name, dest, url=url)
        except ModelError as err:
            _fail(str(err))
            problems += 1
            continue
        print(f"ok       {name}  {path}")
    if problems:
        raise typer.Exit(code=2)
