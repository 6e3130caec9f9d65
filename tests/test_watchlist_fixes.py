"""The watchlist's review fixes: concurrent decisions serialised, review dates that stop
matching at the end of the day in the deployment's zone, a cached gallery dropped on any
change, data removable with the module off, the measurement gate's list size and model,
untracked faces, the alerts' thumbnail retention, and the list-size lock."""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from pg_support import admin_engine, store_url
from raksha.audit.log import AuditLog
from raksha.auth.roles import Role
from raksha.auth.users import User
from raksha.cli import app as cli_app
from raksha.config import RunConfig, load_run_config
from raksha.errors import ConfigError
from raksha.incidents.evidence import encrypt_bytes
from raksha.pipeline.watchlist import WatchlistShared
from raksha.services.errors import Conflict
from raksha.services.incidents import Caller
from raksha.services.watchlist import (
    WatchlistError,
    WatchlistService,
    encrypt_embedding,
    review_day,
    review_end,
    watchlist_keys,
    watchlist_runtime,
)
from raksha.services.watchlist_review import WatchlistReview
from raksha.site.watchlist import registered_sha256
from raksha.store import watchlist as wl
from raksha.store.repository import IncidentStore
from raksha.store.tables import watchlist_alerts, watchlist_templates
from raksha.watchlist.matcher import Gallery
from watchlist_support import NOW, authorisation, eval_json, site_doc, write_site

SCHEMA_PREFIX = "raksha_wlfix_t_"
ZONE = "Asia/Kolkata"


@pytest.fixture(scope="module")
def pg_admin() -> Iterator[Engine]:
    engine = admin_engine("the watchlist race tests", SCHEMA_PREFIX)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    admin = lambda: request.getfixturevalue("pg_admin")  # noqa: E731
    with store_url(request.param, tmp_path, admin, SCHEMA_PREFIX) as url:
        store = IncidentStore.open(url)
        try:
            yield store.engine
        finally:
            store.close()


def _caller(name: str) -> Caller:
    return Caller(User(1, name, Role.CONTROL_ROOM, None, False, NOW, None))


def _person(engine: Engine, pid: str = "P-1", review: datetime | None = None) -> None:
    p = wl.Person(
        pid, "wanted", "warrant", "case file", "SI Verma", NOW, review or NOW + timedelta(30)
    )
    key = _key()
    vec = np.random.default_rng(len(pid)).normal(size=256).astype(np.float32)
    with engine.begin() as c:
        wl.add_person(c, p, [(encrypt_embedding(vec, key), encrypt_bytes(b"thumb", key))])


def _key() -> bytes:
    import os

    return os.environ["RAKSHA_EVIDENCE_KEY"].encode()


def _alert(engine: Engine, opened: datetime | None = None) -> str:
    alert_id = str(uuid.uuid4())
    a = wl.WatchlistAlert(
        alert_id, "P-1", "cam-a", "st-a", opened or NOW, 0.6, encrypt_bytes(b"probe", _key())
    )
    with engine.begin() as c:
        wl.insert_alert(c, a)
    return alert_id


def _at_once(calls: list[Callable[[], object]]) -> list[object]:
    """Run the calls in threads released together; each one's result or exception."""
    out: list[object] = [None] * len(calls)
    gate = threading.Barrier(len(calls))

    def run(i: int) -> None:
        gate.wait()
        try:
            out[i] = calls[i]()
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def _closed_consistently(engine: Engine, alert_id: str) -> tuple[str, list[wl.Decision]]:
    with engine.connect() as c:
        a = wl.alert(c, alert_id)
        found = wl.decisions(c, alert_id)
    assert a is not None
    kinds = [d.decision for d in found]
    if a.state == "confirmed":
        assert kinds == ["confirm", "confirm"], "confirmed with a reject, or a decision after"
    elif a.state == "rejected":
        assert kinds[-1] == "reject" and kinds.count("reject") == 1, kinds
        assert "reject" not in kinds[:-1] and kinds.count("confirm") <= 1
        assert a.probe_thumbnail_enc is None, "a rejected match keeps the probe's face"
    else:
        assert kinds.count("confirm") <= 1 and "reject" not in kinds, kinds
    return a.state, found


# ---- 1 and 8: concurrent decisions ------------------------------------------------------------


