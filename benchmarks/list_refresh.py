"""Twenty officers' dashboards refreshing the incident list at once: audit every list, or
once per officer and filter per interval (the default since 2026-12-06).

    python benchmarks/list_refresh.py [--officers 20] [--seconds 15] [--db sqlite|postgresql]

Starts `raksha serve` (a process of its own) over a fresh database with 30 incidents, logs
in `--officers` operators of one station, and has each (one thread each, one keep-alive
connection) fetch `GET /api/incidents?state=NEW` as fast as the server answers for
`--seconds`, first with `--list-audit-every-s 0` (every list appended to the hash-chained
audit log, all serialised on its one head row), then with the default 300. Prints requests
per second, p50 and p95 latency and the audit entries written; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, text

from raksha.audit.log import AuditLog
from raksha.auth.users import UserStore
from raksha.domain.routing import Route
from raksha.incidents.model import NewIncident
from raksha.store import IncidentStore

PASSWORD = "correct horse battery staple"
STATION = "hazratganj"
PG_ADMIN = os.environ.get("RAKSHA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(db_url: str, officers: int) -> None:
    store = IncidentStore.open(db_url)
    users = UserStore(store.engine)
    for i in range(officers):
        users.add(f"op{i}", "operator", PASSWORD, station_id=STATION)
    for _ in range(30):
        store.create_incident(
            NewIncident(
                camera_id="cam-1",
                hotspot_id="h1",
                station_id=STATION,
                peak_distress=0.8,
                expression_at_peak={"fear": 0.8, "neutral": 0.2},
                model_name="m",
                model_sha256="0" * 64,
                thresholds={},
                route=Route(STATION, "nearest", 0.0, ()),
                opened_at=datetime.now(UTC),
            ),
            [],
            {"kind": "distress"},
            [],
        )
    store.close()


def run_server(config: Path, every_s: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "raksha",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            "--list-audit-every-s",
            str(every_s),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("raksha serve did not start")


def hammer(base: str, officers: int, seconds: float) -> list[float]:
    clients = []
    for i in range(officers):
        c = httpx.Client(base_url=base, timeout=30)
        r = c.post("/api/login", json={"username": f"op{i}", "password": PASSWORD})
        r.raise_for_status()
        clients.append(c)
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Event()
    stop_at = [0.0]

    def officer(c: httpx.Client) -> None:
        mine: list[float] = []
        start.wait()
        while time.monotonic() < stop_at[0]:
            t0 = time.perf_counter()
            r = c.get("/api/incidents", params={"state": "NEW"})
            r.raise_for_status()
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=officer, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    stop_at[0] = time.monotonic() + seconds
    start.set()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    return latencies


def one(db: str, every_s: float, officers: int, seconds: float, folder: Path) -> dict[str, Any]:
    schema = None
    if db == "sqlite":
        url = f"sqlite:///{folder / f'bench-{every_s:g}.db'}"
    else:
        schema = f"raksha_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN)
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    try:
        prepare(url, officers)
        config = folder / f"bench-{every_s:g}.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "stations": [{"id": STATION, "lat": 26.85, "lon": 80.94}],
                    "storage": {"url": url},
                    "evidence": {"dir": str(folder / "evidence")},
                }
            )
        )
        proc, base = run_server(config, every_s)
        try:
            before = AuditLog(IncidentStore.open(url).engine).count()
            lat = hammer(base, officers, seconds)
            after = AuditLog(IncidentStore.open(url).engine).count()
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        if schema is not None:
            with create_engine(PG_ADMIN).begin() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    lat.sort()
    return {
        "db": db,
        "list_audit_every_s": every_s,
        "officers": officers,
        "seconds": seconds,
        "requests": len(lat),
        "requests_per_s": round(len(lat) / seconds, 1),
        "p50_ms": round(1000 * statistics.median(lat), 1),
        "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1),
        "audit_entries_written": after - before - officers,  # minus one login entry each
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--officers", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], action="append")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for db in args.db or ["sqlite", "postgresql"]:
            for every_s in (0.0, 300.0):
                r = one(db, every_s, args.officers, args.seconds, Path(tmp))
                results.append(r)
                print(
                    f"{db:10s} audit every list: {'yes' if every_s == 0 else 'no, per 300 s':14s} "
                    f"{r['requests_per_s']:7.1f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                    f"p95 {r['p95_ms']:6.1f} ms  audit entries {r['audit_entries_written']}",
                    flush=True,
                )
    if args.json:
        args.json.write_text(
            json.dumps({"command": " ".join(sys.argv), "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
