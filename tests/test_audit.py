"""The hash-chained audit log on SQLite and PostgreSQL: appends, and tampering of every kind
(edit, delete, insert, reorder) detected with the entry named — by AuditLog.verify and by
`raksha audit verify`."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from dashboard_support import allow_tampering, database, site_config
from raksha.audit import AuditLog
from raksha.audit.chain import entry_hash
from raksha.audit.checkpoint import check_checkpoints, new_private_key, write_checkpoint
from raksha.audit.tables import audit_head, audit_log
from raksha.cli import app as cli_app
from raksha.store import IncidentStore


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    with database(request.param, tmp_path) as url:
        store = IncidentStore.open(url)
        yield url, store.engine
        store.close()


def _fill(log: AuditLog, n: int = 6) -> None:
    for i in range(1, n + 1):
        log.append(
            f"user{i}",
            "incident.view",
            target=f"incident:{i}",
            station_id="hazratganj",
            address="127.0.0.1",
            details={"n": i, "note": "ünïcode ok", "score": 0.25, "list": [1, 2]},
        )


def _row(engine: Engine, seq: int) -> dict[str, object]:
    with engine.connect() as c:
        return dict(c.execute(select(audit_log).where(audit_log.c.seq == seq)).one()._mapping)


def test_appended_chain_verifies(db: tuple[str, Engine]) -> None:
    _, engine = db
    log = AuditLog(engine)
    assert log.verify().ok and log.verify().entries == 0
    _fill(log)
    result = log.verify()
    assert result.ok, result.problems
    assert result.entries == 6 and result.head_seq == 6
    entries = log.entries(limit=10)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert result.head_hash == entries[-1].hash
    assert entries[2].details["note"] == "ünïcode ok"


def test_concurrent_appends_keep_one_chain(db: tuple[str, Engine]) -> None:
    _, engine = db
    log = AuditLog(engine)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(5):
                log.append(f"t{k}", "incident.view", details={"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = log.verify()
    assert result.ok, result.problems
    assert result.entries == 20


def test_edited_entry_is_named(db: tuple[str, Engine]) -> None:
    _, engine = db
    log = AuditLog(engine)
    _fill(log)
    allow_tampering(engine)
    with engine.begin() as c:
        c.execute(update(audit_log).where(audit_log.c.seq == 3).values(actor="mallory"))
    result = log.verify()
    assert not result.ok
    first = result.first_problem
    assert first is not None and first.seq == 3 and "edited" in first.problem
    assert [p.seq for p in result.problems] == [3]


def test_edited_details_are_detected(db: tuple[str, Engine]) -> None:
    _, engine = db
    log = AuditLog(engine)
    _fill(log)
    allow_tampering(engine)
    with engine.begin() as c:
        c.execute(update(audit_log).where(audit_log.c.seq == 5).values(details={"n": 5, "x": 1}))
    first = log.verify().first_problem
    assert first is not None and first.seq == 5


def test_deleted_entry_is_named(db: tuple[str, Engine]) -> None:
    _, engine = db
    log = AuditLog(engine)
    _fill(log)
    allow_tampering(engine)
    with engine.begin() as c:
        c.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    result = log.verify()
    assert not result.ok
    first = result.first_problem
    assert first is not None and first.seq == 4
    assert "entry 3 is missing" in first.problem


def test_deleted_newest_entries_are_detected(db: tuple[str, Engine]) -> None:
    _, engine = db
    log = AuditLog(engine)
    _fill(log)
    allow_tampering(engine)
    with engine.begin() as c:
        c.execute(text("DELETE FROM audit_log WHERE seq >= 5"))
    first = log.verify().first_problem
    assert first is not None and first.seq == 5 and "deleted" in first.problem


def test_inserted_entry_is_detected(db: tuple[str, Engine]) -> None:
    """A forged entry slipped in after entry 3 (later ones renumbered), with a correct hash of
    its own: the chain breaks at the entry after it, which says so."""
    _, engine = db
    log = AuditLog(engine)
    _fill(log)
    third = _row(engine, 3)
    allow_tampering(engine)
    with engine.begin() as c:
        for seq in (6, 5, 4):
            c.execute(update(audit_log).where(audit_log.c.seq == seq).values(seq=seq + 1))
        forged = {
            "seq": 4,
            "at": third["at"],
            "actor": "mallory",
            "action": "incident.view",
            "target": "incident:99",
            "station_id": None,
            "address": None,
            "details": {},
            "prev_hash": third["hash"],
        }
        forged["hash"] = entry_hash(**forged)  # type: ignore[arg-type]
        c.execute(insert(audit_log), forged)
    result = log.verify()
    assert not result.ok
    assert all(p.seq != 4 for p in result.problems)  # the forgery is consistent in itself...
    at5 = [p.problem for p in result.problems if p.seq == 5]
    assert at5 and any("inserted" in p for p in at5)  # ...but its successor no longer fits


def test_appended_outside_the_log_is_detected(db: tuple[str, Engine]) -> None:
    _, engine = db
    log = AuditLog(engine)
    _fill(log)
    last = _row(engine, 6)
    forged = {
        "seq": 7,
        "at": last["at"],
        "actor": "mallory",
        "action": "login.success",
        "target": None,
        "station_id": None,
        "address": None,
        "details": {},
        "prev_hash": last["hash"],
    }
    forged["hash"] = entry_hash(**forged)  # type: ignore[arg-type]
    allow_tampering(engine)
    with engine.begin() as c:
        c.execute(insert(audit_log), forged)
    first = log.verify().first_problem
    assert first is not None and first.seq == 7 and "head" in first.problem


def test_reordered_entries_are_named(db: tuple[str, Engine]) -> None:
    _, engine = db
    log = AuditLog(engine)
    _fill(log)
    allow_tampering(engine)
    with engine.begin() as c:
        c.execute(update(audit_log).where(audit_log.c.seq == 2).values(seq=-2))
        c.execute(update(audit_log).where(audit_log.c.seq == 3).values(seq=2))
        c.execute(update(audit_log).where(audit_log.c.seq == -2).values(seq=3))
    result = log.verify()
    assert not result.ok
    first = result.first_problem
    assert first is not None and first.seq == 2
    assert any("reordered" in p.problem for p in result.problems if p.seq == 2)


def test_cli_audit_verify(db: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = db
    cfg = site_config(url, tmp_path / "evidence")
    config = tmp_path / "raksha.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": cfg.storage.url}}), encoding="utf-8")
    log = AuditLog(engine)
    _fill(log)
    runner = CliRunner()
    ok = runner.invoke(cli_app, ["audit", "verify", "--config", str(config)])
    assert ok.exit_code == 0, ok.output
    assert "audit log ok: 6 entries" in ok.output
    allow_tampering(engine)
    with engine.begin() as c:
        c.execute(update(audit_log).where(audit_log.c.seq == 4).values(action="logout"))
    broken = runner.invoke(cli_app, ["audit", "verify", "--config", str(config)])
    assert broken.exit_code == 1
    assert "entry 4" in broken.output and "edited" in broken.output


def test_the_database_refuses_to_rewrite_the_log(db: tuple[str, Engine]) -> None:
    """Append-only at the database: editing, deleting or truncating entries and moving the
    head back are refused, whoever connects; the chain still verifies afterwards."""
    _, engine = db
    log = AuditLog(engine)
    _fill(log)
    attempts = [
        update(audit_log).where(audit_log.c.seq == 3).values(actor="mallory"),
        audit_log.delete().where(audit_log.c.seq >= 5),
        update(audit_head).values(seq=2),
        audit_head.delete(),
    ]
    if engine.dialect.name == "postgresql":
        attempts.append(text("TRUNCATE audit_log"))
    else:  # REPLACE deletes without firing DELETE triggers: refused as an insert over a row
        attempts.append(
            text("INSERT OR REPLACE INTO audit_log SELECT * FROM audit_log WHERE seq = 2")
        )
        attempts.append(
            text("INSERT OR REPLACE INTO audit_head (id, seq, hash) VALUES (1, 0, 'x')")
        )
    attempts.append(update(audit_head).values(hash="0" * 64))  # a new hash at the same number
    for statement in attempts:
        with pytest.raises(DBAPIError) as err, engine.begin() as c:
            c.execute(statement)
        assert "append-only" in str(err.value) or "move forward" in str(err.value)
    result = log.verify()
    assert result.ok and result.entries == 6 and result.head_seq == 6
    log.append("user7", "incident.view")  # appending still works
    assert log.verify().ok


def _recompute_from(engine: Engine, first: int) -> None:
    """Rewrite the chain from entry `first` on as a careful intruder would: every later hash
    recomputed, the head moved to match, so the chain itself verifies."""
    with engine.begin() as c:
        rows = c.execute(select(audit_log).order_by(audit_log.c.seq)).all()
        prev = "0" * 64
        for r in rows:
            if r.seq >= first:
                digest = entry_hash(
                    seq=r.seq,
                    at=r.at,
                    actor=r.actor,
                    action=r.action,
                    target=r.target,
                    station_id=r.station_id,
                    address=r.address,
                    details=r.details,
                    prev_hash=prev,
                )
                c.execute(
                    update(audit_log)
                    .where(audit_log.c.seq == r.seq)
                    .values(prev_hash=prev, hash=digest)
                )
                prev = digest
            else:
                prev = r.hash
        last = max(r.seq for r in rows)
        c.execute(update(audit_head).values(seq=last, hash=prev))


def test_signed_checkpoints_catch_a_truncated_or_recomputed_chain(
    db: tuple[str, Engine], tmp_path: Path
) -> None:
    _, engine = db
    log = AuditLog(engine)
    key = new_private_key()
    public = key.public_key()
    path = tmp_path / "checkpoints.jsonl"
    write_checkpoint(log, key, path)  # signed while empty: fine
    _fill(log)
    write_checkpoint(log, key, path)  # head 6
    assert check_checkpoints(log, path, public) == [] and log.verify().ok

    # Truncated: entries 5 and 6 deleted and the head moved back. The chain verifies...
    allow_tampering(engine)
    with engine.begin() as c:
        c.execute(audit_log.delete().where(audit_log.c.seq >= 5))
        h4 = c.execute(select(audit_log.c.hash).where(audit_log.c.seq == 4)).scalar_one()
        c.execute(update(audit_head).values(seq=4, hash=h4))
    assert log.verify().ok
    # ...the checkpoint does not.
    (problem,) = check_checkpoints(log, path, public)
    assert problem.seq == 6 and "truncated" in problem.problem

    # Recomputed: entry 2 edited and every later hash redone; appended up to 6 again.
    with engine.begin() as c:
        c.execute(update(audit_log).where(audit_log.c.seq == 2).values(actor="mallory"))
    _recompute_from(engine, 2)
    log.append("user5", "incident.view")
    log.append("user6", "incident.view")
    assert log.verify().ok
    (problem,) = check_checkpoints(log, path, public)
    assert problem.seq == 6 and "recomputed" in problem.problem

    # A forged checkpoint line (signed with another key) is named too.
    other = new_private_key()
    forged = tmp_path / "forged.jsonl"
    write_checkpoint(log, other, forged)
    (bad,) = check_checkpoints(log, forged, public)
    assert "bad signature" in bad.problem


def test_cli_keygen_checkpoint_and_verify_with_checkpoints(
    db: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = db
    config = tmp_path / "raksha.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": url}}), encoding="utf-8")
    _fill(AuditLog(engine))
    runner = CliRunner()
    key = tmp_path / "audit-key.pem"
    made = runner.invoke(cli_app, ["audit", "keygen", "--out", str(key)])
    assert made.exit_code == 0 and "BEGIN PUBLIC KEY" in made.output, made.output
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    pub = tmp_path / "audit-key.pub"
    pub.write_text(made.output)
    again = runner.invoke(cli_app, ["audit", "keygen", "--out", str(key)])
    assert again.exit_code != 0  # never overwrites a key
    cps = tmp_path / "cps.jsonl"
    args = ["--config", str(config)]
    done = runner.invoke(
        cli_app, ["audit", "checkpoint", *args, "--file", str(cps), "--key", str(key)]
    )
    assert done.exit_code == 0 and "head 6" in done.output, done.output
    check = ["audit", "verify", *args, "--checkpoints", str(cps), "--public-key", str(pub)]
    ok = runner.invoke(cli_app, check)
    assert ok.exit_code == 0, ok.output
    allow_tampering(engine)
    with engine.begin() as c:
        c.execute(audit_log.delete().where(audit_log.c.seq == 6))
        h5 = c.execute(select(audit_log.c.hash).where(audit_log.c.seq == 5)).scalar_one()
        c.execute(update(audit_head).values(seq=5, hash=h5))
    broken = runner.invoke(cli_app, check)
    assert broken.exit_code == 1 and "truncated" in broken.output, broken.output