def test_concurrent_decisions_never_leave_an_inconsistent_alert(engine: Engine) -> None:
    _person(engine)
    review = WatchlistReview(engine, AuditLog(engine))
    for round_ in range(6):
        # Two first confirmations at once: both count, so the alert is confirmed.
        a = _alert(engine)
        res = _at_once(
            [
                lambda a=a: review.decide(_caller("o1"), a, "confirm"),  # type: ignore[misc]
                lambda a=a: review.decide(_caller("o2"), a, "confirm"),  # type: ignore[misc]
            ]
        )
        assert not [r for r in res if isinstance(r, Exception)], res
        assert _closed_consistently(engine, a)[0] == "confirmed"
        # One confirmed; then a confirm and a reject at once: whichever wins closes it.
        b = _alert(engine)
        review.decide(_caller("o1"), b, "confirm")
        res = _at_once(
            [
                lambda b=b: review.decide(_caller("o2"), b, "confirm"),  # type: ignore[misc]
                lambda b=b: review.decide(_caller("o3"), b, "reject"),  # type: ignore[misc]
                lambda b=b: review.decide(_caller("o4"), b, "confirm"),  # type: ignore[misc]
            ]
        )
        errors = [r for r in res if isinstance(r, Exception)]
        assert len(errors) == 2 and all(isinstance(e, Conflict) for e in errors), res
        state, found = _closed_consistently(engine, b)
        assert state in {"confirmed", "rejected"} and len(found) == 2, round_


