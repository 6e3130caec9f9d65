"""Evidence is deleted on schedule: pictures are kept only as long as the policy says; and
no picture is kept that no incident refers to.

Policy (documented in docs/privacy.md):
- evidence of an incident older than `retention_days` is deleted from disk, unless the case is
  still being worked (CONFIRMED or DISPATCHED): such evidence is kept until the case is
  resolved or dismissed and then follows the same rule;
- evidence under a legal hold (`raksha.services.holds`) is never deleted while the hold is in
  force, whatever its age;
- the incident row, its history and the evidence *hashes* stay, so the record of what was
  captured and who saw it survives the pictures;
- every deletion is appended to the audit log as `evidence.purged`, naming each file deleted
  with its recorded SHA-256 (of the stored bytes) and content SHA-256 (of the plain picture);
- the pixelated snapshot of a camera alert cleared more than `retention_days` ago is deleted
  from its row (audited as `camera.retention`, with the alerts' ids); the row stays.

Each incident is purged in two steps. First, inside a transaction holding its row lock
(`raksha.store.holds`), the hold is re-checked (a hold placed meanwhile wins) and the
`evidence.purged` entry naming the files is written and committed; only then are the files
deleted. So no file is ever deleted without its audit entry committed before, whatever stops
the process (a shutdown, a kill, a power cut). A file the purge could not delete is named
in an `evidence.purge_failed` entry (the `evidence.purged` entry before it named it too), and
the next purge tries again; a process killed between the commit and the deletion leaves the
files, which the next purge deletes. A file already named by an `evidence.purged` entry is
not audited again, so two processes purging at once (`raksha run` and `raksha serve` both
run the `RetentionTimer`) audit each file once; each counts the files it deleted. `stop`
is checked between incidents: a shutdown waits for the incident at hand, never more.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from raksha.audit.log import AuditLog
from raksha.audit.tables import audit_log
from raksha.incidents.evidence import WAITING_MARK
from raksha.incidents.model import EvidenceFile, Incident, IncidentState, utcnow
from raksha.store import camera_alerts, holds
from raksha.store._db import db_errors
from raksha.store.errors import IncidentNotFound
from raksha.store.repository import IncidentStore

log = logging.getLogger(__name__)

#: Cases still being worked keep their evidence past the retention period.
KEEP_WHILE = frozenset({IncidentState.CONFIRMED, IncidentState.DISPATCHED})
ACTOR = "system:retention"
PURGED = "evidence.purged"
PURGE_FAILED = "evidence.purge_failed"


@dataclass
class PurgeReport:
    cutoff: datetime
    incidents: list[str] = field(default_factory=list)
    files_deleted: int = 0
    bytes_deleted: int = 0
    kept_active: int = 0
    #: Incidents past retention whose evidence a legal hold keeps.
    kept_held: int = 0
    #: Files named by `evidence.purged` that could not be deleted (`evidence.purge_failed`).
    files_failed: int = 0
    #: The purge stopped before the end (`stop`); the next one goes on.
    stopped: bool = False
    #: Snapshots of cleared camera alerts deleted (`camera.retention`).
    camera_snapshots: int = 0


def _file_record(ev: EvidenceFile, size: int) -> dict[str, Any]:
    return {
        "name": Path(ev.path).name,
        "kind": ev.kind.value,
        "sha256": ev.sha256,
        "content_sha256": ev.content_sha256,
        "bytes": size,
    }


def _present(incident: Incident) -> list[tuple[EvidenceFile, int]]:
    out = []
    for ev in incident.evidence:
        with contextlib.suppress(OSError):
            path = Path(ev.path)
            if path.is_file():
                out.append((ev, path.stat().st_size))
    return out


def _remove(path: Path) -> tuple[bool, str | None]:
    """Delete `path`: (True, None) when this process deleted it, (False, None) when it was
    gone already (another process was first), (False, why) when it cannot be deleted."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False, None
    except OSError as exc:
        why = exc.strerror or str(exc)
        log.warning("cannot delete evidence file %s: %s", path, why)
        return False, why
    return True, None


def _unlink(path: Path) -> bool:
    """Delete `path`; False when it was gone already or cannot be deleted (logged)."""
    return _remove(path)[0]


def _audited(conn: Connection, incident_id: str) -> set[tuple[str, str]]:
    """(name, sha256) of each file an `evidence.purged` entry of the incident named."""
    query = select(audit_log.c.details).where(
        audit_log.c.target == incident_id, audit_log.c.action == PURGED
    )
    out: set[tuple[str, str]] = set()
    for (details,) in conn.execute(query):
        items = details.get("deleted") if isinstance(details, dict) else None
        for d in items if isinstance(items, list) else ():
            if isinstance(d, dict):
                out.add((str(d.get("name")), str(d.get("sha256"))))
    return out


