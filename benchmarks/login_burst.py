"""100 parallel password guesses against one account: how many are really checked, and what
the server's memory does.

    python benchmarks/login_burst.py [--guesses 100]

Starts `raksha serve` (a process of its own, SQLite), adds one operator, fires the guesses at
once from as many threads, and reports the answers, the real password checks (one
`login.failure` audit entry each) and the server's resident memory before, at its peak
(sampled every 20 ms) and after. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import collections
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

from raksha.audit.log import AuditLog
from raksha.auth.users import UserStore
from raksha.store import IncidentStore

PASSWORD = "correct horse battery staple"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--guesses", type=int, default=100)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'r.db'}"
        store = IncidentStore.open(db)
        UserStore(store.engine).add("op_a", "operator", PASSWORD, station_id="s1")
        config = Path(tmp) / "raksha.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "stations": [{"id": "s1", "lat": 26.85, "lon": 80.94}],
                    "storage": {"url": db},
                    "evidence": {"dir": str(Path(tmp) / "ev")},
                }
            )
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        server = subprocess.Popen(
            [sys.executable, "-m", "raksha", "serve", "--config", str(config), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            before = rss_mb(server.pid)
            peak = [before]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_mb(server.pid))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            answers: collections.Counter[int] = collections.Counter()
            lock = threading.Lock()
            go = threading.Event()

            def guess(i: int) -> None:
                go.wait()
                r = httpx.post(
                    f"{base}/api/login",
                    json={"username": "op_a", "password": f"guess number {i}"},
                    timeout=60,
                )
                with lock:
                    answers[r.status_code] += 1

            threads = [threading.Thread(target=guess, args=(i,)) for i in range(args.guesses)]
            for t in threads:
                t.start()
            start = time.monotonic()
            go.set()
            for t in threads:
                t.join()
            took = time.monotonic() - start
            time.sleep(1.0)
            done.set()
            sampler.join()
            after = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(10)
        checks = len(AuditLog(store.engine).entries(action="login.failure", limit=10_000))
        store.close()
    result = {
        "guesses": args.guesses,
        "answers": dict(sorted(answers.items())),
        "password_checks": checks,
        "seconds": round(took, 2),
        "rss_mb": {"before": round(before, 1), "peak": round(peak[0], 1), "after": round(after, 1)},
    }
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), **result}, indent=2))


if __name__ == "__main__":
    main()