def test_a_duplicate_decision_is_a_conflict_not_a_database_error(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _person(engine)
    review = WatchlistReview(engine, AuditLog(engine))
    a = _alert(engine)
    review.decide(_caller("o1"), a, "confirm")
    monkeypatch.setattr(wl, "decisions", lambda c, alert_id: [])  # the check raced past
    with pytest.raises(Conflict, match=r"decided watchlist alert .* already"):
        review.decide(_caller("o1"), a, "confirm")


def test_listing_is_audited_and_a_rejection_drops_the_probe(engine: Engine) -> None:
    _person(engine)
    review = WatchlistReview(engine, AuditLog(engine))
    a = _alert(engine)
    assert [x.id for x in review.pending(_caller("o1"))] == [a]
    listed = [e for e in AuditLog(engine).entries() if e.action == "watchlist.list"]
    assert [(e.actor, e.target) for e in listed] == [("o1", "watchlist_alerts")]
    assert listed[0].details == {"state": "pending", "stations": None, "alerts": [a]}
    review.decide(_caller("o1"), a, "reject")
    with engine.connect() as c:
        got = wl.alert(c, a)
    assert got is not None and got.state == "rejected" and got.probe_thumbnail_enc is None


# ---- 10: the list-size lock -------------------------------------------------------------------


def test_the_list_lock_serialises_two_enrolments(engine: Engine) -> None:
    held = threading.Event()
    waited: list[float] = []

    def first() -> None:
        with engine.begin() as c:
            wl.lock_list(c)
            wl.active_count(c)
            held.set()
            time.sleep(0.6)

    def second() -> None:
        held.wait(10)
        t0 = time.monotonic()
        with engine.begin() as c:
            wl.lock_list(c)
            waited.append(time.monotonic() - t0)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert waited and waited[0] >= 0.4, "the second count did not wait for the first add"


# ---- 2 and 9: review dates, expiry and the cached gallery -------------------------------------


def _cfg(tmp: Path, **wl_args: Any) -> RunConfig:
    doc = site_doc(tmp, **wl_args)
    doc["timezone"] = ZONE
    return load_run_config(write_site(tmp, doc))


def test_the_review_date_ends_at_midnight_in_the_deployments_zone() -> None:
    end = review_end(date(2026, 12, 6), ZONE)
    assert end == datetime(2026, 12, 6, 18, 30, tzinfo=UTC)
    assert review_day(end, ZONE) == date(2026, 12, 6)


def test_a_passed_review_date_stops_matching_at_once(tmp_path: Path) -> None:
    wide = authorisation(["cam-a"], start=NOW - timedelta(days=2), end=NOW + timedelta(days=9))
    cfg = _cfg(tmp_path, authorisations=[wide])
    store = IncidentStore.open(cfg.storage.url)
    try:
        engine = store.engine
        day = NOW.astimezone(ZoneInfo(ZONE)).date() + timedelta(days=1)
        end = review_end(day, ZONE)
        _person(engine, "P-1", end)
        _person(engine, "P-22", end + timedelta(days=5))
        assert cfg.watchlist is not None
        keys = watchlist_keys(cfg)
        now = [end - timedelta(seconds=1)]
        svc = WatchlistService(engine, cfg, keys, clock=lambda: now[0])
        assert svc.gallery().identities == ("P-1", "P-22")
        passed = day - timedelta(days=1)
        with pytest.raises(WatchlistError, match=f"review date {passed.isoformat()} has passed"):
            svc.enrol(
                "P-3", category="wanted", reason="warrant", image_source="file", by="SI Verma",
                review_date=passed, photos=[], faces=cast(Any, None),
            )  # fmt: skip
        loads: list[int] = []

        def load() -> Gallery:
            loads.append(1)
            return svc.gallery()

        shared = WatchlistShared(
            cfg.watchlist, engine, None, load, lambda b: b, clock=lambda: now[0],
            version=svc.gallery_version, maintain=svc.maintain,
        )  # fmt: skip
        assert shared.gallery().identities == ("P-1", "P-22")
        assert shared.gallery().identities == ("P-1", "P-22") and len(loads) == 1, "cached"
        now[0] = end  # the end of the day in Kolkata: P-1 no longer matches before expire runs
        assert shared.gallery().identities == ("P-22",)
        svc.remove("P-22", by="SI Verma", reason="arrested")
        assert shared.gallery().identities == (), "a removed person matched from the cache"
        # The reload (every RELOAD_S) expires entries: the pipeline runs `expire` itself.
        shared._loaded_at = -1e18
        shared.gallery()
        expired = [e for e in AuditLog(engine).entries() if e.action == "watchlist.expire"]
        assert [(e.target, e.details["review_date"]) for e in expired] == [
            ("watchlist:P-1", day.isoformat())
        ]
    finally:
        store.close()


# ---- 3: removal without the gate --------------------------------------------------------------


def test_the_list_can_be_listed_removed_and_purged_with_the_module_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    doc = site_doc(tmp_path)
    store = IncidentStore.open(doc["storage"]["url"])
    try:
        for pid in ("P-1", "P-2", "P-3"):
            _person(store.engine, pid)
    finally:
        store.close()
    # The measurement fails the gate: the CLI still lists and removes.
    failing = dict(doc)
    failing["watchlist"] = dict(doc["watchlist"], fmr_ceiling=0.000001)
    config = write_site(tmp_path, failing)
    with pytest.raises(ConfigError):
        load_run_config(config)
    runner = CliRunner()
    common = ["--config", str(config)]
    res = runner.invoke(cli_app, ["watchlist", "list", *common])
    assert res.exit_code == 0 and "3 listed" in res.output, (res.output, res.exception)
    res = runner.invoke(
        cli_app, ["watchlist", "remove", "P-1", *common, "--by", "SI Verma", "--reason", "done"]
    )
    assert res.exit_code == 0 and "1 template(s) deleted" in res.output, res.exception
    # No `watchlist:` section at all: a warning at start, then purge.
    off = dict(doc)
    del off["watchlist"]
    config = write_site(tmp_path, off)
    cfg = load_run_config(config)
    store = IncidentStore.open(cfg.storage.url)
    try:
        with caplog.at_level(logging.WARNING):
            assert watchlist_runtime(cfg, store.engine) is None
        assert "raksha watchlist purge" in caplog.text and "2 template(s)" in caplog.text
    finally:
        store.close()
    res = runner.invoke(cli_app, ["watchlist", "expire", "--config", str(config)])
    assert res.exit_code == 0 and "expired 0" in res.output, res.exception
    res = runner.invoke(
        cli_app,
        ["watchlist", "purge", "--config", str(config), "--by", "SI Verma", "--reason", "off"],
    )
    assert res.exit_code == 0 and "2 template(s) deleted" in res.output, res.exception
    store = IncidentStore.open(cfg.storage.url)
    try:
        with store.engine.connect() as c:
            assert c.execute(select(watchlist_templates)).all() == []
        people = wl.people(store.engine, include_removed=True)
        assert len(people) == 3 and all(p.removed_at is not None for p in people)
        purge = [e for e in AuditLog(store.engine).entries() if e.action == "watchlist.purge"]
        assert len(purge) == 1 and purge[0].actor == "SI Verma"
        assert purge[0].details == {"reason": "off", "people": 2, "templates_deleted": 2}
    finally:
        store.close()


# ---- 4: the gate's list size and model --------------------------------------------------------


def test_the_gate_refuses_a_list_larger_than_the_measured_gallery(tmp_path: Path) -> None:
    small = str(eval_json(tmp_path / "small.json", gallery_size=5))
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, eval_json=small, authorisations=[authorisation(["cam-a"])])
    assert str(err.value) == (
        "watchlist: matching refused: the measured false-match rate was for 5 people; a list "
        "of 10 (max_list_size) needs a measurement with at least 10"
    )
    _cfg(tmp_path, eval_json=small, authorisations=[authorisation(["cam-a"], max_list_size=5)])
    unsaid = str(eval_json(tmp_path / "unsaid.json", gallery_size=None))
    with pytest.raises(ConfigError, match="does not say how many people"):
        _cfg(tmp_path, eval_json=unsaid)


