"""The transparency pack (`raksha report transparency`, raksha.services.transparency and
transparency_render, raksha.store.transparency) on a SQLite store filled with known camera
and SOS incidents, officers' outcomes, audit entries, legal holds and users: every figure of
transparency.json and transparency.md equals the one computed here by hand; months are
local months; a config without purposes, legal bases or a `transparency:` section names
those gaps; each hotspot has a notice in Devanagari and English; a hotspot name holding a
tag is escaped; the command says where the pack went and is audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from raksha.audit.log import AuditLog
from raksha.auth.users import UserStore
from raksha.cli import app as cli_app
from raksha.config import RunConfig
from raksha.domain.routing import Route
from raksha.errors import RakshaError
from raksha.incidents import NewIncident
from raksha.incidents.model import Origin
from raksha.services.errors import Invalid
from raksha.services.transparency import read_eval_results, transparency_pack
from raksha.services.transparency_render import render_markdown, write_pack
from raksha.store import IncidentStore
from raksha.store import holds as hold_rows
from raksha.store.transparency import monthly_counts

A, B = "hazratganj", "aliganj"
KOLKATA = "Asia/Kolkata"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
EVIL = "<script>alert(1)</script> crossing"
PASSWORD = "correct horse battery staple"

ACK = [(60, "acknowledge")]
CONFIRMED = [*ACK, (70, "confirm")]
RESOLVED = [*CONFIRMED, (80, "resolve")]
DISPATCHED = [*CONFIRMED, (90, "dispatch:pink-a")]
DISMISSED = [*ACK, (70, "dismiss")]


def config_dict(db_url: str, evidence_dir: Path, *, stated: bool = True) -> dict[str, Any]:
    """The test site; `stated`: with a `transparency:` section, a purpose and a legal basis
    on the first hotspot (the second has neither)."""
    first: dict[str, Any] = {"id": "a-crossing", "name": EVIL, "lat": 26.851, "lon": 80.941}
    if stated:
        first |= {"purpose": "crowding at the crossing", "legal_basis": "Order 12/2026"}
    doc: dict[str, Any] = {
        "storage": {"url": db_url},
        "evidence": {
            "dir": str(evidence_dir),
            "encrypt": True,
            "retention_days": 30,
            "purge_every_s": 3600,
        },
        "timezone": KOLKATA,
        "expression": {"model": "raksha-fer-xd-int8"},
        "distress": {"enter_threshold": 0.6, "exit_threshold": 0.3, "weights": {"fear": 1.0}},
        "stations": [
            {"id": A, "name": "Hazratganj PS", "lat": 26.85, "lon": 80.94},
            {"id": B, "name": "Aliganj PS", "lat": 26.89, "lon": 80.94},
        ],
        "hotspots": [first, {"id": "b-gate", "name": "B gate", "lat": 26.891, "lon": 80.941}],
        "cameras": [
            {"id": "cam-a", "hotspot": "a-crossing", "url": "rtsp://10.0.0.5/s1"},
            {"id": "cam-b", "hotspot": "b-gate", "url": "rtsp://10.0.0.6/s1"},
        ],
        "patrol_units": [
            {"id": "pink-a", "kind": "scooter", "station": A, "lat": 26.85, "lon": 80.94}
        ],
    }
    if stated:
        doc["transparency"] = {
            "operator": "Lucknow Police Commissionerate",
            "contact": "+91 522 000 0000",
            "dpo_contact": "dpo@example.org",
            "complaint_url": "https://example.org/complaints",
            "necessity": "people in distress at night are reached late",
            "dpia_reference": "DPIA-2026-07",
        }
    return doc


def incident(
    store: IncidentStore,
    station: str,
    opened_at: datetime,
    steps: list[tuple[float, str]],
    *,
    origin: Origin = Origin.CAMERA,
) -> str:
    camera = "cam-a" if station == A else "cam-b"
    inc = NewIncident(
        camera_id=camera,
        hotspot_id="a-crossing" if station == A else "b-gate",
        station_id=station,
        peak_distress=0.8,
        expression_at_peak={"neutral": 0.1, "fear": 0.7, "sadness": 0.2},
        model_name="raksha-fer-xd-int8",
        model_sha256="a" * 64,
        thresholds={"enter_threshold": 0.6},
        route=Route(station, "nearest", 400.0, ()),
        source_id=camera,
        opened_at=opened_at,
        origin=origin,
    )
    iid = store.create_incident(inc, [], {"kind": "distress"}, ["store"], now=opened_at)
    for offset, step in steps:
        action, _, unit = step.partition(":")
        store.apply_action(
            iid,
            action,
            "officer-12",
            unit_id=unit or None,
            at=opened_at + timedelta(seconds=offset),
        )
    return iid


def utc(month: int, day: int, hour: int = 10, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def populate(store: IncidentStore, cfg: RunConfig) -> list[str]:
    """The incidents, audit entries, holds and users whose figures the tests expect."""
    store.sync_units(cfg.patrol_units, now=utc(9, 1))
    # Station A, October: 2 confirmed, 1 resolved, 1 dismissed, 1 acknowledged only.
    ids = [incident(store, A, utc(10, 5), s) for s in (CONFIRMED, CONFIRMED, RESOLVED)]
    ids += [incident(store, A, utc(10, 6), s) for s in (DISMISSED, ACK)]
    # 31 Oct 20:00 UTC is 1 Nov 01:30 in Kolkata: a November incident, dispatched.
    ids.append(incident(store, A, utc(10, 31, 20), DISPATCHED))
    ids += [incident(store, A, utc(11, 10), DISMISSED) for _ in range(2)]
    # Station B, November: 1 confirmed, 3 dismissed, 1 nobody has touched.
    ids.append(incident(store, B, utc(11, 15), CONFIRMED))
    ids += [incident(store, B, utc(11, 15, 11), DISMISSED) for _ in range(3)]
    ids.append(incident(store, B, utc(11, 16), []))
    # Before the period (365 local days back from 22 Nov 2026): not counted.
    incident(store, A, utc(11, 1, year=2025), DISMISSED)
    # SOS at station A, November: 1 dismissed, 1 confirmed; never in the camera rows.
    incident(store, A, utc(11, 12), DISMISSED, origin=Origin.SOS)
    incident(store, A, utc(11, 12, 11), CONFIRMED, origin=Origin.SOS)

    log = AuditLog(store.engine)
    inside, before = utc(11, 20), utc(6, 1, year=2025)
    for _ in range(3):
        log.append("sup_a", "evidence.view", target="evidence:x", at=inside)
    log.append("sup_a", "evidence.view", target="evidence:x", at=before)
    for _ in range(2):
        log.append("sup_a", "evidence.unblur", target="evidence:x", at=inside)
    log.append("cr", "evidence.exported", target="incident:x", at=inside)
    for files, size in ((2, 100), (3, 250)):
        log.append(
            "system:retention",
            "evidence.purged",
            target=ids[0],
            details={"files": files, "bytes": size, "deleted": []},
            at=inside,
        )
    log.append("system:retention", "evidence.purged", details={"files": 7}, at=before)

    def audited(action: str) -> Any:
        def it(conn: Any, hold: hold_rows.LegalHold) -> None:
            AuditLog.append_in(
                conn, "sup_a", action, target=f"incident:{hold.incident_id}", at=inside
            )

        return it

    for iid in ids[:2]:
        hold_rows.place(
            store.engine,
            iid,
            case_number=f"FIR {iid[:4]}",
            reason="court order",
            by="sup_a",
            at=inside,
            with_it=audited("evidence.hold_placed"),
        )
    first = hold_rows.in_force(store.engine)[0]
    hold_rows.lift(
        store.engine,
        first.incident_id,
        first.id,
        by="sup_a",
        reason="case closed",
        at=inside,
        with_it=audited("evidence.hold_lifted"),
    )

    users = UserStore(store.engine)
    users.add("op_a1", "operator", PASSWORD, station_id=A)
    users.add("op_b1", "operator", PASSWORD, station_id=B)
    users.add("sup_a", "supervisor", PASSWORD, station_id=A)
    users.add("cr", "control_room", PASSWORD)
    users.add("aud", "auditor", PASSWORD)
    users.set_disabled("aud")
    return ids


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[RunConfig, IncidentStore]]:
    url = f"sqlite:///{tmp_path / 'raksha.db'}"
    cfg = RunConfig.model_validate(config_dict(url, tmp_path / "ev"))
    store = IncidentStore.open(url)
    populate(store, cfg)
    yield cfg, store
    store.close()


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


#: (station, month, opened, confirmed, dispatched, resolved, dismissed, open), by hand.
CAMERA_ROWS = [
    [B, "2026-11", 5, 1, 0, 0, 3, 1],
    [A, "2026-10", 5, 2, 0, 1, 1, 1],
    [A, "2026-11", 3, 0, 1, 0, 2, 0],
]
CAMERA_TOTAL = ["all", "all", 13, 3, 1, 1, 6, 2]
SOS_ROWS = [[A, "2026-11", 2, 1, 0, 0, 1, 0]]
KEYS = ["station", "month", "opened", "confirmed", "dispatched", "resolved", "dismissed", "open"]


def test_every_figure_equals_the_store(
    site: tuple[RunConfig, IncidentStore], tmp_path: Path
) -> None:
    cfg, store = site
    pack = transparency_pack(cfg, store, days=365, now=NOW)
    write_pack(pack, tmp_path / "pack")
    doc = json.loads((tmp_path / "pack" / "transparency.json").read_text(encoding="utf-8"))
    md = (tmp_path / "pack" / "transparency.md").read_text(encoding="utf-8")
    assert md == render_markdown(pack)
    assert doc["since"] == "2025-11-22T18:30:00Z" and doc["until"] == "2026-11-22T18:30:00Z"

    # 6. incidents per station and local month, SOS apart.
    inc = doc["incidents"]
    assert [[r[k] for k in KEYS] for r in inc["camera"]] == CAMERA_ROWS
    assert [inc["camera_total"][k] for k in KEYS] == CAMERA_TOTAL
    assert [[r[k] for k in KEYS] for r in inc["sos"]] == SOS_ROWS
    assert [inc["sos_total"][k] for k in KEYS] == ["all", "all", 2, 1, 0, 0, 1, 0]
    for row in [*CAMERA_ROWS, CAMERA_TOTAL, *SOS_ROWS]:
        assert _row(row) in md

    # 5. field precision: camera incidents only; A 4 real of 7 judged, B 1 of 4.
    acc = doc["accuracy"]
    assert (acc["overall"]["real"], acc["overall"]["dismissed"], acc["overall"]["pending"]) == (
        5,
        6,
        2,
    )
    stations = {s["key"]: (s["real"], s["dismissed"], s["pending"]) for s in acc["stations"]}
    assert stations == {A: (4, 3, 1), B: (1, 3, 1)}
    cameras = {c["key"]: (c["station"], c["real"], c["dismissed"]) for c in acc["cameras"]}
    assert cameras == {"cam-a": (A, 4, 3), "cam-b": (B, 1, 3)}
    assert acc["overall"]["precision"] == pytest.approx(5 / 11)
    assert acc["datasets"] == [] and acc["live_model"] == "raksha-fer-xd-int8"
    assert "| station hazratganj | hazratganj | 4 | 3 | 7 | 1 | 57.1% |" in md
    assert "| camera cam-b | aliganj | 1 | 3 | 4 | 1 | 25.0% |" in md

    # 4. retention: the period's audit entries; the hold in force now.
    ret = doc["retention"]
    assert ret == {
        "retention_days": 30,
        "encrypt": True,
        "purge_every_s": 3600.0,
        "clip_before_s": 5.0,
        "clip_after_s": 5.0,
        "purges": 2,
        "files_deleted": 5,
        "bytes_deleted": 350,
        "holds_in_force": 1,
        "holds_placed": 2,
        "holds_lifted": 1,
        "views": 3,
        "unblurs": 2,
        "exports": 1,
    }
    for label, value in (
        ("files deleted in the period", 5),
        ("purges in the period (evidence.purged)", 2),
        ("legal holds in force now", 1),
        ("evidence views (evidence.view)", 3),
        ("unblurred views (evidence.unblur)", 2),
        ("case exports (evidence.exported)", 1),
        ("evidence kept (days)", 30),
    ):
        assert _row([label, value]) in md

    # 3. who can see what: the policies, and the users per role.
    access = doc["access"]
    users = {u["role"]: (u["active"], u["disabled"]) for u in access["users"]}
    assert users == {
        "operator": (2, 0),
        "supervisor": (1, 0),
        "control_room": (1, 0),
        "auditor": (0, 1),
        "admin": (0, 0),
    }
    rules = {r["rule"]: (r["roles"], r["station_scoped"]) for r in access["rules"]}
    assert rules["evidence_unblur"] == (["supervisor", "control_room"], True)
    assert rules["audit_read"] == (["auditor"], False)
    assert "| evidence\\_unblur | view unblurred evidence, with a stated reason |" in md
    assert _row(["operator", "yes", 2, 0]) in md and _row(["auditor", "no", 0, 1]) in md

    # 1. the live config's settings, not defaults.
    tracking = doc["tracking"]
    assert tracking["model"] == "raksha-fer-xd-int8"
    assert tracking["weights"]["fear"] == 1.0 and tracking["weights"]["sadness"] == 0.0
    decision = {s["key"]: s["value"] for s in tracking["decision"]}
    assert decision["distress.enter_threshold"] == 0.6
    assert decision["distress.exit_threshold"] == 0.3
    assert "| distress.enter\\_threshold | 0.6 |" in md
    assert tracking["relative_on"] is True
    assert doc["watchlist"] == "not enabled" and "Watchlist: not enabled." in md

    # 2. places: station by routing, purpose and legal basis, gaps named.
    places = {p["id"]: p for p in doc["places"]}
    assert places["a-crossing"]["station"] == A and places["b-gate"]["station"] == B
    assert places["a-crossing"]["legal_basis"] == "Order 12/2026"
    assert [c["id"] for c in places["b-gate"]["cameras"]] == ["cam-b"]
    gaps = doc["gaps"]
    assert "not stated in the config: hotspot b-gate has no purpose" in gaps
    assert "not stated in the config: hotspot b-gate has no legal basis" in gaps
    assert not any("a-crossing" in g for g in gaps)
    assert not any("transparency" in g for g in gaps)  # the section is complete
    dpia = {s["key"]: s for s in doc["dpia"]}
    assert set(dpia) == {
        "necessity",
        "proportionality",
        "risks",
        "safeguards",
        "oversight",
        "accuracy",
        "rights",
        "contact",
    }
    assert "operator: Lucknow Police Commissionerate" in dpia["contact"]["statements"]
    assert any("officers confirmed 5" in s for s in dpia["oversight"]["statements"])
    assert any("no measured accuracy" in g for g in dpia["accuracy"]["gaps"])


def test_the_month_is_the_local_one(tmp_path: Path) -> None:
    store = IncidentStore.open(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        incident(store, A, utc(10, 31, 18), [])  # 23:30 in Kolkata: still October
        incident(store, A, utc(10, 31, 19), [])  # 00:30 on 1 November
        counts = monthly_counts(store.engine, since=utc(10, 1), until=utc(12, 1), tz=KOLKATA)
        assert {k: c.opened for k, c in counts.rows.items()} == {
            (A, "2026-10", "camera"): 1,
            (A, "2026-11", "camera"): 1,
        }
        in_utc = monthly_counts(store.engine, since=utc(10, 1), until=utc(12, 1), tz="UTC")
        assert list(in_utc.rows) == [(A, "2026-10", "camera")]
        with pytest.raises(ValueError):
            monthly_counts(store.engine, since=utc(12, 1), until=utc(10, 1), tz=KOLKATA)
    finally:
        store.close()


def test_a_config_without_purpose_legal_basis_or_contacts_names_the_gaps(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    cfg = RunConfig.model_validate(config_dict(url, tmp_path / "ev", stated=False))
    store = IncidentStore.open(url)
    try:
        pack = transparency_pack(cfg, store, days=30, now=NOW)
    finally:
        store.close()
    for hotspot in ("a-crossing", "b-gate"):
        assert f"not stated in the config: hotspot {hotspot} has no purpose" in pack.gaps
        assert f"not stated in the config: hotspot {hotspot} has no legal basis" in pack.gaps
    for name in ("necessity", "complaint_url", "dpo_contact", "operator", "contact"):
        assert any(f"({name} not stated)" in g for g in pack.gaps), name
    md = render_markdown(pack)
    assert "not stated (gap)" in md and "hotspot a-crossing has no legal basis" in md
    # An empty store: every count is 0, nothing invented.
    assert pack.incidents.camera == () and pack.incidents.camera_total.opened == 0
    assert pack.accuracy.overall.precision is None
    with pytest.raises(Invalid):
        transparency_pack(cfg, IncidentStore.open(url), days=0, now=NOW)


def test_eval_results_are_summarised(tmp_path: Path) -> None:
    one = {
        "n": 200,
        "accuracy": 0.5,
        "neutral_as_distress": 0.05,
        "distress_recall_pooled": 0.4,
        "intervals": {"accuracy": [0.45, 0.55], "distress": [0.3, 0.5]},
        "interval_method": "95 % bootstrap",
        "model": "raksha-fer-xd-int8",
        "dataset": "../shared/data/set-a",
    }
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"datasets": {"set-a": one, "set-b": {**one, "model": "x"}}}))
    results = read_eval_results(path)
    assert [(d.dataset, d.n, d.accuracy, d.accuracy_ci) for d in results] == [
        ("set-a", 200, 0.5, (0.45, 0.55)),
        ("set-b", 200, 0.5, (0.45, 0.55)),
    ]
    assert results[0].distress_recall_ci == (0.3, 0.5) and results[0].neutral_as_distress_ci is None
    single = tmp_path / "single.json"
    single.write_text(json.dumps(one))
    assert [d.dataset for d in read_eval_results(single)] == ["set-a"]

    url = f"sqlite:///{tmp_path / 'e.db'}"
    cfg = RunConfig.model_validate(config_dict(url, tmp_path / "ev"))
    store = IncidentStore.open(url)
    try:
        pack = transparency_pack(cfg, store, days=30, now=NOW, eval_results=results)
    finally:
        store.close()
    md = render_markdown(pack)
    assert "| set\\-a |" not in md  # `-` is not escaped
    assert "| set-a | raksha-fer-xd-int8 | 200 | 50.0% (45.0% to 55.0%) | 40.0% (30.0% to" in md
    assert "the measured results are of model x, not of the live model raksha-fer-xd-int8" in (
        pack.gaps
    )
    # The repository's own cross-population results: the pack's figures are the file's.
    real = Path(__file__).resolve().parents[1] / "benchmarks/results/crosspop-test-xd-int8.json"
    raw = json.loads(real.read_text(encoding="utf-8"))["datasets"]
    for d in read_eval_results(real):
        src = raw[d.dataset]
        assert (d.n, d.accuracy, d.distress_recall) == (
            src["n"],
            src["accuracy"],
            src["distress_recall_pooled"],
        )
        assert d.accuracy_ci == tuple(src["intervals"]["accuracy"])
        assert d.neutral_as_distress_ci == tuple(src["intervals"]["neutral_as_distress"])
    for bad, why in (("[1, 2]", "not a results file"), ("{", "is not JSON")):
        path.write_text(bad)
        with pytest.raises(RakshaError, match=why):
            read_eval_results(path)
    with pytest.raises(RakshaError, match="cannot read"):
        read_eval_results(tmp_path / "missing.json")


def test_the_command_writes_the_pack_and_notices(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'raksha.db'}"
    doc = config_dict(url, tmp_path / "ev")
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    now = datetime.now(UTC)
    store = IncidentStore.open(url)
    try:
        incident(store, A, now - timedelta(days=3), DISMISSED)
        incident(store, B, now - timedelta(days=2), CONFIRMED)
        incident(store, B, now - timedelta(days=400), CONFIRMED)  # outside --days 365
    finally:
        store.close()
    out = tmp_path / "pack"
    result = CliRunner().invoke(
        cli_app, ["report", "transparency", "--config", str(config), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote the transparency pack to {out}/" in result.output
    for name in ("index.html", "transparency.md", "transparency.json"):
        assert (out / name).is_file(), name
    figures = json.loads((out / "transparency.json").read_text(encoding="utf-8"))
    total = figures["incidents"]["camera_total"]
    assert (total["opened"], total["confirmed"], total["dismissed"]) == (2, 1, 1)

    page = (out / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; crossing" in page
    assert "&lt;script&gt;" in (out / "transparency.md").read_text(encoding="utf-8")
    for hotspot in ("a-crossing", "b-gate"):
        md = (out / "notices" / f"{hotspot}.md").read_text(encoding="utf-8")
        html = (out / "notices" / f"{hotspot}.html").read_text(encoding="utf-8")
        for text in (md, html):
            assert "कैमरा" in text and "Cameras watch this place" in text  # both scripts
            assert "30 दिन" in text and "30 days" in text
            assert "Lucknow Police Commissionerate" in text
        assert "<script>" not in html
    a_notice = (out / "notices" / "a-crossing.md").read_text(encoding="utf-8")
    assert "Order 12/2026" in a_notice and "Hazratganj PS" in a_notice
    b_notice = (out / "notices" / "b-gate.md").read_text(encoding="utf-8")
    assert "Legal basis: not stated" in b_notice and "कानूनी आधार: उल्लेख नहीं" in b_notice

    audit = AuditLog(IncidentStore.open(url).engine).entries(action="report.transparency")
    assert len(audit) == 1 and audit[0].actor.startswith("cli:")

    bad = CliRunner().invoke(
        cli_app,
        ["report", "transparency", "--config", str(config), "--out", str(out), "--days", "0"],
    )
    # A user error is one RakshaError line (`raksha.cli.main` prints it, exit code 2).
    assert bad.exit_code != 0 and isinstance(bad.exception, RakshaError)
    assert str(bad.exception) == "--days must be between 1 and 366"
