"""Fault harness: the fault scenarios of the test suite, each run again and again.

    python benchmarks/faults.py [--repeat 5] [--json out.json]

Each scenario is a real end-to-end test (real `raksha run` processes, PostgreSQL through a
TCP proxy the test cuts, SIGKILL, real streams); a run passes only when nothing was lost and
nothing stored twice. Prints, per scenario, how many runs passed and how long they took;
nothing is asserted here (the scenarios assert).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: name -> (test id, what it does)
SCENARIOS = {
    "database outage": (
        "tests/test_run_pipeline.py::test_a_database_outage_does_not_end_a_run_with_its_live_table",
        "PostgreSQL cut for 8 s while raksha run (live table) decides an incident",
    ),
    "kill -9 during an outage": (
        "tests/test_run_pipeline.py::test_kill_9_during_a_database_outage_loses_no_incident",
        "the run is killed while its incident waits in the spool; the next run stores it once",
    ),
    "two runs, one person": (
        "tests/test_run_pipeline.py::test_two_runs_on_one_postgresql_make_one_incident_of_one_person",
        "two raksha run processes on one PostgreSQL see the same person: one incident",
    ),
    "crash between commit and spool delete": (
        "tests/test_incident_sink.py::test_a_crash_during_an_outage_loses_no_incident_and_stores_none_twice",
        "a replay after the crash stores nothing twice",
    ),
    "camera stall": (
        "tests/test_sources.py::test_a_half_open_stall_is_noticed_within_10_s_with_the_defaults",
        "a stream that goes silent with its connection open is noticed within 10 s",
    ),
    "camera away 8 s (a real stream)": (
        "tests/test_sources.py::test_a_real_camera_away_for_8_s_is_analysed_again_within_5_s_of_its_return",
        "its port closed for 8 s; frames again within 5 s of its return",
    ),
    "camera away 40 s": (
        "tests/test_sources.py::test_a_camera_is_back_within_seconds_of_its_stream_after_a_long_outage",
        "analysed again within 5 s of its stream returning",
    ),
}


def kill_loop(kills: int, seed: int = 0) -> dict[str, object]:
    """`raksha run` (one real-time distress clip, SQLite) killed with SIGKILL at a random
    moment `kills` times in a row, then run to the end once: there must be exactly one
    incident (the same person at the same place merges) with exactly one alert, whatever
    the kills hit (deciding, writing evidence, committing)."""
    import random
    import signal
    import sqlite3
    import tempfile

    import yaml

    sys.path.insert(0, str(REPO / "tests"))
    from synthetic_video import FaceJudge, build_distress_clip

    shared = Path(os.environ.get("RAKSHA_SHARED", REPO.parent / "shared"))
    models = Path(os.environ.get("RAKSHA_MODELS", shared / "models"))
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = build_distress_clip(folder, shared / "data", FaceJudge(models))
        config = folder / "raksha.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "stations": [{"id": "s1", "lat": 26.85, "lon": 80.94}],
                    "hotspots": [{"id": "h1", "lat": 26.851, "lon": 80.941}],
                    "cameras": [{"id": "cam-1", "hotspot": "h1", "url": str(clip.path)}],
                    "storage": {"url": f"sqlite:///{folder / 'raksha.db'}"},
                    "evidence": {"dir": str(folder / "evidence")},
                    "source": {"realtime_files": True},
                }
            )
        )
        env = dict(os.environ, RAKSHA_MODELS=str(models))
        cmd = [sys.executable, "-m", "raksha", "run", "--config", str(config)]
        cmd += ["--exit-at-end", "--no-table"]
        moments = []
        for _ in range(kills):
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            at = rng.uniform(2.0, 14.0)  # model loading, then the 10 s clip in real time
            moments.append(round(at, 1))
            time.sleep(at)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        with sqlite3.connect(folder / "raksha.db") as db:
            incidents = db.execute("SELECT count(*) FROM incidents").fetchone()[0]
            alerts = db.execute("SELECT count(*) FROM alerts").fetchone()[0]
            paths = {r[0] for r in db.execute("SELECT path FROM incident_evidence")}
        on_disk = {str(p) for p in (folder / "evidence").rglob("*") if p.is_file()}
        return {
            "kills": kills,
            "kill_moments_s": moments,
            "final_run_ok": final.returncode == 0,
            "incidents": incidents,
            "alerts": alerts,
            "evidence_rows_without_file": len(paths - on_disk),
            "passed": final.returncode == 0
            and incidents == 1
            and alerts == 1
            and not (paths - on_disk),
        }


def run_once(test_id: str) -> tuple[bool, float]:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_id],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, RAKSHA_MODELS=os.environ.get("RAKSHA_MODELS", "../shared/models")),
        check=False,
    )
    return proc.returncode == 0, time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--kills", type=int, default=10, help="SIGKILLs in the kill loop (0: none)")
    args = ap.parse_args()
    results: list[dict[str, object]] = []
    if args.kills:
        loop = kill_loop(args.kills)
        results.append({"scenario": "kill loop", **loop})
        print(
            f"{'kill loop':40s} {args.kills} SIGKILLs at {loop['kill_moments_s']} s: "
            f"{loop['incidents']} incident(s), {loop['alerts']} alert(s), "
            f"{'passed' if loop['passed'] else 'FAILED'}",
            flush=True,
        )
    for name, (test_id, what) in SCENARIOS.items():
        outcomes = [run_once(test_id) for _ in range(args.repeat)]
        passed = sum(ok for ok, _ in outcomes)
        seconds = sorted(s for _, s in outcomes)
        results.append(
            {
                "scenario": name,
                "what": what,
                "test": test_id,
                "runs": args.repeat,
                "passed": passed,
                "median_s": round(seconds[len(seconds) // 2], 1),
            }
        )
        median = seconds[len(seconds) // 2]
        print(f"{name:40s} {passed}/{args.repeat} passed  median {median:5.1f} s", flush=True)
    if args.json:
        args.json.write_text(
            json.dumps({"command": " ".join(sys.argv), "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
