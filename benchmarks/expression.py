"""Expression model speed on one CPU core at batch 16, through onnxruntime.

    RAKSHA_MODELS=../shared/models python benchmarks/expression.py \
        [--models raksha-fer-resnet fer-mini-xception] [--batch 16] [--repeats 200] [--json OUT]

For each model: an onnxruntime session with intra_op_num_threads=1 and inter_op_num_threads=1
(Raksha's runtime, `OnnxExpressionClassifier`, with `threads=1`). Twenty untimed warm-up
batches, then `--repeats` timed batches of real FER+ validation faces (48x48 grey):

* `model`: the exported graph run alone on a ready input tensor (for a mirror-averaging
  model, both passes on every face);
* `end_to_end`: `predict_crops` (resize, normalise, run, reorder columns) on the crops, as
  Raksha runs it: for a mirror-averaging model, the mirror pass only for the faces whose
  first pass is unsure (`expression.mirror_below`, default 0.8).

Reports faces/s from the median batch time, and median / p95 milliseconds per batch. Results
go in docs/expression-model.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from raksha.expression.config import ExpressionConfig
from raksha.expression.factory import build_expression_classifier
from raksha.expression.preprocess import to_input
from raksha.ml.evaluation.datasets import read_ferplus
from raksha.ort_session import cpu_session

SHARED = Path(os.environ.get("RAKSHA_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def _stats(times: list[float], batch: int) -> dict[str, float]:
    med = statistics.median(times)
    p95 = float(np.percentile(times, 95))
    return {"faces_per_s": batch / med, "median_ms": med * 1e3, "p95_ms": p95 * 1e3}


def bench(name: str, crops: list[np.ndarray], batch: int, repeats: int) -> dict[str, Any]:
    clf = build_expression_classifier(ExpressionConfig(model=name, threads=1, batch_size=batch))
    spec = clf.spec
    # The exported graph as it is (both passes of a mirror-averaging model), one thread.
    session = cpu_session(clf.model_file, 1, f"expression model {name}")
    batches = [crops[i : i + batch] for i in range(0, len(crops) - batch + 1, batch)]
    tensors = [to_input(b, spec.input) for b in batches]
    feed_name = spec.input.name
    for i in range(20):
        session.run(None, {feed_name: tensors[i % len(tensors)]})
        clf.predict_crops(batches[i % len(batches)])
    model_t: list[float] = []
    e2e_t: list[float] = []
    for i in range(repeats):
        x = tensors[i % len(tensors)]
        t = time.perf_counter()
        session.run(None, {feed_name: x})
        model_t.append(time.perf_counter() - t)
        b = batches[i % len(batches)]
        t = time.perf_counter()
        clf.predict_crops(b)
        e2e_t.append(time.perf_counter() - t)
    return {
        "model": name,
        "input": f"{spec.input.layout} {spec.input.channels}x{spec.input.size}x{spec.input.size}",
        "batch": batch,
        "threads": 1,
        "mirror_below": ExpressionConfig().mirror_below if clf.skips_mirror else None,
        "model_only": _stats(model_t, batch),
        "end_to_end": _stats(e2e_t, batch),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["raksha-fer-resnet", "fer-mini-xception"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "ferplus-valid")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    data = read_ferplus(args.data)
    crops = list(data.images[: args.batch * 20])
    results = [bench(m, crops, args.batch, args.repeats) for m in args.models]
    print(f"{platform.processor() or platform.machine()}, python {sys.version.split()[0]}")
    print(
        f"{'model':24s} {'input':14s} {'faces/s (model)':>16s} {'faces/s (e2e)':>14s} "
        f"{'median ms':>10s} {'p95 ms':>8s}"
    )
    for r in results:
        print(
            f"{r['model']:24s} {r['input']:14s} {r['model_only']['faces_per_s']:16.0f} "
            f"{r['end_to_end']['faces_per_s']:14.0f} {r['end_to_end']['median_ms']:10.2f} "
            f"{r['end_to_end']['p95_ms']:8.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
