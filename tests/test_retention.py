"""Evidence is deleted on schedule, active cases keep theirs, and every deletion is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from raksha.audit.log import AuditLog
from raksha.domain.routing import Route
from raksha.incidents.evidence import EvidenceWriter, sha256_file
from raksha.incidents.model import Action, NewIncident
from raksha.services.retention import purge_expired_evidence
from raksha.store import IncidentStore

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _incident(store: IncidentStore, writer: EvidenceWriter, opened: datetime) -> str:
    new = NewIncident(
        camera_id="cam-1",
        hotspot_id="h",
        station_id="a",
        peak_distress=0.8,
        expression_at_peak={"fear": 0.8, "neutral": 0.2},
        model_name="m",
        model_sha256="0" * 64,
        thresholds={},
        route=Route("a", "nearest", 0.0, ()),
        opened_at=opened,
    )
    image = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    files = writer.capture(new.id, image, (40, 20, 100, 90), [(110, 20, 150, 60)])
    return store.create_incident(new, files, {}, ["store"])


def test_purge_deletes_old_evidence_keeps_active_cases_and_audits(tmp_path: Path) -> None:
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'r.db'}")
    writer = EvidenceWriter(tmp_path / "evidence")
    old_new = _incident(store, writer, NOW - timedelta(days=40))
    old_dismissed = _incident(store, writer, NOW - timedelta(days=35))
    store.apply_action(old_dismissed, Action.DISMISS, "officer:asha", note="false alarm")
    old_active = _incident(store, writer, NOW - timedelta(days=45))
    store.apply_action(old_active, Action.ACKNOWLEDGE, "officer:asha")
    store.apply_action(old_active, Action.CONFIRM, "officer:asha")
    recent = _incident(store, writer, NOW - timedelta(days=2))

    def files(iid: str) -> list[Path]:
        inc = store.get_incident(iid)
        assert inc is not None
        return [Path(e.path) for e in inc.evidence]

    dry = purge_expired_evidence(store, tmp_path / "evidence", 30, now=NOW, dry_run=True)
    assert sorted(dry.incidents) == sorted([old_new, old_dismissed]) and dry.files_deleted == 4
    assert all(p.is_file() for p in files(old_new))

    report = purge_expired_evidence(store, tmp_path / "evidence", 30, now=NOW)
    assert sorted(report.incidents) == sorted([old_new, old_dismissed])
    assert report.kept_active == 1
    for iid in (old_new, old_dismissed):
        assert not any(p.exists() for p in files(iid))
        assert not (tmp_path / "evidence" / iid).exists()
        inc = store.get_incident(iid)
        assert inc is not None and len(inc.evidence) == 2  # the record and hashes stay
    for iid in (old_active, recent):
        for e in store.get_incident(iid).evidence:  # type: ignore[union-attr]
            assert sha256_file(Path(e.path)) == e.sha256

    audit = AuditLog(store.engine)
    purged = [e for e in audit.entries(limit=None) if e.action == "evidence.purged"]
    assert sorted(e.target for e in purged) == sorted([old_new, old_dismissed])
    assert audit.verify().ok
    # Running again deletes nothing more and appends nothing.
    again = purge_expired_evidence(store, tmp_path / "evidence", 30, now=NOW)
    assert again.incidents == []
    store.close()


def test_evidence_no_incident_refers_to_is_swept_audited_and_young_or_spooled_files_kept(
    tmp_path: Path,
) -> None:
    """A crash between writing an incident's files and storing its row leaves files nothing
    refers to: the sweep deletes them (one audit entry), but not the files of stored
    incidents, nor ones still waiting in the spool, nor ones young enough to be mid-write."""
    import os
    import time

    from raksha.services.retention import sweep_orphaned_evidence

    store = IncidentStore.open(f"sqlite:///{tmp_path / 'r.db'}")
    writer = EvidenceWriter(tmp_path / "ev")
    kept = _incident(store, writer, NOW)
    image = np.random.default_rng(2).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    orphan = writer.capture("crashed-incident", image, (40, 20, 100, 90))
    spooled = writer.capture("spooled-incident", image, (40, 20, 100, 90))
    young = writer.capture("being-written", image, (40, 20, 100, 90))
    old = time.time() - 3600
    for f in orphan + spooled:
        os.utime(f.path, (old, old))
    (tmp_path / "ev" / ".incident-spool.db").write_bytes(b"not evidence")

    report = sweep_orphaned_evidence(
        store, tmp_path / "ev", keep={f.path for f in spooled}, grace_s=600
    )
    assert report.files_deleted == 2 and report.folders == ["crashed-incident"]
    assert not (tmp_path / "ev" / "crashed-incident").exists()
    assert all(Path(f.path).is_file() for f in spooled + young)
    inc = store.get_incident(kept)
    assert inc is not None and all(Path(e.path).is_file() for e in inc.evidence)
    assert (tmp_path / "ev" / ".incident-spool.db").exists()
    (entry,) = AuditLog(store.engine).entries(action="evidence.orphans_removed")
    assert entry.details["files"] == 2 and entry.actor == "system:orphan-sweep"
    # Nothing left to sweep: no second entry.
    again = sweep_orphaned_evidence(store, tmp_path / "ev", keep={f.path for f in spooled})
    assert again.files_deleted == 0
    assert len(AuditLog(store.engine).entries(action="evidence.orphans_removed")) == 1
    store.close()


def test_a_failing_round_never_ends_the_timer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever a round raises (here the spool's keep() on an old spool document, a
    KeyError) is logged with its traceback, and the next round runs and purges."""
    import logging
    import time

    from raksha.services.retention_timer import RetentionTimer

    store = IncidentStore.open(f"sqlite:///{tmp_path / 'r.db'}")
    calls: list[int] = []

    def keep() -> set[str]:
        calls.append(1)
        raise KeyError("path")

    timer = RetentionTimer(store, tmp_path / "ev", 30, every_s=0.05, first_after_s=0.01, keep=keep)
    caplog.set_level(logging.WARNING, logger="raksha.retention")
    try:
        timer.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(calls) < 2:
            time.sleep(0.02)
        assert len(calls) >= 2, "the thread died with the first failing round"
        iid = _incident(store, EvidenceWriter(tmp_path / "ev"), datetime.now(UTC) - timedelta(40))
        inc = store.get_incident(iid)
        assert inc is not None
        while time.monotonic() < deadline and any(Path(e.path).exists() for e in inc.evidence):
            time.sleep(0.02)
        assert not any(Path(e.path).exists() for e in inc.evidence)
        assert timer._thread is not None and timer._thread.is_alive()
        assert timer.files_deleted == 2
    finally:
        timer.stop()
        store.close()
    failed = [r for r in caplog.records if "orphan sweep failed" in r.getMessage()]
    assert failed and failed[0].exc_info is not None and failed[0].exc_info[0] is KeyError


