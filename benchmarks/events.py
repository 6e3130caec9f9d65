"""The event-level benchmark as reported in docs/events.md: make the clip set, then measure.

    RAKSHA_MODELS=../shared/models python benchmarks/events.py [--split test] [--count 40]
        [--seed 0] [--config settings.yaml] [--expression-model NAME] [--json OUT]

Runs two commands, printing each before it runs:

1. ``raksha eval make-clips`` into ``runs/event-clips-<split>-n<count>-s<seed>/`` (an ignored
   folder; skipped when that folder already holds the clips), from
   ``../shared/data/taiwan-tcce-performers``;
2. ``raksha eval events`` over those clips plus the street and webcam videos of
   ``../shared/data/videos`` as calm footage, writing the JSON (default
   ``benchmarks/results/events-<split>.json``) and the curve PNG (into the clip folder, named
   after the JSON).

The JSON gets the command lines, the machine, the git commit (with the source files that
differed from it) and the wall time added. The clips are research data: they stay under
runs/, never in the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RAKSHA_SHARED", REPO.parent / "shared"))


def _run(args: list[str]) -> str:
    shown = "raksha " + shlex.join(args)
    print(f"$ {shown}", flush=True)
    subprocess.run([sys.executable, "-m", "raksha", *args], check=True)
    return shown


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_state() -> dict[str, object]:
    """The commit measured, and the source files that differed from it (work in progress)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.rstrip("\n") if done.returncode == 0 else ""

    changed = [line[3:] for line in git("status", "--porcelain", "src").splitlines()]
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_src": changed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="test", choices=("train", "tune", "test"))
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", type=Path)
    ap.add_argument("--expression-model")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    data = SHARED / "data" / "taiwan-tcce-performers"
    clips = REPO / "runs" / f"event-clips-{args.split}-n{args.count}-s{args.seed}"
    out = args.json or REPO / "benchmarks" / "results" / f"events-{args.split}.json"
    make = [
        *("eval", "make-clips", "--data", str(data), "--out", str(clips)),
        *("--split", args.split, "--count", str(args.count), "--seed", str(args.seed)),
    ]
    made_now = not any(clips.glob("*.json"))
    commands = [_run(make) if made_now else "raksha " + shlex.join(make)]
    measure = [
        *("eval", "events", "--clips", str(clips), "--calm", str(SHARED / "data" / "videos")),
        *("--json", str(out), "--curve", str(clips / f"{out.stem}.png")),
    ]
    if args.config is not None:
        measure += ["--config", str(args.config)]
    if args.expression_model is not None:
        measure += ["--expression-model", args.expression_model]
    started = time.perf_counter()
    commands.append(_run(measure))
    doc = json.loads(out.read_text(encoding="utf-8"))
    doc["commands"] = [
        c.replace(str(REPO) + "/", "").replace(str(REPO.parent), "..") for c in commands
    ]
    doc["clips_made_now"] = made_now
    doc["clips_dir"] = str(clips.relative_to(REPO))
    doc["calm_dir"] = "../shared/data/videos"
    doc["machine"] = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    doc["git"] = _git_state()
    doc["benchmark_wall_s"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
