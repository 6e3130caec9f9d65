"""Evidence rows changed after an incident was stored: a clip finished seconds after the
decision joins its incident; a key rotation re-encrypts a file into a new one and points the
incident's row at it (path, on-disk SHA-256 and size; the content hash stays)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from raksha.incidents.model import EvidenceFile
from raksha.store._db import db_errors
from raksha.store.tables import incident_evidence

E = incident_evidence


def replace_file(engine: Engine, incident_id: str, old_path: str, new: EvidenceFile) -> bool:
    """Point the row of `old_path` at `new`; False when no row has that path any more (the
    evidence was purged, or another rotation moved it first)."""
    with db_errors(f"cannot update the evidence of {incident_id}"), engine.begin() as conn:
        res = conn.execute(
            update(E)
            .where(E.c.incident_id == incident_id, E.c.path == old_path)
            .values(path=new.path, sha256=new.sha256, bytes=new.bytes)
        )
        return res.rowcount == 1


def append_files(engine: Engine, incident_id: str, files: list[EvidenceFile]) -> bool:
    """Add `files` to the incident's evidence after the ones it has; False when the incident
    is gone. A concurrent addition (a merged re-detection's stills) is retried once."""
    with db_errors(f"cannot add evidence to incident {incident_id}"):
        for attempt in range(2):
            try:
                with engine.begin() as conn:
                    last = conn.execute(
                        select(func.max(E.c.n)).where(E.c.incident_id == incident_id)
                    ).scalar_one_or_none()
                    conn.execute(
                        insert(E),
                        [
                            {
                                "incident_id": incident_id,
                                "n": (last or 0) + 1 + i,
                                "kind": str(f.kind),
                                "path": f.path,
                                "sha256": f.sha256,
                                "bytes": f.bytes,
                                "content_sha256": f.content_sha256,
                                "created_at": datetime.now(UTC),
                            }
                            for i, f in enumerate(files)
                        ],
                    )
                return True
            except IntegrityError:
                if attempt == 1:
                    return False
    return False
