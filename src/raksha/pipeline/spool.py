"""A durable local spool for incidents the store refused (a database outage).

An incident decided while the database is unreachable is written here first: one row in a
small SQLite file of its own (created on the first outage; beside the evidence folder by
default) (WAL, synchronous=FULL, so a row survives `kill -9` and a power
cut once `put` returns). The incident sink replays the rows in order when the store is back,
and on the next start after a crash, and deletes each once the store has it; the store
recognises an incident it already has (the same id), so a replay interrupted between the
store's commit and the spool's delete stores nothing twice.

Bounded: past `max_items` rows `put` raises SpoolFull and the sink keeps the incident in
memory and raises the alarm (a log line at CRITICAL on every refused put).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from raksha.errors import RakshaError

#: Rows the spool holds at most (about 2 KB each: 10,000 is a day of a city's incidents).
MAX_ITEMS = 10_000


class SpoolFull(RakshaError):
    """The spool holds `max_items` incidents already."""


class SpoolError(RakshaError):
    """The spool file cannot be opened or written (a full or read-only disk)."""


class Spool:
    def __init__(self, path: Path, *, max_items: int = MAX_ITEMS) -> None:
        self.path = Path(path)
        self.max_items = max_items
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        """The spool's connection, opened (and the file created) on first use: a run that
        never saw an outage leaves no spool file."""
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    str(self.path), isolation_level=None, check_same_thread=False, timeout=30
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "incident_id TEXT NOT NULL, doc TEXT NOT NULL)"
                )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS set_aside (id INTEGER PRIMARY KEY, "
                    "incident_id TEXT NOT NULL, doc TEXT NOT NULL)"
                )
            except (OSError, sqlite3.Error) as exc:
                raise SpoolError(f"cannot open the incident spool {self.path}: {exc}") from None
            self._conn = conn
        return self._conn

    def put(self, incident_id: str, doc: dict[str, Any]) -> int:
        """Append one incident; durable once this returns. Returns its row id."""
        try:
            text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise SpoolError(f"incident {incident_id} cannot be spooled: {exc}") from None
        with self._lock:
            try:
                db = self._db()
                (count,) = db.execute("SELECT count(*) FROM spool").fetchone()
                if count >= self.max_items:
                    raise SpoolFull(
                        f"the incident spool {self.path} is full ({count} incidents waiting)"
                    )
                cur = db.execute(
                    "INSERT INTO spool (incident_id, doc) VALUES (?, ?)", (incident_id, text)
                )
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot write the incident spool {self.path}: {exc}") from None
            row_id = cur.lastrowid
        assert row_id is not None
        return int(row_id)

    def pending(self) -> list[tuple[int, dict[str, Any]]]:
        """Every spooled incident, oldest first."""
        with self._lock:
            if self._conn is None and not self.path.exists():
                return []
            try:
                rows = self._db().execute("SELECT id, doc FROM spool ORDER BY id").fetchall()
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot read the incident spool {self.path}: {exc}") from None
        out: list[tuple[int, dict[str, Any]]] = []
        for i, d in rows:
            try:
                doc = json.loads(d)
            except ValueError:
                doc = {"unreadable": True}  # the caller sets it aside
            out.append((int(i), doc if isinstance(doc, dict) else {"unreadable": True}))
        return out

    def set_aside(self, row_id: int) -> None:
        """Move a row nobody can read out of the queue (kept for a person to look at)."""
        with self._lock:
            try:
                db = self._db()
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    "INSERT OR IGNORE INTO set_aside SELECT id, incident_id, doc FROM spool "
                    "WHERE id = ?",
                    (row_id,),
                )
                db.execute("DELETE FROM spool WHERE id = ?", (row_id,))
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot update the incident spool {self.path}: {exc}") from None

    def done(self, row_id: int) -> None:
        with self._lock:
            try:
                self._db().execute("DELETE FROM spool WHERE id = ?", (row_id,))
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot update the incident spool {self.path}: {exc}") from None

    def __len__(self) -> int:
        with self._lock:
            if self._conn is None and not self.path.exists():
                return 0
            (count,) = self._db().execute("SELECT count(*) FROM spool").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
