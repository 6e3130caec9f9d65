"""Evidence rows changed after an incident was stored: a clip finished seconds after the
decision joins its incident; a key rotation re-encrypts a file into a new one and points the
incident's row at it (path, on-disk SHA-256 and size; the content hash stays)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from raksha.incidents.model import EvidenceFile, EvidenceKind
from raksha.store._db import db_errors
from raksha.store.tables import incident_evidence

E = incident_evidence


def files_of(conn: Connection, incident_id: str) -> list[EvidenceFile]:
    """The incident's evidence as the store has it now (inside `conn`'s transaction)."""
    rows = conn.execute(select(E).where(E.c.incident_id == incident_id).order_by(E.c.n)).all()
    return [
        EvidenceFile(
            kind=EvidenceKind(r.kind),
            path=r.path,
            sha256=r.sha256,
            bytes=int(r.bytes),
            content_sha256=r.content_sha256,
        )
        for r in rows
    ]


def replace_file_in(conn: Connection, incident_id: str, old_path: str, new: EvidenceFile) -> bool:
    """Point the row of `old_path` at `new` (path, on-disk hash and size, and the content
    hash when the row had none) inside `conn`'s transaction; False when no row has that path
    any more (purged, or moved by another rotation first)."""
    res = conn.execute(
        update(E)
        .where(E.c.incident_id == incident_id, E.c.path == old_path)
        .values(
            path=new.path,
            sha256=new.sha256,
            bytes=new.bytes,
            content_sha256=func.coalesce(E.c.content_sha256, new.content_sha256),
        )
    )
    return res.rowcount == 1


def replace_file(engine: Engine, incident_id: str, old_path: str, new: EvidenceFile) -> bool:
    """`replace_file_in` in a transaction of its own."""
    with db_errors(f"cannot update the evidence of {incident_id}"), engine.begin() as conn:
        return replace_file_in(conn, incident_id, old_path, new)


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
