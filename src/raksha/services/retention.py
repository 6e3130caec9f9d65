"""Evidence is deleted on schedule: pictures are kept only as long as the policy says.

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
