"""Cross-camera batching of expression inference (`expression.batching`), on this CPU.

    RAKSHA_MODELS=../shared/models python benchmarks/batching.py \
        [--model raksha-fer-xd-int8] [--batches 1 16 64 256] [--cameras 1 4 16 64] \
        [--faces 2] [--fps 5] [--seconds 5] [--max-batch 64] [--max-wait-ms 10] \
        [--threads 1] [--provider cpu|cuda] [--json OUT]

1. The classifier alone (`predict_crops`: resize, normalise, run, reorder; one onnxruntime
   thread by default, as `raksha run` runs it; `--threads`) on real FER+ validation faces
   at each batch size: faces/s from the median batch time.
2. N simulated cameras, one thread each, sending `--faces` face crops per frame at `--fps`
   (start phases spread over one frame interval; a frame that comes back late is followed
   at once by the next one, as a camera that fell behind does). Two ways:
   * `direct`: each camera thread runs the classifier itself (batching off: `raksha run` now);
   * `batched`: each camera thread asks one shared `InferenceBatcher` (batching on).
   For each: faces/s served, the latency of a frame's expression read (submit to rows)
   p50 / p95, the process CPU seconds per 1000 faces, and the share of frames served later
   than one frame interval. "Added latency" is batched minus direct at the same N.

Writes benchmarks/results/batching-<cpu>.json unless --json says otherwise. The figures and
what they mean are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from raksha.expression.config import ExpressionConfig
from raksha.expression.factory import build_expression_classifier
from raksha.ml.evaluation.datasets import read_ferplus
from raksha.ort_session import use_provider
from raksha.pipeline.batcher import InferenceBatcher

SHARED = Path(os.environ.get("RAKSHA_SHARED", Path(__file__).resolve().parents[2] / "shared"))
RESULTS = Path(__file__).resolve().parent / "results"
U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def classifier_alone(
    predict: Callable[[Sequence[U8]], F32], crops: list[U8], batch: int, seconds: float
) -> dict[str, float]:
    batches = [
        [crops[(i * batch + j) % len(crops)] for j in range(batch)]
        for i in range(max(1, 4096 // batch))
    ]
    for b in batches[:3]:
        predict(b)  # warm-up
    times: list[float] = []
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end or len(times) < 5:
        t = time.perf_counter()
        predict(batches[i % len(batches)])
        times.append(time.perf_counter() - t)
        i += 1
    med = statistics.median(times)
    return {
        "batch": batch,
        "faces_per_s": round(batch / med, 1),
        "median_ms": round(med * 1e3, 3),
        "p95_ms": round(float(np.percentile(times, 95)) * 1e3, 3),
        "runs": len(times),
    }


def cameras(
    read: Callable[[Sequence[U8]], F32],
    crops: list[U8],
    n: int,
    faces: int,
    fps: float,
    seconds: float,
) -> dict[str, Any]:
    """n camera threads, each reading `faces` crops per frame at `fps`, for `seconds`."""
    interval = 1.0 / fps
    latencies: list[list[float]] = [[] for _ in range(n)]
    late = [0] * n
    start = time.monotonic() + 0.2
    stop_at = start + seconds

    def camera(k: int) -> None:
        frame = [crops[(k * faces + j) % len(crops)] for j in range(faces)]
        due = start + interval * k / n  # phases spread over one frame interval
        while due < stop_at:
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            t = time.monotonic()
            read(frame)
            done = time.monotonic()
            latencies[k].append(done - t)
            if done - due > interval:
                late[k] += 1
            due = max(due + interval, done)  # behind: the next frame at once

    threads = [threading.Thread(target=camera, args=(k,)) for k in range(n)]
    cpu0 = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = max(seconds, time.monotonic() - start)
    cpu = time.process_time() - cpu0
    flat = [x for per in latencies for x in per]
    served = len(flat) * faces
    return {
        "cameras": n,
        "offered_faces_per_s": n * faces * fps,
        "faces_per_s": round(served / wall, 1),
        "p50_ms": round(float(np.percentile(flat, 50)) * 1e3, 2),
        "p95_ms": round(float(np.percentile(flat, 95)) * 1e3, 2),
        "cpu_s_per_1000_faces": round(1000 * cpu / served, 3),
        "late_share": round(sum(late) / len(flat), 3),
        "frames": len(flat),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default=ExpressionConfig().model)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--cameras", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--faces", type=int, default=2, help="faces per frame and camera")
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--max-wait-ms", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument(
        "--provider", choices=["cpu", "cuda"], default="cpu", help="`execution.provider`"
    )
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "ferplus-valid")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    use_provider(args.provider)
    crops = list(read_ferplus(args.data).images[:1024])
    cfg = ExpressionConfig(model=args.model, threads=args.threads, batch_size=max(args.batches))
    clf = build_expression_classifier(cfg)
    cpu = cpu_name()
    load0 = [round(x, 2) for x in os.getloadavg()]
    print(f"{cpu}, {os.cpu_count()} CPUs, load {load0}, python {sys.version.split()[0]}")

    alone = []
    for b in args.batches:
        r = classifier_alone(clf.predict_crops, crops, b, args.seconds)
        alone.append(r)
        print(
            f"classifier alone, batch {b:4d}: {r['faces_per_s']:8.0f} faces/s "
            f"(median {r['median_ms']:.2f} ms per batch)"
        )

    runs = []
    for n in args.cameras:
        direct = cameras(clf.predict_crops, crops, n, args.faces, args.fps, args.seconds)
        batcher = InferenceBatcher(
            clf.predict_crops, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms
        ).start()
        try:
            batched = cameras(batcher.predict, crops, n, args.faces, args.fps, args.seconds)
        finally:
            batcher.stop()
        s = batcher.stats
        batched["mean_batch_faces"] = round(s.faces / max(s.batches, 1), 1)
        batched["largest_batch"] = s.largest
        added = {
            "p50_ms": round(batched["p50_ms"] - direct["p50_ms"], 2),
            "p95_ms": round(batched["p95_ms"] - direct["p95_ms"], 2),
        }
        runs.append({"cameras": n, "direct": direct, "batched": batched, "added": added})
        for mode, r in (("direct", direct), ("batched", batched)):
            print(
                f"{n:3d} cameras {mode:7s}: {r['faces_per_s']:7.0f} faces/s "
                f"(offered {r['offered_faces_per_s']:.0f}), p50 {r['p50_ms']:7.2f} ms, "
                f"p95 {r['p95_ms']:7.2f} ms, {r['cpu_s_per_1000_faces']:.2f} CPU s/1000 faces, "
                f"late {r['late_share']:.1%}"
                + (f", mean batch {r['mean_batch_faces']}" if mode == "batched" else "")
            )

    doc = {
        "benchmark": "batching",
        "command": " ".join(["python benchmarks/batching.py", *sys.argv[1:]]),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        # Load averages count this benchmark's own camera threads too.
        "load_avg_at_start": load0,
        "model": args.model,
        "provider": args.provider,
        "onnxruntime_threads": args.threads,
        "faces_per_frame": args.faces,
        "fps": args.fps,
        "seconds_per_measurement": args.seconds,
        "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms,
        "classifier_alone": alone,
        "cameras": runs,
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    slug = re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-") or "cpu"
    out = args.json or RESULTS / f"batching-{slug}.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
