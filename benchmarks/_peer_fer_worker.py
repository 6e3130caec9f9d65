"""The `fer` side of benchmarks/peer_fer.py; runs inside the peer's own virtualenv.

This file imports only `fer`, OpenCV, NumPy and the standard library (never raksha), so it
runs with the peer venv's python:

    PEER/bin/python benchmarks/_peer_fer_worker.py speed --clip CLIP.mp4 [--frames N]
    PEER/bin/python benchmarks/_peer_fer_worker.py classify --list FILES.txt [--model tflite|hdf5]

It writes one JSON document on stdout (everything else goes to stderr).

`speed`: what a `fer` user runs on a video: OpenCV decodes every frame and
`FER(mtcnn=False).detect_emotions(frame)` finds faces with the Haar cascade and classifies
each one. One untimed warm-up call on the first frame comes first; then the first N frames
are read and analysed, each timed from the start of its read to the end of its analysis.

`classify`: face crops fed straight to the emotion classifier, without face detection,
with the preprocessing `detect_emotions` applies to a face crop (grey, resize to the model's
input size, scale to [-1, 1]). `tflite` is the default model of `FER()` (quantised, 64x64),
`hdf5` the Keras mini-Xception that `FER(use_tflite=False)` loads.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: fer's output columns (its `_get_labels()`), FER2013 order.
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _quiet_stdout() -> contextlib.AbstractContextManager[Any]:
    """TensorFlow and fer print to stdout; keep stdout for the JSON answer."""
    return contextlib.redirect_stdout(sys.stderr)


def _make_fer(model: str) -> Any:
    from fer.fer import FER

    return FER(mtcnn=False, use_tflite=(model == "tflite"))


def speed(clip: str, frames: int | None) -> dict[str, Any]:
    import cv2

    with _quiet_stdout():
        detector = _make_fer("tflite")
        cap = cv2.VideoCapture(clip)
        ok, first = cap.read()
        if not ok:
            raise SystemExit(f"fer worker: cannot read a frame from {clip}")
        detector.detect_emotions(first)  # warm-up: interpreter and cascade first use
        cap.release()

        cap = cv2.VideoCapture(clip)
        per_frame: list[float] = []
        faces: list[int] = []
        started = time.perf_counter()
        cpu0 = time.process_time()
        while frames is None or len(per_frame) < frames:
            t0 = time.perf_counter()
            ok, image = cap.read()
            if not ok:
                break
            found = detector.detect_emotions(image)
            per_frame.append(time.perf_counter() - t0)
            faces.append(len(found))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        cap.release()
    n = len(per_frame)
    return {
        "frames": n,
        "wall_s": wall,
        "fps": n / wall if wall > 0 else 0.0,
        "median_ms": 1000 * statistics.median(per_frame) if per_frame else None,
        "faces_per_frame": sum(faces) / n if n else 0.0,
        "cpu_ms_per_frame": 1000 * cpu / n if n else None,
        "faces": faces,
        "size": [int(first.shape[1]), int(first.shape[0])],
    }


def classify(paths: list[str], model: str, batch: int) -> dict[str, Any]:
    import cv2
    import numpy as np

    with _quiet_stdout():
        clf = _make_fer(model)
        # fer keeps the model's input size in a private attribute; it is (64, 64) for both.
        size = tuple(getattr(clf, "_FER__emotion_target_size", (64, 64)))
        probs: list[list[float]] = []
        started = time.perf_counter()
        for start in range(0, len(paths), batch):
            crops = []
            for p in paths[start : start + batch]:
                grey = cv2.imread(p, cv2.IMREAD_GRAYSCALE)
                if grey is None:
                    raise SystemExit(f"fer worker: cannot read image {p}")
                crops.append(cv2.resize(grey, size))
            x = np.asarray(crops, dtype=np.float32) / 255.0
            x = (x - 0.5) * 2.0
            out = np.asarray(clf._classify_emotions(x), dtype=np.float32)
            probs.extend(out.reshape(len(crops), -1).tolist())
        wall = time.perf_counter() - started
    return {
        "model": model,
        "input_size": list(size),
        "labels": list(FER_LABELS),
        "probs": probs,
        "wall_s": wall,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description="fer side of benchmarks/peer_fer.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("speed")
    sp.add_argument("--clip", required=True)
    sp.add_argument("--frames", type=int, default=None)
    cp = sub.add_parser("classify")
    cp.add_argument("--list", required=True, help="text file, one image path per line")
    cp.add_argument("--model", choices=("tflite", "hdf5"), default="tflite")
    cp.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()

    if args.cmd == "speed":
        doc = speed(args.clip, args.frames)
    else:
        with open(args.list, encoding="utf-8") as fh:
            paths = [line.strip() for line in fh if line.strip()]
        doc = classify(paths, args.model, args.batch)
    import fer

    doc["fer_version"] = getattr(fer, "__version__", "unknown")
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
