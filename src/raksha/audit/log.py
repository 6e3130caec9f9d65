"""The append-only, hash-chained audit log on the store's database.

    log = AuditLog(engine)
    log.append("alice", "incident.view", target="incident:42", station_id="hazratganj")
    result = log.verify()          # VerifyResult(ok=..., problems=[...], entries=N)

Every entry holds the SHA-256 of the previous entry (`prev_hash`) and its own (`hash`) over all
its fields, including its number `seq` (1, 2, 3, ...). `audit_head` holds the newest number and
hash. `verify` walks the entries in order and names the first entry where the chain breaks:

- an edited entry no longer matches its own hash;
- a deleted entry leaves a gap in the numbers (or, for the newest ones, a head that points past
  the end);
- an inserted or reordered entry has a `prev_hash` that is not its predecessor's hash.

The chain proves integrity against anyone who edits rows without recomputing every later hash;
someone with write access who rewrites the whole chain is caught only by comparing the head
hash with a copy kept elsewhere (`raksha audit verify` prints it for that purpose).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, func, insert, or_, select, update

from raksha.audit.chain import entry_hash
from raksha.audit.tables import GENESIS, audit_head, audit_log
from raksha.incidents.model import utcnow
from raksha.store._db import clean_json, db_errors


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    station_id: str | None
    address: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "station_id": self.station_id,
            "address": self.address,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """Where the chain breaks: the entry number and what is wrong with it."""

    seq: int
    problem: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.problem}"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[AuditProblem] = field(default_factory=list)
    #: How many entries of each action the chain holds (what was verified).
    actions: dict[str, int] = field(default_factory=dict)
    #: The newest entries read (up to 20), oldest first.
    recent: list[AuditEntry] = field(default_factory=list)

    @property
    def first_problem(self) -> AuditProblem | None:
        return self.problems[0] if self.problems else None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "problems": [{"seq": p.seq, "problem": p.problem} for p in self.problems],
            "actions": dict(sorted(self.actions.items())),
            "recent": [
                {
                    "seq": e.seq,
                    "at": e.at.isoformat().replace("+00:00", "Z"),
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "what": e.details.get("action"),
                }
                for e in self.recent
            ],
        }


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=int(row.seq),
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        station_id=row.station_id,
        address=row.address,
        details=dict(row.details or {}),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditLog:
    """Append and read audit entries; `verify` checks the whole chain."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        station_id: str | None = None,
        address: str | None = None,
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry in a transaction of its own. Concurrent appends are serialised
        on the head row."""
        with db_errors(f"cannot append to the audit log ({action})"), self.engine.begin() as c:
            return self.append_in(
                c,
                actor,
                action,
                target=target,
                station_id=station_id,
                address=address,
                details=details,
                at=at,
            )

    @staticmethod
    def append_in(
        c: Connection,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        station_id: str | None = None,
        address: str | None = None,
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry inside the caller's transaction `c`: the entry commits with
        whatever else `c` writes (an incident action and its audit entry), or not at all."""
        when = at or utcnow()
        clean = clean_json(details or {}, "audit details")
        # The UPDATE takes the write lock first (SQLite) / the row lock (PostgreSQL), so
        # two appends never read the same head.
        c.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=audit_head.c.seq))
        head = c.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        ).one()
        seq = int(head.seq) + 1
        prev = str(head.hash)
        digest = entry_hash(
            seq=seq,
            at=when,
            actor=actor,
            action=action,
            target=target,
            station_id=station_id,
            address=address,
            details=clean,
            prev_hash=prev,
        )
        c.execute(
            insert(audit_log),
            {
                "seq": seq,
                "at": when,
                "actor": actor,
                "action": action,
                "target": target,
                "station_id": station_id,
                "address": address,
                "details": clean,
                "prev_hash": prev,
                "hash": digest,
            },
        )
        c.execute(
            update(audit_head)
            .where(audit_head.c.id == 1)
            .values(seq=seq, hash=digest, updated_at=when)
        )
        return AuditEntry(
            seq, when, actor, action, target, station_id, address, clean, prev, digest
        )

    def entries(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        newest_first: bool = False,
    ) -> list[AuditEntry]:
        query = select(audit_log)
        if after_seq:
            query = query.where(audit_log.c.seq > after_seq)
        if actor is not None:
            query = query.where(audit_log.c.actor == actor)
        if action is not None:
            query = query.where(audit_log.c.action == action)
        if target is not None:
            query = query.where(audit_log.c.target == target)
        order = audit_log.c.seq.desc() if newest_first else audit_log.c.seq
        query = query.order_by(order).limit(limit)
        with db_errors("cannot read the audit log"), self.engine.connect() as c:
            return [_entry(r) for r in c.execute(query)]

    def about(self, targets: Sequence[str], prefixes: Sequence[str] = ()) -> list[AuditEntry]:
        """Every entry whose target is one of `targets` or starts with one of `prefixes`
        (an incident and its evidence files), oldest first."""
        conditions: list[ColumnElement[bool]] = [audit_log.c.target.in_(list(targets))]
        conditions += [audit_log.c.target.startswith(p, autoescape=True) for p in prefixes]
        query = select(audit_log).where(or_(*conditions)).order_by(audit_log.c.seq)
        with db_errors("cannot read the audit log"), self.engine.connect() as c:
            return [_entry(r) for r in c.execute(query)]

    def tally(self, actions: Sequence[str], *, since: datetime, until: datetime) -> dict[str, int]:
        """How many entries of each of `actions` were appended in `[since, until)` (0 for an
        action without any), in one grouped query."""
        query = (
            select(audit_log.c.action, func.count())
            .where(
                audit_log.c.action.in_(list(actions)),
                audit_log.c.at >= since,
                audit_log.c.at < until,
            )
            .group_by(audit_log.c.action)
        )
        counts = dict.fromkeys(actions, 0)
        with db_errors("cannot read the audit log"), self.engine.connect() as c:
            for action, n in c.execute(query):
                counts[str(action)] = int(n)
        return counts

    def between(self, action: str, *, since: datetime, until: datetime) -> list[AuditEntry]:
        """Every entry of `action` appended in `[since, until)`, oldest first."""
        query = (
            select(audit_log)
            .where(audit_log.c.action == action, audit_log.c.at >= since, audit_log.c.at < until)
            .order_by(audit_log.c.seq)
        )
        with db_errors("cannot read the audit log"), self.engine.connect() as c:
            return [_entry(r) for r in c.execute(query)]

    def count(self) -> int:
        with db_errors("cannot read the audit log"), self.engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(audit_log)).scalar_one())

    def _all(self, batch: int = 1000) -> Iterator[AuditEntry]:
        last = -1
        while True:
            with db_errors("cannot read the audit log"), self.engine.connect() as c:
                rows = c.execute(
                    select(audit_log)
                    .where(audit_log.c.seq > last)
                    .order_by(audit_log.c.seq)
                    .limit(batch)
                ).all()
            if not rows:
                return
            for r in rows:
                yield _entry(r)
            last = int(rows[-1].seq)

    def verify(self, *, max_problems: int = 20) -> VerifyResult:
        """Walk the chain from the first entry; report every break (up to `max_problems`)."""
        with db_errors("cannot read the audit log head"), self.engine.connect() as c:
            head = c.execute(
                select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
            ).one_or_none()
        problems: list[AuditProblem] = []
        head_seq = int(head.seq) if head is not None else -1
        head_hash = str(head.hash) if head is not None else ""
        if head is None:
            problems.append(AuditProblem(0, "the audit head row is missing"))
        expected_seq = 1
        prev_hash = GENESIS
        count = 0
        actions: Counter[str] = Counter()
        recent: deque[AuditEntry] = deque(maxlen=20)
        for e in self._all():
            count += 1
            actions[e.action] += 1
            recent.append(e)
            if len(problems) >= max_problems:
                break
            if e.seq > expected_seq:
                missing = (
                    f"entry {expected_seq} is missing"
                    if e.seq == expected_seq + 1
                    else f"entries {expected_seq}..{e.seq - 1} are missing"
                )
                problems.append(AuditProblem(e.seq, f"{missing} (deleted before this one)"))
            elif e.seq < expected_seq:  # pragma: no cover - seq is the primary key, ordered
                problems.append(AuditProblem(e.seq, "out of order"))
            recomputed = entry_hash(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                action=e.action,
                target=e.target,
                station_id=e.station_id,
                address=e.address,
                details=e.details,
                prev_hash=e.prev_hash,
            )
            if recomputed != e.hash:
                problems.append(AuditProblem(e.seq, "its content does not match its hash (edited)"))
            if e.prev_hash != prev_hash and e.seq == expected_seq:
                problems.append(
                    AuditProblem(
                        e.seq,
                        "its prev_hash is not the hash of the entry before it "
                        "(inserted, reordered or the previous entry was replaced)",
                    )
                )
            prev_hash = e.hash
            expected_seq = e.seq + 1
        last_seq = expected_seq - 1
        if head is not None and len(problems) < max_problems:
            if head_seq > last_seq:
                problems.append(
                    AuditProblem(
                        last_seq + 1,
                        f"missing: the head says the log ends at entry {head_seq} but it "
                        f"ends at {last_seq} (newest entries deleted)",
                    )
                )
            elif head_seq < last_seq:
                problems.append(
                    AuditProblem(
                        head_seq + 1,
                        f"not recorded in the head (head ends at {head_seq}; appended "
                        "outside the audit log)",
                    )
                )
            elif head_hash != prev_hash:
                problems.append(
                    AuditProblem(last_seq, "its hash differs from the hash kept in the head")
                )
        return VerifyResult(
            ok=not problems,
            entries=count,
            head_seq=head_seq,
            head_hash=head_hash,
            problems=problems,
            actions=dict(actions),
            recent=list(recent),
        )