def test_the_purge_commits_its_audit_entry_before_deleting_and_says_what_it_could_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'r.db'}")
    iid = _incident(store, EvidenceWriter(tmp_path / "evidence"), NOW - timedelta(days=40))
    inc = store.get_incident(iid)
    assert inc is not None
    stuck = Path(inc.evidence[0].path)
    audit = AuditLog(store.engine)
    seen: list[bool] = []
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        # Whoever looks at the audit log when the file goes finds its entry committed.
        named = {
            d["name"] for e in audit.entries(action="evidence.purged") for d in e.details["deleted"]
        }
        seen.append(self.name in named)
        if self == stuck:
            raise PermissionError(13, "Permission denied")
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    report = purge_expired_evidence(store, tmp_path / "evidence", 30, now=NOW)
    monkeypatch.undo()
    assert seen == [True, True]
    assert report.files_deleted == 1 and report.files_failed == 1 and stuck.is_file()
    (purged,) = audit.entries(action="evidence.purged")
    assert purged.details["files"] == 2
    (failed,) = audit.entries(action="evidence.purge_failed")
    assert failed.target == iid and [d["name"] for d in failed.details["failed"]] == [stuck.name]
    assert failed.details["failed"][0]["error"] == "Permission denied"
    assert failed.details["failed"][0]["sha256"] == inc.evidence[0].sha256
    # The next purge deletes it, without naming it in a second evidence.purged entry.
    again = purge_expired_evidence(store, tmp_path / "evidence", 30, now=NOW)
    assert again.files_deleted == 1 and not stuck.exists()
    assert len(audit.entries(action="evidence.purged")) == 1
    assert audit.verify().ok
    store.close()


def test_a_stop_ends_the_purge_between_incidents(tmp_path: Path) -> None:
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'r.db'}")
    writer = EvidenceWriter(tmp_path / "evidence")
    ids = [_incident(store, writer, NOW - timedelta(days=40 + n)) for n in range(2)]
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 1  # set while the first incident was being purged

    report = purge_expired_evidence(store, tmp_path / "evidence", 30, now=NOW, stop=stop)
    assert report.stopped and len(report.incidents) == 1 and report.files_deleted == 2
    (done,) = report.incidents
    (entry,) = AuditLog(store.engine).entries(action="evidence.purged")
    assert entry.target == done
    (other,) = set(ids) - {done}
    inc = store.get_incident(other)
    assert inc is not None and all(Path(e.path).is_file() for e in inc.evidence)
    assert purge_expired_evidence(store, tmp_path / "evidence", 30, now=NOW).incidents == [other]
    store.close()


def test_the_sweep_leaves_evidence_of_incidents_waiting_in_any_spool(tmp_path: Path) -> None:
    """An incident spooled during a database outage marks its evidence folder as waiting,
    so that any process's sweep (the dashboard's, on another machine than the cluster host
    whose spool holds it) leaves the folder alone until the incident is stored."""
    import os
    import time

    from raksha.incidents.evidence import WAITING_MARK, mark_waiting, unmark_waiting
    from raksha.services.retention import sweep_orphaned_evidence

    store = IncidentStore.open(f"sqlite:///{tmp_path / 'r.db'}")
    writer = EvidenceWriter(tmp_path / "ev")
    image = np.random.default_rng(3).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    waiting = writer.capture("waiting-on-another-node", image, (40, 20, 100, 90))
    orphan = writer.capture("crashed-incident", image, (40, 20, 100, 90))
    mark_waiting([f.path for f in waiting], "waiting-on-another-node")
    mark = tmp_path / "ev" / "waiting-on-another-node" / WAITING_MARK
    assert mark.read_text() == "waiting-on-another-node\n"
    old = time.time() - 3600
    for f in [*waiting, *orphan]:
        os.utime(f.path, (old, old))
    os.utime(mark, (old, old))
    report = sweep_orphaned_evidence(store, tmp_path / "ev", grace_s=600)
    assert report.folders == ["crashed-incident"]
    assert all(Path(f.path).is_file() for f in waiting) and mark.exists()
    unmark_waiting([f.path for f in waiting])  # stored after all (here: never, so swept)
    assert not mark.exists()
    again = sweep_orphaned_evidence(store, tmp_path / "ev", grace_s=600)
    assert again.folders == ["waiting-on-another-node"]
    store.close()
