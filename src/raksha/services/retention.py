"""Evidence is deleted on schedule: pictures are kept only as long as the policy says; and
no picture is kept that no incident refers to.

Policy (documented in docs/privacy.md):
- evidence of an incident older than `retention_days` is deleted from disk, unless the case is
  still being worked (CONFIRMED or DISPATCHED): such evidence is kept until the case is
  resolved or dismissed and then follows the same rule;
- the incident row, its history and the evidence *hashes* stay, so the record of what was
  captured and who saw it survives the pictures;
- every deletion is appended to the audit log as `evidence.purged`.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from raksha.audit.log import AuditLog
from raksha.incidents.model import IncidentState, utcnow
from raksha.store.repository import IncidentStore

log = logging.getLogger(__name__)

#: Cases still being worked keep their evidence past the retention period.
KEEP_WHILE = frozenset({IncidentState.CONFIRMED, IncidentState.DISPATCHED})
ACTOR = "system:retention"


@dataclass
class PurgeReport:
    cutoff: datetime
    incidents: list[str] = field(default_factory=list)
    files_deleted: int = 0
    bytes_deleted: int = 0
    kept_active: int = 0


def purge_expired_evidence(
    store: IncidentStore,
    evidence_dir: Path,
    retention_days: int,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PurgeReport:
    """Delete the evidence files of incidents opened before now - retention_days."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    report = PurgeReport(cutoff=cutoff)
    audit = AuditLog(store.engine)
    root = evidence_dir.resolve()
    for incident in store.list_incidents(until=cutoff, limit=None):
        if incident.state in KEEP_WHILE:
            report.kept_active += 1
            continue
        present = [Path(e.path) for e in incident.evidence if Path(e.path).is_file()]
        if not present:
            continue
        size = sum(p.stat().st_size for p in present)
        report.incidents.append(incident.id)
        report.files_deleted += len(present)
        report.bytes_deleted += size
        if dry_run:
            continue
        for p in present:
            p.unlink(missing_ok=True)
        folder = root / incident.id
        if folder.is_dir() and folder.parent == root:
            shutil.rmtree(folder, ignore_errors=True)
        audit.append(
            ACTOR,
            "evidence.purged",
            target=incident.id,
            station_id=incident.station_id,
            details={
                "files": len(present),
                "bytes": size,
                "retention_days": retention_days,
                "opened_at": incident.opened_at.isoformat(),
                "state": incident.state.value,
            },
        )
        log.info("evidence of incident %s deleted (retention %d days)", incident.id, retention_days)
    return report


#: Files younger than this are never swept: a process may be between writing an incident's
#: evidence and committing its row.
ORPHAN_GRACE_S = 600.0


@dataclass
class OrphanReport:
    files_deleted: int = 0
    bytes_deleted: int = 0
    folders: list[str] = field(default_factory=list)


def sweep_orphaned_evidence(
    store: IncidentStore,
    evidence_dir: Path,
    *,
    keep: set[str] | None = None,
    grace_s: float = ORPHAN_GRACE_S,
    now: float | None = None,
    dry_run: bool = False,
) -> OrphanReport:
    """Delete evidence files no incident row refers to (a crash between writing the files
    and storing the row left them), older than `grace_s`; `keep` names files still waiting
    in the spool. One `evidence.orphans_removed` audit entry says what went."""
    import time

    report = OrphanReport()
    root = evidence_dir.resolve()
    if not root.is_dir():
        return report
    referenced = {str(Path(p).resolve()) for p in store.evidence_paths()}
    referenced |= {str(Path(p).resolve()) for p in keep or ()}
    limit = (now if now is not None else time.time()) - grace_s
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        gone = 0
        for f in sorted(folder.iterdir()):
            if not f.is_file() or str(f.resolve()) in referenced:
                continue
            st = f.stat()
            if st.st_mtime > limit:
                continue
            report.files_deleted += 1
            report.bytes_deleted += st.st_size
            gone += 1
            if not dry_run:
                f.unlink(missing_ok=True)
        if gone:
            report.folders.append(folder.name)
            if not dry_run and not any(folder.iterdir()):
                folder.rmdir()
    if report.files_deleted and not dry_run:
        AuditLog(store.engine).append(
            "system:orphan-sweep",
            "evidence.orphans_removed",
            details={
                "files": report.files_deleted,
                "bytes": report.bytes_deleted,
                "folders": report.folders[:100],
            },
        )
        log.warning(
            "removed %d evidence file(s) no incident refers to (%s)",
            report.files_deleted,
            ", ".join(report.folders[:5]),
        )
    return report
