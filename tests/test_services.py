"""The incident service: an action commits with its audit entry or not at all; list views
are audited per caller and filter at most once per interval; scope is the service's.

Real SQLite and PostgreSQL (127.0.0.1:5432, a schema of its own per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from dashboard_support import PASSWORD, STATION_A, STATION_B, database, new_incident
from raksha.audit.log import AuditLog
from raksha.auth.access import Denied
from raksha.auth.users import UserStore
from raksha.incidents.evidence import EvidenceWriter
from raksha.incidents.model import IncidentState
from raksha.services.errors import Conflict, NotFound
from raksha.services.incidents import Caller, IncidentService
from raksha.store import IncidentStore, StoreError

REFUSE_SQLITE = (
    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log refuses writes'); END"
)
REFUSE_PG = (
    "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN "
    "RAISE EXCEPTION 'the audit log refuses writes'; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW "
    "EXECUTE FUNCTION refuse_audit()",
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, IncidentStore]]:
    with database(request.param, tmp_path) as url:
        store = IncidentStore.open(url)
        try:
            yield request.param, store
        finally:
            store.close()


def callers(store: IncidentStore) -> dict[str, Caller]:
    users = UserStore(store.engine)
    return {
        "op_a": Caller(users.add("op_a", "operator", PASSWORD, station_id=STATION_A), "10.0.0.1"),
        "op_b": Caller(users.add("op_b", "operator", PASSWORD, station_id=STATION_B), "10.0.0.2"),
        "cr": Caller(users.add("cr", "control_room", PASSWORD), "10.0.0.3"),
    }


def test_an_action_whose_audit_entry_fails_leaves_no_action(
    db: tuple[str, IncidentStore],
) -> None:
    kind, store = db
    audit = AuditLog(store.engine)
    service = IncidentService(store, audit, EvidenceWriter(Path("evidence")))
    who = callers(store)["op_a"]
    iid = store.create_incident(new_incident(STATION_A), [], {"kind": "distress"}, [])
    entries_before = audit.count()
    with store.engine.begin() as conn:
        for statement in (REFUSE_SQLITE,) if kind == "sqlite" else REFUSE_PG:
            conn.execute(text(statement))
    with pytest.raises(StoreError, match="audit"):
        service.act(who, iid, "acknowledge", note="on my way")
    inc = store.get_incident(iid)
    assert inc is not None and inc.state is IncidentState.NEW and inc.version == 1
    assert store.actions(iid) == []
    assert audit.count() == entries_before
    # The audit log works again: the same action now commits, with its entry.
    with store.engine.begin() as conn:
        conn.execute(
            text("DROP TRIGGER refuse_audit" + ("" if kind == "sqlite" else " ON audit_log"))
        )
    outcome = service.act(who, iid, "acknowledge", note="on my way")
    assert outcome.incident.state is IncidentState.ACKNOWLEDGED
    (entry,) = audit.entries(action="incident.action")
    assert entry.actor == "op_a" and entry.target == f"incident:{iid}"
    assert entry.details["to"] == "ACKNOWLEDGED"
    assert audit.verify().ok


def test_refused_actions_are_audited_and_another_station_is_not_found(
    db: tuple[str, IncidentStore],
) -> None:
    _kind, store = db
    audit = AuditLog(store.engine)
    service = IncidentService(store, audit, EvidenceWriter(Path("evidence")))
    who = callers(store)
    iid = store.create_incident(new_incident(STATION_A), [], {"kind": "distress"}, [])
    with pytest.raises(NotFound):
        service.act(who["op_b"], iid, "acknowledge")
    with pytest.raises(NotFound):  # the same reply as for an incident that does not exist
        service.view(who["op_b"], iid)
    with pytest.raises(NotFound):
        service.view(who["op_b"], "no-such-incident")
    # The attempts are audited (the caller learns nothing from them).
    denied = audit.entries(action="incident.denied")
    assert [(e.actor, e.target, e.details["why"]) for e in denied] == [
        ("op_b", f"incident:{iid}", "another station"),
        ("op_b", f"incident:{iid}", "another station"),
        ("op_b", "incident:no-such-incident", "no such incident"),
    ]
    with pytest.raises(Denied) as err:  # a role that may not read incidents at all
        service.list_visible(Caller(UserStore(store.engine).add("aud", "auditor", PASSWORD)))
    assert err.value.status == 403
    service.act(who["op_a"], iid, "dismiss", reason="no_distress")
    with pytest.raises(Conflict):
        service.act(who["op_a"], iid, "acknowledge")
    refused = audit.entries(action="incident.action_refused")
    assert [(e.actor, e.details["action"]) for e in refused] == [("op_a", "acknowledge")]
    assert store.get_incident(iid) is not None
    assert [a.action.value for a in store.actions(iid)] == ["dismiss"]


def test_list_views_are_audited_once_per_interval_with_the_refreshes_counted(
    db: tuple[str, IncidentStore],
) -> None:
    _kind, store = db
    audit = AuditLog(store.engine)
    clock = Clock()
    service = IncidentService(
        store, audit, EvidenceWriter(Path("evidence")), list_audit_every_s=300, clock=clock
    )
    who = callers(store)
    store.create_incident(new_incident(STATION_A), [], {"kind": "distress"}, [])
    store.create_incident(new_incident(STATION_B), [], {"kind": "distress"}, [])
    open_states = [s for s in IncidentState if not s.is_terminal]
    for _ in range(5):  # a dashboard refreshing on every event
        assert len(service.list_visible(who["op_a"], states=open_states)) == 1
        clock.now += 10
    assert len(service.list_visible(who["cr"], states=open_states)) == 2
    assert len(service.list_visible(who["op_a"])) == 1  # another filter: its own entry
    lists = audit.entries(action="incident.list")
    assert [(e.actor, e.details["refreshes_since_last_entry"]) for e in lists] == [
        ("op_a", 0),
        ("cr", 0),
        ("op_a", 0),
    ]
    clock.now += 300
    service.list_visible(who["op_a"], states=open_states)
    last = audit.entries(action="incident.list", newest_first=True, limit=1)[0]
    assert last.actor == "op_a" and last.details["refreshes_since_last_entry"] == 4
    # With the interval at 0 every list is an entry.
    every = IncidentService(
        store, audit, EvidenceWriter(Path("evidence")), list_audit_every_s=0, clock=clock
    )
    n = audit.count()
    every.list_visible(who["op_b"])
    every.list_visible(who["op_b"])
    assert audit.count() == n + 2
    assert audit.verify().ok
