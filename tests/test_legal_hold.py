"""Legal holds and the retention that runs itself (issue 19), over real stores.

- a hold keeps evidence past its retention; lifting it lets the next purge delete, and each
  purge entry names every deleted file with its recorded hashes;
- placing and lifting are audited with who, the case and the reason; bad input is refused;
- the API: supervisors of the station and the control room only (an operator 403, another
  station's supervisor 404);
- a purge that starts while a hold is being placed waits for it and keeps the files (SQLite
  and PostgreSQL); two retention timers at once delete and audit each file once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dashboard_support import STATION_A, STATION_B, add_incident, dashboard, database
from raksha.audit.log import AuditLog
from raksha.auth.access import Denied
from raksha.auth.roles import Role
from raksha.auth.users import User
from raksha.cli import app as cli_app
from raksha.domain.routing import Route
from raksha.incidents.evidence import EvidenceWriter
from raksha.incidents.model import NewIncident
from raksha.services.errors import Conflict, Invalid, NotFound
from raksha.services.holds import HoldService
from raksha.services.incidents import Caller
from raksha.services.retention import purge_expired_evidence
from raksha.services.retention_timer import RetentionTimer
from raksha.store import IncidentStore
from raksha.store import holds as hold_rows

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=40)


def _incident(store: IncidentStore, writer: EvidenceWriter, opened: datetime, seed: int = 1) -> str:
    new = NewIncident(
        camera_id="cam-1",
        hotspot_id="h",
        station_id=STATION_A,
        peak_distress=0.8,
        expression_at_peak={"fear": 0.8, "neutral": 0.2},
        model_name="m",
        model_sha256="0" * 64,
        thresholds={},
        route=Route(STATION_A, "nearest", 0.0, ()),
        opened_at=opened,
    )
    image = np.random.default_rng(seed).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    files = writer.capture(new.id, image, (40, 20, 100, 90))
    return store.create_incident(new, files, {}, ["store"])


def _files(store: IncidentStore, iid: str) -> list[Path]:
    inc = store.get_incident(iid)
    assert inc is not None
    return [Path(e.path) for e in inc.evidence]


def _caller(role: Role, station: str | None = STATION_A, name: str = "sup_a") -> Caller:
    return Caller(User(1, name, role, station, False, NOW, None), "10.0.0.9")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IncidentStore]:
    with database(request.param, tmp_path) as url:
        s = IncidentStore.open(url)
        try:
            yield s
        finally:
            s.close()


def test_a_hold_keeps_evidence_past_retention_until_lifted(tmp_path: Path) -> None:
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'h.db'}")
    writer = EvidenceWriter(tmp_path / "ev")
    held = _incident(store, writer, OLD)
    free = _incident(store, writer, OLD, seed=2)
    holds = HoldService(store, AuditLog(store.engine), clock=lambda: NOW)
    hold = holds.place(
        _caller(Role.SUPERVISOR), held, case_number=" FIR  112/2026 ", reason="court order"
    )
    assert hold.case_number == "FIR 112/2026" and hold.active

    dry = purge_expired_evidence(store, tmp_path / "ev", 30, now=NOW, dry_run=True)
    assert dry.incidents == [free] and dry.kept_held == 1
    report = purge_expired_evidence(store, tmp_path / "ev", 30, now=NOW)
    assert report.incidents == [free] and report.kept_held == 1 and report.files_deleted == 2
    assert all(p.is_file() for p in _files(store, held))
    assert not any(p.exists() for p in _files(store, free))

    holds.lift(_caller(Role.CONTROL_ROOM, None, "cr"), held, hold.id, reason="case closed")
    inc = store.get_incident(held)
    assert inc is not None
    report = purge_expired_evidence(store, tmp_path / "ev", 30, now=NOW)
    assert report.incidents == [held] and report.kept_held == 0
    assert not any(p.exists() for p in _files(store, held))
    assert not (tmp_path / "ev" / held).exists()

    audit = AuditLog(store.engine)
    purged = {e.target: e for e in audit.entries(action="evidence.purged")}
    assert set(purged) == {held, free}
    deleted = purged[held].details["deleted"]
    assert [(d["name"], d["sha256"], d["content_sha256"]) for d in deleted] == [
        (Path(e.path).name, e.sha256, e.content_sha256) for e in inc.evidence
    ]
    assert all(d["content_sha256"] for d in deleted)
    assert audit.verify().ok
    # Nothing left: a third purge deletes and audits nothing.
    assert purge_expired_evidence(store, tmp_path / "ev", 30, now=NOW).incidents == []
    assert len(audit.entries(action="evidence.purged")) == 2
    store.close()


def test_placing_and_lifting_are_audited_with_names_and_checked(tmp_path: Path) -> None:
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'h.db'}")
    writer = EvidenceWriter(tmp_path / "ev")
    iid = _incident(store, writer, OLD)
    audit = AuditLog(store.engine)
    holds = HoldService(store, audit)
    sup = _caller(Role.SUPERVISOR)
    with pytest.raises(Invalid, match="case number"):
        holds.place(sup, iid, case_number="  ", reason="court order")
    with pytest.raises(Invalid, match="reason"):
        holds.place(sup, iid, case_number="FIR 1", reason="x")
    hold = holds.place(sup, iid, case_number="FIR 1", reason="court order")
    with pytest.raises(Conflict, match="already held"):
        holds.place(sup, iid, case_number="FIR 1", reason="again")
    with pytest.raises(Invalid):
        holds.lift(sup, iid, hold.id, reason="")
    with pytest.raises(NotFound):
        holds.lift(sup, iid, hold.id + 99, reason="case closed")
    lifted = holds.lift(sup, iid, hold.id, reason="case closed")
    assert lifted.lifted_by == "sup_a" and lifted.lift_reason == "case closed"
    with pytest.raises(Conflict, match="lifted already"):
        holds.lift(sup, iid, hold.id, reason="case closed")
    with pytest.raises(Denied):
        holds.place(_caller(Role.OPERATOR, name="op_a"), iid, case_number="FIR 2", reason="abc")
    with pytest.raises(NotFound):
        holds.place(
            _caller(Role.SUPERVISOR, STATION_B, "sup_b"), iid, case_number="F", reason="abc"
        )

    placed, gone = (
        audit.entries(action="evidence.hold_placed"),
        audit.entries(action="evidence.hold_lifted"),
    )
    assert [(e.actor, e.target, e.details["case_number"], e.details["reason"]) for e in placed] == [
        ("sup_a", f"incident:{iid}", "FIR 1", "court order")
    ]
    assert [(e.actor, e.details["reason"], e.details["placed_by"]) for e in gone] == [
        ("sup_a", "case closed", "sup_a")
    ]
    assert audit.entries(action="incident.denied")[0].actor == "sup_b"
    assert [h.active for h in hold_rows.of_incident(store.engine, iid)] == [False]
    store.close()


def test_the_api_lets_supervisors_and_the_control_room_hold(
    tmp_path: Path, faces_dir: Path
) -> None:
    with dashboard("sqlite", tmp_path, faces_dir) as dash:
        own = add_incident(dash.store, dash.writer, dash.image, STATION_A)
        other = add_incident(dash.store, dash.writer, dash.image, STATION_B)
        body = {"case_number": "FIR 7/2026", "reason": "court order"}
        url = f"/api/incidents/{own}/holds"
        assert dash.post("op_a", url, json=body).status_code == 403
        assert dash.client("op_a").get(url).status_code == 403
        assert dash.post("aud", url, json=body).status_code == 403
        assert dash.post("sup_a", f"/api/incidents/{other}/holds", json=body).status_code == 404
        assert dash.client("sup_a").post(url, json=body).status_code == 403  # no CSRF token
        r = dash.post("sup_a", url, json=body)
        assert r.status_code == 201, r.text
        hold = r.json()
        assert hold["placed_by"] == "sup_a" and hold["active"]
        assert hold["evidence_present"] == hold["evidence_recorded"] == 2
        assert hold["evidence"] == "Evidence files still on disk: 2 of 2."
        assert hold["evidence_deleted_at"] is None
        assert dash.post("sup_a", url, json={"case_number": "", "reason": "x"}).status_code == 422
        assert dash.post("cr", url, json=body).status_code == 409  # the same case again
        r = dash.post("cr", f"/api/incidents/{other}/holds", json=body)
        assert r.status_code == 201
        listed = dash.client("sup_a").get(url).json()
        assert listed["held"] and [h["case_number"] for h in listed["holds"]] == ["FIR 7/2026"]
        lift = f"{url}/{hold['id']}/lift"
        assert dash.post("op_a", lift, json={"reason": "case closed"}).status_code == 403
        r = dash.post("cr", lift, json={"reason": "case closed"})
        assert r.status_code == 200 and r.json()["lifted_by"] == "cr"
        assert dash.post("cr", lift, json={"reason": "case closed"}).status_code == 409
        assert not dash.client("sup_a").get(url).json()["held"]


def _place_slowly(url: str, iid: str, started: threading.Event, release: threading.Event) -> None:
    other = IncidentStore.open(url)
    try:

        def wait_inside(_conn: object, _hold: object) -> None:
            started.set()
            release.wait(10)

        hold_rows.place(
            other.engine,
            iid,
            case_number="FIR 9",
            reason="court order",
            by="sup_a",
            at=NOW,
            with_it=wait_inside,  # type: ignore[arg-type]
        )
    finally:
        other.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_purge_during_a_hold_being_placed_waits_and_keeps_the_files(
    kind: str, tmp_path: Path
) -> None:
    with database(kind, tmp_path) as url:
        store = IncidentStore.open(url)
        try:
            iid = _incident(store, EvidenceWriter(tmp_path / "ev"), OLD)
            started, release = threading.Event(), threading.Event()
            placer = threading.Thread(target=_place_slowly, args=(url, iid, started, release))
            placer.start()
            assert started.wait(10)
            result: list[object] = []
            purger = threading.Thread(
                target=lambda: result.append(
                    purge_expired_evidence(store, tmp_path / "ev", 30, now=NOW)
                )
            )
            purger.start()
            time.sleep(0.5)
            assert purger.is_alive(), "the purge must wait for the hold's transaction"
            release.set()
            placer.join(10)
            purger.join(30)
            (report,) = result
            assert report.kept_held == 1 and report.incidents == []  # type: ignore[attr-defined]
            assert all(p.is_file() for p in _files(store, iid))
            assert AuditLog(store.engine).entries(action="evidence.purged") == []
        finally:
            store.close()


def test_two_retention_timers_delete_and_audit_each_file_once(
    store: IncidentStore, tmp_path: Path
) -> None:
    """`raksha run` and `raksha serve` both run the timer: on schedule, and never twice."""
    writer = EvidenceWriter(tmp_path / "ev")
    old = datetime.now(UTC) - timedelta(days=40)
    ids = [_incident(store, writer, old, seed=n) for n in range(6)]
    held = ids[0]
    HoldService(store, AuditLog(store.engine)).place_local(
        "sup_a", held, case_number="FIR 3", reason="court order", via="test"
    )
    second = IncidentStore.open(store.engine.url.render_as_string(hide_password=False))
    timers = [
        RetentionTimer(s, tmp_path / "ev", 30, every_s=0.2, first_after_s=0.05, keep=set)
        for s in (store, second)
    ]
    try:
        for t in timers:
            t.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(
            p.exists() for i in ids[1:] for p in _files(store, i)
        ):
            time.sleep(0.1)
        time.sleep(0.5)  # a few more rounds of both: nothing more to delete or audit
    finally:
        for t in timers:
            t.stop()
        second.close()
    assert all(t.rounds >= 2 for t in timers)
    assert sum(t.files_deleted for t in timers) == 10
    assert not any(p.exists() for i in ids[1:] for p in _files(store, i))
    assert all(p.is_file() for p in _files(store, held))
    purged = AuditLog(store.engine).entries(action="evidence.purged", limit=None)  # type: ignore[arg-type]
    assert sorted(e.target or "" for e in purged) == sorted(ids[1:])
    assert all(e.details["files"] == 2 for e in purged)
    assert AuditLog(store.engine).verify().ok


def test_the_timer_is_off_at_zero(tmp_path: Path) -> None:
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'h.db'}")
    timer = RetentionTimer(store, tmp_path / "ev", 30, every_s=0).start()
    assert timer._thread is None
    timer.stop()
    store.close()


def test_cli_hold_release_and_list(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = IncidentStore.open(url)
    iid = _incident(store, EvidenceWriter(tmp_path / "ev"), OLD)
    config = tmp_path / "raksha.yaml"
    config.write_text(
        yaml.safe_dump({"storage": {"url": url}, "evidence": {"dir": str(tmp_path / "ev")}}),
        encoding="utf-8",
    )
    run = CliRunner().invoke
    base = ["--config", str(config)]
    r = run(
        cli_app,
        [
            "evidence",
            "hold",
            iid,
            "--case",
            "FIR 5",
            "--reason",
            "court",
            "--by",
            "Insp. Rao",
            *base,
        ],
    )
    assert r.exit_code == 0, r.output
    assert "placed" in r.output and "Evidence files still on disk: 2 of 2." in r.output
    r = run(cli_app, ["evidence", "holds", *base])
    assert iid in r.output and "FIR 5" in r.output and "Insp. Rao" in r.output
    r = run(cli_app, ["evidence", "purge", *base])
    assert r.exit_code == 0 and "1 incident(s) kept for a legal hold" in r.output
    r = run(cli_app, ["evidence", "release", iid, "--reason", "closed", "--by", "Insp. Rao", *base])
    assert r.exit_code == 0 and "lifted 1 hold(s)" in r.output
    r = run(cli_app, ["evidence", "release", iid, "--reason", "closed", "--by", "Insp. Rao", *base])
    assert r.exit_code == 1 and "no legal hold in force" in str(r.exception)
    (entry,) = AuditLog(store.engine).entries(action="evidence.hold_placed")
    assert entry.actor == "Insp. Rao" and entry.details["via"].startswith("cli:")
    store.close()


def test_the_incident_page_shows_the_custody_panel_to_permitted_roles_only(
    tmp_path: Path, faces_dir: Path
) -> None:
    import re

    from fastapi.testclient import TestClient

    from dashboard_support import PASSWORD, fast_settings, site_config
    from raksha.api.app import create_app
    from raksha.web import web_for
    from raksha.web.settings import WebSettings

    cfg = site_config(f"sqlite:///{tmp_path / 'w.db'}", tmp_path / "evidence")
    store = IncidentStore.open(cfg.storage.url)
    app = create_app(cfg, store=store, settings=fast_settings(), web=web_for(cfg, WebSettings()))
    for name, role in (("op_a", "operator"), ("sup_a", "supervisor")):
        app.state.raksha.users.add(name, role, PASSWORD, station_id=STATION_A)
    iid = _incident(store, EvidenceWriter(tmp_path / "evidence"), OLD)

    def client(name: str) -> tuple[TestClient, str]:
        c = TestClient(app)
        r = c.post("/login", data={"username": name, "password": PASSWORD, "next": "/"})
        assert r.status_code == 200, r.text
        page = c.get(f"/incidents/{iid}").text
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
        assert token
        return c, token.group(1)

    with TestClient(app):
        op, op_token = client("op_a")
        page = op.get(f"/incidents/{iid}").text
        assert 'id="custody"' not in page and "export.zip" not in page
        r = op.post(
            f"/incidents/{iid}/holds",
            data={"case_number": "FIR 1", "reason": "court order", "csrf_token": op_token},
        )
        assert r.status_code == 403

        sup, token = client("sup_a")
        page = sup.get(f"/incidents/{iid}").text
        assert 'id="custody"' in page and 'id="no-hold"' in page
        assert f'href="/api/incidents/{iid}/export.zip"' in page
        r = sup.post(
            f"/incidents/{iid}/holds",
            data={"case_number": "FIR 1", "reason": "x", "csrf_token": token},
        )
        assert r.status_code == 422 and "Give a reason of 3 to 2000 characters." in r.text
        r = sup.post(
            f"/incidents/{iid}/holds",
            data={"case_number": "FIR 1", "reason": "court order"},
        )
        assert r.status_code == 403  # no CSRF token
        r = sup.post(
            f"/incidents/{iid}/holds",
            data={"case_number": "FIR 1", "reason": "court order", "csrf_token": token},
        )
        assert r.status_code == 200 and 'id="custody-done"' in r.text
        assert "<code>FIR 1</code>, placed by sup_a" in r.text and "court order" in r.text
        (hold,) = hold_rows.of_incident(store.engine, iid)
        r = sup.post(
            f"/incidents/{iid}/holds/{hold.id}/lift",
            data={"reason": "case closed", "csrf_token": token},
        )
        assert r.status_code == 200 and "lifted by sup_a" in r.text
        assert 'id="no-hold"' in r.text
        hi = sup.get(f"/incidents/{iid}", cookies={"lang": "hi"}).text
        assert "कानूनी रोक" in hi
        assert "Evidence files still on disk: 2 of 2." in page

        # Evidence retention deleted already: the hold is recorded, and the panel says so.
        gone = _incident(store, EvidenceWriter(tmp_path / "evidence"), OLD, seed=5)
        purge_expired_evidence(store, tmp_path / "evidence", 30, now=NOW)
        (purged,) = AuditLog(store.engine).entries(action="evidence.purged", target=gone)
        r = sup.post(
            f"/incidents/{gone}/holds",
            data={"case_number": "FIR 2", "reason": "court order", "csrf_token": token},
        )
        assert r.status_code == 200 and "<code>FIR 2</code>, placed by sup_a" in r.text
        said = f"0 files: evidence already deleted on {purged.at:%Y-%m-%d} by retention."
        assert said in r.text and 'id="evidence-left" class="flash attention"' in r.text
        assert "The evidence is kept past its retention period" not in r.text
        assert hold_rows.of_incident(store.engine, gone)[0].active
        hi = sup.get(f"/incidents/{gone}", cookies={"lang": "hi"}).text
        assert f"0 फ़ाइलें: साक्ष्य {purged.at:%Y-%m-%d} को रखने की नीति के अनुसार पहले ही" in hi
    store.close()


def test_a_hold_on_evidence_retention_deleted_is_recorded_and_says_0_files(
    tmp_path: Path, faces_dir: Path
) -> None:
    """A court may want the hold on record even so; the answer must not look like the
    evidence is kept."""
    with dashboard("sqlite", tmp_path, faces_dir) as dash:
        iid = add_incident(dash.store, dash.writer, dash.image, STATION_A)
        later = datetime.now(UTC) + timedelta(days=60)
        report = purge_expired_evidence(dash.store, dash.cfg.evidence.dir, 30, now=later)
        assert report.incidents == [iid]
        (purged,) = AuditLog(dash.store.engine).entries(action="evidence.purged")
        body = {"case_number": "FIR 8/2026", "reason": "court order"}
        r = dash.post("sup_a", f"/api/incidents/{iid}/holds", json=body)
        assert r.status_code == 201, r.text
        hold = r.json()
        assert hold["active"] and hold["case_number"] == "FIR 8/2026"
        assert hold["evidence_present"] == 0 and hold["evidence_recorded"] == 2
        assert datetime.fromisoformat(hold["evidence_deleted_at"]) == purged.at
        assert hold["evidence"].startswith(
            f"0 files: evidence already deleted on {purged.at:%Y-%m-%d} by retention."
        )
        listed = dash.client("sup_a").get(f"/api/incidents/{iid}/holds").json()
        assert listed["held"]
        (entry,) = AuditLog(dash.store.engine).entries(action="evidence.hold_placed")
        assert entry.target == f"incident:{iid}"
