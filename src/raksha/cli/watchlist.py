"""`raksha watchlist add|list|remove|expire|purge`: the face watchlist's entries
(docs/watchlist.md).

Adding needs a config with a `watchlist:` section whose measurement passes the gate
(`raksha.site.watchlist`) and an authorisation in force. Listing, removing, expiring and
purging take data off, so they work without the section and without a passing measurement
(a list switched off must still be deletable). Every change is audited.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from raksha.cli.options import DEFAULT_CONFIG, ConfigOpt
from raksha.errors import RakshaError

if TYPE_CHECKING:
    from raksha.services.watchlist import WatchlistService
    from raksha.store.repository import IncidentStore

app = typer.Typer(
    help="The face watchlist: enrol, list, remove and expire people (off by default).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

By = Annotated[str, typer.Option("--by", help="Your name (recorded in the audit log).")]
Reason = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")]
Models = Annotated[
    Path | None, typer.Option("--models", help="Model directory (else RAKSHA_MODELS).")
]


def _open(config: Path, *, enrol: bool = False) -> tuple[IncidentStore, WatchlistService]:
    """The store and the service; `enrol` False: without the measurement gate and keys
    (for the commands that take data off)."""
    from raksha.config import RunConfig, load_config
    from raksha.services.deployment import configure_store
    from raksha.services.watchlist import WatchlistService, watchlist_keys
    from raksha.site.load import load_site, storage_url
    from raksha.store.repository import IncidentStore

    cfg = load_site(load_config(config, RunConfig), config.parent, check_watchlist=enrol)
    keys: tuple[bytes, ...] = ()
    if enrol:
        if cfg.watchlist is None:
            raise RakshaError(f"{config}: the watchlist is off (no `watchlist:` section)")
        keys = watchlist_keys(cfg)
    store = configure_store(IncidentStore.open(storage_url(cfg)), cfg)
    return store, WatchlistService(store.engine, cfg, keys)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RakshaError(f"--review-date {value!r}: expected YYYY-MM-DD") from None


@app.command("add")
def add(
    photos: Annotated[list[Path], typer.Argument(help="Photos of the person (JPEG/PNG).")],
    person_id: Annotated[str, typer.Option("--id", help="The entry's id (e.g. a case id).")],
    category: Annotated[str, typer.Option("--category", help="e.g. wanted, missing.")],
    reason: Reason,
    source: Annotated[str, typer.Option("--source", help="Where the photos come from.")],
    by: By,
    review_date: Annotated[
        str, typer.Option("--review-date", help="YYYY-MM-DD: removed by `expire` after it.")
    ],
    config: ConfigOpt = DEFAULT_CONFIG,
    models: Models = None,
) -> None:
    """Enrol a person: each photo is quality-checked; only encrypted embeddings and one small
    encrypted thumbnail are stored, never the photos."""
    from raksha.services.watchlist import FaceTools

    day = _day(review_date)
    for p in photos:
        if not p.is_file():
            raise RakshaError(f"photo not found: {p}")
    store, wl = _open(config, enrol=True)
    try:
        person = wl.enrol(
            person_id,
            category=category,
            reason=reason,
            image_source=source,
            by=by,
            review_date=day,
            photos=photos,
            faces=FaceTools.load(models),
        )
    finally:
        store.close()
    typer.echo(f"enrolled {person.id}: {person.templates} template(s), review {day.isoformat()}")


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


@app.command("list")
def list_people(
    config: ConfigOpt = DEFAULT_CONFIG,
    removed: Annotated[bool, typer.Option("--removed", help="Include removed entries.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The listed people (never their templates)."""
    from raksha.services.watchlist import review_day

    store, wl = _open(config)
    try:
        people = wl.people(include_removed=removed)
    finally:
        store.close()
    zone = wl.site.timezone
    rows = [
        {
            "id": p.id,
            "category": p.category,
            "reason": p.reason,
            "image_source": p.image_source,
            "added_by": p.added_by,
            "added_at": _iso(p.added_at),
            "review_date": review_day(p.review_date, zone).isoformat(),
            "templates": p.templates,
            "removed_at": _iso(p.removed_at),
            "removed_by": p.removed_by,
        }
        for p in people
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    typer.echo(f"{len(rows)} listed")
    for r in rows:
        gone = f"  removed {r['removed_at']} by {r['removed_by']}" if r["removed_at"] else ""
        typer.echo(
            f"{r['id']}  {r['category']}  review {r['review_date']}  added by {r['added_by']}"
            f"  {r['templates']} template(s){gone}"
        )


@app.command("remove")
def remove(
    person_id: Annotated[str, typer.Argument(help="The entry's id.")],
    by: By,
    reason: Reason,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Take a person off the list; their templates are deleted."""
    store, wl = _open(config)
    try:
        deleted = wl.remove(person_id, by=by, reason=reason)
    finally:
        store.close()
    typer.echo(f"removed {person_id}: {deleted} template(s) deleted")


@app.command("expire")
def expire(
    config: ConfigOpt = DEFAULT_CONFIG,
    by: Annotated[str, typer.Option("--by", help="Recorded in the audit log.")] = "system",
) -> None:
    """Remove every entry whose review date has passed, and delete the probe thumbnails of
    alerts closed more than evidence.retention_days ago."""
    store, wl = _open(config)
    try:
        gone = wl.expire(by=by)
        dropped = wl.drop_old_thumbnails(by=by)
    finally:
        store.close()
    typer.echo(f"expired {len(gone)}: {', '.join(gone)}" if gone else "expired 0")
    if dropped:
        typer.echo(f"deleted {dropped} probe thumbnail(s) of closed alerts past retention")


@app.command("purge")
def purge(
    by: By,
    reason: Reason,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Delete every template of the list (the people rows stay, marked removed, as the
    record); works with the watchlist switched off."""
    store, wl = _open(config)
    try:
        deleted = wl.purge(by=by, reason=reason)
    finally:
        store.close()
    typer.echo(f"purged the watchlist: {deleted} template(s) deleted")