def _purge_one(
    store: IncidentStore, incident: Incident, root: Path, retention_days: int, report: PurgeReport
) -> None:
    """Audit, then delete, the incident's files, unless a hold is in force (see the module)."""
    try:
        with holds.locked(store.engine, incident.id, "purge the evidence") as conn:
            if holds.held_in(conn, incident.id):
                report.kept_held += 1
                return
            present = _present(incident)
            done = _audited(conn, incident.id)
            new = [(ev, n) for ev, n in present if (Path(ev.path).name, ev.sha256) not in done]
            if new:
                AuditLog.append_in(
                    conn,
                    ACTOR,
                    PURGED,
                    target=incident.id,
                    station_id=incident.station_id,
                    details={
                        "files": len(new),
                        "bytes": sum(n for _, n in new),
                        "deleted": [_file_record(ev, n) for ev, n in new],
                        "retention_days": retention_days,
                        "opened_at": incident.opened_at.isoformat(),
                        "state": incident.state.value,
                    },
                )
    except IncidentNotFound:
        return
    # The entry is committed: now the files go.
    deleted = 0
    size = 0
    failed: list[dict[str, Any]] = []
    for ev, n in present:
        gone, why = _remove(Path(ev.path))
        if gone:
            deleted += 1
            size += n
        elif why is not None:
            failed.append({**_file_record(ev, n), "error": why})
    if failed:
        report.files_failed += len(failed)
        AuditLog(store.engine).append(
            ACTOR,
            PURGE_FAILED,
            target=incident.id,
            station_id=incident.station_id,
            details={
                "files": len(failed),
                "failed": failed,
                "note": "named by evidence.purged but still on disk; the next purge tries again",
            },
        )
    if not deleted:
        return
    report.incidents.append(incident.id)
    report.files_deleted += deleted
    report.bytes_deleted += size
    folder = root / incident.id
    if folder.parent == root:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty: anything else is the orphan sweep's (audited)
    log.info("evidence of incident %s deleted (retention %d days)", incident.id, retention_days)


def purge_expired_evidence(
    store: IncidentStore,
    evidence_dir: Path,
    retention_days: int,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    stop: Callable[[], bool] | None = None,
) -> PurgeReport:
    """Delete the evidence files of incidents opened before now - retention_days, except
    cases still being worked and incidents under a legal hold; `stop` (checked between
    incidents) ends it early."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    report = PurgeReport(cutoff=cutoff)
    root = evidence_dir.resolve()
    expired = store.list_incidents(until=cutoff, limit=None)
    held = holds.held(store.engine, (i.id for i in expired if i.evidence)) if dry_run else set()
    if not dry_run:
        report.camera_snapshots = drop_old_camera_snapshots(store, cutoff, retention_days)
    for incident in expired:
        if stop is not None and stop():
            report.stopped = True
            break
        if incident.state in KEEP_WHILE:
            report.kept_active += 1
            continue
        present = _present(incident) if incident.evidence else []
        if not present:
            continue  # purged before: nothing to delete, nothing to lock for
        if not dry_run:
            _purge_one(store, incident, root, retention_days, report)
        elif incident.id in held:
            report.kept_held += 1
        else:
            report.incidents.append(incident.id)
            report.files_deleted += len(present)
            report.bytes_deleted += sum(size for _, size in present)
    return report


def drop_old_camera_snapshots(store: IncidentStore, cutoff: datetime, retention_days: int) -> int:
    """Delete the snapshots of camera alerts cleared before `cutoff`, audited as
    `camera.retention`; how many."""
    now = utcnow()
    with db_errors("cannot apply the camera alerts' retention"), store.engine.begin() as c:
        dropped = camera_alerts.drop_old_snapshots(c, cutoff)
        if dropped:
            AuditLog.append_in(
                c,
                ACTOR,
                "camera.retention",
                target="camera_alerts",
                details={"retention_days": retention_days, "snapshots_deleted": dropped},
                at=now,
            )
    return len(dropped)


#: Files younger than this are never swept: a process may be between writing an incident's
#: evidence and committing its row.
ORPHAN_GRACE_S = 600.0


@dataclass
class OrphanReport:
    files_deleted: int = 0
    bytes_deleted: int = 0
    folders: list[str] = field(default_factory=list)
    #: `<folder>/<file>` of each file deleted.
    names: list[str] = field(default_factory=list)


def sweep_orphaned_evidence(
    store: IncidentStore,
    evidence_dir: Path,
    *,
    keep: set[str] | None = None,
    grace_s: float = ORPHAN_GRACE_S,
    now: float | None = None,
    dry_run: bool = False,
    stop: Callable[[], bool] | None = None,
) -> OrphanReport:
    """Delete evidence files no incident row refers to (a crash between writing the files
    and storing the row left them), older than `grace_s`; `keep` names files still waiting
    in the spool. One `evidence.orphans_removed` audit entry says what went; `stop` (checked
    between folders) ends it early, still auditing what went."""
    import time

    report = OrphanReport()
    root = evidence_dir.resolve()
    if not root.is_dir():
        return report
    referenced = {str(Path(p).resolve()) for p in store.evidence_paths()}
    referenced |= {str(Path(p).resolve()) for p in keep or ()}
    limit = (now if now is not None else time.time()) - grace_s
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if stop is not None and stop():
            break
        if (folder / WAITING_MARK).exists():
            continue  # an incident waiting in some spool for the store (any node's)
        gone = 0
        try:
            entries = sorted(folder.iterdir())
        except FileNotFoundError:
            continue  # another process removed the folder
        for f in entries:
            if not f.is_file() or str(f.resolve()) in referenced:
                continue
            try:
                st = f.stat()
            except FileNotFoundError:
                continue  # another process swept it
            if st.st_mtime > limit:
                continue
            if not dry_run and not _unlink(f):
                continue  # only what this process deleted is counted and audited
            report.files_deleted += 1
            report.bytes_deleted += st.st_size
            gone += 1
            report.names.append(f"{folder.name}/{f.name}")
        if gone:
            report.folders.append(folder.name)
            if not dry_run:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when empty
    if report.files_deleted and not dry_run:
        AuditLog(store.engine).append(
            "system:orphan-sweep",
            "evidence.orphans_removed",
            details={
                "files": report.files_deleted,
                "bytes": report.bytes_deleted,
                "folders": report.folders[:100],
                "names": report.names[:500],
            },
        )
        log.warning(
            "removed %d evidence file(s) no incident refers to (%s)",
            report.files_deleted,
            ", ".join(report.folders[:5]),
        )
    return report