def test_the_gate_refuses_a_measurement_of_another_model(tmp_path: Path) -> None:
    sha = registered_sha256()
    assert sha is not None
    other = str(eval_json(tmp_path / "other.json", model_sha256="0" * 64))
    with pytest.raises(ConfigError, match="measured model sha256 000000000000"):
        _cfg(tmp_path, eval_json=other)
    same = str(eval_json(tmp_path / "same.json", model_sha256=sha))
    assert _cfg(tmp_path, eval_json=same).watchlist is not None


# ---- 5: untracked faces and forgetting tracks -------------------------------------------------


class _Embedder:
    def __init__(self) -> None:
        self.calls = 0

    def embed(self, crops: Any) -> Any:
        self.calls += 1
        return np.ones((len(crops), 256), np.float32)


def _located(track_ids: list[int], t: float) -> Any:
    n = len(track_ids)
    boxes = np.array([[100.0, 100.0, 200.0, 200.0]] * n, np.float32)
    marks = np.array([[[130, 140], [170, 140], [150, 160], [135, 180], [165, 180]]] * n, np.float32)
    faces = type("F", (), {"boxes": boxes, "landmarks": marks, "__len__": lambda s: n})()
    frame = SimpleNamespace(image=np.full((480, 640, 3), 90, np.uint8), t=t)
    return SimpleNamespace(faces=faces, track_ids=np.array(track_ids), frame=frame)


def test_untracked_faces_are_not_pooled_and_old_tracks_are_forgotten(tmp_path: Path) -> None:
    import raksha.pipeline.watchlist as pw

    cfg = _cfg(tmp_path)
    store = IncidentStore.open(cfg.storage.url)
    try:
        assert cfg.watchlist is not None
        embedder = _Embedder()
        gallery = Gallery(np.ones((1, 256), np.float32), ["P-1"])
        shared = WatchlistShared(
            cfg.watchlist, store.engine, embedder, lambda: gallery, lambda b: b, clock=lambda: NOW
        )
        m = shared.matcher("cam-a", "charbagh")
        for k in range(8):
            m.observe(_located([-1, -1], float(k)), [50.0, 60.0])
        assert embedder.calls == 0 and m.alerts == [], "untracked faces were embedded"
        for k in range(8):
            m.observe(_located([5], 10.0 + k), [50.0])
        assert len(m.alerts) == 1 and m._votes.tracks == 1 and (5, "P-1") in m._alerted
        m.observe(_located([6], 10.0 + pw.FORGET_S + 10), [50.0])
        assert 5 not in m._seen and (5, "P-1") not in m._alerted
        assert m._votes.tracks == 0
    finally:
        store.close()


# ---- 6: the alerts' thumbnail retention -------------------------------------------------------


def test_closed_alerts_lose_their_probe_thumbnail_after_retention(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    store = IncidentStore.open(cfg.storage.url)
    try:
        engine = store.engine
        _person(engine)
        old, recent, pending = _alert(engine), _alert(engine), _alert(engine)
        days = cfg.evidence.retention_days
        with engine.begin() as c:
            wl.set_alert_state(c, old, "confirmed", NOW - timedelta(days=days + 1))
            wl.set_alert_state(c, recent, "confirmed", NOW - timedelta(days=days - 1))
        svc = WatchlistService(engine, cfg, clock=lambda: NOW)
        assert svc.drop_old_thumbnails() == 1
        with engine.connect() as c:
            q = select(watchlist_alerts.c.id, watchlist_alerts.c.probe_thumbnail_enc)
            thumbs = {r.id: r.probe_thumbnail_enc for r in c.execute(q)}
        assert thumbs[old] is None and thumbs[recent] and thumbs[pending]
        audit = [e for e in AuditLog(engine).entries() if e.action == "watchlist.retention"]
        assert [e.details for e in audit] == [{"retention_days": days, "thumbnails_deleted": [old]}]
        assert svc.drop_old_thumbnails() == 0
    finally:
        store.close()


# ---- the CLI's one-line errors ----------------------------------------------------------------


def test_a_bad_review_date_is_one_line_and_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from raksha.cli import main

    config = write_site(tmp_path, site_doc(tmp_path))
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    argv = [
        "raksha", "watchlist", "add", "--config", str(config), "--id", "P-9",
        "--category", "wanted", "--reason", "warrant", "--source", "file", "--by", "SI Verma",
        "--review-date", "soon", str(photo),
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err == "raksha: error: --review-date 'soon': expected YYYY-MM-DD\n"
