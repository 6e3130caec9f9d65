"""Evidence rows changed after capture: a key rotation re-encrypts a file into a new one and
points the incident's row at it (path, on-disk SHA-256 and size; the content hash stays)."""

from __future__ import annotations

from sqlalchemy import Engine, update

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
